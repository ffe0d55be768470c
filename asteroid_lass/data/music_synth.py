"""The built-in music corpus: seeded synthetic songs with MUSDB18's four stems.

Every song is written from one score: a tempo, a key and mode, a chord progression and an
arrangement (intro, verse, chorus, bridge, outro), so that its stems play together: the bass
follows the chord roots and often locks to the kick, the drums play a style's pattern on the
beat grid with fills and crashes at section changes, "other" comps the chords (piano,
electric piano, organ, strummed or distorted guitar) with an optional pad or arpeggio layer,
and "vocals" sings a melody built on the chord tones, in phrases with breaths between them.

Pure numpy and scipy, written for a fair imitation within those means:

- drums: synthesised kick (pitch-swept sine and click), snare (tuned body and band-passed
  noise), metallic hats and cymbals (inharmonic square-wave clusters), toms; several
  renderings of each hit, velocity accents, ghost notes, swing and timing jitter;
- bass: Karplus-Strong finger or pick bass, a filtered saw/square synth bass, or an 808 sub;
- other: additive piano with inharmonic partials, FM electric piano, drawbar organ,
  Karplus-Strong strummed guitar (clean, or distorted power chords), detuned-saw pads,
  plucked arpeggios;
- vocals: a band-limited glottal source with vibrato, scoops, portamento, pitch drift and
  aspiration noise, shaped by moving vowel formants (STFT-domain formant filter), with
  consonant noise bursts and nasals at syllable starts, breaths between phrases, and
  sometimes a harmony voice in the chorus;
- a shared stereo room per song with per-stem sends, a tempo-synced echo on the vocals,
  per-stem levels and a master level that keeps the mixture's peak below 1.

With ``instruments="soundfont"`` the drums, bass and other parts are played from the same
score by sampled General MIDI instruments instead (``tinysoundfont`` and the TimGM6mb
SoundFont that the ``pretty_midi`` wheel ships, or any .sf2 file given); both are optional
installs, and the vocals stay synthesised (General MIDI has no singer).

The mixture file is the exact float32 sum of the four stem files.
"""

import json
import os
from concurrent.futures import ProcessPoolExecutor
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np
from scipy import signal as sps

from ..audio import write_audio_atomic
from ..utils import atomic_write
from .synth import _bandpass_noise, _lowpass_noise, _place

STEMS = ("drums", "bass", "other", "vocals")
MODES: Dict[str, Tuple[int, ...]] = {
    "major": (0, 2, 4, 5, 7, 9, 11),
    "minor": (0, 2, 3, 5, 7, 8, 10),
    "dorian": (0, 2, 3, 5, 7, 9, 10),
    "mixolydian": (0, 2, 4, 5, 7, 9, 10),
}
PITCH_NAMES = ("C", "C#", "D", "Eb", "E", "F", "F#", "G", "Ab", "A", "Bb", "B")
#: Chord progressions as scale degrees (0 = tonic), one chord per bar or half bar.
PROGRESSIONS = (
    (0, 4, 5, 3),
    (0, 5, 3, 4),
    (5, 3, 0, 4),
    (0, 3, 4, 3),
    (1, 4, 0, 0),
    (0, 6, 5, 6),
    (0, 3, 4, 0),
    (0, 5, 2, 6),
    (0, 2, 3, 4),
    (3, 4, 0, 0),
)
#: Per style: tempo range, kick and snare steps (16 per bar), hat density, swing, and the
#: bass patterns and comping instruments that fit it.
STYLES: Dict[str, dict] = {
    "rock": dict(
        bpm=(100, 150),
        kicks=((0, 8), (0, 8, 10), (0, 6, 8), (0, 3, 8, 10)),
        snare=(4, 12),
        hats=(2,),
        swing=(0.0, 0.0),
        bass=("root8", "kick", "quarter"),
        comp=("dist_guitar", "guitar", "organ", "piano"),
        modes=("major", "minor", "mixolydian"),
    ),
    "pop": dict(
        bpm=(88, 126),
        kicks=((0, 8), (0, 6, 8), (0, 7, 10), (0, 4, 8, 12)),
        snare=(4, 12),
        hats=(2, 1),
        swing=(0.0, 0.05),
        bass=("kick", "quarter", "root8"),
        comp=("piano", "epiano", "guitar"),
        modes=("major", "minor"),
    ),
    "dance": dict(
        bpm=(116, 130),
        kicks=((0, 4, 8, 12),),
        snare=(4, 12),
        hats=(1,),
        swing=(0.0, 0.03),
        bass=("octave", "offbeat"),
        comp=("epiano", "piano", "organ"),
        modes=("minor", "major", "dorian"),
    ),
    "hiphop": dict(
        bpm=(78, 98),
        kicks=((0, 7, 10), (0, 3, 10), (0, 6, 9), (0, 10, 11)),
        snare=(4, 12),
        hats=(2, 1),
        swing=(0.08, 0.2),
        bass=("kick", "sub"),
        comp=("epiano", "piano", "organ"),
        modes=("minor", "dorian"),
    ),
    "ballad": dict(
        bpm=(64, 84),
        kicks=((0, 10), (0, 8), (0, 7)),
        snare=(8,),
        hats=(2,),
        swing=(0.0, 0.1),
        bass=("sustain", "quarter"),
        comp=("piano", "guitar", "epiano"),
        modes=("major", "minor"),
    ),
    "funk": dict(
        bpm=(94, 116),
        kicks=((0, 3, 6, 10), (0, 7, 10, 14), (0, 6, 10)),
        snare=(4, 12),
        hats=(1,),
        swing=(0.0, 0.12),
        bass=("funk", "kick"),
        comp=("guitar", "organ", "epiano"),
        modes=("dorian", "mixolydian", "minor"),
    ),
}
#: What each kind of section plays: drum intensity (0 off .. 3 full), whether bass and
#: vocals play, and whether the extra "other" layer (pad/arpeggio) plays.
SECTIONS: Dict[str, dict] = {
    "intro": dict(drums=(0, 1), bass=(False, True), vocals=(False,), layer=(True,)),
    "verse": dict(drums=(2,), bass=(True,), vocals=(True,), layer=(False, True)),
    "chorus": dict(drums=(3,), bass=(True,), vocals=(True,), layer=(True,)),
    "bridge": dict(drums=(0, 1, 2), bass=(True, False), vocals=(True, False), layer=(True,)),
    "outro": dict(drums=(2, 1), bass=(True,), vocals=(False, True), layer=(True, False)),
}
ARRANGEMENT = (
    ("intro", (2, 4)),
    ("verse", (8,)),
    ("chorus", (8,)),
    ("verse", (8,)),
    ("chorus", (8,)),
    ("bridge", (4,)),
    ("chorus", (8,)),
    ("outro", (4,)),
)
#: Vowel formants (Hz), bandwidths (Hz) and levels (dB) of a low (male) and a high
#: (female) voice; rows are the five vowels a, e, i, o, u.
VOWELS = ("a", "e", "i", "o", "u")
_FORMANTS = {
    "low": (
        ((650, 1080, 2650, 2900, 3250), (80, 90, 120, 130, 140), (0, -6, -7, -8, -22)),
        ((400, 1700, 2600, 3200, 3580), (70, 80, 100, 120, 120), (0, -14, -12, -14, -20)),
        ((290, 1870, 2800, 3250, 3540), (40, 90, 100, 120, 120), (0, -15, -18, -20, -30)),
        ((400, 800, 2600, 2800, 3000), (40, 80, 100, 120, 120), (0, -10, -12, -12, -26)),
        ((350, 600, 2700, 2900, 3300), (40, 60, 100, 120, 120), (0, -20, -17, -14, -26)),
    ),
    "high": (
        ((800, 1150, 2900, 3900, 4950), (80, 90, 120, 130, 140), (0, -6, -20, -18, -40)),
        ((350, 2000, 2800, 3600, 4950), (60, 100, 120, 150, 200), (0, -18, -15, -30, -45)),
        ((270, 2140, 2950, 3900, 4950), (60, 90, 100, 120, 120), (0, -12, -22, -24, -40)),
        ((450, 800, 2830, 3800, 4950), (70, 80, 100, 130, 135), (0, -11, -22, -22, -45)),
        ((325, 700, 2700, 3800, 4950), (50, 60, 170, 180, 200), (0, -16, -30, -35, -50)),
    ),
}
#: Nasal murmur and breath ("h" through a relaxed tract) as formant sets.
_NASAL = ((250, 1100, 2300, 3300, 4200), (60, 150, 200, 250, 300), (0, -22, -28, -32, -45))
_BREATH = ((600, 1400, 2500, 3500, 4500), (200, 250, 300, 350, 400), (0, -4, -8, -12, -18))
#: Unvoiced consonants: (noise band low, high in Hz, duration s, relative level).
_CONSONANTS = {
    "s": (4500, 10000, 0.09, 0.35),
    "sh": (1800, 6000, 0.09, 0.35),
    "f": (1200, 9000, 0.07, 0.15),
    "t": (3000, 8000, 0.025, 0.5),
    "k": (1500, 4000, 0.03, 0.45),
    "p": (400, 2500, 0.02, 0.4),
    "h": (500, 4000, 0.06, 0.12),
}
#: Stem loudness (RMS of the active part, dBFS before the master level), ranges per song.
STEM_LEVELS_DB = dict(drums=(-21, -15), bass=(-24, -17), other=(-25, -17), vocals=(-21, -15))
MUSIC_CORPUS_LICENSE = dict(
    title="asteroid-lass built-in music corpus",
    title_link="https://github.com/asteroid-team/asteroid",
    author="asteroid-lass contributors",
    author_link="https://github.com/asteroid-team/asteroid",
    license="MIT",
    license_link="https://opensource.org/licenses/MIT",
    non_commercial=False,
)
CORPUS_INFO_FILE = "corpus.json"

Note = Tuple[int, int, float, float]  # onset sample, length in samples, MIDI pitch, velocity


def midi_hz(midi) -> np.ndarray:
    return 440.0 * 2.0 ** ((np.asarray(midi, dtype=float) - 69.0) / 12.0)


def _env_ar(m: int, sr: int, attack: float, release: float, hold: Optional[int] = None):
    """Attack-sustain-release envelope of ``m`` samples; release starts at ``hold``."""
    t = np.arange(m) / sr
    env = np.minimum(1.0, t / max(attack, 1e-4))
    hold = m if hold is None else min(hold, m)
    if hold < m:
        env[hold:] *= np.exp(-(t[hold:] - t[hold]) / max(release / 4.6, 1e-4))
    return env


def _saw(freq: np.ndarray, sr: int, phase0: float = 0.0) -> np.ndarray:
    """Band-limited sawtooth (PolyBLEP) following a per-sample frequency track."""
    inc = np.broadcast_to(np.asarray(freq, dtype=float) / sr, np.shape(freq))
    inc = np.clip(inc, 1e-6, 0.49)
    phase = (phase0 + np.cumsum(inc)) % 1.0
    out = 2.0 * phase - 1.0
    low = phase < inc
    x = phase[low] / inc[low]
    out[low] -= 2 * x - x * x - 1
    high = phase > 1 - inc
    x = (phase[high] - 1) / inc[high]
    out[high] -= x * x + 2 * x + 1
    return out


def _square(freq: np.ndarray, sr: int, phase0: float = 0.0) -> np.ndarray:
    return 0.5 * (_saw(freq, sr, phase0) - _saw(freq, sr, phase0 + 0.5))


def _lowpass(x: np.ndarray, sr: int, cutoff: float, order: int = 2) -> np.ndarray:
    cutoff = min(cutoff, 0.45 * sr)
    return sps.sosfilt(sps.butter(order, cutoff, "low", fs=sr, output="sos"), x, axis=-1)


def _highpass(x: np.ndarray, sr: int, cutoff: float, order: int = 2) -> np.ndarray:
    cutoff = min(cutoff, 0.45 * sr)
    return sps.sosfilt(sps.butter(order, cutoff, "high", fs=sr, output="sos"), x, axis=-1)


def _pan(mono: np.ndarray, position: float) -> np.ndarray:
    """Constant-power pan, ``position`` in [-1 (left), 1 (right)] -> (2, time)."""
    angle = (position + 1) * np.pi / 4
    return np.stack([np.cos(angle) * mono, np.sin(angle) * mono]) * np.sqrt(2)


def _rms(x: np.ndarray) -> float:
    """RMS over the active part (frames above -50 dB of the loudest), so sparse parts that
    play half the song are not turned up twice as much."""
    mono = x.reshape(-1, x.shape[-1]).mean(axis=0)
    hop = 1024
    frames = mono[: mono.shape[0] // hop * hop].reshape(-1, hop)
    if frames.size == 0:
        return float(np.sqrt(np.mean(mono**2)) + 1e-12)
    power = np.mean(frames**2, axis=1)
    active = power > power.max() * 1e-5
    return float(np.sqrt(np.mean(power[active])) + 1e-12) if active.any() else 1e-12


def _at_level(x: np.ndarray, db: float) -> np.ndarray:
    return x * (10 ** (db / 20) / _rms(x))


def karplus_strong(
    rng: np.random.Generator, f0: float, m: int, sr: int, decay: float, brightness: float
) -> np.ndarray:
    """A plucked string: Karplus-Strong with a fractional delay so it is in tune.

    Args:
        f0: Pitch in Hz.
        m: Length in samples.
        decay: Seconds to fall by 60 dB.
        brightness: 0 (dark, finger) .. 1 (bright, pick); shapes the excitation.
    """
    delay = sr / f0
    period = max(int(np.floor(delay - 0.5)), 2)
    frac = min(max(delay - 0.5 - period, 0.0), 1.0)
    taps = np.array([0.5 * (1 - frac), 0.5, 0.5 * frac])  # averaging lowpass, then frac delay
    gain = 10 ** (-3 / (f0 * decay))
    excitation = rng.uniform(-1, 1, period)
    smooth = int(1 + (1 - brightness) * period / 4)
    if smooth > 1:
        excitation = np.convolve(excitation, np.ones(smooth) / smooth, mode="same")
    excitation -= excitation.mean()
    buf = np.zeros(period + 2 + m)
    offset = period + 2
    buf[offset : offset + period] = excitation[: min(period, m)]
    for start in range(0, m, period):
        end = min(start + period, m)
        a, b = offset + start, offset + end
        buf[a:b] += gain * (
            taps[0] * buf[a - period : b - period]
            + taps[1] * buf[a - period - 1 : b - period - 1]
            + taps[2] * buf[a - period - 2 : b - period - 2]
        )
    return buf[offset:]


# --------------------------------------------------------------------------------------
# The score
# --------------------------------------------------------------------------------------


class SongPlan:
    """Tempo, key, harmony and arrangement shared by all stems of one song."""

    def __init__(self, rng: np.random.Generator, n: int, sr: int, style: Optional[str] = None):
        self.n, self.sr = n, sr
        self.style = style or str(rng.choice(sorted(STYLES)))
        spec = STYLES[self.style]
        self.bpm = float(rng.uniform(*spec["bpm"]))
        self.beat = 60.0 / self.bpm * sr  # samples
        self.step = self.beat / 4  # a 16th note
        self.bar = 4 * self.beat
        self.swing = float(rng.uniform(*spec["swing"]))
        self.tonic = int(rng.integers(12))
        self.mode = str(rng.choice(spec["modes"]))
        self.scale = MODES[self.mode]
        self.progression = PROGRESSIONS[int(rng.integers(len(PROGRESSIONS)))]
        self.chords_per_bar = 2 if (self.bpm < 90 and rng.random() < 0.3) else 1
        self.n_bars = int(np.ceil(n / self.bar)) + 1
        self.bars = self._arrange(rng)

    @property
    def key_name(self) -> str:
        return f"{PITCH_NAMES[self.tonic]} {self.mode}"

    def _arrange(self, rng) -> List[dict]:
        """Per bar: section name, position in the section and what plays. The excerpt starts
        at a random bar of a full-song arrangement, as a crop of a real song would."""
        song = []
        for name, lengths in ARRANGEMENT:
            length = int(rng.choice(lengths))
            if self.bpm > 120 and length == 8 and rng.random() < 0.5:
                length = 16 if name == "chorus" else 8
            spec = {k: v[int(rng.integers(len(v)))] for k, v in SECTIONS[name].items()}
            for k in range(length):
                song.append(dict(section=name, index=k, length=length, **spec))
        start = int(rng.integers(0, max(len(song) - self.n_bars, 0) + 1))
        bars = song[start : start + self.n_bars]
        while len(bars) < self.n_bars:  # very long excerpts: repeat the last chorus + outro
            bars += song[-12:]
        bars = bars[: self.n_bars]
        # Every excerpt has a vocal line and a groove somewhere, as MUSDB excerpts mostly do.
        if not any(b["vocals"] for b in bars):
            for b in bars[len(bars) // 3 :]:
                b["vocals"] = True
        if not any(b["drums"] >= 2 for b in bars):
            for b in bars[len(bars) // 4 :]:
                b["drums"], b["bass"] = 2, True
        return bars

    def time(self, bar: int, step: float) -> float:
        """Sample position of 16th-note ``step`` of ``bar`` (off-beat 16ths are swung)."""
        swing = self.swing * self.step if int(np.floor(step)) % 2 == 1 else 0.0
        return bar * self.bar + step * self.step + swing

    def chord_degree(self, bar: int, step: float) -> int:
        position = self.bars[bar]["index"] * self.chords_per_bar + int(
            step >= 8 and self.chords_per_bar == 2
        )
        return self.progression[position % len(self.progression)]

    def degree_pitch(self, degree: int, octave_midi: int) -> int:
        """MIDI pitch of scale degree ``degree`` (may exceed 6) above the tonic at
        ``octave_midi`` (a C)."""
        return octave_midi + self.tonic + self.scale[degree % 7] + 12 * (degree // 7)

    def chord(self, bar: int, step: float, octave_midi: int, size: int = 3) -> List[int]:
        root = self.chord_degree(bar, step)
        return [self.degree_pitch(root + 2 * k, octave_midi) for k in range(size)]

    def root(self, bar: int, step: float, low: int, high: int) -> int:
        """The chord root folded into [low, high)."""
        pitch = self.degree_pitch(self.chord_degree(bar, step), 0)
        while pitch < low:
            pitch += 12
        while pitch >= high:
            pitch -= 12
        return pitch

    def summary(self) -> dict:
        return dict(
            style=self.style,
            bpm=round(self.bpm, 3),
            key=self.key_name,
            progression=list(self.progression),
            swing=round(self.swing, 3),
            sections=[b["section"] for b in self.bars],
        )


def _humanize(rng, sr: int, ms: float) -> int:
    return int(rng.normal(0, ms * 1e-3 * sr))


# --------------------------------------------------------------------------------------
# Optional sampled instruments (General MIDI SoundFont)
# --------------------------------------------------------------------------------------

#: General MIDI programs per part, and the drum-map keys of the kit pieces.
GM_PROGRAMS = dict(
    bass=(32, 33, 33, 34, 35, 38, 39),
    piano=(0, 1, 2),
    epiano=(4, 5),
    organ=(16, 17, 18),
    guitar=(24, 25, 26, 27),
    dist_guitar=(29, 30),
    pad=(48, 49, 50, 88, 89, 90, 92, 94),  # no choir or voice pads: they would be "vocals"
    arpeggio=(8, 11, 12, 46, 81),
)
GM_DRUM_KEYS = dict(kick=36, snare=38, hat=42, open_hat=46, crash=49, ride=51, toms=(50, 47, 45))
GM_DRUM_KITS = (0, 8, 16, 24, 25, 32, 40)


def default_soundfont() -> str:
    """The General MIDI SoundFont that the ``pretty_midi`` wheel ships (TimGM6mb.sf2),
    found without importing ``pretty_midi``."""
    import importlib.util

    spec = importlib.util.find_spec("pretty_midi")
    locations = list(spec.submodule_search_locations or []) if spec else []
    for folder in locations:
        path = os.path.join(folder, "TimGM6mb.sf2")
        if os.path.isfile(path):
            return path
    raise ImportError(
        "instruments='soundfont' needs a .sf2 file: pip install pretty_midi (it ships "
        "TimGM6mb.sf2) or pass soundfont='/path/to/font.sf2'."
    )


class SoundFontBand:
    """Renders note lists with sampled General MIDI instruments (``tinysoundfont``).

    Args:
        sample_rate: Output rate.
        soundfont: Path of a .sf2 file (default: :func:`default_soundfont`).
    """

    def __init__(self, sample_rate: int, soundfont: Optional[str] = None):
        try:
            import tinysoundfont
        except ImportError as err:
            raise ImportError(
                "instruments='soundfont' needs the `tinysoundfont` package: "
                "pip install tinysoundfont pretty_midi"
            ) from err
        self._module = tinysoundfont
        self.sample_rate = int(sample_rate)
        self.path = soundfont or default_soundfont()
        if not os.path.isfile(self.path):
            raise FileNotFoundError(f"SoundFont not found: {self.path}")

    def render(
        self,
        notes: Sequence[Note],
        n: int,
        program: int,
        drums: bool = False,
        pan: Optional[float] = None,
    ) -> np.ndarray:
        """(2, n) audio of ``notes`` (onset, length, MIDI key, velocity 0..1.3) played on
        ``program`` (the drum kit number when ``drums``)."""
        synth = self._module.Synth(samplerate=self.sample_rate)
        font = synth.sfload(self.path)
        channel = 9 if drums else 0
        try:
            synth.program_select(channel, font, 128 if drums else 0, int(program), drums)
        except Exception:  # a font without this preset: its first kit or piano
            synth.program_select(channel, font, 128 if drums else 0, 0, drums)
        if pan is not None:
            synth.control_change(channel, 10, int(np.clip(64 + 63 * pan, 0, 127)))
        events = []
        for onset, length, key, velocity in notes:
            if 0 <= onset < n:
                key = int(round(key))
                events.append((int(onset), 1, key, int(np.clip(velocity * 100, 1, 127))))
                events.append((int(onset) + max(int(length), 1), 0, key, 0))
        events.sort()  # at equal times note-offs come first, so repeated keys retrigger
        chunks, position = [], 0
        for time, is_on, key, velocity in events:
            time = min(time, n)
            if time > position:
                chunks.append(np.frombuffer(synth.generate(time - position), np.float32))
                position = time
            if is_on:
                synth.noteon(channel, key, velocity)
            else:
                synth.noteoff(channel, key)
        if n > position:
            chunks.append(np.frombuffer(synth.generate(n - position), np.float32))
        audio = np.concatenate(chunks).reshape(-1, 2).T.astype(np.float64)
        return audio[:, :n]


# --------------------------------------------------------------------------------------
# Drums
# --------------------------------------------------------------------------------------


def _kick(rng, sr, kit) -> np.ndarray:
    m = int(sr * kit["kick_len"])
    t = np.arange(m) / sr
    f = kit["kick_f1"] + (kit["kick_f0"] - kit["kick_f1"]) * np.exp(-t / kit["kick_sweep"])
    body = np.sin(2 * np.pi * np.cumsum(f) / sr) * np.exp(-t / kit["kick_decay"])
    click = _highpass(rng.standard_normal(m), sr, 2000) * np.exp(-t / 0.003) * kit["kick_click"]
    out = np.tanh(kit["kick_drive"] * (body + click)) / np.tanh(kit["kick_drive"])
    return out * np.minimum(1, t / 0.001)


def _snare(rng, sr, kit) -> np.ndarray:
    m = int(sr * 0.35)
    t = np.arange(m) / sr
    f = kit["snare_f"] * (1 + 0.3 * np.exp(-t / 0.01))
    phase = 2 * np.pi * np.cumsum(f) / sr
    body = (np.sin(phase) + 0.5 * np.sin(1.6 * phase)) * np.exp(-t / kit["snare_body_decay"])
    wires = _bandpass_noise(rng, m, sr, kit["snare_low"], min(kit["snare_high"], sr / 2 - 1))
    wires /= np.std(wires) + 1e-9
    out = kit["snare_body"] * body + wires * np.exp(-t / kit["snare_decay"]) * 0.6
    return out * np.minimum(1, t / 0.0008)


def _metal(rng, sr, m, low, decay, ratios) -> np.ndarray:
    """Cymbal-like noise: a cluster of inharmonic squares plus noise, high-passed."""
    t = np.arange(m) / sr
    base = rng.uniform(0.9, 1.2)
    tone = sum(np.sign(np.sin(2 * np.pi * r * base * t + rng.uniform(0, 6.3))) for r in ratios)
    tone = tone / len(ratios) + 0.7 * rng.standard_normal(m)
    out = _highpass(tone, sr, min(low, 0.4 * sr), order=4)
    return out / (np.std(out[: max(m // 8, 16)]) + 1e-9) * np.exp(-t / decay)


_HAT_RATIOS = (205.3, 304.4, 369.6, 522.7, 540.0, 800.0)
_CYMBAL_RATIOS = (263.0, 401.0, 523.0, 687.0, 772.0, 1011.0)


def _tom(rng, sr, f0) -> np.ndarray:
    m = int(sr * 0.45)
    t = np.arange(m) / sr
    f = f0 * (1 + 0.5 * np.exp(-t / 0.02))
    body = np.sin(2 * np.pi * np.cumsum(f) / sr) * np.exp(-t / 0.18)
    hit = _bandpass_noise(rng, m, sr, 300, min(3000, sr / 2 - 1)) * np.exp(-t / 0.01)
    return body + 0.3 * hit / (np.std(hit) + 1e-9)


def _drum_kit(rng, sr) -> Dict[str, List[np.ndarray]]:
    """A few renderings of each hit of one song's kit (one timbre per song)."""
    kit = dict(
        kick_len=rng.uniform(0.3, 0.6),
        kick_f0=rng.uniform(110, 240),
        kick_f1=rng.uniform(42, 62),
        kick_sweep=rng.uniform(0.012, 0.04),
        kick_decay=rng.uniform(0.08, 0.3),
        kick_click=rng.uniform(0.05, 0.5),
        kick_drive=rng.uniform(0.5, 3.0),
        snare_f=rng.uniform(170, 250),
        snare_body=rng.uniform(0.3, 1.0),
        snare_body_decay=rng.uniform(0.03, 0.08),
        snare_low=rng.uniform(900, 2500),
        snare_high=rng.uniform(7000, 12000),
        snare_decay=rng.uniform(0.06, 0.18),
        hat_low=rng.uniform(5000, 8500),
        hat_decay=rng.uniform(0.02, 0.05),
    )
    tom_base = rng.uniform(90, 140)
    variants = 3
    return dict(
        kick=[_kick(rng, sr, kit) for _ in range(variants)],
        snare=[_snare(rng, sr, kit) for _ in range(variants)],
        hat=[
            _metal(rng, sr, int(sr * 0.25), kit["hat_low"], kit["hat_decay"], _HAT_RATIOS)
            for _ in range(variants)
        ],
        open_hat=[
            _metal(rng, sr, int(sr * 0.6), kit["hat_low"], rng.uniform(0.15, 0.3), _HAT_RATIOS)
            for _ in range(2)
        ],
        crash=[
            _metal(rng, sr, int(sr * 2.5), 3500, rng.uniform(0.6, 1.0), _CYMBAL_RATIOS)
            for _ in range(2)
        ],
        ride=[
            _metal(rng, sr, int(sr * 1.2), 4000, rng.uniform(0.3, 0.6), _CYMBAL_RATIOS)
            for _ in range(2)
        ],
        toms=[_tom(rng, sr, tom_base * r) for r in (1.5, 1.2, 1.0)],
    )


def render_drums(
    rng, plan: SongPlan, kick_steps: Sequence[int], band: Optional[SoundFontBand] = None
) -> np.ndarray:
    """The drum stem, (2, time): a style pattern, section dynamics, fills and crashes
    (sampled from a General MIDI kit if ``band`` is given)."""
    sr, spec = plan.sr, STYLES[plan.style]
    kit = _drum_kit(rng, sr) if band is None else None
    events: List[Note] = []
    snare_steps = spec["snare"]
    hat_every = int(rng.choice(spec["hats"]))
    ghost_rate = rng.uniform(0.0, 0.25) if plan.style in ("funk", "hiphop", "pop") else 0.0
    use_ride_in_chorus = rng.random() < 0.3
    pans = dict(
        kick=0.0,
        snare=rng.uniform(-0.1, 0.1),
        hat=rng.uniform(-0.5, -0.15) * rng.choice([-1, 1]),
        crash=rng.uniform(-0.5, 0.5),
    )
    pans["open_hat"] = pans["hat"]
    pans["ride"] = -pans["hat"]
    voices = {name: np.zeros(plan.n) for name in ("kick", "snare", "hat", "open_hat", "crash")}
    voices["ride"] = np.zeros(plan.n)
    toms = [np.zeros(plan.n) for _ in range(3)]
    tom_pans = (-0.4, 0.0, 0.4)

    def hit(name, bar, step, velocity, target=None):
        onset = int(plan.time(bar, step)) + _humanize(rng, sr, 4)
        if 0 <= onset < plan.n and band is not None:
            key = GM_DRUM_KEYS[name] if target is None else GM_DRUM_KEYS["toms"][target]
            events.append((onset, int(0.1 * sr), key, velocity * rng.uniform(0.9, 1.05)))
        elif 0 <= onset < plan.n:
            sounds = kit[name] if target is None else [kit["toms"][target]]
            sound = sounds[int(rng.integers(len(sounds)))]
            out = voices[name] if target is None else toms[target]
            _place(out, sound * velocity * rng.uniform(0.9, 1.05), onset)

    for bar, info in enumerate(plan.bars):
        level = info["drums"]
        if level == 0:
            continue
        fill = (
            level >= 2
            and info["index"] == info["length"] - 1
            and bar + 1 < len(plan.bars)
            and rng.random() < 0.6
        )
        last = 16 - int(rng.choice([4, 8])) if fill else 16
        if info["index"] == 0 and level >= 2 and bar > 0:
            hit("crash", bar, 0, rng.uniform(0.6, 0.9))
        if level == 1:  # sparse: kick on one, quarter-note hats or ride
            hit("kick", bar, 0, 0.8)
            for step in range(0, 16, 4):
                hit("hat", bar, step, rng.uniform(0.4, 0.6))
            continue
        for step in range(last):
            if step in kick_steps:
                hit("kick", bar, step, 1.0 if step % 4 == 0 else 0.85)
            if step in snare_steps:
                hit("snare", bar, step, rng.uniform(0.9, 1.0) if level == 3 else 0.85)
            elif ghost_rate and step % 2 == 1 and rng.random() < ghost_rate:
                hit("snare", bar, step, rng.uniform(0.12, 0.25))
            if step % hat_every == 0:
                accent = 1.0 if step % 4 == 0 else (0.75 if step % 2 == 0 else 0.55)
                if level == 3 and use_ride_in_chorus:
                    hit("ride", bar, step, 0.5 * accent)
                elif plan.style == "dance" and step % 4 == 2:
                    hit("open_hat", bar, step, 0.6)
                elif level == 3 and step == 14 and rng.random() < 0.5:
                    hit("open_hat", bar, step, 0.55)
                else:
                    hit("hat", bar, step, 0.6 * accent * rng.uniform(0.85, 1.1))
        for k, step in enumerate(range(last, 16)):  # fill: snare/toms, getting louder
            velocity = 0.5 + 0.5 * k / max(15 - last, 1)
            if rng.random() < 0.5:
                hit("snare", bar, step, velocity)
            else:
                hit("toms", bar, step, velocity, target=min(k * 3 // max(16 - last, 1), 2))
    if band is not None:
        return band.render(events, plan.n, int(rng.choice(GM_DRUM_KITS)), drums=True)
    gains = dict(kick=1.0, snare=0.9, hat=0.35, open_hat=0.3, crash=0.3, ride=0.3)
    out = sum(_pan(voices[name] * gains[name], pans[name]) for name in voices)
    out = out + sum(_pan(tom * 0.7, p) for tom, p in zip(toms, tom_pans))
    return out


# --------------------------------------------------------------------------------------
# Bass
# --------------------------------------------------------------------------------------


def bass_line(rng, plan: SongPlan, kick_steps: Sequence[int]) -> List[Note]:
    """Notes of the bass: chord roots in a style pattern, with fifths, octaves and
    approach notes into the next chord."""
    pattern = str(rng.choice(STYLES[plan.style]["bass"]))
    low, high = 28 + int(rng.integers(0, 5)), 45
    notes: List[Note] = []
    for bar, info in enumerate(plan.bars):
        if not info["bass"]:
            continue
        if pattern == "root8":
            events = [(s, 2, 0) for s in range(0, 16, 2)]
        elif pattern == "quarter":
            events = [(0, 4, 0), (4, 4, 0), (8, 4, 7 if rng.random() < 0.4 else 0), (12, 4, "a")]
        elif pattern == "kick":
            steps = sorted(set(kick_steps) | {0})
            ends = steps[1:] + [16]
            events = [(s, e - s, 0) for s, e in zip(steps, ends)]
            if rng.random() < 0.5:
                events.append((14, 2, "a"))
        elif pattern == "octave":
            events = [(s, 2, 12 if s % 4 == 2 else 0) for s in range(0, 16, 2)]
        elif pattern == "offbeat":
            events = [(s, 2, 0) for s in (2, 6, 10, 14)]
        elif pattern == "sustain":
            events = [(0, 8, 0), (8, 8, 7 if rng.random() < 0.5 else 0)]
        elif pattern == "sub":
            events = [(s, 16 - s if s == max(kick_steps) else 3, 0) for s in kick_steps]
        else:  # funk: syncopated 16ths with octave pops
            events = [(0, 2, 0), (3, 1, 12), (6, 1, 0), (7, 1, 0), (10, 2, 0), (12, 1, 12)]
            events += [(14, 1, 10 if plan.mode != "major" else 7)]
        for step, length, interval in events:
            if plan.chords_per_bar == 2 and step < 8 < step + length:
                length = 8 - step
            root = plan.root(bar, step, low, high)
            if interval == "a":  # approach the next bar's root from a step below or above
                target = plan.root(bar + 1 if bar + 1 < len(plan.bars) else bar, 0, low, high)
                pitch = target + int(rng.choice([-1, -2, 2, 1]))
            else:
                pitch = root + interval
                if pitch >= high + 7:
                    pitch -= 12
            onset = int(plan.time(bar, step)) + _humanize(rng, plan.sr, 5)
            staccato = 0.9 if pattern in ("root8", "octave", "offbeat", "funk") else 0.97
            span = int(length * plan.step * staccato)
            velocity = (1.0 if step % 4 == 0 else 0.85) * rng.uniform(0.9, 1.05)
            notes.append((max(onset, 0), span, float(pitch), velocity))
    return notes


def render_bass(
    rng, plan: SongPlan, notes: List[Note], band: Optional[SoundFontBand] = None
) -> np.ndarray:
    """The bass stem, (2, time), near the centre."""
    sr = plan.sr
    if band is not None:
        program = int(rng.choice(GM_PROGRAMS["bass"]))
        return band.render(notes, plan.n, program, pan=rng.uniform(-0.05, 0.05))
    timbre = str(rng.choice(["finger", "pick", "synth", "sub"]))
    if plan.style == "hiphop" and rng.random() < 0.6:
        timbre = "sub"
    out = np.zeros(plan.n)
    decay = rng.uniform(1.5, 4.0)
    cutoff = rng.uniform(500, 1800)
    drive = rng.uniform(0.5, 2.5)
    for onset, span, pitch, velocity in notes:
        f0 = float(midi_hz(pitch))
        m = min(span + int(0.03 * sr), plan.n - onset)
        if m <= 0:
            continue
        t = np.arange(m) / sr
        if timbre in ("finger", "pick"):
            tone = karplus_strong(rng, f0, m, sr, decay, 0.15 if timbre == "finger" else 0.7)
            tone = tone / (np.max(np.abs(tone[: int(0.05 * sr)])) + 1e-9)
        elif timbre == "synth":
            saw = _saw(np.full(m, f0), sr, rng.random())
            sub = np.sin(2 * np.pi * f0 * t)
            bright = np.exp(-t / rng.uniform(0.05, 0.2))
            tone = 0.6 * saw * (0.3 + 0.7 * bright) + 0.6 * sub
        else:
            glide = f0 * (1 + 0.15 * np.exp(-t / 0.03))
            tone = np.sin(2 * np.pi * np.cumsum(glide) / sr) * np.exp(-t / rng.uniform(0.6, 1.5))
        env = _env_ar(m, sr, 0.004, 0.03, hold=span)
        _place(out, tone * env * velocity, onset)
    out = np.tanh(drive * _lowpass(out, sr, cutoff)) / np.tanh(drive)
    return _pan(out, rng.uniform(-0.05, 0.05))


# --------------------------------------------------------------------------------------
# Other: chords, pads and arpeggios
# --------------------------------------------------------------------------------------


def _piano_note(rng, f0, m, hold, sr, brightness) -> np.ndarray:
    t = np.arange(m) / sr
    k = np.arange(1, 13)
    partials = f0 * k * np.sqrt(1 + 0.0004 * k**2)
    keep = partials < min(0.45 * sr, 9000)
    k, partials = k[keep], partials[keep]
    amps = (1.0 / k**brightness)[:, None]
    fast = np.exp(-t[None, :] * (3 + 1.5 * k[:, None]))
    slow = np.exp(-t[None, :] * (0.4 + 0.25 * k[:, None]) * (f0 / 260) ** 0.5)
    tone = np.sum(amps * (0.6 * fast + 0.4 * slow) * np.sin(2 * np.pi * partials[:, None] * t), 0)
    return tone * _env_ar(m, sr, 0.002, 0.15, hold)


def _epiano_note(rng, f0, m, hold, sr, index) -> np.ndarray:
    t = np.arange(m) / sr
    modulation = index * np.exp(-t / 0.25) * np.sin(2 * np.pi * f0 * t)
    tone = np.sin(2 * np.pi * f0 * t + modulation) * np.exp(-t / 1.8)
    tine = np.sin(2 * np.pi * min(14 * f0, 0.45 * sr) * t) * np.exp(-t / 0.01) * 0.2
    return (tone + tine) * _env_ar(m, sr, 0.002, 0.1, hold)


def _organ_note(rng, f0, m, hold, sr, drawbars) -> np.ndarray:
    t = np.arange(m) / sr
    vibrato = 0.002 * np.sin(2 * np.pi * 6.5 * t)
    phase = 2 * np.pi * f0 * (t + np.cumsum(vibrato) / sr)
    tone = sum(
        level * np.sin(ratio * phase)
        for ratio, level in zip((0.5, 1, 1.5, 2, 3, 4, 6), drawbars)
        if ratio * f0 < 0.45 * sr
    )
    click = rng.standard_normal(m) * np.exp(-t / 0.003) * 0.05
    return (tone + click) * _env_ar(m, sr, 0.005, 0.05, hold)


def _chord_hits(rng, plan: SongPlan, instrument: str) -> List[Tuple[int, float, float, float]]:
    """(bar, step, length in steps, velocity) of the comping rhythm."""
    rhythms = {
        "piano": [
            [(0, 8), (8, 8)],
            [(0, 6), (6, 6), (12, 4)],
            [(0, 16)],
            [(0, 4), (4, 4), (8, 4), (12, 4)],
        ],
        "epiano": [[(0, 3), (6, 4), (10, 6)], [(2, 2), (6, 2), (10, 2), (14, 2)], [(0, 8), (8, 8)]],
        "organ": [[(0, 16)], [(0, 8), (8, 8)], [(2, 2), (6, 2), (10, 2), (14, 2)]],
        "guitar": [
            [(s, 2) for s in range(0, 16, 2)],
            [(0, 3), (3, 3), (6, 4), (10, 2), (12, 2), (14, 2)],
        ],
        "dist_guitar": [[(s, 2) for s in range(0, 16, 2)], [(0, 6), (6, 6), (12, 4)], [(0, 16)]],
    }
    rhythm = rhythms[instrument][int(rng.integers(len(rhythms[instrument])))]
    hits = []
    for bar in range(len(plan.bars)):
        for step, length in rhythm:
            velocity = (1.0 if step % 4 == 0 else 0.8) * rng.uniform(0.85, 1.05)
            hits.append((bar, step, length, velocity))
    return hits


def render_comp(
    rng, plan: SongPlan, instrument: str, band: Optional[SoundFontBand] = None
) -> np.ndarray:
    """Chords on a comping instrument, (2, time)."""
    sr = plan.sr
    out = np.zeros((2, plan.n))
    events: List[Note] = []
    octave = 48 if instrument in ("guitar", "dist_guitar") else 60
    cache: Dict[tuple, np.ndarray] = {}
    brightness = rng.uniform(0.8, 1.6)
    index = rng.uniform(0.8, 2.5)
    drawbars = rng.uniform(0, 1, 7) * np.array([0.6, 1, 0.5, 0.8, 0.5, 0.4, 0.3])
    drawbars[1] = 1.0
    decay = rng.uniform(1.5, 4.0)
    width = rng.uniform(0.2, 0.7)
    hits = _chord_hits(rng, plan, instrument)
    inversion = int(rng.integers(3))
    for bar, step, length, velocity in hits:
        onset = int(plan.time(bar, step)) + _humanize(rng, sr, 6)
        if onset >= plan.n or onset < 0:
            continue
        hold = int(length * plan.step * 0.95)
        if instrument == "dist_guitar":  # power chord: root, fifth, octave
            root = plan.root(bar, step, 40, 52)
            pitches = [root, root + 7, root + 12]
        else:
            pitches = plan.chord(bar, step, octave, size=4 if rng.random() < 0.3 else 3)
            pitches = sorted(p + 12 if k < inversion else p for k, p in enumerate(pitches))
            if instrument == "guitar":
                pitches = [plan.root(bar, step, 40, 52)] + pitches
        up_stroke = instrument in ("guitar", "dist_guitar") and step % 4 == 2
        for k, pitch in enumerate(pitches[::-1] if up_stroke else pitches):
            f0 = float(midi_hz(pitch))
            m = min(hold + int(0.25 * sr), plan.n - onset)
            strum = int(k * rng.uniform(0.006, 0.014) * sr) if "guitar" in instrument else 0
            if band is not None:
                events.append((min(onset + strum, plan.n - 1), hold, pitch, velocity * 0.9))
                continue
            key = (pitch, m // 256)
            if instrument in ("piano", "epiano", "organ") and key in cache:
                tone = cache[key]
            elif instrument == "piano":
                tone = cache[key] = _piano_note(rng, f0, m, hold, sr, brightness)
            elif instrument == "epiano":
                tone = cache[key] = _epiano_note(rng, f0, m, hold, sr, index)
            elif instrument == "organ":
                tone = cache[key] = _organ_note(rng, f0, m, hold, sr, drawbars)
            else:
                bright = 0.5 if instrument == "guitar" else 0.8
                tone = karplus_strong(rng, f0, m, sr, decay, bright)
                tone = tone * _env_ar(m, sr, 0.001, 0.06, hold)
            position = (k / max(len(pitches) - 1, 1) - 0.5) * width
            note = tone * velocity / np.sqrt(len(pitches))
            for channel, gain in enumerate(_pan(np.ones(1), position)[:, 0]):
                _place(out[channel], note * gain, min(onset + strum, plan.n - 1))
    if band is not None:
        program = int(rng.choice(GM_PROGRAMS[instrument]))
        return band.render(events, plan.n, program, pan=rng.uniform(-0.4, 0.4))
    if instrument == "dist_guitar":
        drive = rng.uniform(4, 12)
        out = np.tanh(drive * _highpass(out, sr, 90)) / np.tanh(drive)
        out = _lowpass(out, sr, rng.uniform(2500, 4500), order=4)  # the cabinet
        side = rng.choice([-1, 1]) * rng.uniform(0.3, 0.7)
        out = _pan(out.mean(axis=0), side) * 0.7 + _pan(out.mean(axis=0), -side) * 0.3
    elif instrument == "guitar":
        out = _lowpass(_highpass(out, sr, 80), sr, rng.uniform(3000, 6000))
    return out


def render_pad(rng, plan: SongPlan, band: Optional[SoundFontBand] = None) -> np.ndarray:
    """Sustained chords of detuned saws, a different detuning per side for width."""
    sr = plan.sr
    out = np.zeros((2, plan.n))
    events: List[Note] = []
    attack, release = rng.uniform(0.08, 0.6), rng.uniform(0.3, 0.8)
    detune = rng.uniform(0.003, 0.008)
    chord_steps = (0, 8) if plan.chords_per_bar == 2 else (0,)
    for bar in range(len(plan.bars)):
        for step in chord_steps:
            onset = int(plan.time(bar, step))
            if onset >= plan.n:
                continue
            hold = int(16 / len(chord_steps) * plan.step)
            m = min(hold + int(release * sr), plan.n - onset)
            env = _env_ar(m, sr, attack, release, hold)
            for pitch in plan.chord(bar, step, 60, size=3):
                if band is not None:
                    events.append((onset, hold, pitch, 0.7))
                    continue
                f0 = float(midi_hz(pitch))
                for channel, sign in enumerate((-1, 1)):
                    voices = _saw(np.full(m, f0 * (1 + sign * detune)), sr, rng.random())
                    voices += _saw(np.full(m, f0 * (1 - sign * detune * 0.5)), sr, rng.random())
                    _place(out[channel], voices * env * 0.3, onset)
    if band is not None:
        program = int(rng.choice(GM_PROGRAMS["pad"]))
        return band.render(events, plan.n, program, pan=rng.uniform(-0.3, 0.3))
    lfo = 1 + 0.1 * np.sin(2 * np.pi * rng.uniform(0.1, 0.4) * np.arange(plan.n) / sr)
    return _lowpass(out, sr, rng.uniform(700, 2500)) * lfo


def render_arpeggio(rng, plan: SongPlan, band: Optional[SoundFontBand] = None) -> np.ndarray:
    """A plucked synth walking up and down the chord in 8ths or 16ths, with an echo."""
    sr = plan.sr
    events: List[Note] = []
    bright, dark = np.zeros(plan.n), np.zeros(plan.n)
    every = int(rng.choice([1, 2]))
    shape = str(rng.choice(["up", "updown", "random"]))
    oscillator = _saw if rng.random() < 0.5 else _square
    decay = rng.uniform(0.06, 0.25)
    for bar in range(len(plan.bars)):
        for k, step in enumerate(range(0, 16, every)):
            onset = int(plan.time(bar, step))
            if onset >= plan.n:
                continue
            chord = plan.chord(bar, step, 72, size=3) + [plan.chord(bar, step, 84, 1)[0]]
            if shape == "up":
                pitch = chord[k % 4]
            elif shape == "updown":
                pitch = chord[[0, 1, 2, 3, 2, 1][k % 6]]
            else:
                pitch = chord[int(rng.integers(4))]
            if band is not None:
                events.append((onset, int(every * plan.step * 0.8), pitch, 0.8))
                continue
            m = min(int(every * plan.step * 0.9) + int(0.05 * sr), plan.n - onset)
            t = np.arange(m) / sr
            tone = oscillator(np.full(m, float(midi_hz(pitch))), sr, rng.random())
            env = _env_ar(m, sr, 0.002, 0.05, int(every * plan.step * 0.8))
            pluck = np.exp(-t / decay)
            _place(bright, tone * env * pluck, onset)
            _place(dark, tone * env * (1 - 0.7 * pluck), onset)
    if band is not None:
        program = int(rng.choice(GM_PROGRAMS["arpeggio"]))
        out = band.render(events, plan.n, program, pan=rng.uniform(-0.3, 0.3))
    else:
        mono = _lowpass(bright, sr, 5000) * 0.7 + _lowpass(dark, sr, 900) * 0.5
        out = _pan(mono, rng.uniform(-0.3, 0.3))
    delay = int(plan.beat * 0.75)  # dotted eighth ping-pong
    for k in range(1, 4):
        shifted = np.zeros_like(out)
        shifted[:, k * delay :] = out[:, : plan.n - k * delay] if k * delay < plan.n else 0
        out = out + shifted[::-1] * (0.35**k) if k % 2 else out + shifted * (0.35**k)
    return out


# --------------------------------------------------------------------------------------
# Vocals
# --------------------------------------------------------------------------------------


def melody(rng, plan: SongPlan, low: int, high: int) -> List[dict]:
    """Sung notes: phrases of two or four bars on the chord tones, repeated per section
    kind (a chorus sings the same tune each time), with rests for breathing."""
    tunes: Dict[str, List[tuple]] = {}
    notes: List[dict] = []
    rhythms = (
        (2, 2, 2, 2, 4, 4),
        (1, 1, 2, 2, 2, 4, 4),
        (3, 3, 2, 4, 4),
        (2, 1, 1, 2, 2, 2, 6),
        (4, 2, 2, 4, 4),
        (2, 2, 1, 1, 2, 8),
    )
    center = (low + high) / 2
    bar = 0
    while bar < len(plan.bars):
        info = plan.bars[bar]
        phrase_bars = 2 if plan.bpm > 95 or rng.random() < 0.5 else 1
        if not info["vocals"]:
            bar += 1
            continue
        key = (info["section"], info["index"] % 4, phrase_bars)
        if key not in tunes:
            events, step = [], int(rng.choice([0, 0, 2, 4]))
            limit = 16 * phrase_bars - int(rng.choice([2, 4, 6]))
            degree = int(rng.integers(0, 5))
            while step < limit:
                rhythm = rhythms[int(rng.integers(len(rhythms)))]
                for length in rhythm:
                    if step >= limit:
                        break
                    length = min(length, limit - step)
                    degree += int(rng.choice([-2, -1, -1, 0, 1, 1, 2, 3, -3]))
                    degree = int(np.clip(degree, -2, 9))
                    vowel = VOWELS[int(rng.choice(5, p=[0.32, 0.2, 0.18, 0.18, 0.12]))]
                    consonant = (
                        str(rng.choice(["s", "sh", "f", "t", "k", "p", "h", "m", "n", "l"]))
                        if rng.random() < 0.65
                        else ""
                    )
                    events.append((step, length, degree, vowel, consonant))
                    step += length
            tunes[key] = events
        for step, length, degree, vowel, consonant in tunes[key]:
            b = bar + step // 16
            if b >= len(plan.bars):
                break
            s = step % 16
            chord = [
                (d % 7) for d in range(plan.chord_degree(b, s), plan.chord_degree(b, s) + 5, 2)
            ]
            if (s % 4 == 0 or length >= 4) and degree % 7 not in chord:
                degree += 1 if (degree + 1) % 7 in chord else -1  # land on a chord tone
            pitch = plan.degree_pitch(degree, 12 * int(center // 12))
            while pitch > high:
                pitch -= 12
            while pitch < low:
                pitch += 12
            onset = int(plan.time(b, s)) + _humanize(rng, plan.sr, 10)
            notes.append(
                dict(
                    onset=onset,
                    length=int(length * plan.step),
                    pitch=float(pitch),
                    degree=degree,
                    vowel=vowel,
                    consonant=consonant,
                    section=info["section"],
                )
            )
        bar += phrase_bars
    return notes


def _one_pole(x: np.ndarray, seconds: float, rate: float) -> np.ndarray:
    a = np.exp(-1.0 / max(seconds * rate, 1e-6))
    return sps.lfilter([1 - a], [1, -a], x, zi=[x[0] * a])[0]


def _formant_envelope(freqs, formants, bandwidths, tilt_hz) -> np.ndarray:
    """|H(f)| per frame of a cascade of two-pole resonators (unit gain at 0 Hz), as in a
    cascade formant synthesiser: formant levels and the valleys between them follow from the
    frequencies and bandwidths alone. (frames, bins)."""
    f2 = (freqs**2)[None, None, :]
    f_sq, b = formants[:, :, None] ** 2, bandwidths[:, :, None]
    gains = f_sq / np.sqrt((f_sq - f2) ** 2 + f2 * b**2)
    return np.prod(gains, axis=1) / np.sqrt(1 + (freqs[None, :] / tilt_hz) ** 2)


def render_voice(rng, plan: SongPlan, notes: List[dict], voice: str) -> np.ndarray:
    """One sung line, mono: a glottal source through moving vowel formants."""
    sr, n = plan.sr, plan.n
    control = 64  # samples per control frame
    n_ctrl = n // control + 2
    rate = sr / control
    pitch = np.full(n_ctrl, np.nan)
    amp = np.zeros(n_ctrl)
    breath = np.zeros(n_ctrl)
    scoop = np.zeros(n_ctrl)
    vib_depth = np.zeros(n_ctrl)
    vowel_ids = np.full(n_ctrl, -1)  # -1: keep previous; 5: nasal; 6: breath
    consonants = []
    singer = dict(
        vib_rate=rng.uniform(4.8, 6.5),
        vib_depth=rng.uniform(0.15, 0.45),  # semitones, peak
        glide=rng.uniform(0.02, 0.06),
        breathiness=rng.uniform(0.02, 0.08),
        tract=rng.uniform(0.93, 1.07),
        tilt=rng.uniform(2000, 6000),
    )
    previous_end = -(10**9)
    for k, note in enumerate(notes):
        on, length = note["onset"] // control, max(note["length"] // control, 2)
        end = min(on + length, n_ctrl)
        if on >= n_ctrl or end <= 0:
            continue
        gap = on - previous_end
        if gap * control > 0.35 * sr:  # a breath before a new phrase
            b0 = max(on - int(rng.uniform(0.25, 0.45) * rate), previous_end + 1, 0)
            breath[b0 : max(on - int(0.05 * rate), b0)] = rng.uniform(0.03, 0.08)
            vowel_ids[b0:on] = 6
        pitch[max(on, 0) : end] = note["pitch"]
        release = int(rng.uniform(0.03, 0.08) * rate)
        amp[max(on, 0) : max(end - release, on + 1)] = rng.uniform(0.8, 1.0)
        vowel_ids[max(on, 0)] = VOWELS.index(note["vowel"])
        if gap > int(0.15 * rate) and rng.random() < 0.4:
            scoop[max(on, 0)] = -rng.uniform(0.5, 2.0)
        if length > 0.3 * rate:
            vib_depth[max(on + int(0.2 * rate), 0) : end] = singer["vib_depth"]
        consonant = note["consonant"]
        if consonant in ("m", "n", "l"):
            c = int(rng.uniform(0.04, 0.08) * rate)
            vowel_ids[max(on - c, 0)] = 5
            vowel_ids[max(on, 0)] = VOWELS.index(note["vowel"])
            amp[max(on - c, 0) : max(on, 0)] = 0.45
            pitch[max(on - c, 0) : max(on, 0)] = note["pitch"]
        elif consonant:
            low, high, seconds, level = _CONSONANTS[consonant]
            start = note["onset"] - int(seconds * sr)
            amp[max(on - int(seconds * rate), 0) : max(on, 0)] = 0.0
            consonants.append((start, int(seconds * sr), low, high, level))
        previous_end = end
    if np.all(np.isnan(pitch)):
        return np.zeros(n)
    # hold the pitch through rests, so glides start from the last sung note
    index = np.where(~np.isnan(pitch), np.arange(n_ctrl), 0)
    np.maximum.accumulate(index, out=index)
    first = int(np.argmax(~np.isnan(pitch)))
    pitch = np.where(np.isnan(pitch), pitch[first], pitch[index])
    pitch = _one_pole(pitch, singer["glide"], rate)
    scoop = sps.lfilter([1], [1, -np.exp(-1 / (0.05 * rate))], scoop)
    vib_depth = _one_pole(vib_depth, 0.15, rate)
    vib_rate = singer["vib_rate"] * (1 + 0.05 * _lowpass_noise(rng, n_ctrl, int(rate)))
    vibrato = vib_depth * np.sin(2 * np.pi * np.cumsum(vib_rate) / rate)
    drift = 0.1 * _lowpass_noise(rng, n_ctrl, int(0.3 * rate)) / 0.05
    drift = np.clip(drift, -0.15, 0.15)
    midi = pitch + scoop + vibrato + drift
    amp = _one_pole(amp, 0.025, rate) * (1 + 0.04 * _lowpass_noise(rng, n_ctrl, int(0.02 * rate)))
    breath = _one_pole(breath, 0.05, rate)
    samples = np.arange(n) / control
    f0 = np.interp(samples, np.arange(n_ctrl), midi_hz(midi))
    amp_s = np.interp(samples, np.arange(n_ctrl), amp)
    breath_s = np.interp(samples, np.arange(n_ctrl), breath)
    phase = np.cumsum(f0 / sr)
    glottal = _saw(f0, sr) * amp_s
    aspiration = rng.standard_normal(n) * (0.6 + 0.4 * np.cos(2 * np.pi * phase))
    source = glottal + aspiration * (amp_s * singer["breathiness"] + breath_s)
    # vowel targets per control frame, carried forward, then smoothed (coarticulation)
    index = np.where(vowel_ids >= 0, np.arange(n_ctrl), 0)
    np.maximum.accumulate(index, out=index)
    vowel_ids = np.where(vowel_ids[index] >= 0, vowel_ids[index], 0)
    table = list(_FORMANTS[voice]) + [_NASAL, _BREATH]
    formants = np.array([row[0] for row in table], dtype=float)[vowel_ids] * singer["tract"]
    bandwidths = np.array([row[1] for row in table], dtype=float)[vowel_ids]
    smooth = sps.butter(1, 12 / (rate / 2))
    formants = sps.filtfilt(*smooth, formants, axis=0)
    bandwidths = sps.filtfilt(*smooth, bandwidths, axis=0)
    out = _formant_filter(source, sr, formants, bandwidths, singer["tilt"], control)
    voiced_rms = _rms(out)
    for start, length, low, high, level in consonants:
        if start < 0 or start + length > n or length < 8:
            continue
        burst = _bandpass_noise(rng, length, sr, low, min(high, sr / 2 - 1))
        shape = (
            np.hanning(length) if length > 0.05 * sr else np.exp(-np.arange(length) / length * 4)
        )
        out[start : start + length] += burst / (np.std(burst) + 1e-9) * shape * level * voiced_rms
    return out


def _formant_filter(source, sr, formants, bandwidths, tilt, control) -> np.ndarray:
    """Apply a time-varying formant envelope to ``source`` in the STFT domain."""
    n_fft = 1 << int(np.ceil(np.log2(0.04 * sr)))
    hop = n_fft // 4
    window = np.hanning(n_fft + 1)[:-1]
    n = source.shape[0]
    padded = np.pad(source, (n_fft, n_fft + hop))
    frames = np.lib.stride_tricks.sliding_window_view(padded, n_fft)[::hop]
    active = np.abs(frames).max(axis=1) > 1e-6
    spectrum = np.zeros((frames.shape[0], n_fft // 2 + 1), dtype=complex)
    spectrum[active] = np.fft.rfft(frames[active] * window, axis=1)
    centres = (np.arange(frames.shape[0]) * hop + n_fft // 2 - n_fft) / control
    pick = np.clip(np.round(centres).astype(int), 0, formants.shape[0] - 1)[active]
    freqs = np.fft.rfftfreq(n_fft, 1 / sr)
    spectrum[active] *= _formant_envelope(freqs, formants[pick], bandwidths[pick], tilt)
    frames_out = np.fft.irfft(spectrum, n_fft, axis=1) * window
    out = np.zeros(padded.shape[0])
    norm = np.zeros(padded.shape[0])
    for k in range(n_fft // hop):  # overlap-add, one pass per overlapping layer
        layer = frames_out[k :: n_fft // hop]
        starts = k * hop + np.arange(layer.shape[0]) * n_fft
        usable = starts + n_fft <= out.shape[0]
        flat = layer[usable].reshape(-1)
        out[k * hop : k * hop + flat.shape[0]] += flat
        norm[k * hop : k * hop + flat.shape[0]] += np.tile(window**2, int(usable.sum()))
    return (out / np.maximum(norm, 1e-3))[n_fft : n_fft + n]


def render_vocals(rng, plan: SongPlan) -> Tuple[np.ndarray, str]:
    """The vocal stem, (2, time): a lead line, sometimes a harmony in the chorus, and a
    tempo-synced echo. Returns the stem and the voice type."""
    voice = str(rng.choice(["low", "high"]))
    base = 48 if voice == "low" else 60
    low = base + int(rng.integers(-2, 4))
    notes = melody(rng, plan, low, low + int(rng.integers(12, 17)))
    lead = render_voice(rng, plan, notes, voice)
    out = _pan(lead, 0.0)
    if rng.random() < 0.4:
        harmony = []
        for note in notes:
            if note["section"] == "chorus":
                pitch = plan.degree_pitch(note["degree"] + 2, 12 * int(note["pitch"] // 12))
                while pitch < note["pitch"]:
                    pitch += 12
                harmony.append(dict(note, pitch=float(pitch), onset=note["onset"] + 200))
        if harmony:
            second = render_voice(rng, plan, harmony, voice)
            out = out + _pan(second, rng.choice([-1, 1]) * rng.uniform(0.2, 0.5)) * 0.4
    if rng.random() < 0.5:
        delay = int(plan.beat * rng.choice([0.5, 0.75, 1.0]))
        echo = _lowpass(out, plan.sr, 3000)
        feedback = rng.uniform(0.15, 0.35)
        for k in range(1, 4):
            if k * delay >= plan.n:
                break
            shifted = np.zeros_like(out)
            shifted[:, k * delay :] = echo[:, : plan.n - k * delay]
            out = out + (shifted[::-1] if k % 2 else shifted) * feedback**k
    return out, voice


# --------------------------------------------------------------------------------------
# Room, levels, files
# --------------------------------------------------------------------------------------


def _room(rng, sr: int) -> Tuple[np.ndarray, np.ndarray]:
    """A stereo room: decorrelated exponentially decaying noise, darker as it decays."""
    rt60 = rng.uniform(0.4, 1.6)
    m = int(rt60 * sr)
    t = np.arange(m) / sr
    predelay = int(rng.uniform(0.005, 0.03) * sr)
    pair = []
    for _ in range(2):
        bright = rng.standard_normal(m) * np.exp(-6.9 * t / (rt60 * 0.5))
        dark = _lowpass(rng.standard_normal(m), sr, 3000) * np.exp(-6.9 * t / rt60)
        response = np.concatenate([np.zeros(predelay), bright + 2 * dark])
        pair.append(response / np.sqrt(np.sum(response**2)))
    return pair[0], pair[1]


def _with_room(stem: np.ndarray, room, send_db: float) -> np.ndarray:
    mono = stem.mean(axis=0)
    n = mono.shape[0]
    wet = np.stack([sps.fftconvolve(mono, room[0])[:n], sps.fftconvolve(mono, room[1])[:n]])
    return stem + wet * 10 ** (send_db / 20)


def render_song(
    rng: np.random.Generator,
    seconds: float,
    sample_rate: int,
    stereo: bool = True,
    instruments: str = "synth",
    soundfont: Optional[str] = None,
) -> Tuple[Dict[str, np.ndarray], dict]:
    """The four stems of one song and its description.

    Args:
        rng: The song's generator (the song is a function of its state).
        seconds: Duration.
        sample_rate: Sample rate.
        stereo: Two channels (else one, the average).
        instruments: ``"synth"`` (numpy synthesis) or ``"soundfont"`` (drums, bass and
            other played by sampled General MIDI instruments through ``tinysoundfont``;
            vocals stay synthesised).
        soundfont: .sf2 file for ``"soundfont"`` (default: the one ``pretty_midi`` ships).

    Returns:
        (stems, info): stems maps each of :data:`STEMS` to a (channels, time) float32 array
        (their sum is the mixture); info describes tempo, key, style, instruments.
    """
    if instruments not in ("synth", "soundfont"):
        raise ValueError(f"instruments must be 'synth' or 'soundfont', got {instruments!r}.")
    band = SoundFontBand(sample_rate, soundfont) if instruments == "soundfont" else None
    n = int(round(seconds * sample_rate))
    plan = SongPlan(rng, n, sample_rate)
    spec = STYLES[plan.style]
    comp = str(rng.choice(spec["comp"]))
    layer = str(rng.choice(["pad", "arpeggio", "pad"]))
    kick_steps = spec["kicks"][int(rng.integers(len(spec["kicks"])))]
    drums = render_drums(rng, plan, kick_steps, band)
    bass = render_bass(rng, plan, bass_line(rng, plan, kick_steps), band)
    main = render_comp(rng, plan, comp, band)
    extra = render_pad(rng, plan, band) if layer == "pad" else render_arpeggio(rng, plan, band)
    layer_gate = np.repeat([b["layer"] for b in plan.bars], int(np.ceil(plan.bar)))[:n]
    layer_gate = _one_pole(layer_gate.astype(float), 0.05, sample_rate)
    other = _at_level(main, 0) + _at_level(extra, -rng.uniform(2, 8)) * layer_gate
    vocals, voice = render_vocals(rng, plan)
    stems = dict(drums=drums, bass=bass, other=other, vocals=vocals)
    room = _room(rng, sample_rate)
    sends = dict(drums=(-20, -10), bass=(-35, -25), other=(-16, -8), vocals=(-14, -7))
    for name in STEMS:
        stems[name] = _with_room(stems[name], room, rng.uniform(*sends[name]))
        stems[name] = _at_level(stems[name], rng.uniform(*STEM_LEVELS_DB[name]))
    if not stereo:
        stems = {k: v.mean(axis=0, keepdims=True) for k, v in stems.items()}
    stems = {k: v.astype(np.float32) for k, v in stems.items()}
    mixture = mix_stems(stems)
    scale = rng.uniform(0.5, 0.95) / (np.max(np.abs(mixture)) + 1e-9)
    stems = {k: (v * scale).astype(np.float32) for k, v in stems.items()}
    info = dict(plan.summary(), comp=comp, layer=layer, voice=voice, instruments=instruments)
    return stems, info


def mix_stems(stems: Dict[str, np.ndarray]) -> np.ndarray:
    """The mixture as written: the float32 sum of the stems in :data:`STEMS` order."""
    mixture = np.zeros_like(stems[STEMS[0]], dtype=np.float32)
    for name in STEMS:
        mixture += stems[name]
    return mixture


def _song_name(split: str, index: int, info: dict) -> str:
    key = info["key"].replace(" ", "-")
    return f"Synth {split} {index:03d} - {info['style']} in {key} at {round(info['bpm'])} bpm"


def _write_song(args) -> Tuple[str, str, dict]:
    out_dir, split, index, seed, seconds, sample_rate, stereo, instruments, soundfont = args
    split_id = 0 if split == "train" else 1
    rng = np.random.default_rng([seed, split_id, index])
    stems, info = render_song(rng, seconds, sample_rate, stereo, instruments, soundfont)
    name = _song_name(split, index, info)
    folder = os.path.join(out_dir, split, name)
    os.makedirs(folder, exist_ok=True)
    for stem, wav in stems.items():
        write_audio_atomic(os.path.join(folder, f"{stem}.wav"), wav, sample_rate)
    write_audio_atomic(os.path.join(folder, "mixture.wav"), mix_stems(stems), sample_rate)
    return split, name, info


def make_music_corpus(
    out_dir: str,
    n_train_songs: int = 40,
    n_test_songs: int = 10,
    seconds: float = 20.0,
    sample_rate: int = 44100,
    seed: int = 0,
    stereo: bool = True,
    num_workers: int = 1,
    instruments: str = "synth",
    soundfont: Optional[str] = None,
) -> str:
    """Write a MUSDB18-HQ-style folder of synthetic songs; returns ``out_dir``.

    Layout: ``<out_dir>/{train,test}/<song>/{mixture,drums,bass,other,vocals}.wav`` (float
    wav; the mixture is exactly the sum of the stems) and ``<out_dir>/corpus.json``
    describing each song (style, tempo, key, instruments).

    Args:
        out_dir: Output folder.
        n_train_songs: Songs in ``train``.
        n_test_songs: Songs in ``test``.
        seconds: Duration of every song.
        sample_rate: Sample rate (MUSDB18: 44100).
        seed: Base seed; a song depends only on (seed, split, index) and the sizes.
        stereo: Two channels (MUSDB18 is stereo) or one.
        num_workers: Processes rendering songs in parallel (the result does not depend on it).
        instruments: ``"synth"`` (numpy, the default) or ``"soundfont"``: drums, bass and
            other from sampled General MIDI instruments (needs ``pip install tinysoundfont
            pretty_midi``, or ``soundfont=`` pointing at any .sf2 file).
        soundfont: The .sf2 file for ``instruments="soundfont"``.

    Returns:
        str: ``out_dir``.
    """
    for arg, value in (("n_train_songs", n_train_songs), ("n_test_songs", n_test_songs)):
        if value < 0:
            raise ValueError(f"{arg} must be >= 0, got {value}.")
    if seconds <= 0:
        raise ValueError(f"seconds must be > 0, got {seconds}.")
    if sample_rate < 8000:
        raise ValueError(f"sample_rate must be >= 8000 Hz, got {sample_rate}.")
    if instruments not in ("synth", "soundfont"):
        raise ValueError(f"instruments must be 'synth' or 'soundfont', got {instruments!r}.")
    if instruments == "soundfont":
        SoundFontBand(sample_rate, soundfont)  # fail before rendering anything
    jobs = [
        (out_dir, split, k, int(seed), float(seconds), int(sample_rate), bool(stereo))
        + (instruments, soundfont)
        for split, count in (("train", n_train_songs), ("test", n_test_songs))
        for k in range(count)
    ]
    if num_workers > 1 and len(jobs) > 1:
        with ProcessPoolExecutor(max_workers=num_workers) as pool:
            results = list(pool.map(_write_song, jobs))
    else:
        results = [_write_song(job) for job in jobs]
    songs = {split: {} for split in ("train", "test")}
    for split, name, info in results:
        songs[split][name] = info
    meta = dict(
        generator="asteroid_lass.data.music_synth",
        seed=int(seed),
        seconds=float(seconds),
        sample_rate=int(sample_rate),
        channels=2 if stereo else 1,
        instruments=instruments,
        soundfont=(
            os.path.basename(soundfont or default_soundfont())
            if instruments == "soundfont"
            else None
        ),
        stems=list(STEMS),
        license=MUSIC_CORPUS_LICENSE,
        songs=songs,
    )
    with atomic_write(os.path.join(out_dir, CORPUS_INFO_FILE)) as tmp_path:
        with open(tmp_path, "w") as handle:
            json.dump(meta, handle, indent=1)
    return out_dir
