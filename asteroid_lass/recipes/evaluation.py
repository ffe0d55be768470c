"""Evaluation of any separator on a fixed test set, with the mixture and an oracle as references.

Writes into ``out_dir``: ``all_metrics.csv`` (one row per mixture, output and system),
``final_metrics.json`` (the model's means), ``references.json`` (means of every system:
model, mixture, oracle ideal ratio mask, baselines), ``per_condition.csv`` (mean and median
SI-SDRi per query, label or prompt, with the share of the oracle's) and ``examples/``.

Recipes add metrics of their own with ``extra_scores`` (e.g. the SiSEC SDR of
:func:`sisec_sdr`), and run long test items (whole songs) through windowed inference with
``window``.
"""

import functools
import importlib.util
import json
import os
from types import ModuleType
from typing import Callable, Dict, List, Optional, Sequence

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
from ..models.base import Separator, query_slug
from ..utils import evaluation_mode

SUMMARY_COLUMNS = ["si_sdr", "si_sdr_imp", "sdr", "sdr_imp", "energy_sdr", "energy_sdr_imp"]
#: Conditions whose SI-SDRi is below this share of the oracle's are flagged in the report.
WEAK_SHARE = 0.5

#: ``extra_scores(mixture, target, estimate, sample_rate) -> {name: dB}`` on (channels, time)
#: arrays of one output: metrics that :func:`~asteroid_lass.metrics.score` does not compute.
ExtraScores = Callable[[np.ndarray, np.ndarray, np.ndarray, int], Dict[str, float]]


def separate_item(
    model: Separator, item: dict, window: Optional[float] = None, match: bool = True
) -> torch.Tensor:
    """The model's estimates for one dataset item, in the targets' order: (n, channels, time).

    Args:
        model: The separator.
        item: A dataset item (mixture, targets, conditions).
        window: Separate in windows of this many seconds (see
            :func:`asteroid_lass.inference.separate_waveform`) rather than in one pass: for
            whole songs, whose single pass would not fit in memory.
        match: Match a blind model's outputs to the references (Hungarian on SI-SDR). False
            for a blind model trained with ``assignment: fixed``, whose outputs already have
            the references' order.

    A blind model's outputs are matched to the references (Hungarian on SI-SDR); a prompt
    model's outputs only among those of the same prompt (e.g. two ``speech`` outputs).
    """
    if window is not None:
        from ..inference import separate_waveform  # inference imports the models

        query = None if model.condition_kind == "none" else list(item["conditions"])
        estimates = separate_waveform(
            model, item["mixture"], int(model.sample_rate), query, window=window
        )
        estimates = torch.from_numpy(estimates)[None]
    else:
        mixture = item["mixture"][None].to(model._device)
        with evaluation_mode(model):
            conditions = model.conditions_from_batch(
                None if item.get("conditions") is None else [item["conditions"]]
            )
            estimates = model(mixture, conditions).float().cpu()
    if model.condition_kind == "none" and match:
        estimates = match_to_references(estimates, item["targets"][None])
    elif model.condition_kind == "prompt":
        prompt_ids = model.conditions_from_batch([item["conditions"]]).cpu()
        estimates = match_within_prompts(estimates, item["targets"][None], prompt_ids)
    return estimates[0]


@functools.lru_cache(maxsize=None)
def museval_metrics() -> ModuleType:
    """``museval.metrics`` (BSS-eval v4), loaded without running ``museval/__init__.py``.

    That file imports ``musdb`` and so ``stempeg``, which refuses to load without ffmpeg on
    PATH; the metrics need neither (they are numpy and scipy), so scoring works on a machine
    with only Python.
    """
    spec = importlib.util.find_spec("museval")
    if spec is None or not spec.submodule_search_locations:
        raise ImportError("SiSEC SDR needs the `museval` package: pip install museval")
    path = os.path.join(spec.submodule_search_locations[0], "metrics.py")
    module_spec = importlib.util.spec_from_file_location("museval_metrics", path)
    module = importlib.util.module_from_spec(module_spec)
    module_spec.loader.exec_module(module)
    return module


def sisec_sdr(
    mixture: np.ndarray, target: np.ndarray, estimate: np.ndarray, sample_rate: int
) -> Dict[str, float]:
    """SiSEC 2018's SDR (``museval``, BSS-eval v4): the median over 1 s frames of a track,
    skipping frames where the reference is silent. An :data:`ExtraScores` function.

    v4 projects an estimate on its own reference only, so one stem's SDR does not depend on
    the other stems: scoring the stems one at a time gives SiSEC's per-stem values.

    Returns:
        dict: ``{"sisec_sdr": dB}`` (NaN when every frame is silent).
    """
    del mixture  # the SDR needs only the reference
    reference = np.atleast_2d(target).T[None].astype(np.float64)
    estimated = np.atleast_2d(estimate).T[None].astype(np.float64)
    if reference.shape != estimated.shape:
        raise ValueError(
            f"sisec_sdr: target {reference.shape[1:]} and estimate {estimated.shape[1:]} "
            "(time, channels) differ."
        )
    # What museval.evaluate(..., mode="v4") computes.
    sdr = museval_metrics().bss_eval(
        reference,
        estimated,
        compute_permutation=False,
        window=sample_rate,
        hop=sample_rate,
        framewise_filters=False,
        bsseval_sources_version=False,
    )[0]
    frames = sdr[0][np.isfinite(sdr[0])]
    return {"sisec_sdr": float(np.median(frames)) if frames.size else float("nan")}


def evaluate(
    systems: Dict[str, Separator],
    dataset: Dataset,
    out_dir: str,
    oracle_stft: Optional[tuple] = None,
    describe: Optional[Callable[[int], dict]] = None,
    n_examples: int = 3,
    metrics=DEFAULT_METRICS,
    extra_scores: Optional[ExtraScores] = None,
    ordered: Sequence[str] = (),
    window: Optional[float] = None,
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
        extra_scores: More metrics per output (see :data:`ExtraScores`), computed for every
            system and for the mixture; each also gets ``<name>_imp``, the gain over the
            mixture.
        ordered: Blind systems whose outputs are in the references' order (trained with a
            fixed assignment): scored as they come, not matched to the references.
        window: Separate in windows of this many seconds (see :func:`separate_item`).

    Returns:
        pd.DataFrame: All rows (also written to ``all_metrics.csv``).
    """
    os.makedirs(out_dir, exist_ok=True)
    sample_rate = int(next(iter(systems.values())).sample_rate)
    rows: List[dict] = []
    extra_names: Dict[str, None] = {}  # ordered set of the extra_scores names
    for index in tqdm(range(len(dataset)), desc="evaluating", disable=None):
        item = dataset[index]
        mixture, targets = item["mixture"], item["targets"]
        outputs = {
            name: separate_item(model, item, window=window, match=name not in ordered)
            for name, model in systems.items()
        }
        if oracle_stft is not None:
            outputs["oracle_irm"] = ideal_ratio_mask(mixture, targets, *oracle_stft)
        names = item.get("conditions") or [f"source{k + 1}" for k in range(len(targets))]
        keep = audible(targets[None], mixture[None])[0]
        about = dict(describe(index)) if describe is not None else {}
        for k in range(len(targets)):
            if not keep[k]:
                continue  # a silent reference has no dB score
            row = None
            unprocessed = {}
            if extra_scores is not None:
                unprocessed = extra_scores(
                    mixture.numpy(), targets[k].numpy(), mixture.numpy(), sample_rate
                )
            for system, estimates in outputs.items():
                row = score(
                    mixture.numpy(), targets[k].numpy(), estimates[k].numpy(), sample_rate, metrics
                )
                if extra_scores is not None:
                    extra = extra_scores(
                        mixture.numpy(), targets[k].numpy(), estimates[k].numpy(), sample_rate
                    )
                    for name, value in extra.items():
                        extra_names.setdefault(name, None)
                        row[name], row[f"input_{name}"] = value, unprocessed[name]
                        row[f"{name}_imp"] = value - unprocessed[name]
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
    extra_columns = [name for base in extra_names for name in (base, f"{base}_imp")]
    write_summaries(table, next(iter(systems)), out_dir, extra_columns)
    return table


def write_summaries(
    table: pd.DataFrame, model_name: str, out_dir: str, extra_columns: Sequence[str] = ()
) -> None:
    """Write ``all_metrics.csv``, ``final_metrics.json`` (``model_name``'s means),
    ``references.json`` (every system's means) and ``per_condition.csv`` from score rows."""
    table.to_csv(os.path.join(out_dir, "all_metrics.csv"), index=False)
    columns = [c for c in SUMMARY_COLUMNS if c in table.columns] + list(extra_columns)
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


def markdown_table(
    references: Dict[str, Dict[str, float]],
    columns: Optional[Sequence[str]] = None,
    first_column: str = "system",
) -> str:
    """A markdown table of mean metrics per system (dB).

    Args:
        references: Row name (a system) -> metric -> value.
        columns: Metrics to show, of those every row has (default: all of those, in the
            first row's order).
        first_column: Header of the row names.
    """
    if columns is None:
        columns = list(next(iter(references.values()), {}))
    columns = [c for c in columns if all(c in values for values in references.values())]
    header = f"| {first_column} | " + " | ".join(columns) + " |"
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
