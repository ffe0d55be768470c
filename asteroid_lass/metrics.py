"""Evaluation metrics, in one place for eval scripts, the System, benchmarks and tests.

Asteroid's ``get_metrics`` gives SI-SDR and BSS-eval SDR (and the mixture's ``input_``
values); this module adds AudioSep's plain-energy SDR, the improvements, the oracle ideal ratio
mask bound, and the matching of a blind model's unordered outputs to references.
"""

import warnings
from typing import Dict, Optional, Sequence

import numpy as np
import torch
from asteroid.metrics import get_metrics

from .losses import grouped_assignment, hungarian_assignment, neg_sisdr, pairwise, reorder

#: Asteroid metric names computed by :func:`score` (plus ``energy_sdr``).
DEFAULT_METRICS = ("si_sdr", "sdr")
#: A reference this much below the mixture (dB) counts as silent: no dB score is defined.
SILENCE_DB = -60.0


def energy_sdr(reference: np.ndarray, estimate: np.ndarray) -> float:
    """AudioSep's SDR: ``10 log10(|s|^2 / |s - s_hat|^2)``, no projection, no filter."""
    error = max(float(np.sum((reference - estimate) ** 2)), 1e-12)
    return float(10 * np.log10(max(float(np.sum(reference**2)), 1e-12) / error))


def score(
    mixture: np.ndarray,
    target: np.ndarray,
    estimate: np.ndarray,
    sample_rate: int,
    metrics: Sequence[str] = DEFAULT_METRICS,
) -> Dict[str, float]:
    """Score one estimate of one target.

    Args:
        mixture, target, estimate: (time,) or (channels, time) arrays.
        sample_rate: For the metrics that need it.
        metrics: Asteroid metric names.

    Returns:
        dict: ``<metric>``, ``input_<metric>`` (the mixture as the estimate) and
        ``<metric>_imp`` for every metric and for ``energy_sdr``.
    """
    mixture, target, estimate = (
        np.atleast_2d(np.asarray(x, dtype=np.float64)) for x in (mixture, target, estimate)
    )
    rows = []
    for channel in range(target.shape[0]):
        with warnings.catch_warnings():
            # mir_eval announces its own deprecation on every call: nothing a user can act on.
            warnings.simplefilter("ignore", FutureWarning)
            warnings.simplefilter("ignore", DeprecationWarning)
            values = get_metrics(
                mixture[channel][None],
                target[channel][None],
                estimate[channel][None],
                sample_rate=sample_rate,
                metrics_list=list(metrics),
            )
        row = {k: float(v) for k, v in values.items()}
        row["energy_sdr"] = energy_sdr(target[channel], estimate[channel])
        row["input_energy_sdr"] = energy_sdr(target[channel], mixture[channel])
        rows.append(row)
    row = {key: float(np.mean([r[key] for r in rows])) for key in rows[0]}
    for name in list(metrics) + ["energy_sdr"]:
        row[f"{name}_imp"] = row[name] - row[f"input_{name}"]
    return row


def mixture_reference(row: Dict[str, float]) -> Dict[str, float]:
    """The unprocessed mixture's scores, read off a :func:`score` row of the same target: its
    metrics are that row's ``input_*`` values and its improvements are 0."""
    reference = {key: value for key, value in row.items() if key.startswith("input_")}
    for key in list(reference):
        name = key[len("input_") :]
        reference[name] = reference[key]
        reference[f"{name}_imp"] = 0.0
    return reference


def si_sdr_improvement(
    mixture: torch.Tensor, estimates: torch.Tensor, targets: torch.Tensor
) -> torch.Tensor:
    """SI-SDR(estimate) - SI-SDR(mixture) per output, in dB.

    Args:
        mixture: (batch, channels, time)
        estimates, targets: (batch, n, channels, time)

    Returns:
        torch.Tensor: (batch, n), averaged over channels.
    """
    improvement = neg_sisdr(mixture[:, None], targets) - neg_sisdr(estimates, targets)
    return improvement.mean(dim=-1)


def audible(targets: torch.Tensor, mixture: torch.Tensor) -> torch.Tensor:
    """(batch, n) True where a reference is louder than :data:`SILENCE_DB` re the mixture."""
    energy = targets.square().sum(dim=(-1, -2))
    reference = mixture.square().sum(dim=(-1, -2))[:, None].clamp_min(1e-12)
    return 10 * torch.log10(energy / reference + 1e-20) > SILENCE_DB


def match_to_references(estimates: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """A blind model's outputs put in the references' order (Hungarian on SI-SDR).

    Args:
        estimates: (batch, n_est, channels, time), n_est >= n_ref.
        targets: (batch, n_ref, channels, time)

    Returns:
        torch.Tensor: (batch, n_ref, channels, time), the matched estimates.
    """
    order = hungarian_assignment(pairwise(neg_sisdr, estimates, targets))
    return reorder(estimates, order)


def ideal_ratio_mask(
    mixture: torch.Tensor,
    targets: torch.Tensor,
    n_fft: int,
    hop_length: int,
    window: Optional[torch.Tensor] = None,
) -> torch.Tensor:
    """Oracle ideal ratio masks on the mixture's STFT: the ceiling of magnitude masking.

    Each target's mask is ``sqrt(|S_i|^2 / (sum_j |S_j|^2 + |R|^2))`` with ``R`` the part of
    the mixture no target explains (mixture minus the targets' sum), applied to the mixture's
    complex STFT.

    Args:
        mixture: (channels, time)
        targets: (n, channels, time)
        n_fft, hop_length: The STFT to mask in (use the model's).
        window: Analysis window (default: periodic Hann of ``n_fft``).

    Returns:
        torch.Tensor: (n, channels, time)
    """
    window = torch.hann_window(n_fft) if window is None else window
    length = mixture.shape[-1]

    def stft(wav):
        flat = wav.reshape(-1, length).double()
        return torch.stft(
            flat, n_fft, hop_length, window=window.double(), center=True, return_complex=True
        )

    rest = mixture - targets.sum(dim=0)
    power = stft(targets).abs().square().reshape(*targets.shape[:2], n_fft // 2 + 1, -1)
    total = power.sum(dim=0) + stft(rest).abs().square().reshape(power.shape[1:])
    masks = (power / total.clamp_min(1e-20)).sqrt()
    spec = stft(mixture).reshape(power.shape[1:])
    masked = (masks * spec[None]).reshape(-1, *spec.shape[1:])
    wav = torch.istft(masked, n_fft, hop_length, window=window.double(), center=True, length=length)
    return wav.reshape(targets.shape).to(mixture.dtype)


def match_within_prompts(
    estimates: torch.Tensor, targets: torch.Tensor, prompts: torch.Tensor
) -> torch.Tensor:
    """A prompt model's outputs, reordered only among outputs that share a prompt.

    Two ``speech`` prompts ask for two talkers in no particular order; outputs of different
    prompts keep their places. Matching is by SI-SDR (Hungarian within each prompt).

    Args:
        estimates, targets: (batch, n, channels, time)
        prompts: (batch, n) prompt indices (or any group ids).

    Returns:
        torch.Tensor: (batch, n, channels, time), the matched estimates.
    """
    order = grouped_assignment(pairwise(neg_sisdr, estimates, targets), prompts)
    return reorder(estimates, order)
