"""Stage 0 with --dataset audioset: manifests and 32 kHz mono clips from a local AudioSet copy."""

import argparse

from asteroid_lass.data.audioset import prepare_audioset
from asteroid_lass.recipes.config import run_script


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--audioset_dir", required=True, help="Folder of downloaded clips.")
    parser.add_argument("--csv_dir", help="Folder of the official CSVs (default: audioset_dir).")
    parser.add_argument("--out_dir", required=True)
    parser.add_argument("--sample_rate", type=int, default=32000)
    parser.add_argument(
        "--splits", nargs="+", default=["balanced_train", "eval", "unbalanced_train"]
    )
    parser.add_argument("--workers", type=int, default=4)
    args = parser.parse_args(argv)
    prepare_audioset(
        args.audioset_dir,
        args.csv_dir or args.audioset_dir,
        args.out_dir,
        args.sample_rate,
        tuple(args.splits),
        args.workers,
    )


if __name__ == "__main__":
    run_script(main)
