"""Render a realistic manifest offline: sampled instruments playing random musical phrases.

Every clip is a random phrase (notes of a scale, random rhythm, velocity, register within the
instrument's range, some chords; grooves for the drum kit) written as MIDI and rendered by
FluidSynth with the General MIDI soundfont FluidR3_GM (MIT licence), then downmixed to mono.
The clips share registers on purpose (piano, organ, strings, choir, guitar in the same
octaves): separating them is a matter of timbre, as in real recordings. Clip ``k`` of a class
and split is a function of ``(--seed, split, class, k)`` only, and the train and test splits
use disjoint seeds.

Usage (Debian/Ubuntu: ``apt-get install -y fluidsynth fluid-soundfont-gm``)::

    python local/make_instrument_manifest.py --out /data/instruments \\
        --train_per_class 40 --test_per_class 10
    ./run.sh --dataset manifest --train_manifest /data/instruments/train.csv \\
        --test_manifest /data/instruments/test.csv

Writes ``<out>/{train,test}/<class>_<k>.wav`` (16-bit PCM), ``<out>/{train,test}.csv``
(manifests: path, labels, caption, duration, sample_rate) and ``<out>/README.txt`` (how it
was made, licences).
"""

import argparse
import os
import shutil
import struct
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from typing import Dict, List, Optional, Tuple

import numpy as np
import soundfile as sf

from asteroid_lass.data import write_manifest
from asteroid_lass.recipes.config import run_script
from asteroid_lass.utils import atomic_write

SOUNDFONT = "/usr/share/sounds/sf2/FluidR3_GM.sf2"
APT_HINT = "apt-get install -y fluidsynth fluid-soundfont-gm"
#: MIDI time base: 480 ticks per beat at 120 beats per minute, so 960 ticks per second.
TICKS_PER_BEAT = 480
TICKS_PER_SECOND = 960
#: Silence after each clip in a rendered file, long enough for the reverberation to die out.
GAP_SECONDS = 3.0
SPLITS = {"train": 0, "test": 1}
DRUM_CHANNEL = 9  # MIDI channel 10


@dataclass(frozen=True)
class Instrument:
    """A General MIDI instrument and how it is played.

    Attributes:
        program: GM program number (0-based); for the drum kit, unused.
        low, high: Playable MIDI notes (a phrase stays inside).
        chords: Chance that a note is played as a chord.
        sustained: Bowed, blown or sung (held notes, swelling expression, vibrato) rather than
            struck or plucked.
        noun: Name in captions.
    """

    program: int
    low: int
    high: int
    chords: float
    sustained: bool
    noun: str


#: Label (AudioSet display name where one fits) -> instrument.
INSTRUMENTS: Dict[str, Instrument] = {
    "Piano": Instrument(0, 36, 96, 0.35, False, "piano"),
    "Organ": Instrument(19, 36, 91, 0.45, True, "church organ"),
    "Violin, fiddle": Instrument(40, 55, 93, 0.05, True, "violin"),
    "Cello": Instrument(42, 36, 76, 0.05, True, "cello"),
    "Flute": Instrument(73, 60, 96, 0.0, True, "flute"),
    "Clarinet": Instrument(71, 50, 89, 0.0, True, "clarinet"),
    "Trumpet": Instrument(56, 54, 84, 0.0, True, "trumpet"),
    "Acoustic guitar": Instrument(24, 40, 81, 0.3, False, "nylon-string guitar"),
    "Choir": Instrument(52, 48, 79, 0.45, True, "choir singing aah"),
    "String section": Instrument(48, 36, 91, 0.45, True, "string ensemble"),
    "Double bass": Instrument(32, 28, 55, 0.0, False, "acoustic bass"),
    "Drum kit": Instrument(0, 35, 81, 0.0, False, "drum kit"),
    # More, for --classes:
    "Saxophone": Instrument(65, 49, 81, 0.0, True, "alto saxophone"),
    "French horn": Instrument(60, 41, 77, 0.0, True, "french horn"),
    "Vibraphone": Instrument(11, 53, 89, 0.3, False, "vibraphone"),
    "Harp": Instrument(46, 36, 96, 0.3, False, "harp"),
}
DEFAULT_CLASSES = list(INSTRUMENTS)[:12]

SCALES = {
    "major": (0, 2, 4, 5, 7, 9, 11),
    "minor": (0, 2, 3, 5, 7, 8, 10),
    "dorian": (0, 2, 3, 5, 7, 9, 10),
    "harmonic minor": (0, 2, 3, 5, 7, 8, 11),
    "major pentatonic": (0, 2, 4, 7, 9),
    "minor pentatonic": (0, 3, 5, 7, 10),
}
KEY_NAMES = ("C", "C#", "D", "Eb", "E", "F", "F#", "G", "Ab", "A", "Bb", "B")
# Note lengths in beats: an unhurried and a lively palette, with their weights.
RHYTHMS = {
    "slow": ((1.0, 1.5, 2.0, 3.0, 4.0), (0.3, 0.2, 0.3, 0.1, 0.1)),
    "lively": ((0.25, 0.5, 0.75, 1.0, 1.5), (0.15, 0.4, 0.1, 0.25, 0.1)),
}
# GM drum kits of FluidR3_GM's bank 128: standard, room, power, jazz, brush.
DRUM_KITS = {0: "standard", 8: "room", 16: "power", 32: "jazz", 40: "brush"}
KICK, SNARE, CLOSED_HAT, OPEN_HAT, CRASH, RIDE = 36, 38, 42, 46, 49, 51
TOMS = (50, 48, 47, 45, 43, 41)

Event = Tuple[float, int, bytes]  # (seconds, order at equal times, MIDI message)


def _cc(channel: int, controller: int, value: int) -> bytes:
    return bytes([0xB0 | channel, controller, int(np.clip(value, 0, 127))])


def _note(events: List[Event], channel: int, pitch: int, velocity: float, start, stop) -> None:
    velocity = int(np.clip(velocity, 1, 127))
    events.append((start, 2, bytes([0x90 | channel, pitch, velocity])))
    events.append((stop, 0, bytes([0x80 | channel, pitch, 0])))


def phrase(rng: np.random.Generator, instrument: Instrument, seconds: float) -> Tuple[list, str]:
    """Note events of one melodic phrase (times in seconds from the clip's start), and its
    caption."""
    events: List[Event] = []
    beat = 60.0 / rng.uniform(66, 150)
    root = int(rng.integers(12))
    scale_name = list(SCALES)[int(rng.integers(len(SCALES)))]
    scale = SCALES[scale_name]
    pace = "slow" if rng.random() < (0.6 if instrument.sustained else 0.3) else "lively"
    lengths, weights = RHYTHMS[pace]
    # Every note of the instrument's range that is in the key, and a register to stay near.
    pitches = [p for p in range(instrument.low, instrument.high + 1) if (p - root) % 12 in scale]
    centre = int(rng.integers(len(pitches)))
    span = len(scale) + 2  # about an octave and a third each side
    legato = rng.uniform(0.6, 1.0) if instrument.sustained else rng.uniform(0.85, 1.0)
    loudness = rng.uniform(55, 110)
    time_s, degree, rested = rng.uniform(0.0, 0.4), centre, True
    while time_s < seconds:
        length = float(rng.choice(lengths, p=weights)) * beat
        if not rested and rng.random() < 0.12:  # a short rest, never two in a row
            time_s += min(length, beat)
            rested = True
            continue
        rested = False
        step = int(rng.choice([-3, -2, -1, -1, 0, 1, 1, 2, 3, 5, -5]))
        degree = int(
            np.clip(degree + step, max(centre - span, 0), min(centre + span, len(pitches) - 1))
        )
        chord = [degree]
        if rng.random() < instrument.chords:  # a third and maybe a fifth above, in the key
            chord += list((degree + 2, degree + 4)[: int(rng.integers(1, 3))])
        velocity = loudness + rng.normal(0, 8)
        for d in chord:
            if d < len(pitches):
                stop = time_s + max(length * legato, 0.08)
                _note(events, 0, pitches[d], velocity + rng.normal(0, 4), time_s, stop)
        time_s += length
    caption = f"a {instrument.noun} playing a {pace} phrase in {KEY_NAMES[root]} {scale_name}"
    return events, caption


def groove(rng: np.random.Generator, seconds: float) -> Tuple[list, str, int]:
    """Drum-kit events of a random groove with fills, its caption and the kit's program."""
    events: List[Event] = []
    bpm = rng.uniform(70, 160)
    sixteenth = 15.0 / bpm
    kit = list(DRUM_KITS)[int(rng.integers(len(DRUM_KITS)))]
    cymbal = RIDE if rng.random() < 0.3 else CLOSED_HAT
    hat_every = 1 if rng.random() < 0.35 else 2  # sixteenths or eighths
    extra_kicks = [s for s in (3, 6, 10, 11, 14) if rng.random() < 0.3]
    loudness = rng.uniform(60, 115)
    start, step = rng.uniform(0.0, 0.3), 0
    while start + step * sixteenth < seconds:
        t, position = start + step * sixteenth, step % 16
        hits = []
        if step == 0 and rng.random() < 0.5:
            hits.append((CRASH, 1.0))
        fill = position >= 12 and (step // 16) % 2 == 1 and rng.random() < 0.5
        if fill:
            hits.append((TOMS[int(rng.integers(len(TOMS)))], 0.9))
        else:
            if position in (0, 8) or position in extra_kicks:
                hits.append((KICK, 1.0))
            if position in (4, 12):
                hits.append((SNARE, 1.0))
            elif rng.random() < 0.08:  # ghost note
                hits.append((SNARE, 0.35))
            if position % hat_every == 0:
                open_hat = cymbal == CLOSED_HAT and position == 14 and rng.random() < 0.3
                hits.append((OPEN_HAT if open_hat else cymbal, 0.7 if position % 4 else 0.85))
        for pitch, accent in hits:
            velocity = loudness * accent + rng.normal(0, 6)
            _note(events, DRUM_CHANNEL, pitch, velocity, t, t + sixteenth)
        step += 1
    caption = f"a {DRUM_KITS[kit]} drum kit playing a groove at {bpm:.0f} beats per minute"
    return events, caption, kit


def _variable_length(value: int) -> bytes:
    out = [value & 0x7F]
    value >>= 7
    while value:
        out.append(0x80 | (value & 0x7F))
        value >>= 7
    return bytes(reversed(out))


def write_midi(path: str, events: List[Event]) -> None:
    """A standard MIDI file (format 0, one track) at 120 beats per minute.

    Args:
        path: Output ``.mid`` file.
        events: ``(seconds, order, message)``; at equal times, lower ``order`` first (note-offs
            before note-ons, so a repeated note is not cut).
    """
    track = bytearray()
    tempo = 60_000_000 // 120  # microseconds per beat
    track += b"\x00\xff\x51\x03" + tempo.to_bytes(3, "big")
    last = 0
    for seconds, _, message in sorted(events, key=lambda e: (round(e[0] * TICKS_PER_SECOND), e[1])):
        tick = int(round(seconds * TICKS_PER_SECOND))
        track += _variable_length(tick - last) + message
        last = tick
    track += b"\x00\xff\x2f\x00"  # end of track
    header = b"MThd" + struct.pack(">IHHH", 6, 0, 1, TICKS_PER_BEAT)
    with open(path, "wb") as out:
        out.write(header + b"MTrk" + struct.pack(">I", len(track)) + bytes(track))


def clip_events(
    label: str, rng: np.random.Generator, seconds: float, offset: float
) -> Tuple[List[Event], str]:
    """One clip's events, shifted to ``offset`` seconds, with its set-up (program, effects
    sends, expression) first and every sound stopped at its end."""
    instrument = INSTRUMENTS[label]
    drums = label == "Drum kit"
    channel = DRUM_CHANNEL if drums else 0
    if drums:
        notes, caption, program = groove(rng, seconds)
    else:
        notes, caption = phrase(rng, instrument, seconds)
        program = instrument.program
    setup = [
        _cc(channel, 121, 0),  # reset controllers left by the previous clip
        bytes([0xC0 | channel, program]),
        _cc(channel, 7, 100),
        _cc(channel, 91, int(rng.uniform(10, 80))),  # reverberation send: dry to roomy
        _cc(channel, 93, 0),
    ]
    if instrument.sustained:
        setup.append(_cc(channel, 1, int(rng.uniform(0, 50))))  # vibrato depth
    events: List[Event] = [(offset - 0.5, 1, message) for message in setup]
    if instrument.sustained:  # a slowly swelling and fading bow, breath or voice
        knots = rng.uniform(70, 127, size=int(seconds) + 2)
        for t in np.arange(0.0, seconds, 0.05):
            value = np.interp(t, np.arange(knots.size), knots)
            events.append((offset + t, 1, _cc(channel, 11, int(value))))
    events += [(offset + t, order, message) for t, order, message in notes if t < seconds]
    end = offset + seconds
    events += [(end, 0, _cc(channel, 123, 0)), (end, 0, _cc(channel, 120, 0))]
    return events, caption


def render(midi_path: str, wav_path: str, soundfont: str, sample_rate: int) -> np.ndarray:
    """FluidSynth's rendering of a MIDI file, mono float."""
    command = [
        "fluidsynth", "-n", "-i", "-q", "-R", "1", "-C", "0", "-g", "0.5",
        "-r", str(sample_rate), "-O", "float", "-T", "wav", "-F", wav_path, soundfont, midi_path,
    ]  # fmt: skip
    result = subprocess.run(command, capture_output=True, text=True)
    if result.returncode != 0 or not os.path.isfile(wav_path):
        raise RuntimeError(f"fluidsynth failed: {(result.stderr or result.stdout).strip()}")
    audio, rate = sf.read(wav_path, dtype="float32", always_2d=True)
    if rate != sample_rate:
        raise RuntimeError(f"fluidsynth wrote {rate} Hz instead of {sample_rate} Hz.")
    return audio.mean(axis=1)


def slug(label: str) -> str:
    return "".join(ch if ch.isalnum() else "_" for ch in label.lower()).strip("_")


def render_class(
    label: str,
    split: str,
    count: int,
    out_dir: str,
    seconds: float,
    sample_rate: int,
    seed: int,
    soundfont: str,
) -> List[dict]:
    """Render ``count`` clips of one class into ``<out_dir>/<split>/``; their manifest rows."""
    class_index = list(INSTRUMENTS).index(label)  # stable whatever --classes selects
    slot = seconds + GAP_SECONDS
    events, captions, levels = [], [], []
    for k in range(count):
        rng = np.random.default_rng([seed, SPLITS[split], class_index, k])
        clip, caption = clip_events(label, rng, seconds, offset=0.5 + k * slot)
        events += clip
        captions.append(caption)
        levels.append(rng.uniform(0.3, 0.9))  # peak level, as the built-in corpus
    # A last, silent event a second after the last clip: the rendering covers that clip whole.
    events.append((0.5 + (count - 1) * slot + seconds + 1.0, 0, _cc(0, 121, 0)))
    with tempfile.TemporaryDirectory() as tmp:
        midi_path = os.path.join(tmp, "clips.mid")
        write_midi(midi_path, events)
        audio = render(midi_path, os.path.join(tmp, "clips.wav"), soundfont, sample_rate)
    length = int(round(seconds * sample_rate))
    fade = np.cos(0.5 * np.pi * np.arange(1, int(0.05 * sample_rate) + 1) / (0.05 * sample_rate))
    rows = []
    for k in range(count):
        start = int(round((0.5 + k * slot) * sample_rate))
        clip = np.zeros(length, dtype=np.float64)
        part = audio[start : start + length]
        clip[: part.size] = part
        clip[-fade.size :] *= fade**2  # the phrase is cut at the clip's end: no click
        peak = np.abs(clip).max()
        if peak < 1e-4:
            raise RuntimeError(f"{label} {split} clip {k} rendered silent; check the soundfont.")
        name = f"{slug(label)}_{k:04d}.wav"
        with atomic_write(os.path.join(out_dir, split, name)) as tmp_path:
            sf.write(tmp_path, clip * levels[k] / peak, sample_rate, "PCM_16", format="WAV")
        rows.append(
            dict(
                path=f"{split}/{name}",
                labels=label,
                caption=captions[k],
                duration=round(length / sample_rate, 4),
                sample_rate=sample_rate,
            )
        )
    return rows


def check_tools(soundfont: str) -> Optional[str]:
    """The error line for a missing program or soundfont, or None."""
    if shutil.which("fluidsynth") is None:
        return f"fluidsynth is not installed (program not on PATH); install it with: {APT_HINT}"
    if not os.path.isfile(soundfont):
        return (
            f"soundfont {soundfont} not found; install it with: {APT_HINT} "
            "(or pass --soundfont FILE)"
        )
    return None


README = """Sampled-instrument clips rendered by asteroid-lass
egs/audioset/lass/local/make_instrument_manifest.py, with:
  {command}
{classes} classes, {train} training and {test} test clips per class, {seconds} s mono at
{sample_rate} Hz, 16-bit PCM; {size} in total.

Licences: the clips are renderings of the FluidR3_GM soundfont (Frank Wen, MIT licence,
Debian package fluid-soundfont-gm) by FluidSynth (LGPL-2.1, used as a program); the phrases
are random draws of the script (MIT). The clips may be used and shared under the MIT licence.
"""


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", required=True, help="Output folder (outside the repository).")
    parser.add_argument("--train_per_class", type=int, default=40)
    parser.add_argument("--test_per_class", type=int, default=10)
    parser.add_argument("--seconds", type=float, default=5.0, help="Clip length.")
    parser.add_argument("--sample_rate", type=int, default=32000)
    parser.add_argument(
        "--classes",
        default=",".join(DEFAULT_CLASSES),
        help=f"Comma-separated labels, among: {'; '.join(INSTRUMENTS)}. Default: the first 12.",
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--soundfont", default=SOUNDFONT)
    args = parser.parse_args(argv)
    # Labels contain commas ("Violin, fiddle"): split on commas that start a known label.
    classes = _parse_classes(args.classes)
    for name, value in (
        ("--train_per_class", args.train_per_class),
        ("--test_per_class", args.test_per_class),
    ):
        if value < 1:
            sys.exit(f"error: {name} must be >= 1, got {value}.")
    if not args.seconds > 0 or args.sample_rate < 8000:
        sys.exit("error: --seconds must be > 0 and --sample_rate >= 8000.")
    problem = check_tools(args.soundfont)
    if problem:
        sys.exit(f"error: {problem}")
    began = time.monotonic()
    for split, count in (("train", args.train_per_class), ("test", args.test_per_class)):
        os.makedirs(os.path.join(args.out, split), exist_ok=True)
        rows = []
        for label in classes:
            rows += render_class(
                label, split, count, args.out, args.seconds, args.sample_rate, args.seed,
                args.soundfont,
            )  # fmt: skip
            print(f"{split}: {label} ({count} clips)", flush=True)
        write_manifest(rows, os.path.join(args.out, f"{split}.csv"))
    size = sum(
        os.path.getsize(os.path.join(root, name))
        for root, _, names in os.walk(args.out)
        for name in names
    )
    command = "python local/make_instrument_manifest.py " + " ".join(
        argv if argv is not None else sys.argv[1:]
    )
    with open(os.path.join(args.out, "README.txt"), "w") as out:
        out.write(
            README.format(
                command=command,
                classes=len(classes),
                train=args.train_per_class,
                test=args.test_per_class,
                seconds=args.seconds,
                sample_rate=args.sample_rate,
                size=f"{size / 1e6:.0f} MB",
            )
        )
    print(
        f"{len(classes)} classes rendered in {time.monotonic() - began:.0f} s, "
        f"{size / 1e6:.0f} MB: {os.path.join(args.out, 'train.csv')}, "
        f"{os.path.join(args.out, 'test.csv')}"
    )


def _parse_classes(text: str) -> List[str]:
    """``Piano,Violin, fiddle,Cello`` -> the three labels (a label may contain ", ")."""
    labels, pending = [], ""
    for part in text.split(","):
        pending = f"{pending},{part}" if pending else part
        if pending.strip() in INSTRUMENTS:
            labels.append(pending.strip())
            pending = ""
    if pending.strip() or not labels:
        known = "; ".join(INSTRUMENTS)
        sys.exit(f"error: --classes: unknown label {pending.strip()!r} (known: {known}).")
    return labels


if __name__ == "__main__":
    run_script(main)
