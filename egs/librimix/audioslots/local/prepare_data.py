"""Stages 0 and 1 of run.sh: the talkers, then the fixed validation and test lists.

Stage 0 (``corpus``) writes, without ``--librimix_dir``, the built-in formant-synthesised
talkers (:func:`asteroid_lass.data.speech_synth.make_speech_corpus`) to
``<data_dir>/builtin/{train,valid,test}.csv`` (disjoint talkers per split); with
``--librimix_dir`` (a ``LibriXMix/wav8k/min/metadata`` folder), it copies the conf's subsets
into ``<data_dir>/librimix/{train,valid,test}/``, one folder per subset as Asteroid's
LibriMix class reads them. Stage 1 (``lists``) writes ``<data_dir>/lists/{valid,test}.csv``
(shareable lists of clips, offsets and gains, with a ``.json`` of settings beside each) or,
for LibriMix, ``<data_dir>/lists/{valid,test}/`` (a seeded choice of the subset's mixtures).
Every data setting comes from the recipe's conf (``--conf``).
"""

import os

from asteroid_lass.data.librimix import (
    copy_librimix_metadata,
    write_librimix_subset,
    write_speech_test_set,
)
from asteroid_lass.data.speech_synth import make_speech_corpus
from asteroid_lass.errors import LASSInputError
from asteroid_lass.recipes.config import parse_recipe_args, run_script

HERE = os.path.dirname(os.path.abspath(__file__))
SPLITS = ("train", "valid", "test")


def make_corpus(conf: dict, args) -> None:
    """Stage 0: the built-in talkers, or the LibriMix subset folders."""
    data = conf["data"]
    if args.librimix_dir:
        subsets = {split: data[f"{split}_subset"] for split in SPLITS}
        out_dir = os.path.join(args.data_dir, "librimix")
        folders = copy_librimix_metadata(args.librimix_dir, out_dir, subsets, n_src=data["n_src"])
        for split, folder in folders.items():
            print(f"{split}: {subsets[split]} -> {folder}")
        return
    for split in SPLITS:
        speakers = data["n_speakers"] if split == "train" else data["n_test_speakers"]
        manifest = make_speech_corpus(
            os.path.join(args.data_dir, "builtin"),
            n_speakers=int(speakers),
            utterances_per_speaker=int(data["utterances_per_speaker"]),
            sample_rate=int(data["sample_rate"]),
            seconds_range=data["clip_seconds"],
            seed=int(data["corpus_seed"]),
            split=split,
        )
        print(f"{split}: {speakers} talkers x {data['utterances_per_speaker']} -> {manifest}")


def make_lists(conf: dict, args) -> None:
    """Stage 1: fixed validation and test lists."""
    data = conf["data"]
    lists_dir = os.path.join(args.data_dir, "lists")
    for split in ("valid", "test"):
        n, seed = data[f"n_{split}"], data[f"{split}_seed"]
        if args.dataset == "librimix":
            source = os.path.join(args.data_dir, "librimix", split)
            if not os.path.isdir(source):
                raise LASSInputError(f"{source} not found: run stage 0 with --librimix_dir.")
            path = write_librimix_subset(source, os.path.join(lists_dir, split), n, seed)
        elif args.dataset == "builtin":
            path = write_speech_test_set(
                os.path.join(lists_dir, f"{split}.csv"),
                os.path.join(args.data_dir, "builtin", f"{split}.csv"),
                n_src=int(data["n_src"]),
                n=int(n),
                seed=int(seed),
                sample_rate=int(data["sample_rate"]),
                segment_seconds=float(data["test_segment_seconds"]),
                gain_db=data["speech_gain_db"],
                min_active_db=data["min_active_db"],
            )
        else:
            raise LASSInputError(f"unknown --dataset {args.dataset!r} (builtin or librimix).")
        print(f"{split}: {path}")


def main(argv=None) -> None:
    conf, args = parse_recipe_args(
        __doc__,
        os.path.join(HERE, "conf.yml"),
        extra=[
            ("stage", dict(choices=["corpus", "lists"])),
            ("--data_dir", dict(required=True)),
            ("--librimix_dir", dict(default="")),
            ("--dataset", dict(default="builtin", choices=["builtin", "librimix"])),
        ],
        argv=argv,
    )
    {"corpus": make_corpus, "lists": make_lists}[args.stage](conf, args)


if __name__ == "__main__":
    run_script(main)
