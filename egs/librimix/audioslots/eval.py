"""Stage 3: score AudioSlots, the ConvTasNet baseline, the oracle ideal ratio mask and the
unprocessed mixture on the fixed test list.

Both models are blind: their outputs are matched to the reference talkers (Hungarian on
SI-SDR) before scoring. Metrics per talker: SI-SDR and BSS-eval SDR (Asteroid's
``get_metrics``, the talker as the only reference) and their improvements over the mixture
(SI-SDRi, SDRi). Writes ``exp_dir/eval/`` (see
:func:`asteroid_lass.recipes.evaluation.evaluate`) and the table ``exp_dir/compare.md``.
"""

import json
import os

from asteroid_lass.data.librimix import fixed_speech_mixtures
from asteroid_lass.models import Separator
from asteroid_lass.recipes.config import parse_recipe_args, run_script
from asteroid_lass.recipes.evaluation import evaluate, markdown_table
from asteroid_lass.recipes.training import trained_steps

HERE = os.path.dirname(os.path.abspath(__file__))
#: Columns of compare.md: our names -> the tables' names.
COLUMNS = {"si_sdr_imp": "SI-SDRi", "sdr_imp": "SDRi", "si_sdr": "SI-SDR", "sdr": "SDR"}


def compare_markdown(references: dict, n_mixtures: int, n_talkers: int, steps: dict) -> str:
    """compare.md: mean scores per system (dB), with what each system is."""
    rows = {
        system: {COLUMNS[k]: values[k] for k in COLUMNS} for system, values in references.items()
    }
    trained = ", ".join(f"{name} {count}" for name, count in steps.items())
    return (
        f"# AudioSlots against ConvTasNet (PIT): {n_mixtures} test mixtures, {n_talkers} "
        "talkers scored\n\n"
        "Mean over the audible reference talkers, dB. Each model's outputs are matched to the "
        "talkers (Hungarian on SI-SDR) before scoring. `convtasnet` is Asteroid's ConvTasNet "
        "trained with PIT (negative SI-SDR) on the same mixtures, with the same batch size, "
        f"for the same number of optimiser steps (steps: {trained}). `oracle_irm` is the ideal "
        "ratio mask with AudioSlots' STFT (a ceiling for mixture-phase magnitude models); "
        "`mixture` is the unprocessed input. SDR is BSS-eval's with the talker as the only "
        "reference.\n\n" + markdown_table(rows, list(COLUMNS.values())) + "\n"
    )


def main(argv=None) -> None:
    conf, args = parse_recipe_args(
        __doc__,
        os.path.join(HERE, "local", "conf.yml"),
        extra=[
            ("--test", dict(required=True, help="Fixed test list (LibriMix folder or .csv).")),
            ("--exp_dir", dict(required=True)),
        ],
        argv=argv,
    )
    data = conf["data"]
    model = Separator.from_pretrained(os.path.join(args.exp_dir, "best_model.pth"))
    systems = {"audioslots": model}
    baseline_path = os.path.join(args.exp_dir, "convtasnet", "best_model.pth")
    if os.path.isfile(baseline_path):
        systems["convtasnet"] = Separator.from_pretrained(baseline_path)
    # Whole test mixtures: AudioSlots separates them in chunks, stitched (see its forward).
    test_set = fixed_speech_mixtures(
        args.test, int(model.sample_rate), int(data["n_src"]), data["task"], segment=None
    )

    inner = getattr(test_set, "dataset", test_set)  # a built-in list under its blind view
    if hasattr(inner, "recipes"):
        ids = [recipe["mixture_id"] for recipe in inner.recipes]
    else:
        ids = [str(mixture_id) for mixture_id in inner.df["mixture_ID"]]

    out_dir = os.path.join(args.exp_dir, "eval")
    print(f"{len(test_set)} test mixtures; systems: {', '.join(systems)}", flush=True)
    table = evaluate(
        systems,
        test_set,
        out_dir,
        oracle_stft=(model.n_fft, model.hop_length),
        describe=lambda index: dict(mixture_id=ids[index]),
        n_examples=int(conf["eval"]["n_examples"]),
        metrics=("si_sdr", "sdr"),
    )
    with open(os.path.join(out_dir, "references.json")) as handle:
        references = json.load(handle)
    order = [s for s in list(systems) + ["oracle_irm", "mixture"] if s in references]
    steps = {
        name: trained_steps(os.path.join(args.exp_dir, where))
        for name, where in (("audioslots", "."), ("convtasnet", "convtasnet"))
        if name in systems
    }
    n_talkers = int((table.system == "audioslots").sum())
    text = compare_markdown({s: references[s] for s in order}, len(test_set), n_talkers, steps)
    with open(os.path.join(args.exp_dir, "compare.md"), "w") as out:
        out.write(text)
    print("\n" + text)
    print(f"Results in {out_dir}")


if __name__ == "__main__":
    run_script(main)
