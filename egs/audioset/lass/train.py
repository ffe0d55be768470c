"""Stage 2: train the conf's model on query-conditioned mixtures (and, with ``--baseline
convtasnet``, Asteroid's ConvTasNet on the same mixtures for the same number of steps).

Writes ``exp_dir/{conf.yml,checkpoints/,best_k_models.json,best_model.pth}`` (and the same
under ``exp_dir/convtasnet/`` for the baseline).

``--train_shards DIR`` streams the training clips from WebDataset shards (``shard-*.tar``,
see :func:`asteroid_lass.data.shards.write_shards`) instead of ``--train_manifest``.
``--devices N [--num_nodes M]`` trains with DDP (see the README).
"""

import glob
import os

from asteroid_lass.data import FixedMixtureDataset, QueryMixtureDataset
from asteroid_lass.data.batch import BlindTargets
from asteroid_lass.data.shards import ShardedQueryMixtureDataset
from asteroid_lass.errors import LASSInputError
from asteroid_lass.recipes.adapt import auto_settings, resolve_auto
from asteroid_lass.recipes.config import build_baseline, build_model, parse_recipe_args, run_script
from asteroid_lass.recipes.training import train

HERE = os.path.dirname(os.path.abspath(__file__))


def main(argv=None) -> None:
    conf, args = parse_recipe_args(
        __doc__,
        os.path.join(HERE, "local", "conf.yml"),
        extra=[
            ("--train_manifest", dict(default="")),
            ("--train_shards", dict(default="", help="A folder of shard-*.tar (WebDataset).")),
            ("--valid_csv", dict(required=True)),
            ("--exp_dir", dict(required=True)),
            ("--baseline", dict(default="", choices=["", "convtasnet"])),
            (
                "--dataset",
                dict(
                    default="synth",
                    choices=["synth", "manifest", "audioset"],
                    help="What the training manifest lists: the built-in corpus (synth) or the "
                    "user's own data, which gets twice the training of an 'auto' epochs.",
                ),
            ),
        ],
        argv=argv,
    )
    if bool(args.train_manifest) == bool(args.train_shards):
        raise LASSInputError("Give one of --train_manifest CSV and --train_shards DIR.")
    if args.train_shards and args.baseline:
        raise LASSInputError("--baseline needs --train_manifest (not --train_shards).")
    if args.train_manifest:
        # ``auto`` settings follow the training manifest; the conf saved with the model holds
        # the numbers used.
        conf, plan = resolve_auto(conf, args.train_manifest, args.dataset == "synth")
        print(plan, flush=True)
    data, seed = conf["data"], conf["training"]["seed"]
    if args.train_shards:
        if auto_settings(conf):
            raise LASSInputError(
                f"--train_shards: {', '.join(auto_settings(conf))} are 'auto', which follow a "
                "training manifest; give them numbers in the conf."
            )
        shards = sorted(glob.glob(os.path.join(args.train_shards, "shard-*.tar")))
        if not shards:
            raise LASSInputError(f"--train_shards: no shard-*.tar in {args.train_shards}")
        train_set = ShardedQueryMixtureDataset.from_conf(shards, data, seed)
    else:
        train_set = QueryMixtureDataset.from_conf(args.train_manifest, data, seed)
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
    run_script(main)
