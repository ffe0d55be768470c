"""The built-in corpus: seeded synthetic sound events named after AudioSet classes.

Pure numpy. Every class has its own spectro-temporal signature, and every clip draws its
pitch, rhythm, timbre, envelope and duration at random, so that a separator must learn the
class, not one waveform. Used by the default recipe so it runs with nothing downloaded.
"""

import os
from typing import Callable, Dict, List, Optional

import numpy as np

from ..audio import write_audio_atomic
from .augment import add_room
from .manifest import write_manifest

Generator = Callable[[np.random.Generator, int, int], np.ndarray]


def _t(n: int, sr: int) -> np.ndarray:
    return np.arange(n) / sr


def _lowpass_noise(rng, n: int, smooth: int) -> np.ndarray:
    noise = rng.standard_normal(n + smooth)
    kernel = np.hanning(max(smooth, 3))
    return np.convolve(noise, kernel / kernel.sum(), mode="same")[:n]


def _bandpass_noise(rng, n: int, sr: int, low: float, high: float) -> np.ndarray:
    spectrum = np.fft.rfft(rng.standard_normal(n))
    freqs = np.fft.rfftfreq(n, 1 / sr)
    spectrum[(freqs < low) | (freqs > high)] = 0
    return np.fft.irfft(spectrum, n)


def _events(rng, n: int, sr: int, rate_hz: float, jitter: float) -> List[int]:
    """Onset samples of a roughly periodic event train."""
    onsets, position = [], rng.uniform(0, 1 / rate_hz) * sr
    while position < n:
        onsets.append(int(position))
        position += sr / rate_hz * rng.uniform(1 - jitter, 1 + jitter)
    if not onsets:  # a slow event train can miss a short clip altogether: never a silent clip
        onsets.append(int(rng.integers(0, max(n // 2, 1))))
    return onsets


def _place(out: np.ndarray, event: np.ndarray, onset: int) -> None:
    """Add an event at ``onset``; its last 10 % fades out, so no event ends in a hard cut."""
    fade = max(event.shape[0] // 10, 1)
    event = event.copy()
    event[-fade:] *= np.cos(0.5 * np.pi * np.arange(1, fade + 1) / fade) ** 2
    end = min(onset + event.shape[0], out.shape[0])
    out[onset:end] += event[: end - onset]


def siren(rng, n, sr):
    t = _t(n, sr)
    low, high = rng.uniform(500, 800), rng.uniform(1100, 1600)
    rate = rng.uniform(0.3, 1.5)
    if rng.random() < 0.5:  # wail: smooth sweep; else yelp: square-ish alternation
        sweep = 0.5 * (1 + np.sin(2 * np.pi * rate * t))
    else:
        sweep = (np.sin(2 * np.pi * rate * 3 * t) > 0).astype(float)
        sweep = np.convolve(sweep, np.ones(200) / 200, mode="same")
    phase = 2 * np.pi * np.cumsum(low + (high - low) * sweep) / sr
    return np.sin(phase) + rng.uniform(0, 0.3) * np.sin(2 * phase)


def bell(rng, n, sr):
    out = np.zeros(n)
    ratios = np.array([0.56, 0.92, 1.19, 1.71, 2.0, 2.74, 3.0])
    for onset in _events(rng, n, sr, rng.uniform(0.4, 1.2), 0.3):
        f0 = rng.uniform(300, 1200)
        m = min(int(sr * rng.uniform(1.0, 2.5)), n)
        tt = _t(m, sr)
        event = sum(
            rng.uniform(0.3, 1)
            * np.exp(-tt * rng.uniform(1.5, 4) * r)
            * np.sin(2 * np.pi * f0 * r * tt)
            for r in ratios
        )
        _place(out, event, onset)
    return out


def whistle(rng, n, sr):
    out = np.zeros(n)
    for onset in _events(rng, n, sr, rng.uniform(0.5, 1.2), 0.4):
        m = min(int(sr * rng.uniform(0.3, 1.2)), n)
        tt = _t(m, sr)
        f = rng.uniform(1500, 3200) * (1 + 0.03 * np.sin(2 * np.pi * rng.uniform(4, 7) * tt))
        f *= 1 + rng.uniform(-0.2, 0.2) * tt / tt[-1]
        event = np.sin(2 * np.pi * np.cumsum(f) / sr) * np.hanning(m)
        _place(out, event + 0.02 * rng.standard_normal(m) * np.hanning(m), onset)
    return out


def beep(rng, n, sr):
    out = np.zeros(n)
    f0 = rng.uniform(700, 2500)
    length = rng.uniform(0.06, 0.25)
    for onset in _events(rng, n, sr, rng.uniform(2, 5), 0.05):
        m = int(sr * length)
        tt = _t(m, sr)
        event = np.sign(np.sin(2 * np.pi * f0 * tt)) * 0.6 + 0.4 * np.sin(2 * np.pi * f0 * tt)
        ramp = np.minimum(1, np.minimum(np.arange(m), np.arange(m)[::-1]) / (0.004 * sr))
        _place(out, event * ramp, onset)
    return out


def drum(rng, n, sr):
    out = np.zeros(n)
    f_start, f_end = rng.uniform(120, 220), rng.uniform(40, 70)
    decay = rng.uniform(8, 20)
    for onset in _events(rng, n, sr, rng.uniform(1.5, 4), 0.15):
        m = int(sr * 0.5)
        tt = _t(m, sr)
        f = f_end + (f_start - f_end) * np.exp(-tt * 30)
        body = np.sin(2 * np.pi * np.cumsum(f) / sr) * np.exp(-tt * decay)
        click = rng.standard_normal(m) * np.exp(-tt * 200) * rng.uniform(0.1, 0.5)
        _place(out, (body + click) * rng.uniform(0.6, 1), onset)
    return out


def clapping(rng, n, sr):
    out = np.zeros(n)
    low, high = rng.uniform(800, 1500), rng.uniform(3000, 6000)
    for onset in _events(rng, n, sr, rng.uniform(2, 7), 0.3):
        m = int(sr * 0.08)
        burst = _bandpass_noise(rng, m, sr, low, min(high, sr / 2 - 1))
        _place(out, burst * np.exp(-_t(m, sr) * rng.uniform(40, 90)) * rng.uniform(0.5, 1), onset)
    return out


def bird_chirp(rng, n, sr):
    out = np.zeros(n)
    base = rng.uniform(2500, 4500)
    for onset in _events(rng, n, sr, rng.uniform(2, 6), 0.5):
        m = int(sr * rng.uniform(0.04, 0.15))
        tt = _t(m, sr)
        direction = rng.choice([-1, 1])
        f = base * (1 + direction * rng.uniform(0.2, 0.6) * tt / tt[-1])
        f = np.minimum(f, sr / 2 - 200)
        _place(out, np.sin(2 * np.pi * np.cumsum(f) / sr) * np.hanning(m), onset)
    return out


def engine(rng, n, sr):
    t = _t(n, sr)
    f0 = rng.uniform(30, 90) * (1 + 0.05 * np.sin(2 * np.pi * rng.uniform(0.1, 0.5) * t))
    phase = 2 * np.pi * np.cumsum(f0) / sr
    tone = sum(np.sin(k * phase) / k ** rng.uniform(0.6, 1.2) for k in range(1, 12))
    rumble = _lowpass_noise(rng, n, int(sr / 300))
    am = 1 + 0.3 * np.sin(2 * np.pi * f0.mean() / 2 * t)
    return tone * am + rng.uniform(0.5, 2) * rumble / (np.std(rumble) + 1e-9)


def rain(rng, n, sr):
    bed = _bandpass_noise(
        rng, n, sr, rng.uniform(300, 1000), min(rng.uniform(4000, 7500), sr / 2 - 1)
    )
    out = bed * rng.uniform(0.3, 0.8)
    for onset in _events(rng, n, sr, rng.uniform(20, 60), 0.9):
        m = int(sr * 0.01)
        drop = rng.standard_normal(m) * np.exp(-_t(m, sr) * 600) * rng.uniform(0.5, 2)
        _place(out, drop, onset)
    return out


def plucked_string(rng, n, sr):
    out = np.zeros(n)
    for onset in _events(rng, n, sr, rng.uniform(1.5, 4), 0.2):
        f0 = rng.uniform(110, 660)
        period = max(int(sr / f0), 2)
        m = min(int(sr * 1.2), n)
        buffer = rng.uniform(-1, 1, period)
        event = np.empty(m)
        damping = rng.uniform(0.990, 0.998)
        for i in range(m):  # Karplus-Strong
            event[i] = buffer[i % period]
            buffer[i % period] = damping * 0.5 * (buffer[i % period] + buffer[(i + 1) % period])
        _place(out, event, onset)
    return out


def piano(rng, n, sr):
    out = np.zeros(n)
    scale = 2 ** (np.array([0, 2, 4, 5, 7, 9, 11, 12]) / 12)
    root = rng.uniform(130, 300)
    for onset in _events(rng, n, sr, rng.uniform(1.5, 4), 0.1):
        f0 = root * scale[rng.integers(len(scale))]
        m = min(int(sr * 1.0), n)
        tt = _t(m, sr)
        decay = rng.uniform(2, 5)
        event = sum(
            np.exp(-tt * decay * k**0.5)
            * np.sin(2 * np.pi * f0 * k * (1 + 0.0004 * k * k) * tt)
            / k
            for k in range(1, 9)
        )
        _place(out, event * (1 - np.exp(-tt * 400)), onset)
    return out


def wind(rng, n, sr):
    noise = rng.standard_normal(n)
    gust = 0.5 + 0.5 * _lowpass_noise(rng, n, int(sr * rng.uniform(0.3, 1.0)))
    gust = gust / (np.abs(gust).max() + 1e-9)
    smooth = int(sr / rng.uniform(200, 600))
    whoosh = _lowpass_noise(rng, n, smooth) / (np.std(_lowpass_noise(rng, 1000, smooth)) + 1e-9)
    return whoosh * np.abs(gust) + 0.05 * noise * np.abs(gust)


# ------------------------------------------------------------ sustained, harmonic classes
# Several of these share a register (violin, flute, clarinet, trumpet and singing all play
# around 200-1000 Hz; cello and organ lower): what tells them apart is timbre (which partials,
# how they move, the noise beside them), as in real ensembles, not a frequency band.

#: Semitone steps of the scales the melodic classes play in.
_SCALES = ((0, 2, 4, 5, 7, 9, 11), (0, 2, 3, 5, 7, 8, 10), (0, 2, 4, 7, 9))

#: Formants (Hz) and bandwidths of sung vowels a, e, i, o, u.
_VOWEL_FORMANTS = (
    ((800, 1150, 2900), (80, 90, 120)),
    ((400, 1600, 2700), (60, 80, 120)),
    ((300, 2200, 3000), (50, 100, 120)),
    ((450, 800, 2830), (70, 80, 100)),
    ((325, 700, 2530), (50, 60, 170)),
)


def _melody(rng, n, sr, low_hz, high_hz, note_range, rest_probability, attack, release):
    """A phrase of notes from a scale: per-sample f0 (Hz), amplitude envelope, and note onsets.

    Notes glide into each other over a few milliseconds (legato); a rest, when drawn, lets the
    envelope fall to zero.
    """
    scale = np.array(_SCALES[int(rng.integers(len(_SCALES)))])
    low_midi, high_midi = 69 + 12 * np.log2(low_hz / 440), 69 + 12 * np.log2(high_hz / 440)
    root = rng.uniform(low_midi, max(low_midi, high_midi - 12))
    steps = np.concatenate([scale + 12 * octave for octave in range(3)])
    steps = steps[root + steps <= high_midi]
    f0 = np.empty(n)
    envelope = np.zeros(n)
    position, degree = 0, int(rng.integers(len(steps)))
    onsets = []
    while position < n:
        length = int(sr * rng.uniform(*note_range))
        stop = min(position + length, n)
        if onsets and rng.random() < rest_probability:
            f0[position:stop] = f0[position - 1]
        else:
            degree = int(np.clip(degree + rng.integers(-2, 3), 0, len(steps) - 1))
            f0[position:stop] = 440 * 2 ** ((root + steps[degree] - 69) / 12)
            tt = _t(stop - position, sr)
            rise = np.minimum(1.0, tt / attack)
            fall = np.minimum(1.0, (tt[-1] - tt) / release + 1e-9)
            envelope[position:stop] = rise * fall * rng.uniform(0.6, 1.0)
            onsets.append(position)
        position = stop
    glide = max(int(sr * 0.015), 1)
    f0 = np.convolve(np.pad(f0, glide, mode="edge"), np.ones(glide) / glide, mode="same")
    return f0[glide:-glide], envelope, onsets


def _vibrato(rng, n, sr, rate_range, depth_range) -> np.ndarray:
    """Pitch factor around 1: a vibrato whose rate wanders a little, as a player's does."""
    rate = rng.uniform(*rate_range) * (1 + 0.1 * _lowpass_noise(rng, n, int(sr * 0.3)))
    return 1 + rng.uniform(*depth_range) * np.sin(2 * np.pi * np.cumsum(rate) / sr)


def _partials(f0, sr, amplitudes) -> np.ndarray:
    """Sum of harmonics k = 1.. of a per-sample f0; ``amplitudes`` (K,) or (K, time)."""
    phase = 2 * np.pi * np.cumsum(f0) / sr
    out = np.zeros_like(f0)
    for k, amplitude in enumerate(amplitudes, start=1):
        audible = k * f0 < 0.45 * sr
        out += np.where(audible, amplitude, 0.0) * np.sin(k * phase)
    return out


def _body(rng, f0, amplitudes) -> np.ndarray:
    """Harmonic amplitudes shaped by three random resonances of an instrument's body (placed
    at the partials of the phrase's median pitch)."""
    peaks = rng.uniform(250, 3500, 3)
    partials = np.arange(1, len(amplitudes) + 1) * np.median(f0)
    gain = 1 + sum(2.0 / (1 + ((partials - p) / (0.15 * p)) ** 2) for p in peaks)
    return amplitudes * gain


def _bowed(rng, n, sr, low_hz, high_hz, tilt):
    f0, envelope, _ = _melody(rng, n, sr, low_hz, high_hz, (0.3, 1.2), 0.15, 0.1, 0.08)
    f0 = f0 * _vibrato(rng, n, sr, (4.5, 6.5), (0.002, 0.006))
    tone = _partials(f0, sr, _body(rng, f0, 1.0 / np.arange(1, 25) ** tilt))
    bow = _bandpass_noise(rng, n, sr, 1500, min(6000, sr / 2 - 1))
    return (tone + 0.04 * bow / (np.std(bow) + 1e-9) * np.std(tone)) * envelope


def violin(rng, n, sr):
    return _bowed(rng, n, sr, 196, 1050, rng.uniform(0.8, 1.1))


def cello(rng, n, sr):
    return _bowed(rng, n, sr, 65, 440, rng.uniform(1.0, 1.4))


def flute(rng, n, sr):
    f0, envelope, _ = _melody(rng, n, sr, 262, 1400, (0.25, 1.0), 0.2, 0.06, 0.05)
    f0 = f0 * _vibrato(rng, n, sr, (4.5, 5.5), (0.002, 0.004))
    tone = _partials(f0, sr, np.array([1.0, 0.3, 0.1, 0.05]) * rng.uniform(0.7, 1.3, 4))
    breath = _bandpass_noise(rng, n, sr, 800, min(7000, sr / 2 - 1))
    breath = breath / (np.std(breath) + 1e-9) * np.std(tone) * rng.uniform(0.05, 0.12)
    return (tone + breath) * envelope


def clarinet(rng, n, sr):
    f0, envelope, _ = _melody(rng, n, sr, 147, 880, (0.25, 1.0), 0.15, 0.03, 0.04)
    k = np.arange(1, 20)
    amplitudes = np.where(k % 2 == 1, 1.0 / k, rng.uniform(0.02, 0.08) / k)
    tone = _partials(f0 * _vibrato(rng, n, sr, (4, 6), (0.0, 0.001)), sr, amplitudes)
    return tone * envelope


def trumpet(rng, n, sr):
    f0, envelope, onsets = _melody(rng, n, sr, 165, 930, (0.15, 0.8), 0.25, 0.02, 0.03)
    scoop = np.ones(n)
    for onset in onsets:  # each note starts a little flat and rises to pitch
        m = min(int(sr * 0.04), n - onset)
        scoop[onset : onset + m] = 1 - 0.03 * (1 - np.arange(m) / m)
    k = np.arange(1, 20)[:, None]
    # Brass brightens as it gets louder: higher partials grow faster than the envelope.
    amplitudes = envelope[None] ** (0.3 * (k - 1)) / k ** rng.uniform(0.5, 0.9)
    return _partials(f0 * scoop, sr, amplitudes) * envelope


def organ(rng, n, sr):
    drawbars = rng.uniform(0, 1, 6) * (rng.random(6) < 0.7)
    drawbars[1] = max(drawbars[1], 0.5)  # the fundamental's stop is always drawn
    out = np.zeros(n)
    for voice in range(int(rng.integers(2, 4))):
        f0, envelope, _ = _melody(rng, n, sr, 110, 520, (0.6, 2.0), 0.1, 0.005, 0.03)
        phase = 2 * np.pi * np.cumsum(f0) / sr
        tone = sum(
            level * np.where(ratio * f0 < 0.45 * sr, np.sin(ratio * phase), 0.0)
            for ratio, level in zip((0.5, 1, 2, 3, 4, 6), drawbars)
        )
        out += tone * envelope
    return out


def singing(rng, n, sr):
    low, high = (110, 400) if rng.random() < 0.5 else (200, 800)
    f0, envelope, onsets = _melody(rng, n, sr, low, high, (0.3, 1.2), 0.15, 0.05, 0.06)
    f0 = f0 * _vibrato(rng, n, sr, (4.8, 6.0), (0.005, 0.015))
    k = np.arange(1, 40)[:, None]
    vowel = np.zeros(n, dtype=int)
    for onset in onsets:
        vowel[onset:] = int(rng.integers(len(_VOWEL_FORMANTS)))
    amplitudes = np.zeros((len(k), n))
    for index, (formants, bandwidths) in enumerate(_VOWEL_FORMANTS):
        at = vowel == index
        if not at.any():
            continue
        freqs = k * f0[None, at]
        gain = sum(
            1.0 / np.sqrt(1 + ((freqs - f) / (0.5 * b)) ** 2) for f, b in zip(formants, bandwidths)
        )
        amplitudes[:, at] = gain / k**0.5
    breath = _bandpass_noise(rng, n, sr, 2000, min(7000, sr / 2 - 1))
    tone = _partials(f0, sr, amplitudes)
    return (tone + 0.02 * breath / (np.std(breath) + 1e-9) * np.std(tone)) * envelope


#: AudioSet display name -> generator: sound events, then sustained harmonic instruments.
CLASSES: Dict[str, Generator] = {
    "Siren": siren,
    "Bell": bell,
    "Whistle": whistle,
    "Beep, bleep": beep,
    "Drum": drum,
    "Clapping": clapping,
    "Bird vocalization, bird call, bird song": bird_chirp,
    "Engine": engine,
    "Rain": rain,
    "Plucked string instrument": plucked_string,
    "Piano": piano,
    "Wind": wind,
    "Violin, fiddle": violin,
    "Cello": cello,
    "Flute": flute,
    "Clarinet": clarinet,
    "Trumpet": trumpet,
    "Organ": organ,
    "Singing": singing,
}
#: Short, mostly separable events: the built-in corpus of the first releases.
EVENT_CLASSES = tuple(CLASSES)[:12]
#: Sustained harmonic sources, several in one register: told apart by timbre alone.
INSTRUMENT_CLASSES = tuple(CLASSES)[12:]
#: Named class sets of the built-in corpus (the recipe's ``data.builtin_classes``).
CLASS_SETS = {"events": EVENT_CLASSES, "all": tuple(CLASSES)}
CAPTION_TEMPLATES = (
    "{label}",
    "the sound of {label}",
    "{label} can be heard",
    "a recording of {label}",
    "someone recorded {label} outdoors",
)


def record(rng: np.random.Generator, wav: np.ndarray, sample_rate: int) -> np.ndarray:
    """What a microphone adds to a sound event.

    Most clips get a room (an exponentially decaying noise impulse response, RT60 0.1-0.8 s,
    reverberant level -20..-3 dB); every clip gets a noise floor (smoothed noise 30-55 dB below
    the sound). Real recordings are never dry tones in digital silence, and a separator
    trained on those would not transfer.
    """
    if rng.random() < 0.8:
        wav = add_room(rng, wav, sample_rate, rt60_range=(0.1, 0.8), wet_db_range=(-20, -3))
    floor = _lowpass_noise(rng, wav.shape[0], int(rng.integers(1, 8)))
    level = np.sqrt(np.mean(wav**2)) * 10 ** (-rng.uniform(30, 55) / 20)
    return wav + floor / (np.std(floor) + 1e-12) * level


def synth_clip(
    label: str, rng: np.random.Generator, sample_rate: int, seconds: float
) -> np.ndarray:
    """One recorded clip of class ``label``, peak-normalised to a random level in [0.3, 0.9]."""
    n = int(sample_rate * seconds)
    wav = record(rng, CLASSES[label](rng, n, sample_rate), sample_rate)
    wav = wav / (np.max(np.abs(wav)) + 1e-9) * rng.uniform(0.3, 0.9)
    return wav.astype(np.float32)


def make_corpus(
    out_dir: str,
    clips_per_class: int = 40,
    sample_rate: int = 16000,
    seconds_range=(3.0, 6.0),
    seed: int = 0,
    classes: Optional[List[str]] = None,
    split: str = "all",
) -> str:
    """Write wav clips and ``<out_dir>/<split>.csv`` (a manifest); returns the manifest path.

    Args:
        out_dir: Output folder (clips go to ``<out_dir>/<split>/``).
        clips_per_class: Clips of each class.
        sample_rate: Clip sample rate.
        seconds_range: Clip durations are drawn uniformly in this range.
        seed: Base seed; the corpus is a function of all arguments.
        classes: Subset of :data:`CLASSES` (default: :data:`EVENT_CLASSES`, the corpus of the
            first releases; :data:`CLASS_SETS` names the sets the recipe offers).
        split: Name of the split (separate seeds per split name).
    """
    classes = list(EVENT_CLASSES) if classes is None else classes
    unknown = [c for c in classes if c not in CLASSES]
    if unknown:
        raise ValueError(f"Unknown classes {unknown}; known: {list(CLASSES)}.")
    clip_dir = os.path.join(out_dir, split)
    os.makedirs(clip_dir, exist_ok=True)
    split_seed = int.from_bytes(split.encode(), "little") % (2**31)
    rows = []
    for class_index, label in enumerate(classes):
        slug = "".join(ch if ch.isalnum() else "_" for ch in label.lower()).strip("_")
        for k in range(clips_per_class):
            rng = np.random.default_rng([seed, split_seed, class_index, k])
            seconds = rng.uniform(*seconds_range)
            name = f"{slug}_{k:04d}.wav"
            write_audio_atomic(
                os.path.join(clip_dir, name),
                synth_clip(label, rng, sample_rate, seconds),
                sample_rate,
            )
            caption = CAPTION_TEMPLATES[int(rng.integers(len(CAPTION_TEMPLATES)))].format(
                label=label.lower()
            )
            rows.append(
                dict(
                    path=f"{split}/{name}",
                    labels=label,
                    caption=caption,
                    duration=round(seconds, 4),
                    sample_rate=sample_rate,
                )
            )
    return write_manifest(rows, os.path.join(out_dir, f"{split}.csv"))
