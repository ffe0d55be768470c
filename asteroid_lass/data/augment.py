"""Training-time changes to sources and mixtures that real recordings bring: pitch, level,
colour (equalisation) and room.

A model trained on mixtures at one loudness, through one microphone, in one room learns those
too; these changes are drawn per training item so that it does not. Fixed validation and test
mixtures are never augmented.
"""

import math
from dataclasses import dataclass
from fractions import Fraction
from typing import Optional, Sequence, Tuple

import numpy as np
import torch
from scipy.signal import fftconvolve

from ..audio import resample
from ..utils import is_number

#: Equaliser anchor frequencies (Hz): octave bands from 63 Hz, the top one at Nyquist.
_EQ_LOWEST_HZ = 62.5


def add_room(
    rng: np.random.Generator,
    wav: np.ndarray,
    sample_rate: int,
    rt60_range: Sequence[float] = (0.1, 0.8),
    wet_db_range: Sequence[float] = (-20.0, -3.0),
) -> np.ndarray:
    """Add a room's reverberation: an exponentially decaying noise impulse response.

    Args:
        rng: Random generator (draws the RT60, the response and the wet level, in that order).
        wav: (time,) float array.
        sample_rate: Of ``wav``.
        rt60_range: Reverberation time range (s): the response decays by 60 dB over it.
        wet_db_range: Level of the reverberant part relative to the dry sound (dB).

    Returns:
        np.ndarray: (time,) float64, the dry sound plus its reverberation.
    """
    rt60 = rng.uniform(*rt60_range)
    t = np.arange(int(rt60 * sample_rate)) / sample_rate
    response = rng.standard_normal(t.shape[0]) * np.exp(-6.9 * t / rt60)
    wet = fftconvolve(wav, response)[: wav.shape[0]]
    level = 10 ** (rng.uniform(*wet_db_range) / 20)
    return wav + wet * level * np.sqrt(np.sum(wav**2) / (np.sum(wet**2) + 1e-12))


def random_eq(
    rng: np.random.Generator, wav: np.ndarray, sample_rate: int, max_db: float
) -> np.ndarray:
    """Colour ``wav`` with a smooth random equaliser: a gain drawn in [-max_db, max_db] at each
    octave band from 63 Hz to Nyquist, linear in dB between bands on a log-frequency axis.

    Args:
        rng: Random generator.
        wav: (time,) float array.
        sample_rate: Of ``wav``.
        max_db: Largest boost or cut (dB).

    Returns:
        np.ndarray: (time,) float32.
    """
    nyquist = sample_rate / 2
    n_bands = max(2, int(math.floor(math.log2(nyquist / _EQ_LOWEST_HZ))) + 1)
    anchors = np.log2(np.geomspace(_EQ_LOWEST_HZ, nyquist, n_bands))
    gains_db = rng.uniform(-max_db, max_db, size=n_bands)
    freqs = np.fft.rfftfreq(wav.shape[0], 1.0 / sample_rate)
    curve_db = np.interp(np.log2(np.maximum(freqs, _EQ_LOWEST_HZ)), anchors, gains_db)
    spectrum = np.fft.rfft(wav.astype(np.float64)) * 10 ** (curve_db / 20)
    return np.fft.irfft(spectrum, wav.shape[0]).astype(np.float32)


def repitch(
    rng: np.random.Generator, wav: np.ndarray, max_semitones: float, length: int
) -> np.ndarray:
    """Play ``wav`` faster or slower by a random interval, pitch and tempo together, as a
    sampler transposes a recorded note (Demucs's ``repitch`` changes them apart).

    Args:
        rng: Random generator (draws the interval, uniform in semitones).
        wav: (time,) float array, at least ``length * 2 ** (max_semitones / 12)`` samples
            (see :meth:`Augmentation.source_samples`), zero-padded otherwise.
        max_semitones: Largest interval up or down.
        length: Samples returned.

    Returns:
        np.ndarray: (length,) float32, the first ``length`` samples of the transposed sound.
    """
    semitones = rng.uniform(-max_semitones, max_semitones)
    # A ratio of small integers keeps the band-limited resampler's kernels few; with
    # denominators up to 48 the interval played is within 0.2 semitone of the one drawn.
    ratio = Fraction(2 ** (semitones / 12)).limit_denominator(48)
    moved = resample(
        torch.from_numpy(np.asarray(wav, dtype=np.float32)), ratio.numerator, ratio.denominator
    ).numpy()
    if moved.shape[0] < length:
        moved = np.pad(moved, (0, length - moved.shape[0]))
    return moved[:length]


@dataclass(frozen=True)
class Augmentation:
    """What changes each training item: every source's pitch, colour and room before mixing,
    the mixture's level after.

    Args:
        pitch_semitones: Largest transposition of a source, up or down (see :func:`repitch`);
            0: none.
        eq_db: Largest equaliser boost or cut per octave band (dB); 0: none.
        room_probability: Chance that a source gets a room (see :func:`add_room`).
        gain_db: Range of the mixture's level change (dB), target changed with it; the mixer
            brings every source to -23 LUFS, so without it the model only ever hears one level.
    """

    eq_db: float = 0.0
    room_probability: float = 0.0
    gain_db: Tuple[float, float] = (0.0, 0.0)
    pitch_semitones: float = 0.0

    def __post_init__(self):
        if not (math.isfinite(self.pitch_semitones) and 0 <= self.pitch_semitones <= 12):
            raise ValueError(
                "augment_pitch_semitones must be a number of semitones in [0, 12], "
                f"got {self.pitch_semitones!r}."
            )
        if not (math.isfinite(self.eq_db) and self.eq_db >= 0):
            raise ValueError(f"augment_eq_db must be a number of dB >= 0, got {self.eq_db!r}.")
        if not 0 <= self.room_probability <= 1:
            raise ValueError(
                f"augment_room_probability must be in [0, 1], got {self.room_probability!r}."
            )
        low, high = self.gain_db
        if not (math.isfinite(low) and math.isfinite(high) and low <= high):
            raise ValueError(
                f"augment_gain_low_db/augment_gain_high_db must be finite with low <= high, "
                f"got {low!r}, {high!r}."
            )

    @classmethod
    def from_conf(cls, data: dict) -> Optional["Augmentation"]:
        """From a recipe's ``data`` group (``augment_pitch_semitones``, ``augment_eq_db``,
        ``augment_room_probability``, ``augment_gain_low_db``, ``augment_gain_high_db``;
        missing keys: no change). None when nothing would change."""

        def number(key: str) -> float:
            value = data.get(key)
            if value is None:
                return 0.0
            if not is_number(value):  # a word, or a switch (`true`) where an amount was meant
                raise ValueError(f"{key} must be a number, got {value!r}.")
            return float(value)

        augmentation = cls(
            pitch_semitones=number("augment_pitch_semitones"),
            eq_db=number("augment_eq_db"),
            room_probability=number("augment_room_probability"),
            gain_db=(number("augment_gain_low_db"), number("augment_gain_high_db")),
        )
        return None if augmentation == cls() else augmentation

    def source_samples(self, length: int) -> int:
        """Samples of a source to crop for :meth:`source` to return ``length``: more than
        ``length`` when a transposition up plays the crop faster."""
        if not self.pitch_semitones:
            return length
        return int(math.ceil(length * 2 ** (self.pitch_semitones / 12))) + 1

    def source(
        self, rng: np.random.Generator, wav: np.ndarray, sample_rate: int, length: int
    ) -> np.ndarray:
        """One source as another note, another microphone in another room would have
        recorded it.

        Args:
            rng: Random generator.
            wav: (source_samples(length),) float array.
            sample_rate: Of ``wav``.
            length: Samples returned.

        Shape:
            (source_samples(length),) -> (length,) float32.
        """
        if self.pitch_semitones:
            wav = repitch(rng, wav, self.pitch_semitones, length)
        wav = wav[:length]
        if self.eq_db:
            wav = random_eq(rng, wav, sample_rate, self.eq_db)
        if self.room_probability and rng.random() < self.room_probability:
            wav = add_room(rng, wav, sample_rate)
        return np.asarray(wav, dtype=np.float32)

    def level(
        self, rng: np.random.Generator, mixture: np.ndarray, target: np.ndarray
    ) -> Tuple[np.ndarray, np.ndarray]:
        """Mixture and target scaled together by one random gain (never above full scale)."""
        low, high = self.gain_db
        if low == high == 0:
            return mixture, target
        gain = 10 ** (rng.uniform(low, high) / 20)
        peak = float(np.max(np.abs(mixture))) if mixture.size else 0.0
        if peak * gain > 1.0:
            gain = 1.0 / peak
        return (mixture * gain).astype(np.float32), (target * gain).astype(np.float32)
