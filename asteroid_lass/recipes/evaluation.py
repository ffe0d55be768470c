"""Evaluation of any separator on a fixed test set, with the mixture and an oracle as references.

Writes into ``out_dir``: ``all_metrics.csv`` (one row per mixture, output and system),
``final_metrics.json`` (the model's means), ``references.json`` (means of every system:
model, mixture, oracle ideal ratio mask, baselines), ``per_condition.csv`` (mean and median
SI-SDRi per query, label or prompt, with the share of the oracle's) and ``examples/``.
"""

import json
import os
from typing import Callable, Dict, List, Optional

import numpy as np
import pandas as pd
import torch
from torch.utils.data import Dataset
from tqdm import tqdm

from ..audio import write_audio_atomic
from ..metrics import (
    DEFAULT_METRICS,
    audible,
    ideal_ratio_mask,
    match_to_references,
    match_within_prompts,
    mixture_reference,
    score,
)
from ..models.base import Separator, evaluation_mode, query_slug

SUMMARY_COLUMNS = ["si_sdr", "si_sdr_imp", "sdr", "sdr_imp", "energy_sdr", "energy_sdr_imp"]
#: Conditions whose SI-SDRi is below this share of the oracle's are flagged in the report.
WEAK_SHARE = 0.5


def separate_item(model: Separator, item: dict) -> torch.Tensor:
    """The model's estimates for one dataset item, in the targets' order: (n, channels, time).

    A blind model's outputs are matched to the references (Hungarian on SI-SDR); a prompt
    model's outputs only among those of the same prompt (e.g. two ``speech`` outputs).
    """
    mixture = item["mixture"][None].to(model._device)
    with evaluation_mode(model):
        conditions = model.conditions_from_batch(
            None if item.get("conditions") is None else [item["conditions"]]
        )
        estimates = model(mixture, conditions).float().cpu()
    if model.condition_kind == "none":
        estimates = match_to_references(estimates, item["targets"][None])
    elif model.condition_kind == "prompt":
        estimates = match_within_prompts(estimates, item["targets"][None], conditions.cpu())
    return estimates[0]


def evaluate(
    systems: Dict[str, Separator],
    dataset: Dataset,
    out_dir: str,
    oracle_stft: Optional[tuple] = None,
    describe: Optional[Callable[[int], dict]] = None,
    n_examples: int = 3,
    metrics=DEFAULT_METRICS,
) -> pd.DataFrame:
    """Score every system, the mixture and (optionally) the oracle IRM on every test item.

    Args:
        systems: Name -> separator; the first is "the model" of ``final_metrics.json``.
        dataset: Items with mixture, targets and conditions (see
            :mod:`asteroid_lass.data.batch`), at the systems' sample rate.
        out_dir: Where to write the results.
        oracle_stft: ``(n_fft, hop_length)`` of the oracle ideal ratio mask (None: no oracle).
        describe: Extra columns for item ``index`` (ids, labels, SNR).
        n_examples: Items whose audio is saved under ``examples/``.
        metrics: Asteroid metric names.

    Returns:
        pd.DataFrame: All rows (also written to ``all_metrics.csv``).
    """
    os.makedirs(out_dir, exist_ok=True)
    sample_rate = int(next(iter(systems.values())).sample_rate)
    rows: List[dict] = []
    for index in tqdm(range(len(dataset)), desc="evaluating", disable=None):
        item = dataset[index]
        mixture, targets = item["mixture"], item["targets"]
        outputs = {name: separate_item(model, item) for name, model in systems.items()}
        if oracle_stft is not None:
            outputs["oracle_irm"] = ideal_ratio_mask(mixture, targets, *oracle_stft)
        names = item.get("conditions") or [f"source{k + 1}" for k in range(len(targets))]
        keep = audible(targets[None], mixture[None])[0]
        about = dict(describe(index)) if describe is not None else {}
        for k in range(len(targets)):
            if not keep[k]:
                continue  # a silent reference has no dB score
            row = None
            for system, estimates in outputs.items():
                row = score(
                    mixture.numpy(), targets[k].numpy(), estimates[k].numpy(), sample_rate, metrics
                )
                rows.append(
                    dict(row, system=system, item=index, output=k, condition=names[k], **about)
                )
            rows.append(
                dict(
                    mixture_reference(row),
                    system="mixture",
                    item=index,
                    output=k,
                    condition=names[k],
                    **about,
                )
            )
        if index < n_examples:
            _save_example(
                os.path.join(out_dir, "examples", f"ex_{index}"), item, outputs, names, sample_rate
            )
    table = pd.DataFrame(rows)
    write_summaries(table, next(iter(systems)), out_dir)
    return table


def write_summaries(table: pd.DataFrame, model_name: str, out_dir: str) -> None:
    """Write ``all_metrics.csv``, ``final_metrics.json`` (``model_name``'s means),
    ``references.json`` (every system's means) and ``per_condition.csv`` from score rows."""
    table.to_csv(os.path.join(out_dir, "all_metrics.csv"), index=False)
    columns = [c for c in SUMMARY_COLUMNS if c in table.columns]
    means = table.groupby("system")[columns].mean()
    final = {k: float(v) for k, v in means.loc[model_name].items()}
    final["n_outputs_scored"] = int((table.system == model_name).sum())
    with open(os.path.join(out_dir, "final_metrics.json"), "w") as out:
        json.dump(final, out, indent=2)
    references = {s: {k: float(v) for k, v in means.loc[s].items()} for s in means.index}
    with open(os.path.join(out_dir, "references.json"), "w") as out:
        json.dump(references, out, indent=2)
    per_condition(table).to_csv(os.path.join(out_dir, "per_condition.csv"))


def per_condition(table: pd.DataFrame) -> pd.DataFrame:
    """Mean and median SI-SDRi per condition and system, and each system's share of the
    oracle's mean (``share_of_oracle``); ``weak`` marks shares below :data:`WEAK_SHARE`."""
    stats = table.groupby(["condition", "system"])["si_sdr_imp"].agg(["mean", "median", "count"])
    stats = stats.reset_index()
    if (stats.system == "oracle_irm").any():
        oracle = stats[stats.system == "oracle_irm"].set_index("condition")["mean"]
        stats["share_of_oracle"] = stats["mean"] / stats.condition.map(oracle)
        stats["weak"] = (
            (stats.system != "oracle_irm")
            & (stats.system != "mixture")
            & (stats.share_of_oracle < WEAK_SHARE)
        )
    return stats.round(3).set_index(["condition", "system"])


def markdown_table(references: Dict[str, Dict[str, float]], columns=SUMMARY_COLUMNS) -> str:
    """A markdown table of mean metrics per system (dB), with the ``columns`` every system has."""
    columns = [c for c in columns if all(c in values for values in references.values())]
    header = "| system | " + " | ".join(columns) + " |"
    lines = [header, "|" + "---|" * (len(columns) + 1)]
    for system, values in references.items():
        lines.append(f"| {system} | " + " | ".join(f"{values[c]:.2f}" for c in columns) + " |")
    return "\n".join(lines)


def _save_example(directory: str, item: dict, outputs: dict, names, sample_rate: int) -> None:
    write_audio_atomic(os.path.join(directory, "mixture.wav"), item["mixture"].numpy(), sample_rate)
    for k, name in enumerate(names):
        write_audio_atomic(
            os.path.join(directory, f"target_{k}_{query_slug(name)}.wav"),
            item["targets"][k].numpy(),
            sample_rate,
        )
        for system, estimates in outputs.items():
            write_audio_atomic(
                os.path.join(directory, f"{system}_{k}_{query_slug(name)}.wav"),
                np.asarray(estimates[k].numpy()),
                sample_rate,
            )
