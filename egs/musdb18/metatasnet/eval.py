"""Stage 2: score Meta-TasNet, the ConvTasNet baseline and the unprocessed mixture on the
test songs, per stem.

Metrics: SiSEC 2018's SDR (``museval``: median over 1 s frames of a song, then median over
songs, as in the paper's table), SI-SDR and its improvement over the mixture (SI-SDRi, mean
over songs). Writes ``exp_dir/eval/`` (see :func:`asteroid_lass.recipes.evaluation.evaluate`;
``final_metrics.json`` also gets the per-stem SiSEC SDR) and the per-stem table
``exp_dir/compare.md``.
"""

import json
import os

import pandas as pd

from asteroid_lass.data.musdb import MUSDB18Dataset
from asteroid_lass.models import Separator
from asteroid_lass.recipes.config import parse_recipe_args, run_script
from asteroid_lass.recipes.evaluation import evaluate, markdown_table, sisec_sdr

HERE = os.path.dirname(os.path.abspath(__file__))
#: Published MUSDB18 test SDR of Meta-TasNet (Samuel et al., 2020), for the table's footnote.
PAPER_SDR = dict(drums=5.91, bass=5.58, other=4.19, vocals=6.40)


def per_stem(table: pd.DataFrame) -> pd.DataFrame:
    """Per (stem, system): SiSEC SDR (median over songs of the per-song frame medians; a
    song cut in excerpts counts once), mean SI-SDR and mean SI-SDRi."""
    songs = table.groupby(["condition", "system", "track"])
    per_song = songs.agg(sdr=("sisec_sdr", "median"), si_sdr=("si_sdr", "mean"))
    per_song["si_sdr_imp"] = songs["si_sdr_imp"].mean()
    stats = per_song.groupby(["condition", "system"]).agg(
        sdr=("sdr", "median"), si_sdr=("si_sdr", "mean"), si_sdr_imp=("si_sdr_imp", "mean")
    )
    return stats


def compare_markdown(stats: pd.DataFrame, stems, systems, n_songs: int) -> str:
    rows = {
        f"{stem} / {system}": stats.loc[(stem, system)].to_dict()
        for stem in stems
        for system in systems
        if (stem, system) in stats.index
    }
    paper = ", ".join(f"{stem} {value:.2f}" for stem, value in PAPER_SDR.items())
    return (
        f"# Test set per stem ({n_songs} songs, dB)\n\n"
        "`sdr`: SiSEC 2018 SDR (museval v4; median over 1 s frames, then over songs). "
        "`si_sdr`, `si_sdr_imp`: mean over songs; `si_sdr_imp` is the gain over the mixture. "
        "`convtasnet` is Asteroid's ConvTasNet with one output per stem in a fixed order, "
        "trained on the same crops for the same steps.\n\n"
        + markdown_table(rows, ["sdr", "si_sdr", "si_sdr_imp"], first_column="stem / system")
        + f"\n\nPaper (Meta-TasNet on MUSDB18 test, SDR): {paper}.\n"
    )


def main(argv=None) -> None:
    conf, args = parse_recipe_args(
        __doc__,
        os.path.join(HERE, "local", "conf.yml"),
        extra=[
            ("--root", dict(required=True, help="MUSDB18(-HQ) or built-in corpus folder.")),
            ("--exp_dir", dict(required=True)),
        ],
        argv=argv,
    )
    data, settings = conf["data"], conf["eval"]
    model = Separator.from_pretrained(os.path.join(args.exp_dir, "best_model.pth"))
    systems = {"metatasnet": model}
    baseline_path = os.path.join(args.exp_dir, "convtasnet", "best_model.pth")
    if os.path.isfile(baseline_path):
        systems["convtasnet"] = Separator.from_pretrained(baseline_path)
    stems = list(model.vocabulary)
    test_set = MUSDB18Dataset(
        args.root,
        "test",
        targets=stems,
        segment=settings["test_segment"],
        sample_rate=int(model.sample_rate),
        mono=data["mono"],
        fixed=True,
        excerpts_per_track=settings["test_excerpts_per_track"],
    )

    def describe(index: int) -> dict:
        track, offset = test_set.excerpts[index]
        return dict(track=test_set.tracks[track].name, offset=offset)

    oracle = None
    if settings["oracle_n_fft"]:
        oracle = (int(settings["oracle_n_fft"]), int(settings["oracle_hop_length"]))
    out_dir = os.path.join(args.exp_dir, "eval")
    table = evaluate(
        systems,
        test_set,
        out_dir,
        oracle_stft=oracle,
        describe=describe,
        n_examples=settings["n_examples"],
        metrics=("si_sdr",),
        extra_scores=sisec_sdr,
        ordered=("convtasnet",),  # trained with a fixed assignment: outputs are in stem order
        window=settings["eval_window"],
    )
    stats = per_stem(table)
    # The SiSEC figures (medians) next to evaluate's means, for the model card and the hub.
    final_path = os.path.join(out_dir, "final_metrics.json")
    with open(final_path) as handle:
        final = json.load(handle)
    for stem in stems:
        if (stem, "metatasnet") in stats.index:
            final[f"sisec_sdr_{stem}"] = float(stats.loc[(stem, "metatasnet"), "sdr"])
    per_stem_sdr = [final[f"sisec_sdr_{stem}"] for stem in stems if f"sisec_sdr_{stem}" in final]
    if per_stem_sdr:
        final["sisec_sdr_stem_mean"] = sum(per_stem_sdr) / len(per_stem_sdr)
    with open(final_path, "w") as handle:
        json.dump(final, handle, indent=2)

    n_songs = table["track"].nunique()
    order = list(systems) + ["mixture"] + (["oracle_irm"] if oracle else [])
    with open(os.path.join(args.exp_dir, "compare.md"), "w") as out:
        out.write(compare_markdown(stats, stems, order, n_songs))
    shown = stats.reset_index().pivot(index="condition", columns="system")
    print(shown.reindex(stems).round(2).to_string())
    print(f"\nResults in {out_dir}; per-stem table in {os.path.join(args.exp_dir, 'compare.md')}")


if __name__ == "__main__":
    run_script(main)
