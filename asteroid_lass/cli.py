"""The ``asteroid-lass`` command: ``separate`` files with any model, ``convert-*`` weights.

Every user error is one ``asteroid-lass <command>: error: <reason>`` line on stderr and exit
status 2; ``--debug`` shows the traceback instead. A multi-file run goes on past a file that
fails, and ends with a summary and exit status 1.
"""

import argparse
import os
import signal
import sys
import traceback
from typing import Callable, Dict, List, Optional

from .errors import LASSError, LASSInputError, ModelFileError, OutputExistsError

AUDIO_EXTENSIONS = (".wav", ".flac", ".ogg", ".aiff", ".aif", ".mp3")
USER_ERROR, FAILED_FILES = 2, 1
MAX_MESSAGE = 400


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="asteroid-lass", description="Query-driven audio source separation."
    )
    parser.add_argument("--debug", action="store_true", help="Show tracebacks of errors.")
    commands = parser.add_subparsers(dest="command", required=True)

    sep = commands.add_parser("separate", help="Separate audio files into their sources.")
    sep.add_argument("inputs", nargs="+", help="Audio files, or directories of audio files.")
    sep.add_argument(
        "--query",
        action="append",
        default=[],
        help="What to extract (repeatable): a description for a text-queried model, a label or "
        "prompt of the model's vocabulary; none for a blind model (every source).",
    )
    sep.add_argument(
        "--negative", action="append", default=[], help="What to keep out of it (repeatable)."
    )
    sep.add_argument("--residual", action="store_true", help="Also write everything else.")
    sep.add_argument("--model", required=True, help="Model file (.pth) or Hugging Face repo id.")
    sep.add_argument("--clap-checkpoint", help="LAION-CLAP checkpoint for a CLAP-queried model.")
    sep.add_argument("--out", required=True, help="Output directory.")
    sep.add_argument("--device", default=None, help="cpu, cuda or cuda:N (default: cuda if any).")
    sep.add_argument("--window", type=float, default=10.0, help="Window length in seconds.")
    sep.add_argument("--overlap", type=float, default=0.25, help="Window overlap fraction.")
    sep.add_argument(
        "--batch", type=int, default=None, help="Windows per pass (default: 1 on CPU, 4 on GPU)."
    )
    sep.add_argument("--force", action="store_true", help="Overwrite existing outputs.")
    sep.add_argument("--no-progress", action="store_true", help="No progress bar.")

    conv = commands.add_parser(
        "convert-audiosep", help="Convert AudioSep's released checkpoint to a model file."
    )
    conv.add_argument("checkpoint", help="AudioSep Lightning checkpoint (.ckpt).")
    conv.add_argument("--clap-checkpoint", required=True, help="The CLAP .pt AudioSep used.")
    conv.add_argument("--out", required=True, help="Model file to write (.pth).")
    conv.add_argument("--force", action="store_true", help="Overwrite an existing --out.")
    return parser


def collect_inputs(inputs: List[str]) -> List[str]:
    """Files and the audio files of directories, in order; a missing input is an error."""
    files = []
    for item in inputs:
        if os.path.isdir(item):
            found = sorted(
                os.path.join(item, name)
                for name in os.listdir(item)
                if name.lower().endswith(AUDIO_EXTENSIONS) and not name.startswith(".")
            )
            if not found:
                raise LASSInputError(f"no audio files in directory {item}")
            files.extend(found)
        elif os.path.isfile(item):
            files.append(item)
        else:
            raise LASSInputError(f"input not found: {item}")
    return files


def load_separator(model: str, clap_checkpoint: Optional[str], device: str):
    """Load any model file as a :class:`~asteroid_lass.models.base.Separator` on ``device``."""
    import torch
    from asteroid.models import BaseModel

    from .models import as_separator
    from .models.base import load_model_file, one_line

    try:
        torch_device = torch.device(device)
    except RuntimeError as err:
        raise LASSInputError(f"--device {device!r} is not a device ({one_line(err)})") from err
    if torch_device.type == "cuda" and not torch.cuda.is_available():
        raise LASSInputError(f"--device {device}: no CUDA device is available on this machine")
    conf = load_model_file(model)
    overrides = {}
    if clap_checkpoint is not None:
        if not os.path.isfile(clap_checkpoint):
            raise LASSInputError(f"--clap-checkpoint: file not found: {clap_checkpoint}")
        spec = dict(conf["model_args"].get("query_encoder") or {"name": "clap"})
        spec.update(name="clap", checkpoint=os.path.abspath(clap_checkpoint))
        overrides["query_encoder"] = spec
    try:
        loaded = as_separator(BaseModel.from_pretrained(conf, **overrides))
    except LASSError:
        raise
    except Exception as err:
        raise ModelFileError(f"model {model} does not load: {one_line(err)}") from err
    return loaded.to(torch_device).eval()


def _separate(args) -> int:
    from tqdm import tqdm

    from .inference import output_paths, separate_file

    query = _query_argument(args.query)
    files = collect_inputs(args.inputs)
    model = load_separator(args.model, args.clap_checkpoint, args.device or _default_device())
    # Plan every output before any work: collisions and overwrites fail the whole run.
    planned: Dict[str, str] = {}
    inputs = {os.path.realpath(path) for path in files}
    for path in files:
        for destination in output_paths(path, model, query, args.out, args.residual):
            real = os.path.realpath(destination)
            if real in planned:
                raise OutputExistsError(
                    f"{path} and {planned[real]} would both write {destination}; separate them "
                    "into different --out folders"
                )
            if real in inputs:
                raise OutputExistsError(f"output {destination} would replace an input file")
            if os.path.exists(destination) and not args.force:
                raise OutputExistsError(f"output exists: {destination} (use --force to overwrite)")
            planned[real] = path
    created_out = not os.path.isdir(args.out)
    try:
        os.makedirs(args.out, exist_ok=True)
    except OSError as err:
        raise LASSInputError(f"--out {args.out}: cannot create the folder ({err.strerror})")
    if not os.access(args.out, os.W_OK):
        raise LASSInputError(f"--out {args.out}: the folder is not writable")
    failures = []
    for path in files:
        try:
            frames = _frames(path)
            with tqdm(
                total=frames,
                unit="sample",
                desc=os.path.basename(path),
                disable=args.no_progress or not sys.stderr.isatty(),
            ) as bar:
                written = separate_file(
                    model,
                    path,
                    query=query,
                    negative=args.negative,
                    residual=args.residual,
                    output_dir=args.out,
                    force=args.force,
                    window=args.window,
                    overlap=args.overlap,
                    batch_size=args.batch,
                    progress=bar.update,
                )
        except LASSError as err:
            if len(files) == 1:
                raise
            failures.append(path)
            _print_error(args, err)
            continue
        for destination in written:
            print(destination)
    if created_out and not os.listdir(args.out):
        os.rmdir(args.out)
    if failures:
        print(
            f"asteroid-lass separate: {len(failures)} of {len(files)} files failed: "
            + ", ".join(failures),
            file=sys.stderr,
        )
        return FAILED_FILES
    return 0


def _query_argument(queries: List[str]):
    if any(not q.strip() for q in queries):
        raise LASSInputError("--query: empty query text")
    return queries or None


def _default_device() -> str:
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def _frames(path: str) -> int:
    import soundfile as sf

    from .errors import AudioFileError
    from .models.base import one_line

    try:
        return sf.info(path).frames
    except Exception as err:
        raise AudioFileError(f"unreadable audio {path}: {one_line(err)}") from err


def _convert_audiosep(args) -> int:
    from .converters.audiosep import convert_audiosep

    if os.path.exists(args.out) and not args.force:
        raise OutputExistsError(f"output exists: {args.out} (use --force to overwrite)")
    try:
        convert_audiosep(args.checkpoint, args.clap_checkpoint, out_path=args.out)
    except (ValueError, FileNotFoundError) as err:
        raise LASSInputError(str(err)) from err
    print(args.out)
    return 0


COMMANDS: Dict[str, Callable] = {"separate": _separate, "convert-audiosep": _convert_audiosep}


def _print_error(args, err: BaseException) -> None:
    if getattr(args, "debug", False):
        traceback.print_exception(err)
    reason = " ".join(str(err).split())  # one line, whatever the cause printed
    if len(reason) > MAX_MESSAGE:
        reason = reason[: MAX_MESSAGE - 3] + "..."
    print(f"asteroid-lass {args.command}: error: {reason}", file=sys.stderr)


def _terminate(signum, frame):
    # Turn SIGTERM into the same unwinding as Ctrl-C, so temporary outputs are removed.
    raise KeyboardInterrupt


def main(argv: Optional[List[str]] = None) -> int:
    """Entry point; returns the exit code (0 ok, 1 some files failed, 2 a user error)."""
    args = _parser().parse_args(argv)
    previous = signal.signal(signal.SIGTERM, _terminate)
    try:
        return COMMANDS[args.command](args)
    except LASSError as err:
        _print_error(args, err)
        return USER_ERROR
    except KeyboardInterrupt:
        print(f"asteroid-lass {args.command}: interrupted", file=sys.stderr)
        return 130
    finally:
        signal.signal(signal.SIGTERM, previous)


if __name__ == "__main__":
    sys.exit(main())
