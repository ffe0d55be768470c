"""Stage 1: train Meta-TasNet on MUSDB18-style songs, then the baseline, Asteroid's ConvTasNet
with one output per stem in a fixed order (drums, bass, other, vocals: the paper's
"specialised" comparison as one network), on the same crops for the same number of steps.

Writes ``exp_dir/{conf.yml,checkpoints/,best_k_models.json,best_model.pth}`` and the same
under ``exp_dir/convtasnet/``.
"""

import os

from asteroid_lass.data.musdb import MUSDB18Dataset
from asteroid_lass.errors import LASSInputError
from asteroid_lass.recipes.config import build_baseline, build_model, parse_recipe_args, run_script
from asteroid_lass.recipes.training import train

HERE = os.path.dirname(os.path.abspath(__file__))


def read_names(path: str) -> list:
    """One song name per line (stage 0's ``valid_tracks.txt``)."""
    if not os.path.isfile(path):
        raise LASSInputError(f"--valid_tracks: {path} not found (run stage 0 first).")
    with open(path) as names:
        return [line.rstrip("\n") for line in names if line.strip()]


def datasets(conf: dict, root: str, valid_tracks: list, targets: list):
    """Random training crops (stems shuffled across songs with probability ``shuffle_p``) and
    fixed validation excerpts of the held-out songs."""
    data = conf["data"]
    common = dict(
        targets=targets,
        sample_rate=data["sample_rate"],
        mono=data["mono"],
        validation_tracks=valid_tracks,
    )
    train_set = MUSDB18Dataset(
        root,
        "train",
        segment=data["segment"],
        shuffle_p=data["shuffle_p"],
        samples_per_track=data["samples_per_track"],
        seed=conf["training"]["seed"],
        **common,
    )
    valid_set = MUSDB18Dataset(
        root,
        "valid",
        segment=data["valid_segment"],
        fixed=True,
        excerpts_per_track=data["valid_excerpts_per_track"],
        **common,
    )
    return train_set, valid_set


def main(argv=None) -> None:
    conf, args = parse_recipe_args(
        __doc__,
        os.path.join(HERE, "local", "conf.yml"),
        extra=[
            ("--root", dict(required=True, help="MUSDB18(-HQ) or built-in corpus folder.")),
            ("--valid_tracks", dict(required=True, help="Held-out song names, one a line.")),
            ("--exp_dir", dict(required=True)),
        ],
        argv=argv,
    )
    model = build_model(conf)
    stems = list(model.vocabulary)
    train_set, valid_set = datasets(conf, args.root, read_names(args.valid_tracks), stems)
    # The spectrogram branch's mean and std come from training mixtures before the first
    # step, as in the official training (a resumed run restores them from its checkpoint).
    n_stats = min(int(conf["training"]["spectrogram_stats_items"]), len(train_set))
    model.compute_spectrogram_stats(train_set[i]["mixture"][None] for i in range(n_stats))
    print(train(conf, model, train_set, valid_set, args.exp_dir))

    # Same crops, batches and steps; SI-SNR on every output, each output bound to its stem.
    baseline_conf = dict(
        conf, objective=dict(objective="waveform", loss="neg_sisdr", assignment="fixed")
    )
    baseline = build_baseline(conf, n_src=len(stems))
    print(
        train(
            baseline_conf, baseline, train_set, valid_set, os.path.join(args.exp_dir, "convtasnet")
        )
    )


if __name__ == "__main__":
    run_script(main)
