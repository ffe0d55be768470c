"""Stage 2: train AudioSlots on two- or three-talker mixtures, then the baseline, Asteroid's
ConvTasNet with PIT (negative SI-SDR over the best permutation), on the same mixtures with the
same batch size for the same number of optimiser steps.

Training mixtures are dynamic (built-in talkers: new mixtures every epoch; LibriMix: new
crops every epoch); validation uses the fixed list of stage 1. Both models start from the
same seed. Writes ``exp_dir/{conf.yml,checkpoints/,best_k_models.json,best_model.pth}`` and
the same under ``exp_dir/convtasnet/``.
"""

import os


from asteroid_lass.data.librimix import LibriMixDataset, fixed_speech_mixtures, speech_mixtures
from asteroid_lass.errors import LASSInputError
from asteroid_lass.recipes.config import build_baseline, build_model, parse_recipe_args, run_script
from asteroid_lass.recipes.training import train, trained_steps

HERE = os.path.dirname(os.path.abspath(__file__))


def datasets(conf: dict, train_path: str, valid_path: str):
    """Dynamic training mixtures and the fixed validation list.

    Args:
        train_path: A LibriMix subset folder, or the built-in talkers' manifest (``.csv``).
        valid_path: The fixed validation list of stage 1 (folder or ``.csv``).
    """
    data, seed = conf["data"], int(conf["training"]["seed"])
    common = dict(sample_rate=int(data["sample_rate"]), n_src=int(data["n_src"]))
    if os.path.isdir(train_path):
        train_set = LibriMixDataset(
            train_path, data["task"], segment=data["segment_seconds"], seed=seed, **common
        )
        valid_segment = data["valid_segment_seconds"]
    else:
        train_set = speech_mixtures(
            train_path,
            segment_seconds=data["segment_seconds"],
            items_per_epoch=int(data["items_per_epoch"]),
            seed=seed,
            gain_db=data["speech_gain_db"],
            min_active_db=data["min_active_db"],
            **common,
        )
        valid_segment = None
    valid_set = fixed_speech_mixtures(
        valid_path, task=data["task"], segment=valid_segment, **common
    )
    return train_set, valid_set


def main(argv=None) -> None:
    conf, args = parse_recipe_args(
        __doc__,
        os.path.join(HERE, "local", "conf.yml"),
        extra=[
            ("--train", dict(required=True, help="LibriMix subset folder or talkers' manifest.")),
            ("--valid", dict(required=True, help="Fixed validation list (folder or .csv).")),
            ("--exp_dir", dict(required=True)),
        ],
        argv=argv,
    )
    n_src = int(conf["data"]["n_src"])
    if int(conf["model"].get("n_slots", 2)) < n_src:
        raise LASSInputError(
            f"n_slots={conf['model'].get('n_slots', 2)}: AudioSlots needs at least n_src={n_src} "
            "slots (one per talker)."
        )
    train_set, valid_set = datasets(conf, args.train, args.valid)
    print(train(conf, build_model(conf), train_set, valid_set, args.exp_dir))

    # Same mixtures, batches and step count; PIT over the talkers, as Asteroid's recipes.
    steps = trained_steps(args.exp_dir)
    baseline_conf = dict(
        conf, objective=dict(objective="waveform", loss="neg_sisdr", assignment="pit")
    )
    baseline = build_baseline(conf, n_src=n_src)
    print(f"baseline: ConvTasNet with PIT, {steps} steps like AudioSlots")
    baseline_dir = os.path.join(args.exp_dir, "convtasnet")
    print(train(baseline_conf, baseline, train_set, valid_set, baseline_dir, max_steps=steps))


if __name__ == "__main__":
    run_script(main)
