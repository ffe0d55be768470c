"""Stages 0 and 1 of run.sh: a manifest with a category per clip, then fixed per-task lists.

Stage 0 writes ``<data_dir>/{train,test}.csv``: the built-in corpus (formant speech, sound
events and a synthetic music corpus, :func:`asteroid_lass.data.prompt_mixing.make_unified_corpus`)
or the user's manifests, whose rows need a ``category`` (a prompt name). Stage 1 writes
``<data_dir>/lists/{valid,test}_<task>.csv`` (with a ``.json`` of settings beside each) from
the held-out clips: shareable lists of clips, offsets and gains, rendered identically
anywhere. Every data setting comes from the recipe's conf (``--conf``).
"""

import os

from asteroid_lass.data import load_manifest, write_manifest
from asteroid_lass.data.music_synth import make_music_corpus
from asteroid_lass.data.prompt_mixing import (
    PROMPTS,
    TASKS,
    make_unified_corpus,
    write_prompt_test_set,
)
from asteroid_lass.errors import LASSInputError
from asteroid_lass.recipes.config import name_list, parse_recipe_args, run_script

HERE = os.path.dirname(os.path.abspath(__file__))
MANIFEST_COLUMNS = ["path", "labels", "caption", "duration", "sample_rate", "category"]
MANIFEST_COLUMNS += ["song", "speaker"]


def make_manifests(conf: dict, args) -> None:
    """Stage 0: ``<data_dir>/{train,test}.csv`` with a category for every clip."""
    data = conf["data"]
    os.makedirs(args.data_dir, exist_ok=True)
    if args.dataset == "builtin":
        music_dir = os.path.join(args.data_dir, "music")
        make_music_corpus(
            music_dir,
            n_train_songs=data["n_train_songs"],
            n_test_songs=data["n_test_songs"],
            seconds=data["song_seconds"],
            sample_rate=data["sample_rate"],
            seed=data["corpus_seed"],
            stereo=False,
        )
        make_unified_corpus(
            args.data_dir,
            n_speakers=data["n_speakers"],
            utterances_per_speaker=data["utterances_per_speaker"],
            clips_per_class=data["clips_per_class"],
            sample_rate=data["sample_rate"],
            seconds_range=data["clip_seconds"],
            seed=data["corpus_seed"],
            music_dir=music_dir,
        )
    elif args.dataset == "manifest":
        for split, source in (("train", args.train_manifest), ("test", args.test_manifest)):
            if not source:
                raise LASSInputError(f"--dataset manifest needs --{split}_manifest CSV.")
            table = load_manifest(source)
            # Written with absolute paths: the copy in data_dir still points at the user's files.
            uncategorised = (table["category"] == "").sum()
            if uncategorised:
                raise LASSInputError(
                    f"--{split}_manifest {source}: {uncategorised} rows have no category; every "
                    f"row needs a prompt name ({', '.join(PROMPTS)}) in a category column."
                )
            write_manifest(
                table[MANIFEST_COLUMNS].to_dict("records"),
                os.path.join(args.data_dir, f"{split}.csv"),
            )
    else:
        raise LASSInputError(f"unknown --dataset {args.dataset!r} (builtin or manifest).")
    for split in ("train", "test"):
        counts = load_manifest(os.path.join(args.data_dir, f"{split}.csv"))["category"]
        summary = ", ".join(f"{k} {v}" for k, v in sorted(counts.value_counts().items()))
        print(f"{split}.csv: {summary}")


def task_seed(base: int, task: str, tasks) -> int:
    """The seed of a task's list: ``base * 100 + the task's position`` (different draws per
    task even where tasks share a first prompt)."""
    return int(base) * 100 + list(tasks).index(task)


def make_task_lists(conf: dict, args) -> None:
    """Stage 1: ``lists/{valid,test}_<task>.csv`` from the held-out clips."""
    data = conf["data"]
    tasks = name_list(data["tasks"])
    unknown = [task for task in tasks if task not in TASKS]
    if unknown:
        raise LASSInputError(f"tasks: unknown {unknown}; choose from {sorted(TASKS)}.")
    held_out = load_manifest(os.path.join(args.data_dir, "test.csv"))
    lists_dir = os.path.join(args.data_dir, "lists")
    os.makedirs(lists_dir, exist_ok=True)
    for task in tasks:
        for split, n, base in (
            ("valid", data["n_valid"], data["valid_seed"]),
            ("test", data["n_test"], data["test_seed"]),
        ):
            path = os.path.join(lists_dir, f"{split}_{task}.csv")
            try:
                write_prompt_test_set(
                    path,
                    held_out,
                    task,
                    n=n,
                    seed=task_seed(base, task, tasks),
                    sample_rate=data["sample_rate"],
                    segment_seconds=data["test_segment_seconds"],
                    gain_ranges=data["gain_ranges"],
                    min_active_db=data["min_active_db"],
                )
            except ValueError as err:
                raise LASSInputError(
                    f"task {task}: {err} Remove it from the conf's tasks, or add such clips."
                ) from err
        print(f"{task} {'+'.join(TASKS[task])}: {data['n_valid']} valid, {data['n_test']} test")


def main(argv=None) -> None:
    conf, args = parse_recipe_args(
        __doc__,
        os.path.join(HERE, "conf.yml"),
        extra=[
            ("stage", dict(choices=["manifests", "lists"])),
            ("--data_dir", dict(required=True)),
            ("--dataset", dict(default="builtin")),
            ("--train_manifest", dict(default="")),
            ("--test_manifest", dict(default="")),
        ],
        argv=argv,
    )
    {"manifests": make_manifests, "lists": make_task_lists}[args.stage](conf, args)


if __name__ == "__main__":
    run_script(main)
