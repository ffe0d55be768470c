"""Evaluate a trained model on the fixed test mixtures (stage 3 of run.sh).

Writes into ``--out_dir``: ``all_metrics.csv`` (one row per mixture and system),
``final_metrics.json`` (the model's mean si_sdr, si_sdr_imp, sdr, sdr_imp and AudioSep's
plain-energy SDR/SDRi), ``per_class.csv`` (mean and median SI-SDRi per query class),
``references.json`` (the mixture itself and the oracle ideal ratio mask on the same mixtures)
and ``examples/ex_<i>/`` (mixture, target, estimate wavs and a spectrogram PNG).
"""

import argparse
import json
import os

import numpy as np
import pandas as pd
import torch
from asteroid.metrics import get_metrics
from tqdm import tqdm

from asteroid_lass import LASSResUNet
from asteroid_lass.audio import write_audio_atomic
from asteroid_lass.data import FixedMixtureDataset

METRICS = ["si_sdr", "sdr"]  # Asteroid's get_metrics
SCORED = METRICS + ["energy_sdr"]  # plus AudioSep's plain-energy SDR


def energy_sdr(reference: np.ndarray, estimate: np.ndarray) -> float:
    """AudioSep's SDR: 10 log10(|s|^2 / |s - s_hat|^2), no projection, no filter."""
    return float(
        10 * np.log10(np.sum(reference**2) / max(np.sum((reference - estimate) ** 2), 1e-12))
    )


def ideal_ratio_mask(model: LASSResUNet, mixture: torch.Tensor, target: torch.Tensor):
    """Oracle IRM at the model's STFT: sqrt(|S|^2 / (|S|^2 + |N|^2)) on the mixture's phase."""
    spec_mix = model.stft(mixture[None, None])
    power_target = model.stft(target[None, None]).abs().square()
    power_rest = model.stft((mixture - target)[None, None]).abs().square()
    mask = (power_target / (power_target + power_rest).clamp_min(1e-12)).sqrt()
    return model.istft(spec_mix * mask, length=mixture.shape[-1])[0, 0]


def score(mixture, target, estimate, sample_rate) -> dict:
    metrics = get_metrics(
        mixture[None], target[None], estimate[None], sample_rate=sample_rate, metrics_list=METRICS
    )
    row = {k: float(v) for k, v in metrics.items()}
    row["energy_sdr"] = energy_sdr(target, estimate)
    row["input_energy_sdr"] = energy_sdr(target, mixture)
    for name in SCORED:
        row[f"{name}_imp"] = row[name] - row[f"input_{name}"]
    return row


def mixture_reference(row: dict) -> dict:
    """The unprocessed mixture's scores, read off any row of the same mixture: its metrics are
    that row's ``input_*`` values and its improvements are 0 (no second BSS-eval pass)."""
    reference = {key: value for key, value in row.items() if key.startswith("input_")}
    for name in SCORED:
        reference[name] = row[f"input_{name}"]
        reference[f"{name}_imp"] = 0.0
    return reference


def save_example(directory: str, mixture, target, estimate, sample_rate: int, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    os.makedirs(directory, exist_ok=True)
    signals = {"mixture": mixture, "target": target, "estimate": estimate}
    for name, wav in signals.items():
        write_audio_atomic(os.path.join(directory, f"{name}.wav"), wav, sample_rate)
    figure, axes = plt.subplots(3, 1, figsize=(8, 7), sharex=True)
    for axis, (name, wav) in zip(axes, signals.items()):
        axis.specgram(wav, NFFT=512, Fs=sample_rate, noverlap=384, cmap="magma", vmin=-120)
        axis.set_title(f"{name}" + (f": {title}" if name == "mixture" else ""))
        axis.set_ylabel("Hz")
    axes[-1].set_xlabel("s")
    figure.tight_layout()
    figure.savefig(os.path.join(directory, "spectrograms.png"), dpi=80)
    plt.close(figure)


def evaluate(model_path: str, test_csv: str, out_dir: str, n_examples: int = 3) -> dict:
    """Score the model, the mixture and the oracle IRM on every test mixture."""
    model = LASSResUNet.from_pretrained(model_path).eval()
    test_set = FixedMixtureDataset(test_csv, sample_rate=int(model.sample_rate))
    os.makedirs(out_dir, exist_ok=True)
    rows = []
    with torch.inference_mode():
        for index in tqdm(range(len(test_set)), desc="evaluating"):
            mixture, target, query = test_set[index]
            estimate = model.separate(mixture[None], query=query)[0]
            oracle = ideal_ratio_mask(model, mixture, target)
            recipe = test_set.recipes[index]
            about = dict(
                mixture_id=recipe["mixture_id"],
                query=query,
                target_labels=recipe["target_labels"],
                snr_db=recipe["snr_db"],
            )
            for system, output in (("model", estimate), ("oracle_irm", oracle)):
                row = score(mixture.numpy(), target.numpy(), output.numpy(), test_set.sample_rate)
                rows.append(dict(row, system=system, **about))
            rows.append(dict(mixture_reference(rows[-1]), system="mixture", **about))
            if index < n_examples:
                save_example(
                    os.path.join(out_dir, "examples", f"ex_{index}"),
                    mixture.numpy(),
                    target.numpy(),
                    estimate.numpy(),
                    test_set.sample_rate,
                    query,
                )
    table = pd.DataFrame(rows)
    table.to_csv(os.path.join(out_dir, "all_metrics.csv"), index=False)
    columns = ["si_sdr", "si_sdr_imp", "sdr", "sdr_imp", "energy_sdr", "energy_sdr_imp"]
    means = table.groupby("system")[columns].mean()
    final = {k: float(v) for k, v in means.loc["model"].items()}
    final["n_mixtures"] = int(len(test_set))
    with open(os.path.join(out_dir, "final_metrics.json"), "w") as out:
        json.dump(final, out, indent=2)
    references = {
        system: {k: float(v) for k, v in means.loc[system].items()} for system in means.index
    }
    with open(os.path.join(out_dir, "references.json"), "w") as out:
        json.dump(references, out, indent=2)
    per_class = (
        table[table.system == "model"]
        .groupby("target_labels")["si_sdr_imp"]
        .agg(["mean", "median", "count"])
        .round(2)
    )
    per_class.to_csv(os.path.join(out_dir, "per_class.csv"))
    return {"final": final, "references": references, "per_class": per_class}


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--model_path", required=True)
    parser.add_argument("--test_csv", required=True)
    parser.add_argument("--out_dir", required=True)
    parser.add_argument("--n_examples", type=int, default=3)
    args = parser.parse_args(argv)
    result = evaluate(args.model_path, args.test_csv, args.out_dir, args.n_examples)
    print(pd.DataFrame(result["references"]).T.round(2).to_string())
    print("\nSI-SDRi per class:\n" + result["per_class"].to_string())
    print(f"\nResults in {args.out_dir}")


if __name__ == "__main__":
    main()
