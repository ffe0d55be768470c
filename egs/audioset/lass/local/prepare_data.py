"""Stages 0 and 1 of run.sh: clip manifests, then fixed validation and test mixture lists."""

import argparse
import os
import shutil

import pandas as pd

from asteroid_lass.data import (
    QueryMixtureDataset,
    load_manifest,
    write_fixed_mixtures,
    write_manifest,
)
from asteroid_lass.data.audioset import prepare_audioset
from asteroid_lass.data.synth import make_corpus


def make_manifests(args) -> None:
    """Stage 0: ``<data_dir>/{train,test}.csv``."""
    os.makedirs(args.data_dir, exist_ok=True)
    if args.dataset == "synth":
        # Train and test clips are different draws (separate seeds per split).
        make_corpus(args.data_dir, args.clips_per_class, args.sample_rate, split="train")
        make_corpus(
            args.data_dir, max(args.clips_per_class // 4, 2), args.sample_rate, split="test"
        )
    elif args.dataset == "manifest":
        for split, source in (("train", args.train_manifest), ("test", args.test_manifest)):
            if not source:
                raise ValueError(f"--dataset manifest needs --{split}_manifest CSV.")
            # Paths in a manifest are relative to its own folder: validated and written with
            # absolute paths, the copy in data_dir still points at the user's files.
            table = load_manifest(source)
            columns = ["path", "labels", "caption", "duration", "sample_rate"]
            write_manifest(
                table[columns].to_dict("records"), os.path.join(args.data_dir, f"{split}.csv")
            )
    elif args.dataset == "audioset":
        if not args.audioset_dir:
            raise ValueError("--dataset audioset needs --audioset_dir DIR.")
        splits = ("balanced_train", "unbalanced_train", "eval")
        prepare_audioset(
            args.audioset_dir,
            args.csv_dir or args.audioset_dir,
            args.data_dir,
            args.sample_rate,
            splits,
            args.workers,
        )
        train_parts = [os.path.join(args.data_dir, f"{s}.csv") for s in splits[:2]]
        train = pd.concat([pd.read_csv(p) for p in train_parts if os.path.isfile(p)])
        train.to_csv(os.path.join(args.data_dir, "train.csv"), index=False)
        shutil.copyfile(
            os.path.join(args.data_dir, "eval.csv"), os.path.join(args.data_dir, "test.csv")
        )
    else:
        raise ValueError(f"Unknown --dataset {args.dataset!r} (synth, manifest or audioset).")


def make_mixture_lists(args) -> None:
    """Stage 1: ``valid.csv`` and ``test.csv`` mixtures from the held-out clips."""
    held_out = os.path.join(args.data_dir, "test.csv")
    common = dict(
        sample_rate=args.sample_rate,
        segment_seconds=args.segment_seconds,
        max_interferers=args.max_interferers,
        snr_range=(args.snr_low, args.snr_high),
    )
    mixtures_dir = os.path.join(args.data_dir, "mixtures")
    os.makedirs(mixtures_dir, exist_ok=True)
    sampler = QueryMixtureDataset(os.path.abspath(held_out), **common)
    write_fixed_mixtures(sampler, os.path.join(mixtures_dir, "valid.csv"), args.n_valid, seed=1)
    write_fixed_mixtures(sampler, os.path.join(mixtures_dir, "test.csv"), args.n_test, seed=2)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("stage", choices=["manifests", "mixtures"])
    parser.add_argument("--data_dir", required=True)
    parser.add_argument("--dataset", default="synth")
    parser.add_argument("--train_manifest")
    parser.add_argument("--test_manifest")
    parser.add_argument("--audioset_dir")
    parser.add_argument("--csv_dir")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--clips_per_class", type=int, default=40)
    parser.add_argument("--sample_rate", type=int, default=16000)
    parser.add_argument("--segment_seconds", type=float, default=3.0)
    parser.add_argument("--max_interferers", type=int, default=1)
    parser.add_argument("--snr_low", type=float, default=-5.0)
    parser.add_argument("--snr_high", type=float, default=5.0)
    parser.add_argument("--n_valid", type=int, default=48)
    parser.add_argument("--n_test", type=int, default=120)
    args = parser.parse_args(argv)
    {"manifests": make_manifests, "mixtures": make_mixture_lists}[args.stage](args)


if __name__ == "__main__":
    main()
