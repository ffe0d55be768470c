"""The ``asteroid-lass`` command: ``separate`` files with any model, ``convert-*`` weights.

Every user error is one ``asteroid-lass <command>: error: <reason>`` line on stderr and exit
status 2; ``--debug`` adds the traceback. A multi-file run goes on past a file that fails, and
ends with a summary and exit status 1. Anything unexpected (a bug) is also one line, with exit
status 1.
"""

import argparse
import math
import os
import signal
import sys
import traceback
from typing import Callable, Dict, List, Optional

from .errors import LASSError, LASSInputError, ModelFileError, OutputExistsError
from .inference import DEFAULT_OVERLAP, DEFAULT_WINDOW_SECONDS

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
        "prompt of the model's vocabulary; for a blind model none (every source), or with "
        "--clap-checkpoint a description (the best-matching source).",
    )
    sep.add_argument(
        "--negative", action="append", default=[], help="What to keep out of it (repeatable)."
    )
    sep.add_argument("--residual", action="store_true", help="Also write everything else.")
    sep.add_argument("--model", required=True, help="Model file (.pth) or Hugging Face repo id.")
    sep.add_argument(
        "--clap-checkpoint",
        help="LAION-CLAP checkpoint: a CLAP-queried model's encoder, or for a blind model what "
        "picks the source matching each --query.",
    )
    sep.add_argument("--out", required=True, help="Output directory.")
    sep.add_argument("--device", default=None, help="cpu, cuda or cuda:N (default: cuda if any).")
    sep.add_argument(
        "--window",
        type=float,
        default=DEFAULT_WINDOW_SECONDS,
        help=f"Window length in seconds (default {DEFAULT_WINDOW_SECONDS:g}; at most the model's "
        "longest input).",
    )
    sep.add_argument(
        "--overlap",
        type=float,
        default=DEFAULT_OVERLAP,
        help=f"Window overlap fraction (default {DEFAULT_OVERLAP:g}).",
    )
    sep.add_argument(
        "--batch", type=int, default=None, help="Windows per pass (default: 1 on CPU, 4 on GPU)."
    )
    sep.add_argument(
        "--precision",
        default="fp32",
        help="fp32 (default) or bf16: numeric precision of the model's forward pass (bf16 is "
        "faster on CPUs and GPUs with native bf16; its measured cost is in the README).",
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

    mtn = commands.add_parser(
        "convert-metatasnet",
        help="Convert a checkpoint of the official Meta-TasNet train.py to a model file.",
    )
    mtn.add_argument("checkpoint", help="Official checkpoint (best_checkpoint, last_checkpoint).")
    mtn.add_argument("--out", required=True, help="Model file to write (.pth).")
    mtn.add_argument("--force", action="store_true", help="Overwrite an existing --out.")
    tuss = commands.add_parser(
        "convert-tuss", help="Convert a released TUSS model.pth (state dict) to a model file."
    )
    tuss.add_argument("state_dict", help="The released model.pth (a flat state dict).")
    tuss.add_argument("--out", required=True, help="Model file to write (.pth).")
    tuss.add_argument(
        "--hparams", help="The hparams.yaml beside it (default: the medium configuration)."
    )
    tuss.add_argument("--force", action="store_true", help="Overwrite an existing --out.")
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
    from asteroid.models import BaseModel

    from .models import as_separator
    from .errors import one_line
    from .models.base import load_model_file
    from .queries import build_query_encoder

    torch_device = check_device(device)
    conf = load_model_file(model)
    overrides, spec = {}, None
    if clap_checkpoint is not None:
        if not os.path.isfile(clap_checkpoint):
            raise LASSInputError(f"--clap-checkpoint: file not found: {clap_checkpoint}")
        spec = dict(conf["model_args"].get("query_encoder") or {"name": "clap"})
        spec.update(name="clap", checkpoint=os.path.abspath(clap_checkpoint))
        if "query_encoder" in conf["model_args"]:  # an embedding model's own encoder
            overrides["query_encoder"] = spec
    try:
        loaded = as_separator(BaseModel.from_pretrained(conf, **overrides))
    except LASSError:
        raise
    except Exception as err:
        raise ModelFileError(f"model {model} does not load: {one_line(err)}") from err
    if spec is not None and not overrides:  # a blind model ranks its outputs with CLAP
        loaded.set_query_encoder(build_query_encoder(spec))
    return loaded.to(torch_device).eval()


def check_device(device: str):
    """``device`` as a ``torch.device`` this machine has; else a one-line error naming it."""
    import torch

    from .errors import one_line

    try:
        torch_device = torch.device(device)
    except (RuntimeError, TypeError) as err:
        raise LASSInputError(f"--device {device!r} is not a device ({one_line(err)})") from err
    if torch_device.type == "cpu":
        return torch_device
    if torch_device.type == "cuda":
        count = torch.cuda.device_count() if torch.cuda.is_available() else 0
        if count == 0:
            raise LASSInputError(f"--device {device}: no CUDA device is available on this machine")
        if torch_device.index is not None and torch_device.index >= count:
            raise LASSInputError(f"--device {device}: this machine has {count} CUDA device(s)")
        return torch_device
    if torch_device.type == "mps":
        if not torch.backends.mps.is_available():
            raise LASSInputError(f"--device {device}: no MPS device is available on this machine")
        return torch_device
    raise LASSInputError(f"--device {device}: unsupported device type (use cpu, cuda or mps)")


def _check_options(args) -> None:
    """Refuse nonsense options by name, before the model is loaded."""
    if not args.out.strip():
        raise LASSInputError("--out is empty; give an output folder")
    if not (0 < args.window < math.inf):
        raise LASSInputError(
            f"--window must be a positive, finite number of seconds, got {args.window}"
        )
    if not (0 <= args.overlap <= 0.5):
        raise LASSInputError(f"--overlap must be a fraction in [0, 0.5], got {args.overlap}")
    if args.batch is not None and args.batch < 1:
        raise LASSInputError(f"--batch must be a whole number >= 1, got {args.batch}")
    if os.path.exists(args.out) and not os.path.isdir(args.out):
        raise LASSInputError(f"--out {args.out}: exists and is not a folder")


def _make_folder(path: str) -> List[str]:
    """``os.makedirs(path)``; returns the folders it created, deepest first."""
    created, head = [], os.path.abspath(path)
    while not os.path.isdir(head):
        created.append(head)
        parent = os.path.dirname(head)
        if parent == head:
            break
        head = parent
    try:
        os.makedirs(path, exist_ok=True)
    except OSError as err:
        _remove_empty(created)
        reason = err.strerror or type(err).__name__
        raise LASSInputError(f"--out {path}: cannot create the folder ({reason})") from err
    return created


def _remove_empty(folders: List[str]) -> None:
    """Remove the folders a run created, deepest first, if they stayed empty."""
    for folder in folders:
        try:
            os.rmdir(folder)
        except OSError:  # not empty (outputs written) or already gone
            return


def _separate(args) -> int:
    from .inference import output_paths

    _check_options(args)
    query = _query_argument(args.query)
    files = collect_inputs(args.inputs)
    model = load_separator(args.model, args.clap_checkpoint, args.device or _default_device())
    # Plan every output before any work: collisions and overwrites fail the whole run.
    planned: Dict[str, str] = {}
    inputs = {os.path.realpath(path): path for path in files}
    for path in files:
        for destination in output_paths(path, model, query, args.out, args.residual):
            real = os.path.realpath(destination)
            if real in planned:
                raise OutputExistsError(
                    f"{path} and {planned[real]} would both write {destination}; separate them "
                    "into different --out folders"
                )
            if real in inputs:  # even with --force: an input is never replaced
                raise OutputExistsError(
                    f"output {destination} would replace the input {inputs[real]}"
                )
            if os.path.isdir(destination):
                raise OutputExistsError(f"output {destination} is a folder")
            if os.path.exists(destination) and not args.force:
                raise OutputExistsError(f"output exists: {destination} (use --force to overwrite)")
            planned[real] = path
    created = _make_folder(args.out)
    try:
        return _separate_files(args, model, query, files)
    finally:
        _remove_empty(created)


def _separate_files(args, model, query, files: List[str]) -> int:
    from tqdm import tqdm

    from .inference import separate_file

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
                    precision=args.precision,
                )
        except Exception as err:  # one bad file does not stop the others
            if len(files) == 1:
                raise
            failures.append(path)
            _print_error(args, err, unexpected=not isinstance(err, LASSError))
            continue
        for destination in written:
            print(destination)
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
    from .errors import one_line

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


def _convert_metatasnet(args) -> int:
    from .converters.metatasnet import convert_metatasnet

    if os.path.exists(args.out) and not args.force:
        raise OutputExistsError(f"output exists: {args.out} (use --force to overwrite)")
    try:
        convert_metatasnet(args.checkpoint, out_path=args.out)
    except (ValueError, FileNotFoundError) as err:
        raise LASSInputError(str(err)) from err
    print(args.out)
    return 0


def _convert_tuss(args) -> int:
    from .converters.tuss import convert_tuss

    if os.path.exists(args.out) and not args.force:
        raise OutputExistsError(f"output exists: {args.out} (use --force to overwrite)")
    for option, path in (("STATE_DICT", args.state_dict), ("--hparams", args.hparams)):
        if path is not None and not os.path.isfile(path):
            raise LASSInputError(f"{option}: file not found: {path}")
    try:
        convert_tuss(args.state_dict, out_path=args.out, hparams_yaml=args.hparams)
    except (ValueError, KeyError, FileNotFoundError) as err:
        raise LASSInputError(str(err)) from err
    print(args.out)
    return 0


COMMANDS: Dict[str, Callable] = {
    "separate": _separate,
    "convert-audiosep": _convert_audiosep,
    "convert-metatasnet": _convert_metatasnet,
    "convert-tuss": _convert_tuss,
}


def _print_error(args, err: BaseException, unexpected: bool = False) -> None:
    if getattr(args, "debug", False):
        traceback.print_exception(err)
    reason = " ".join(str(err).split())  # one line, whatever the cause printed
    # File names can hold control characters (an ANSI escape would colour the terminal).
    reason = "".join(ch if ch.isprintable() else ascii(ch)[1:-1] for ch in reason)
    if unexpected:
        hint = "" if getattr(args, "debug", False) else " (rerun with --debug for the traceback)"
        reason = f"unexpected {type(err).__name__}: {reason}"
        reason = _shorten(reason, MAX_MESSAGE - len(hint)) + hint
    print(f"asteroid-lass {args.command}: error: {_shorten(reason, MAX_MESSAGE)}", file=sys.stderr)


def _shorten(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."


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
    except Exception as err:  # a bug: still one line, the traceback under --debug
        _print_error(args, err, unexpected=True)
        return FAILED_FILES
    except KeyboardInterrupt:
        print(f"asteroid-lass {args.command}: interrupted", file=sys.stderr)
        return 130
    finally:
        signal.signal(signal.SIGTERM, previous)


if __name__ == "__main__":
    sys.exit(main())
