"""Mixing a target with interferers at a chosen signal-to-interference ratio."""

from functools import lru_cache
from typing import Sequence, Tuple

import numpy as np
import pyloudnorm

REFERENCE_LOUDNESS = -23.0  # LUFS, EBU R128
PEAK_LIMIT = 0.9
_EPS = 1e-10


@lru_cache(maxsize=8)
def _meter(sample_rate: int) -> pyloudnorm.Meter:
    return pyloudnorm.Meter(sample_rate)


def loudness_gain(wav: np.ndarray, sample_rate: int) -> float:
    """The factor that brings ``wav`` to -23 LUFS (BS.1770), RMS-based for too-short clips.

    Args:
        wav: (time,) or (time, channels) float array.
        sample_rate: For the loudness meter.

    Returns:
        float: 1.0 for a silent clip.
    """
    try:
        loudness = _meter(sample_rate).integrated_loudness(wav.astype(np.float64))
    except ValueError:  # shorter than one 400 ms gating block
        loudness = -np.inf
    if np.isfinite(loudness):
        return float(10.0 ** ((REFERENCE_LOUDNESS - loudness) / 20.0))
    rms = np.sqrt(np.mean(wav.astype(np.float64) ** 2))
    if rms < _EPS:
        return 1.0
    return float(10.0 ** (REFERENCE_LOUDNESS / 20.0) / rms)


def loudness_normalize(wav: np.ndarray, sample_rate: int) -> np.ndarray:
    """Bring ``wav`` to -23 LUFS (BS.1770); falls back to RMS for too-short or silent clips."""
    # A numpy float64 scalar, as before the gain was factored out: same dtype promotion.
    return (wav * np.float64(loudness_gain(wav, sample_rate))).astype(np.float32)


def energy_snr_db(target: np.ndarray, interference: np.ndarray) -> float:
    """10 log10(|target|^2 / |interference|^2)."""
    return float(
        10
        * np.log10(
            (np.sum(target.astype(np.float64) ** 2) + _EPS)
            / (np.sum(interference.astype(np.float64) ** 2) + _EPS)
        )
    )


def mix(
    target: np.ndarray, interferers: Sequence[np.ndarray], snr_db: float, sample_rate: int
) -> Tuple[np.ndarray, np.ndarray]:
    """Mix a target with interferers at an exact energy SNR, with peak protection.

    Each clip is loudness-normalised first (so several interferers share a level), then the
    summed interference is scaled so that the target-to-interference energy ratio is
    ``snr_db``; if the mixture's peak exceeds 0.9, mixture and target are scaled together.

    Args:
        target: (time,) float array.
        interferers: Arrays of the same length as ``target``.
        snr_db: Target-to-interference ratio in dB.
        sample_rate: For the loudness meter.

    Returns:
        (mixture, target): both (time,) float32; ``target`` is the scaled reference.
    """
    target = loudness_normalize(target, sample_rate)
    interference = np.zeros_like(target)
    for interferer in interferers:
        interference += loudness_normalize(interferer, sample_rate)
    target_energy = np.sum(target.astype(np.float64) ** 2)
    interference_energy = np.sum(interference.astype(np.float64) ** 2)
    if target_energy > _EPS and interference_energy > _EPS:
        gain = np.sqrt(target_energy / (interference_energy * 10.0 ** (snr_db / 10.0)))
        interference = (interference * gain).astype(np.float32)
    mixture = target + interference
    peak = float(np.max(np.abs(mixture))) if mixture.size else 0.0
    if peak > PEAK_LIMIT:
        scale = PEAK_LIMIT / peak
        mixture, target = mixture * scale, target * scale
    return mixture.astype(np.float32), target.astype(np.float32)
