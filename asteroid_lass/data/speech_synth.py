"""A speech-like source for the built-in corpus: formant-synthesised talkers.

What it is: a source-filter synthesiser. A glottal pulse train (Rosenberg pulse shape, per-
period jitter and shimmer, breath noise) follows an f0 contour with phrase declination and
pitch accents; it drives a cascade of five time-varying formant resonators that glide between
vowel targets (Peterson & Barney's averages, scaled per speaker); consonants are shaped noise
(fricatives), closure + burst + aspiration (plosives) or damped low formants (nasals);
syllables come at 3.8-5.2 per second, grouped in phrases separated by pauses. Speakers differ
by sex (male f0 85-155 Hz, female 165-255 Hz), vocal-tract length (formant scale), speaking
rate, voice quality (open quotient, breathiness, spectral tilt) and an accent (per-vowel
formant offsets).

What it is not: speech. There are no words, no coarticulation model beyond linear formant
glides, no prosody tied to meaning, and the voice sounds buzzy and robotic. It has the
statistics a separator keys on at first -- harmonic voiced segments with moving formants,
4-5 Hz syllabic amplitude modulation, noisy consonants, pauses, talker-specific pitch and
timbre -- so that "speech" is a learnable category distinct from the event classes and
musical stems, and two talkers can be told apart by pitch and timbre. A model trained on it
alone will not separate real speech well; use a real corpus (e.g. LibriSpeech/VCTK through a
manifest) for that.

Pure numpy and scipy (STFT-domain filtering keeps synthesis fast).
"""

import os
from dataclasses import dataclass
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np
from scipy.signal import istft, stft

from ..audio import write_audio_atomic
from .manifest import write_manifest
from .synth import record

#: f0 ranges (Hz) a speaker's mean pitch is drawn from.
F0_RANGES: Dict[str, Tuple[float, float]] = {"male": (85.0, 155.0), "female": (165.0, 255.0)}
#: Vocal-tract scale factors (formants of an adult male average = 1).
FORMANT_SCALES: Dict[str, Tuple[float, float]] = {"male": (0.94, 1.06), "female": (1.10, 1.22)}
#: Syllables per second.
SYLLABLE_RATE = (3.8, 5.2)
SEX_LABELS = {"male": "Male speech, man speaking", "female": "Female speech, woman speaking"}

# F1, F2, F3 (Hz) of American English vowels, adult male averages (Peterson & Barney, 1952).
VOWELS: Dict[str, Tuple[float, float, float]] = {
    "i": (270, 2290, 3010),
    "I": (390, 1990, 2550),
    "E": (530, 1840, 2480),
    "ae": (660, 1720, 2410),
    "a": (730, 1090, 2440),
    "O": (570, 840, 2410),
    "U": (440, 1020, 2240),
    "u": (300, 870, 2240),
    "V": (640, 1190, 2390),
    "3": (490, 1350, 1690),
}
_HIGH_FORMANTS = (3500.0, 4500.0)
_BANDWIDTHS = np.array([70.0, 90.0, 130.0, 180.0, 250.0])

# Consonants: kind, spectral centre (Hz), log-width of the noise band, duration (s).
CONSONANTS: Dict[str, Tuple[str, float, float, float]] = {
    "s": ("fricative", 6000, 0.35, 0.10),
    "sh": ("fricative", 3000, 0.45, 0.11),
    "f": ("fricative", 4500, 0.9, 0.09),
    "h": ("aspiration", 0, 0, 0.07),
    "p": ("plosive", 900, 0.8, 0.09),
    "t": ("plosive", 4200, 0.6, 0.09),
    "k": ("plosive", 2200, 0.5, 0.10),
    "m": ("nasal", 0, 0, 0.07),
    "n": ("nasal", 0, 0, 0.07),
}
_NASAL_FORMANTS = {"m": (250, 1100, 2200), "n": (250, 1600, 2500)}


@dataclass(frozen=True)
class Speaker:
    """A synthetic talker: the parameters every utterance of it shares.

    Attributes:
        name: Identifier (goes to the manifest's ``speaker`` column).
        sex: ``"male"`` or ``"female"``.
        f0: Mean pitch (Hz).
        formant_scale: Vocal-tract scale applied to every formant.
        rate: Syllables per second.
        open_quotient: Open fraction of a glottal cycle (voice quality).
        breathiness: Level of glottal noise relative to the pulses.
        tilt: Extra spectral tilt of the voice (dB per octave above 500 Hz, <= 0).
        jitter: Relative standard deviation of the period from cycle to cycle.
        accent: Per-vowel formant multipliers, shape (len(VOWELS), 3).
    """

    name: str
    sex: str
    f0: float
    formant_scale: float
    rate: float
    open_quotient: float
    breathiness: float
    tilt: float
    jitter: float
    accent: Tuple[Tuple[float, float, float], ...]


def make_speaker(rng: np.random.Generator, name: str, sex: Optional[str] = None) -> Speaker:
    """Draw a speaker (sex at random with equal chance unless given)."""
    if sex is None:
        sex = "male" if rng.random() < 0.5 else "female"
    if sex not in F0_RANGES:
        raise ValueError(f"sex must be one of {list(F0_RANGES)}, got {sex!r}.")
    return Speaker(
        name=name,
        sex=sex,
        f0=float(rng.uniform(*F0_RANGES[sex])),
        formant_scale=float(rng.uniform(*FORMANT_SCALES[sex])),
        rate=float(rng.uniform(*SYLLABLE_RATE)),
        open_quotient=float(rng.uniform(0.45, 0.75)),
        breathiness=float(rng.uniform(0.02, 0.15)),
        tilt=float(rng.uniform(-4.0, 0.0)),
        jitter=float(rng.uniform(0.004, 0.012)),
        accent=tuple(
            tuple(float(v) for v in row) for row in rng.uniform(0.94, 1.06, (len(VOWELS), 3))
        ),
    )


# ----------------------------------------------------------------------------- score
@dataclass
class _Segment:
    """One phone of the score: duration in frames and what to synthesise."""

    kind: str  # "vowel", "fricative", "aspiration", "plosive", "nasal", "pause"
    frames: int
    formants: Optional[np.ndarray] = None  # (3,) vowel/nasal targets
    centre: float = 0.0
    width: float = 0.0
    level: float = 1.0


def _syllable(rng, speaker: Speaker, frame_rate: float, stressed: bool) -> List[_Segment]:
    """Onset consonant(s), vowel nucleus, optional coda, filling about one syllable period."""
    period = rng.uniform(0.85, 1.15) / speaker.rate
    onset = list(rng.choice(list(CONSONANTS), size=int(rng.choice([0, 1, 1, 2]))))
    coda = list(rng.choice(list(CONSONANTS), size=int(rng.random() < 0.35)))
    vowel_index = int(rng.integers(len(VOWELS)))
    vowel = np.array(list(VOWELS.values())[vowel_index]) * np.array(speaker.accent[vowel_index])
    # Consonants take at most 45 % of the syllable, so syllables keep the speaker's rhythm.
    seconds = np.array([CONSONANTS[name][3] * rng.uniform(0.7, 1.2) for name in onset + coda])
    if seconds.sum() > 0.45 * period:
        seconds *= 0.45 * period / seconds.sum()
    segments = []
    for name, duration in zip(onset + coda, seconds):
        kind, centre, width, _ = CONSONANTS[name]
        # Obstruents carry no formant target: the tract glides between the vowels around them.
        formants = np.array(_NASAL_FORMANTS[name], float) if kind == "nasal" else None
        segments.append(_Segment(kind, max(int(duration * frame_rate), 1), formants, centre, width))
    vowel_seconds = period - seconds.sum()
    level = rng.uniform(0.9, 1.0) if stressed else rng.uniform(0.6, 0.8)
    nucleus = _Segment("vowel", max(int(vowel_seconds * frame_rate), 2), vowel, level=level)
    return segments[: len(onset)] + [nucleus] + segments[len(onset) :]


def _score(rng, speaker: Speaker, n_frames: int, frame_rate: float) -> List[_Segment]:
    """Phrases of 3-10 syllables separated by 0.15-0.6 s pauses, until ``n_frames``."""
    score = [_Segment("pause", int(rng.uniform(0.0, 0.3) * frame_rate))]
    total = score[0].frames
    while total < n_frames:
        for k in range(int(rng.integers(3, 11))):
            for segment in _syllable(rng, speaker, frame_rate, stressed=rng.random() < 0.35):
                score.append(segment)
                total += segment.frames
        pause = _Segment("pause", int(rng.uniform(0.15, 0.6) * frame_rate))
        score.append(pause)
        total += pause.frames
    return score


# ----------------------------------------------------------------------------- synthesis
def _glottal_source(
    rng, f0: np.ndarray, speaker: Speaker, sample_rate: int
) -> Tuple[np.ndarray, np.ndarray]:
    """Rosenberg glottal flow derivative following ``f0`` (per sample), and the open phase."""
    n = f0.shape[0]
    # Jitter: a fresh period deviation per cycle, held for the cycle.
    phase = np.cumsum(f0) / sample_rate
    cycles = np.floor(phase).astype(int)
    deviation = rng.normal(0.0, speaker.jitter, cycles[-1] + 2)
    phase = np.cumsum(f0 * (1.0 + deviation[cycles])) / sample_rate
    cycles = np.floor(phase).astype(int)
    fraction = phase - cycles
    opening = speaker.open_quotient * 0.65
    closing = speaker.open_quotient * 0.35
    flow = np.where(
        fraction < opening,
        0.5 * (1 - np.cos(np.pi * fraction / opening)),
        np.where(
            fraction < opening + closing,
            np.cos(0.5 * np.pi * (fraction - opening) / closing),
            0.0,
        ),
    )
    shimmer = 1.0 + rng.normal(0.0, 0.05, cycles[-1] + 2)[cycles]
    derivative = np.diff(flow * shimmer, prepend=0.0) * sample_rate / (np.mean(f0) * 4)
    return derivative[:n], (fraction < opening + closing).astype(float)


def _resonances(freqs: np.ndarray, formants: np.ndarray, bandwidths: np.ndarray, sr: int):
    """Complex response of a cascade of two-pole resonators (unit gain at DC).

    Shape:
        freqs (bins,), formants (frames, K), bandwidths (K,) -> (frames, bins)
    """
    z = np.exp(-1j * 2 * np.pi * freqs / sr)[None, :, None]
    radius = np.exp(-np.pi * bandwidths / sr)[None, None, :]
    theta = (2 * np.pi * np.minimum(formants, 0.45 * sr) / sr)[:, None, :]
    a1, a2 = -2 * radius * np.cos(theta), radius**2
    response = (1 + a1 + a2) / (1 + a1 * z + a2 * z**2)
    return np.prod(response, axis=-1)


def synth_utterance(
    speaker: Speaker,
    rng: np.random.Generator,
    sample_rate: int = 16000,
    seconds: float = 4.0,
    return_f0: bool = False,
):
    """One dry utterance of ``speaker`` (peak 0.9), optionally with its f0 track.

    Args:
        speaker: The talker (see :func:`make_speaker`).
        rng: Random generator (the utterance is a function of its state).
        sample_rate: Output rate (>= 8000).
        seconds: Duration.
        return_f0: Also return the per-sample f0 contour (Hz) and the voiced mask.

    Returns:
        np.ndarray (time,) float32, or (wav, f0, voiced) when ``return_f0``.
    """
    if sample_rate < 8000:
        raise ValueError(f"sample_rate must be >= 8000, got {sample_rate}.")
    n = int(round(seconds * sample_rate))
    n_fft = 1 << int(np.ceil(np.log2(0.032 * sample_rate)))
    hop = n_fft // 4
    frame_rate = sample_rate / hop
    n_frames = n // hop + 2

    # Control tracks at frame rate, from the phone score.
    score = _score(rng, speaker, n_frames, frame_rate)
    voiced = np.zeros(n_frames)
    noise = np.zeros(n_frames)
    aspiration = np.zeros(n_frames)
    centre = np.full(n_frames, 3000.0)
    width = np.full(n_frames, 0.5)
    targets = np.full((n_frames, 3), np.nan)
    accents = np.zeros(n_frames)
    phrase = np.zeros(n_frames, dtype=int)
    position, phrase_index = 0, 0
    for segment in score:
        end = min(position + segment.frames, n_frames)
        span = slice(position, end)
        if segment.kind == "pause":
            phrase_index += 1
        phrase[span] = phrase_index
        if segment.formants is not None and segment.kind == "vowel":
            # The target holds over the vowel's middle half; the tract moves in and out of it.
            quarter = (end - position) // 4
            targets[position + quarter : end - quarter] = segment.formants
        elif segment.formants is not None:
            targets[span] = segment.formants
        if segment.kind == "vowel":
            m = end - position
            # Rise, sustain, decay: the syllable's loudness arc gives the 4-5 Hz modulation.
            arc = np.sin(np.pi * (np.arange(m) + 0.5) / m) ** 0.7 if m else np.zeros(0)
            voiced[span] = segment.level * arc
            if segment.level > 0.85 and m:
                accents[position + m // 3] = 1.0
        elif segment.kind == "nasal":
            voiced[span] = 0.25
        elif segment.kind == "fricative":
            noise[span] = 0.2
            centre[span], width[span] = segment.centre, segment.width
        elif segment.kind == "aspiration":
            aspiration[span] = 0.3
        elif segment.kind == "plosive":
            closure = max(int(0.6 * (end - position)), 1)
            burst = slice(position + closure, min(position + closure + 2, end))
            noise[burst] = 0.6
            centre[burst], width[burst] = segment.centre, segment.width
            aspiration[burst.stop : end] = 0.2
        position = end
        if position >= n_frames:
            break

    # Formant glides: linear between phone targets; pauses hold the neighbours' values.
    frames = np.arange(n_frames)
    known = ~np.isnan(targets[:, 0])
    if not known.any():
        targets[:] = VOWELS["V"]
        known[:] = True
    formants3 = np.stack(
        [np.interp(frames, frames[known], targets[known, k]) for k in range(3)], axis=1
    )
    smooth = np.hanning(max(int(0.04 * frame_rate), 3))
    smooth /= smooth.sum()
    formants3 = np.stack([np.convolve(col, smooth, mode="same") for col in formants3.T], 1)
    edge = len(smooth) // 2 + 1
    formants3[:edge] = formants3[edge]
    formants3[-edge:] = formants3[-edge - 1]
    high = np.broadcast_to(np.array(_HIGH_FORMANTS), (n_frames, 2))
    formants = np.concatenate([formants3, high], axis=1) * speaker.formant_scale

    # f0: declination over each phrase, accent bumps, slow wander; per sample.
    f0_frames = np.empty(n_frames)
    for index in np.unique(phrase):
        members = np.flatnonzero(phrase == index)
        progress = np.linspace(0.0, 1.0, members.size)
        f0_frames[members] = speaker.f0 * (1.08 - rng.uniform(0.1, 0.2) * progress)
    bump = np.exp(-0.5 * (np.arange(-40, 41) / (0.06 * frame_rate)) ** 2)
    f0_frames *= 1.0 + rng.uniform(0.08, 0.2) * np.convolve(accents, bump, mode="same")
    wander = np.convolve(rng.standard_normal(n_frames), np.hanning(25) / 12.5, mode="same")
    f0_frames *= 1.0 + 0.02 * wander
    sample_frames = np.arange(n) / hop
    f0 = np.interp(sample_frames, frames, f0_frames)

    source, open_phase = _glottal_source(rng, f0, speaker, sample_rate)
    breath = rng.standard_normal(n) * open_phase * speaker.breathiness
    white = rng.standard_normal(n)

    stft_args = dict(fs=sample_rate, nperseg=n_fft, noverlap=n_fft - hop, boundary="even")
    freqs, _, voice_spec = stft(source + breath, **stft_args)
    _, _, noise_spec = stft(white, **stft_args)
    count = min(voice_spec.shape[1], n_frames)
    tract = _resonances(freqs, formants[:count], _BANDWIDTHS, sample_rate)
    octaves = np.log2(np.maximum(freqs, 500.0) / 500.0)
    tilt = 10 ** (speaker.tilt * octaves / 20)[None, :]
    # Nasals: the murmur is low; damp everything above 1 kHz.
    nasal_mask = np.array([s.kind == "nasal" for s in score])
    nasal = np.zeros(n_frames, bool)
    position = 0
    for segment, is_nasal in zip(score, nasal_mask):
        nasal[position : position + segment.frames] = is_nasal
        position += segment.frames
    damping = np.where(nasal[:count, None], 1 / (1 + (freqs[None, :] / 1000.0) ** 2), 1.0)
    log_f = np.log(np.maximum(freqs, 50.0))[None, :]
    band = np.exp(-0.5 * ((log_f - np.log(centre[:count, None])) / width[:count, None]) ** 2)
    spec = voice_spec[:, :count].T * tract * tilt * damping * voiced[:count, None]
    spec = spec + noise_spec[:, :count].T * (
        band * noise[:count, None] + tract * 0.05 * aspiration[:count, None]
    )
    _, wav = istft(spec.T, **{k: v for k, v in stft_args.items() if k != "boundary"})
    wav = np.pad(wav, (0, max(n - wav.shape[0], 0)))[:n]
    fade = min(int(0.01 * sample_rate), n // 2)
    if fade:
        wav[:fade] *= np.linspace(0, 1, fade)
        wav[-fade:] *= np.linspace(1, 0, fade)
    wav = (0.9 * wav / (np.max(np.abs(wav)) + 1e-9)).astype(np.float32)
    if not return_f0:
        return wav
    voiced_samples = np.interp(sample_frames, frames, voiced) > 0.3
    return wav, f0.astype(np.float32), voiced_samples


def speech_clip(
    speaker: Speaker, rng: np.random.Generator, sample_rate: int, seconds: float
) -> np.ndarray:
    """A recorded utterance: room and noise floor as for the event clips, random peak level."""
    wav = record(rng, synth_utterance(speaker, rng, sample_rate, seconds), sample_rate)
    return (wav / (np.max(np.abs(wav)) + 1e-9) * rng.uniform(0.3, 0.9)).astype(np.float32)


def make_speech_corpus(
    out_dir: str,
    n_speakers: int = 20,
    utterances_per_speaker: int = 6,
    sample_rate: int = 16000,
    seconds_range: Sequence[float] = (3.0, 6.0),
    seed: int = 0,
    split: str = "all",
) -> str:
    """Write utterances and ``<out_dir>/<split>.csv`` (a manifest); returns its path.

    Speakers of different splits are different draws (disjoint talkers). Rows carry
    ``category=speech`` and a ``speaker`` column; labels are ``Speech`` plus the AudioSet
    male/female speech class.

    Args:
        out_dir: Output folder (clips go to ``<out_dir>/<split>/``).
        n_speakers: Talkers (half male, half female, alternating).
        utterances_per_speaker: Clips per talker.
        sample_rate: Clip sample rate.
        seconds_range: Clip durations are drawn uniformly in this range.
        seed: Base seed; the corpus is a function of all arguments.
        split: Name of the split (separate seeds per split name).
    """
    if n_speakers < 1 or utterances_per_speaker < 1:
        raise ValueError(
            "n_speakers and utterances_per_speaker must be >= 1, got "
            f"{n_speakers} and {utterances_per_speaker}."
        )
    clip_dir = os.path.join(out_dir, split)
    os.makedirs(clip_dir, exist_ok=True)
    split_seed = int.from_bytes(split.encode(), "little") % (2**31)
    rows = []
    for s in range(n_speakers):
        sex = ("male", "female")[s % 2]
        speaker = make_speaker(
            np.random.default_rng([seed, split_seed, 7, s]), f"{split}_{sex[0]}{s:03d}", sex
        )
        for k in range(utterances_per_speaker):
            rng = np.random.default_rng([seed, split_seed, 7, s, k])
            seconds = float(rng.uniform(*seconds_range))
            name = f"{speaker.name}_{k:03d}.wav"
            write_audio_atomic(
                os.path.join(clip_dir, name),
                speech_clip(speaker, rng, sample_rate, seconds),
                sample_rate,
            )
            rows.append(
                dict(
                    path=f"{split}/{name}",
                    labels=f"Speech;{SEX_LABELS[sex]}",
                    caption=f"a {'man' if sex == 'male' else 'woman'} speaking",
                    duration=round(seconds, 4),
                    sample_rate=sample_rate,
                    category="speech",
                    speaker=speaker.name,
                )
            )
    return write_manifest(rows, os.path.join(out_dir, f"{split}.csv"))
