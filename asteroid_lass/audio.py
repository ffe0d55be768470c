"""Small audio helpers shared by the datasets, the query encoders and inference."""

import os
from typing import Tuple

import numpy as np
import soundfile as sf
import torch
import torchaudio.functional

from .utils import atomic_write


def resample(wav: torch.Tensor, orig_sr: int, target_sr: int) -> torch.Tensor:
    """Band-limited resampling along the last axis (identity when the rates match).

    Args:
        wav: (..., time) float tensor.
        orig_sr: Sample rate of ``wav``.
        target_sr: Wanted sample rate.

    Returns:
        torch.Tensor: (..., round(time * target_sr / orig_sr))
    """
    orig_sr, target_sr = int(orig_sr), int(target_sr)
    if orig_sr == target_sr:
        return wav
    return torchaudio.functional.resample(wav.contiguous(), orig_sr, target_sr)


def read_audio(path: str, dtype: str = "float32") -> Tuple[np.ndarray, int]:
    """Read a whole audio file as (channels, time) with a clear error on failure.

    Raises:
        FileNotFoundError: The file does not exist.
        ValueError: The file exists but is not readable audio.
    """
    if not os.path.isfile(path):
        raise FileNotFoundError(f"Audio file not found: {path}")
    try:
        wav, sample_rate = sf.read(path, dtype=dtype, always_2d=True)
    except Exception as err:  # soundfile raises several types for corrupt or unknown files
        raise ValueError(f"Could not read audio file {path}: {err}") from err
    return wav.T, int(sample_rate)


def write_audio_atomic(path: str, wav: np.ndarray, sample_rate: int) -> None:
    """Write (channels, time) or (time,) audio to ``path`` through a temp file and a rename.

    A crash mid-write never leaves a truncated file under the final name.
    """
    wav = np.asarray(wav)
    with atomic_write(path) as tmp_path:
        sf.write(
            tmp_path,
            wav.T if wav.ndim == 2 else wav,
            int(sample_rate),
            format="WAV",
            subtype="FLOAT",
        )
