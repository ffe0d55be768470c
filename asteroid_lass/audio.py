"""Small audio helpers shared by the datasets, the query encoders and inference."""

import os
from typing import Optional, Tuple, Type, Union

import numpy as np
import soundfile as sf
import torch
import torchaudio.functional
from torch import nn

from .errors import LASSError, LASSInputError
from .utils import atomic_write


def as_float_samples(
    wav: Union[torch.Tensor, np.ndarray, list], name: str = "audio", channels: bool = False
) -> Union[torch.Tensor, np.ndarray]:
    """Audio samples of any shape ``(..., time)`` as float32, integer PCM scaled as WAV does.

    Signed integers are divided by their type's range (int16 by 32768), unsigned ones are
    offset by half their range first (uint8: ``(x - 128) / 128``). Boolean, complex, text and
    object arrays are refused, and so are NaN or infinite samples (with their position).

    Args:
        wav: A tensor (kept on its device) or anything ``np.asarray`` takes.
        name: What to call the input in error messages.
        channels: A 2-D input is (channels, time), for the messages.

    Returns:
        A float32 tensor for a tensor input, else a float32 array.

    Raises:
        LASSInputError: Naming ``name``, the dtype or the first non-finite sample.
    """
    if isinstance(wav, torch.Tensor):
        wav = wav.detach()
        dtype = wav.dtype
        if (
            dtype == torch.bool
            or dtype.is_complex
            or not (dtype.is_floating_point or _is_torch_int(dtype))
        ):
            raise LASSInputError(f"{name}: expected real audio samples, got dtype {dtype}.")
        if not dtype.is_floating_point:
            info = torch.iinfo(dtype)
            offset = 0.0 if info.min < 0 else float(info.max // 2 + 1)
            scale = -float(info.min) if info.min < 0 else offset
            wav = ((wav.double() - offset) / scale).float()
        wav = wav.float()
        bad = ~torch.isfinite(wav)
        if bad.any():
            raise_non_finite(bad.nonzero()[0].tolist(), name, LASSInputError, channels=channels)
        return wav
    try:
        array = np.asarray(wav)
    except ValueError as err:  # ragged nested lists
        raise LASSInputError(f"{name}: not an array of audio samples ({err}).") from err
    if array.dtype == np.bool_ or not np.issubdtype(array.dtype, np.number):
        raise LASSInputError(f"{name}: expected real audio samples, got dtype {array.dtype}.")
    if np.iscomplexobj(array):
        raise LASSInputError(f"{name}: expected real audio samples, got dtype {array.dtype}.")
    if np.issubdtype(array.dtype, np.unsignedinteger):
        half = float(np.iinfo(array.dtype).max // 2 + 1)
        array = (array.astype(np.float64) - half) / half
    elif np.issubdtype(array.dtype, np.integer):
        array = array.astype(np.float64) / float(-np.iinfo(array.dtype).min)
    array = np.asarray(array, dtype=np.float32)
    bad = ~np.isfinite(array)
    if bad.any():
        raise_non_finite(np.argwhere(bad)[0].tolist(), name, LASSInputError, channels=channels)
    return array


def _is_torch_int(dtype: torch.dtype) -> bool:
    try:
        torch.iinfo(dtype)
    except TypeError:
        return False
    return True


def raise_non_finite(
    index: list,
    name: str,
    error: Type[LASSError],
    offset: int = 0,
    sample_rate: Optional[int] = None,
    channels: bool = False,
) -> None:
    """Raise ``error`` naming where the first NaN or infinite sample is.

    Args:
        index: Array index of the bad sample, time last.
        name: The input's name (a path, ``"wav"``...).
        error: The error class to raise.
        offset: Samples before the array in the signal (for blocks of a file).
        sample_rate: Adds the position in seconds when given.
        channels: A 2-D ``index`` is (channel, sample), as in a file's block.
    """
    position = offset + int(index[-1]) if index else offset
    where = f"sample {position}"
    if sample_rate:
        where += f" ({position / sample_rate:.3f} s)"
    if len(index) == 2 and channels:
        where += f" of channel {int(index[0])}"
    elif len(index) > 1:
        where += f" (array index {tuple(int(i) for i in index)})"
    raise error(f"{name} has a NaN or infinite value at {where}.")


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


class STFT(nn.Module):
    """A centred, Hann-windowed STFT on ``torch.stft`` and its inverse.

    One object gives a model and its training objective the same transform, so predicted and
    reference spectrograms line up frame for frame.

    Args:
        n_fft: FFT size (and window length).
        hop_length: Hop between frames, at most ``n_fft``.

    Shape:
        - forward: (..., time) -> complex (..., n_fft // 2 + 1, time // hop_length + 1)
        - inverse: complex (..., n_fft // 2 + 1, frames) -> (..., length)
    """

    def __init__(self, n_fft: int, hop_length: int):
        super().__init__()
        if int(n_fft) < 2:
            raise ValueError(f"n_fft must be an int >= 2, got {n_fft}.")
        if not 0 < int(hop_length) <= int(n_fft):
            raise ValueError(f"hop_length must be in [1, n_fft={n_fft}], got {hop_length}.")
        self.n_fft = int(n_fft)
        self.hop_length = int(hop_length)
        # Not persistent: the window follows from n_fft, so model files do not carry it.
        self.register_buffer("window", torch.hann_window(self.n_fft), persistent=False)

    @property
    def n_freq(self) -> int:
        return self.n_fft // 2 + 1

    def n_frames(self, length: int) -> int:
        """Frames of a signal of ``length`` samples (centred frames)."""
        return length // self.hop_length + 1

    def forward(self, wav: torch.Tensor) -> torch.Tensor:
        lead, length = wav.shape[:-1], wav.shape[-1]
        spec = torch.stft(
            wav.reshape(-1, length),
            n_fft=self.n_fft,
            hop_length=self.hop_length,
            window=self.window.to(wav.dtype),
            center=True,
            # "reflect" needs length > n_fft // 2; constant padding takes any length.
            pad_mode="constant",
            return_complex=True,
        )
        return spec.reshape(*lead, *spec.shape[-2:])

    def inverse(self, spec: torch.Tensor, length: int) -> torch.Tensor:
        lead = spec.shape[:-2]
        wav = torch.istft(
            spec.reshape(-1, *spec.shape[-2:]),
            n_fft=self.n_fft,
            hop_length=self.hop_length,
            window=self.window,
            center=True,
            length=length,
        )
        return wav.reshape(*lead, length)

    def magnitude(self, wav: torch.Tensor, floor: float = 1e-12) -> torch.Tensor:
        """``|STFT|`` with a floored square root, so its gradient stays finite at zero."""
        spec = self(wav)
        return (spec.real.square() + spec.imag.square()).clamp_min(floor).sqrt()
