"""Stage 3: evaluate the trained model (and the baseline, when trained) on the fixed test
mixtures, with the unprocessed mixture and the oracle ideal ratio mask as references.

Writes ``exp_dir/eval/`` (see :func:`asteroid_lass.recipes.evaluation.evaluate`) and, with a
baseline, ``exp_dir/compare.md``.
"""

import os


from asteroid_lass.data import FixedMixtureDataset
from asteroid_lass.models import Separator
from asteroid_lass.recipes.config import parse_recipe_args, run_script
from asteroid_lass.recipes.evaluation import WEAK_SHARE, evaluate, markdown_table, per_condition

HERE = os.path.dirname(os.path.abspath(__file__))


def main(argv=None) -> None:
    conf, args = parse_recipe_args(
        __doc__,
        os.path.join(HERE, "local", "conf.yml"),
        extra=[
            ("--exp_dir", dict(required=True)),
            ("--test_csv", dict(required=True)),
            ("--n_examples", dict(type=int, default=3)),
        ],
        argv=argv,
    )
    model = Separator.from_pretrained(os.path.join(args.exp_dir, "best_model.pth"))
    systems = {"model": model}
    baseline_path = os.path.join(args.exp_dir, "convtasnet", "best_model.pth")
    if os.path.isfile(baseline_path):
        systems["convtasnet"] = Separator.from_pretrained(baseline_path)
    test_set = FixedMixtureDataset(args.test_csv, sample_rate=int(model.sample_rate))

    def describe(index: int) -> dict:
        recipe = test_set.recipes[index]
        return dict(
            mixture_id=recipe["mixture_id"],
            target_labels=recipe["target_labels"],
            snr_db=recipe["snr_db"],
        )

    out_dir = os.path.join(args.exp_dir, "eval")
    table = evaluate(
        systems,
        test_set,
        out_dir,
        oracle_stft=(model.n_fft, model.hop_length),
        describe=describe,
        n_examples=args.n_examples,
    )
    means = table.groupby("system")[
        ["si_sdr", "si_sdr_imp", "sdr", "sdr_imp", "energy_sdr_imp"]
    ].mean()
    print(means.round(2).to_string())
    by_class = (
        table[table.system == "model"]
        .groupby("target_labels")["si_sdr_imp"]
        .agg(["mean", "median"])
    )
    print("\nSI-SDRi per class:\n" + by_class.round(2).to_string())
    weak = per_condition(table)
    if "weak" in weak.columns and weak["weak"].any():
        flagged = sorted({c for c, _ in weak[weak["weak"]].index})
        print(f"\nBelow {WEAK_SHARE:.0%} of the oracle's SI-SDRi: {', '.join(flagged)}")
    if len(systems) > 1:
        references = {s: means.loc[s].to_dict() for s in means.index}
        with open(os.path.join(args.exp_dir, "compare.md"), "w") as out:
            out.write(
                "# Test set, mean over mixtures (dB)\n\nConvTasNet is blind: its output closest "
                "to the target is chosen with the reference in hand (an oracle choice).\n\n"
                + markdown_table(references, list(means.columns))
                + "\n"
            )
    print(f"\nResults in {out_dir}")


if __name__ == "__main__":
    run_script(main)
