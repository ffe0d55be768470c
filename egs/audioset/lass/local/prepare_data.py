"""Stages 0 and 1 of run.sh: clip manifests, then fixed validation and test mixture lists.

Every data setting comes from the recipe's conf (``--conf``); the command line names only the
data source and folders.
"""

import os
import shutil

import pandas as pd

from asteroid_lass.data import QueryMixtureDataset, load_manifest, write_fixed_mixtures
from asteroid_lass.data import write_manifest
from asteroid_lass.data.manifest import check_split_leakage
from asteroid_lass.data.audioset import prepare_audioset
from asteroid_lass.data.synth import CLASS_SETS, make_corpus
from asteroid_lass.errors import LASSInputError
from asteroid_lass.recipes.adapt import resolve_auto
from asteroid_lass.recipes.config import parse_recipe_args, run_script

HERE = os.path.dirname(os.path.abspath(__file__))
DATASETS = ("synth", "manifest", "audioset")
AUDIOSET_SPLITS = ("balanced_train", "unbalanced_train", "eval")


def make_manifests(conf: dict, args) -> None:
    """Stage 0: ``<data_dir>/{train,test}.csv``."""
    data = conf["data"]
    os.makedirs(args.data_dir, exist_ok=True)
    if args.dataset == "synth":
        # Train and test clips are different draws (separate seeds per split).
        per_class = data["clips_per_class"]
        # Confs written before the instrument classes existed have no such key: their corpus.
        class_set = data.get("builtin_classes", "events")
        if class_set not in CLASS_SETS:
            raise LASSInputError(
                f"data.builtin_classes must be one of {list(CLASS_SETS)}, got {class_set!r}."
            )
        classes = list(CLASS_SETS[class_set])
        rate = data["sample_rate"]
        make_corpus(args.data_dir, per_class, rate, classes=classes, split="train")
        make_corpus(args.data_dir, max(per_class // 4, 2), rate, classes=classes, split="test")
    elif args.dataset == "manifest":
        for split, source in (("train", args.train_manifest), ("test", args.test_manifest)):
            if not source:
                raise LASSInputError(f"--dataset manifest needs --{split}_manifest CSV.")
        # A clip in both splits would make the test figures meaningless.
        check_split_leakage(args.train_manifest, args.test_manifest)
        for split, source in (("train", args.train_manifest), ("test", args.test_manifest)):
            # Paths in a manifest are relative to its own folder: validated and written with
            # absolute paths, the copy in data_dir still points at the user's files.
            table = load_manifest(source)
            columns = ["path", "labels", "caption", "duration", "sample_rate"]
            write_manifest(
                table[columns].to_dict("records"), os.path.join(args.data_dir, f"{split}.csv")
            )
    elif args.dataset == "audioset":
        if not args.audioset_dir:
            raise LASSInputError("--dataset audioset needs --audioset_dir DIR.")
        prepare_audioset(
            args.audioset_dir,
            args.csv_dir or args.audioset_dir,
            args.data_dir,
            data["sample_rate"],
            AUDIOSET_SPLITS,
            args.workers,
        )
        parts = [os.path.join(args.data_dir, f"{s}.csv") for s in AUDIOSET_SPLITS[:2]]
        train = pd.concat([pd.read_csv(p) for p in parts if os.path.isfile(p)])
        train.to_csv(os.path.join(args.data_dir, "train.csv"), index=False)
        shutil.copyfile(
            os.path.join(args.data_dir, "eval.csv"), os.path.join(args.data_dir, "test.csv")
        )


def make_mixture_lists(conf: dict, args) -> None:
    """Stage 1: ``valid.csv`` and ``test.csv`` mixtures from the held-out clips."""
    if "test_segment_seconds" not in conf["data"]:
        raise LASSInputError(
            "data.test_segment_seconds is missing from the conf: the fixed validation and test "
            "mixtures' length in seconds, or 'auto' (see local/conf.yml)."
        )
    # Mixture length and validation size may follow the training clips (``auto``); stated in
    # the same data plan line as train.py's.
    built_in = args.dataset == "synth"
    conf, plan = resolve_auto(conf, os.path.join(args.data_dir, "train.csv"), built_in)
    print(plan, flush=True)
    data = conf["data"]
    # The fixed mixtures keep their own interferer count when training mixes more (a conf
    # without test_max_interferers: both counts are max_interferers, as before it existed).
    count = data.get("test_max_interferers", data["max_interferers"])
    if "test_max_interferers" in data and (
        isinstance(count, bool) or not isinstance(count, int) or count < 1
    ):
        raise LASSInputError(
            f"data.test_max_interferers must be a whole number >= 1, got {count!r}."
        )
    held_out = os.path.abspath(os.path.join(args.data_dir, "test.csv"))
    mixtures = dict(data, segment_seconds=data["test_segment_seconds"], max_interferers=count)
    # Fixed mixtures are rendered unaugmented; their sampler ignores the augment_* keys (but
    # checks them, with every other data key, before anything is written).
    sampler = QueryMixtureDataset.from_conf(held_out, mixtures, augmentation=None)
    mixtures_dir = os.path.join(args.data_dir, "mixtures")
    os.makedirs(mixtures_dir, exist_ok=True)
    n_valid, n_test = data["n_valid"], data["n_test"]
    write_fixed_mixtures(sampler, os.path.join(mixtures_dir, "valid.csv"), n_valid, seed=1)
    write_fixed_mixtures(sampler, os.path.join(mixtures_dir, "test.csv"), n_test, seed=2)


def main(argv=None) -> None:
    conf, args = parse_recipe_args(
        __doc__,
        os.path.join(HERE, "conf.yml"),
        extra=[
            ("stage", dict(choices=["manifests", "mixtures"])),
            ("--data_dir", dict(required=True)),
            ("--dataset", dict(default="synth")),
            ("--train_manifest", dict(default="")),
            ("--test_manifest", dict(default="")),
            ("--audioset_dir", dict(default="")),
            ("--csv_dir", dict(default="")),
            ("--workers", dict(type=int, default=2)),
        ],
        argv=argv,
    )
    # Stage 1 reads it too (the training budget follows the data source), so both check it.
    if args.dataset not in DATASETS:
        choices = f"{', '.join(DATASETS[:-1])} or {DATASETS[-1]}"
        raise LASSInputError(f"unknown --dataset {args.dataset!r} ({choices}).")
    {"manifests": make_manifests, "mixtures": make_mixture_lists}[args.stage](conf, args)


if __name__ == "__main__":
    run_script(main)
