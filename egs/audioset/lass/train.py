"""Stage 2: train the conf's model on query-conditioned mixtures (and, with ``--baseline
convtasnet``, Asteroid's ConvTasNet on the same mixtures for the same number of steps).

Writes ``exp_dir/{conf.yml,checkpoints/,best_k_models.json,best_model.pth}`` (and the same
under ``exp_dir/convtasnet/`` for the baseline).
"""

import os

from asteroid_lass.data import FixedMixtureDataset, QueryMixtureDataset
from asteroid_lass.data.batch import BlindTargets
from asteroid_lass.recipes.adapt import resolve_auto
from asteroid_lass.recipes.config import build_baseline, build_model, parse_recipe_args
from asteroid_lass.recipes.training import train

HERE = os.path.dirname(os.path.abspath(__file__))


def main(argv=None) -> None:
    conf, args = parse_recipe_args(
        __doc__,
        os.path.join(HERE, "local", "conf.yml"),
        extra=[
            ("--train_manifest", dict(required=True)),
            ("--valid_csv", dict(required=True)),
            ("--exp_dir", dict(required=True)),
            ("--baseline", dict(default="", choices=["", "convtasnet"])),
        ],
        argv=argv,
    )
    # ``auto`` settings follow the training manifest; the conf saved with the model holds the
    # numbers used.
    conf, plan = resolve_auto(conf, args.train_manifest)
    print(plan, flush=True)
    data = conf["data"]
    train_set = QueryMixtureDataset.from_conf(args.train_manifest, data, conf["training"]["seed"])
    valid_set = FixedMixtureDataset(args.valid_csv, sample_rate=data["sample_rate"])
    print(train(conf, build_model(conf), train_set, valid_set, args.exp_dir))
    if args.baseline == "convtasnet":
        # Same mixtures, same number of steps and batch size; targets: the queried source and
        # the rest, in no order (PIT).
        baseline_conf = dict(
            conf, objective=dict(objective="waveform", loss="neg_sisdr", assignment="pit")
        )
        model = build_baseline(conf, n_src=2)
        baseline_dir = os.path.join(args.exp_dir, "convtasnet")
        print(
            train(
                baseline_conf, model, BlindTargets(train_set), BlindTargets(valid_set), baseline_dir
            )
        )


if __name__ == "__main__":
    main()
