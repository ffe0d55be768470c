"""Stage 3: evaluate TUSS on the fixed test list of every task (and the task specialist on its
own task), with the unprocessed mixture and the oracle ideal ratio mask as references.

Metrics per output: SI-SDR and SNR (``energy_sdr`` in the tables of
:mod:`asteroid_lass.recipes.evaluation`: ``10 log10(|s|^2 / |s - s_hat|^2)``, no projection)
and their improvements over the mixture. Outputs that share a prompt (two ``speech``, three
``sfx``) are matched to their references first, as the training loss does.

Writes ``exp_dir/eval/<task>/`` (see :func:`asteroid_lass.recipes.evaluation.evaluate`),
``exp_dir/eval/{per_task,per_prompt}.{csv,md}``, the overall summaries of the unified model in
``exp_dir/eval/`` and ``exp_dir/compare.md`` (unified model against the specialist).
"""

import os

import pandas as pd

from asteroid_lass.data.prompt_mixing import TASKS, FixedPromptMixtureDataset
from asteroid_lass.models import Separator
from asteroid_lass.recipes.config import name_list, parse_recipe_args, run_script
from asteroid_lass.recipes.evaluation import evaluate, write_summaries

HERE = os.path.dirname(os.path.abspath(__file__))
#: Score columns of the tables, under the names the recipe reports.
COLUMNS = {
    "si_sdr_imp": "SI-SDRi",
    "energy_sdr_imp": "SNRi",
    "si_sdr": "SI-SDR",
    "energy_sdr": "SNR",
}
SYSTEM_ORDER = ["tuss", "specialist", "oracle_irm", "mixture"]


def summary(table: pd.DataFrame, keys) -> pd.DataFrame:
    """Mean scores (dB) and the number of scored outputs per ``keys``."""
    grouped = table.groupby(keys, sort=False)
    means = grouped[list(COLUMNS)].mean().rename(columns=COLUMNS)
    means["outputs"] = grouped.size()
    means = means.reset_index()
    tasks = list(dict.fromkeys(table["task"]))
    orders = dict(
        task=tasks,
        condition=list(dict.fromkeys(p for task in tasks for p in TASKS[task])),
        system=SYSTEM_ORDER,
    )
    for key in keys:  # tasks in the conf's order, prompts in the tasks' order
        means[key] = pd.Categorical(means[key], orders[key])
    return means.sort_values(list(keys)).reset_index(drop=True)


def markdown(frame: pd.DataFrame) -> str:
    """A markdown table; scores with two decimals."""
    header = "| " + " | ".join(frame.columns) + " |"
    lines = [header, "|" + "---|" * len(frame.columns)]
    for row in frame.itertuples(index=False):
        cells = [f"{v:.2f}" if isinstance(v, float) else str(v) for v in row]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(argv=None) -> None:
    conf, args = parse_recipe_args(
        __doc__,
        os.path.join(HERE, "local", "conf.yml"),
        extra=[
            ("--exp_dir", dict(required=True)),
            ("--lists_dir", dict(required=True)),
            ("--n_examples", dict(type=int, default=2)),
        ],
        argv=argv,
    )
    model = Separator.from_pretrained(os.path.join(args.exp_dir, "best_model.pth"))
    specialist_task = conf["baseline"].get("baseline_task") or ""
    specialist_path = os.path.join(args.exp_dir, "specialist", "best_model.pth")
    specialist = None
    if specialist_task and os.path.isfile(specialist_path):
        specialist = Separator.from_pretrained(specialist_path)
    out_dir = os.path.join(args.exp_dir, "eval")
    tables = []
    for task in name_list(conf["data"]["tasks"]):
        test_set = FixedPromptMixtureDataset(os.path.join(args.lists_dir, f"test_{task}.csv"))
        systems = {"tuss": model}
        if specialist is not None and task == specialist_task:
            systems["specialist"] = specialist

        def describe(index: int, task=task, test_set=test_set) -> dict:
            return dict(task=task, mixture_id=test_set.recipes[index]["mixture_id"])

        print(f"{task} ({'+'.join(TASKS[task])}): {len(test_set)} mixtures", flush=True)
        tables.append(
            evaluate(
                systems,
                test_set,
                os.path.join(out_dir, task),
                oracle_stft=(model.n_fft, model.hop_length),
                describe=describe,
                n_examples=args.n_examples,
                metrics=("si_sdr",),  # BSS-eval SDR costs more than the rest of the stage
            )
        )
    table = pd.concat(tables, ignore_index=True)
    # Overall summaries (model card): the unified model and its references over every task.
    write_summaries(table[table.system != "specialist"], "tuss", out_dir)
    per_task = summary(table, ["task", "system"])
    per_prompt = summary(table, ["task", "condition", "system"]).rename(
        columns={"condition": "prompt"}
    )
    for name, frame in (("per_task", per_task), ("per_prompt", per_prompt)):
        frame.to_csv(os.path.join(out_dir, f"{name}.csv"), index=False, float_format="%.4f")
        with open(os.path.join(out_dir, f"{name}.md"), "w") as out:
            out.write(markdown(frame) + "\n")
    print("\nPer task (dB, mean over outputs):\n" + markdown(per_task))
    print("\nPer prompt:\n" + markdown(per_prompt))
    write_compare(args.exp_dir, per_task, specialist_task if specialist is not None else "")
    print(f"\nResults in {out_dir}")


def write_compare(exp_dir: str, per_task: pd.DataFrame, specialist_task: str) -> None:
    """``compare.md``: the unified model against the specialist on its task, then every task."""
    lines = ["# TUSS: one model for every task against a task specialist", ""]
    if specialist_task:
        rows = per_task[per_task.task == specialist_task]
        lines += [
            f"## {specialist_task} ({' + '.join(TASKS[specialist_task])})",
            "",
            "`tuss` is trained on prompt lists of every task; `specialist` is the same network "
            f"trained on {specialist_task} only, on the same clips, for the same number of steps "
            "with the same batch size. Outputs sharing a prompt are matched to their "
            "references before scoring (for both).",
            "",
            markdown(rows.drop(columns="task")),
            "",
        ]
    lines += [
        "## Every task (unified model)",
        "",
        "SNR is `10 log10(|s|^2 / |s - s_hat|^2)`; `oracle_irm` is the ideal ratio mask with "
        "the model's STFT, `mixture` the unprocessed input.",
        "",
        markdown(per_task[per_task.system != "specialist"]),
        "",
    ]
    with open(os.path.join(exp_dir, "compare.md"), "w") as out:
        out.write("\n".join(lines))


if __name__ == "__main__":
    run_script(main)
