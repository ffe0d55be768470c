"""The ``asteroid-lass`` command: ``separate`` files by text query, ``convert-audiosep`` weights."""

import argparse
import os
import sys
from typing import List, Optional

AUDIO_EXTENSIONS = (".wav", ".flac", ".ogg", ".aiff", ".aif", ".mp3")


class CommandError(Exception):
    """A user-facing failure: printed as one line, exit code 1."""


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="asteroid-lass", description="Language-queried audio source separation."
    )
    commands = parser.add_subparsers(dest="command", required=True)

    sep = commands.add_parser("separate", help="Extract the described sounds from audio files.")
    sep.add_argument("inputs", nargs="+", help="Audio files, or directories of audio files.")
    sep.add_argument("--query", action="append", default=[], help="What to extract (repeatable).")
    sep.add_argument(
        "--negative", action="append", default=[], help="What to remove from it (repeatable)."
    )
    sep.add_argument("--residual", action="store_true", help="Also write everything else.")
    sep.add_argument("--model", required=True, help="Model file (.pth) or Hugging Face repo id.")
    sep.add_argument("--clap-checkpoint", help="LAION-CLAP checkpoint for a CLAP-queried model.")
    sep.add_argument("--out", required=True, help="Output directory.")
    sep.add_argument("--device", default=None, help="cpu or cuda (default: cuda if available).")
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


def _collect_inputs(inputs: List[str]) -> List[str]:
    files = []
    for item in inputs:
        if os.path.isdir(item):
            found = sorted(
                os.path.join(item, name)
                for name in os.listdir(item)
                if name.lower().endswith(AUDIO_EXTENSIONS)
            )
            if not found:
                raise CommandError(f"no audio files in directory {item}")
            files.extend(found)
        elif os.path.isfile(item):
            files.append(item)
        else:
            raise CommandError(f"input not found: {item}")
    return files


def _load_model(model: str, clap_checkpoint: Optional[str], device: str):
    from asteroid.models import BaseModel

    from .models.base import load_model_file  # importing the package registered the models

    try:
        conf = load_model_file(model)
        overrides = {}
        if clap_checkpoint is not None:
            if not os.path.isfile(clap_checkpoint):
                raise CommandError(f"CLAP checkpoint not found: {clap_checkpoint}")
            spec = dict(conf["model_args"].get("query_encoder") or {"name": "clap"})
            spec.update(name="clap", checkpoint=os.path.abspath(clap_checkpoint))
            overrides["query_encoder"] = spec
        loaded = BaseModel.from_pretrained(conf, **overrides)
    except CommandError:
        raise
    except Exception as err:
        raise CommandError(f"model {model} does not load: {err}") from err
    if not hasattr(loaded, "separate_queries"):
        raise CommandError(f"model {model} is not a query-conditioned separator")
    loaded.to(device).eval()
    try:
        loaded.query_encoder.to(device)
    except Exception as err:
        raise CommandError(f"query encoder of {model} does not load: {err}") from err
    return loaded


def _separate(args) -> None:
    import torch
    from tqdm import tqdm

    from .inference import output_paths, separate_file

    if not args.query:
        raise CommandError("no query: pass at least one --query")
    if any(not q.strip() for q in args.query + args.negative):
        raise CommandError("empty query text")
    files = _collect_inputs(args.inputs)
    for path in files:  # refuse before any work is done
        for destination in output_paths(path, args.query, args.out, args.residual):
            if os.path.exists(destination) and not args.force:
                raise CommandError(f"output exists: {destination} (use --force to overwrite)")
    device = args.device or ("cuda" if torch.cuda.is_available() else "cpu")
    model = _load_model(args.model, args.clap_checkpoint, device)
    import soundfile as sf

    for path in files:
        try:
            frames = sf.info(path).frames
        except Exception as err:
            raise CommandError(f"unreadable audio {path}: {err}") from err
        with tqdm(
            total=frames, unit="sample", desc=os.path.basename(path), disable=args.no_progress
        ) as bar:
            try:
                written = separate_file(
                    model,
                    path,
                    queries=args.query,
                    negative=args.negative,
                    residual=args.residual,
                    output_dir=args.out,
                    force=args.force,
                    window=args.window,
                    overlap=args.overlap,
                    batch_size=args.batch,
                    progress=bar.update,
                )
            except (ValueError, FileNotFoundError, FileExistsError) as err:
                raise CommandError(str(err)) from err
        for destination in written:
            print(destination)


def _convert(args) -> None:
    from .converters.audiosep import convert_audiosep

    if os.path.exists(args.out) and not args.force:
        raise CommandError(f"output exists: {args.out} (use --force to overwrite)")
    try:
        convert_audiosep(args.checkpoint, args.clap_checkpoint, out_path=args.out)
    except (ValueError, FileNotFoundError) as err:
        raise CommandError(str(err)) from err
    print(args.out)


def main(argv: Optional[List[str]] = None) -> int:
    """Entry point; returns the exit code (0 on success, 1 with a one-line reason)."""
    args = _parser().parse_args(argv)
    try:
        {"separate": _separate, "convert-audiosep": _convert}[args.command](args)
    except CommandError as err:
        reason = " ".join(str(err).split())  # one line, whatever the cause printed
        print(f"asteroid-lass {args.command}: error: {reason}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
