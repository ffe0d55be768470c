"""The sampled-instrument manifest script of egs/audioset/lass (rendering needs FluidSynth and
the FluidR3_GM soundfont: those tests are skipped without them)."""

import importlib.util
import os

import numpy as np
import pytest
import soundfile as sf

SCRIPT = os.path.join(
    os.path.dirname(__file__),
    "..",
    "egs",
    "audioset",
    "lass",
    "local",
    "make_instrument_manifest.py",
)


@pytest.fixture(scope="module")
def script():
    spec = importlib.util.spec_from_file_location("make_instrument_manifest", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


needs_fluidsynth = pytest.mark.skipif(
    not os.path.isfile("/usr/share/sounds/sf2/FluidR3_GM.sf2")
    or not any(
        os.access(os.path.join(d, "fluidsynth"), os.X_OK)
        for d in os.environ.get("PATH", "").split(os.pathsep)
    ),
    reason="needs fluidsynth and fluid-soundfont-gm",
)


def test_midi_file_bytes(tmp_path, script):
    path = str(tmp_path / "a.mid")
    # A4 from 0.5 s to 1.0 s; given out of order, the note-off at 1.0 s is written last.
    script.write_midi(path, [(1.0, 0, bytes([0x80, 69, 0])), (0.5, 2, bytes([0x90, 69, 100]))])
    track = (
        b"\x00\xff\x51\x03\x07\xa1\x20"  # tempo 500,000 us per beat (120 bpm)
        + b"\x83\x60\x90\x45\x64"  # 480 ticks (0.5 s at 960 ticks/s), note on 69, velocity 100
        + b"\x83\x60\x80\x45\x00"  # 480 ticks later, note off
        + b"\x00\xff\x2f\x00"
    )
    expected = (
        b"MThd\x00\x00\x00\x06\x00\x00\x00\x01\x01\xe0"  # format 0, 1 track, 480 per beat
        + b"MTrk"
        + len(track).to_bytes(4, "big")
        + track
    )
    assert open(path, "rb").read() == expected


def test_classes_with_commas_in_their_labels_parse(script):
    assert script._parse_classes("Piano,Violin, fiddle,Drum kit") == [
        "Piano",
        "Violin, fiddle",
        "Drum kit",
    ]
    with pytest.raises(SystemExit, match="unknown label 'Kazoo'"):
        script._parse_classes("Piano,Kazoo")


def test_missing_fluidsynth_is_one_line_with_the_install_command(tmp_path, script, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path))  # no fluidsynth there
    problem = script.check_tools(script.SOUNDFONT)
    assert "fluidsynth" in problem and "apt-get install -y fluidsynth fluid-soundfont-gm" in problem
    assert "\n" not in problem


@needs_fluidsynth
def test_a_rendered_note_has_its_pitch_and_onset(tmp_path, script):
    rate = 16000
    events = [(0.0, 1, bytes([0xC0, 73]))]  # flute
    events += [(0.5, 2, bytes([0x90, 69, 100])), (1.5, 0, bytes([0x80, 69, 0]))]
    script.write_midi(str(tmp_path / "a.mid"), events)
    audio = script.render(str(tmp_path / "a.mid"), str(tmp_path / "a.wav"), script.SOUNDFONT, rate)
    assert np.abs(audio[: int(0.45 * rate)]).max() < 1e-4  # silent before the note
    held = audio[int(0.7 * rate) : int(1.4 * rate)]
    spectrum = np.abs(np.fft.rfft(held * np.hanning(held.size)))
    peak_hz = np.argmax(spectrum) * rate / held.size
    assert abs(peak_hz - 440.0) < 5.0  # MIDI note 69 is A4


@needs_fluidsynth
def test_rendered_manifest_loads_and_splits_differ(tmp_path, script):
    from asteroid_lass.data import load_manifest
    from asteroid_lass.data.manifest import check_split_leakage

    out = tmp_path / "instruments"
    args = ["--out", str(out), "--train_per_class", "2", "--test_per_class", "1"]
    script.main(
        args + ["--seconds", "1.5", "--sample_rate", "16000", "--classes", "Cello,Drum kit"]
    )
    train, test = load_manifest(str(out / "train.csv")), load_manifest(str(out / "test.csv"))
    assert len(train) == 4 and len(test) == 2
    assert sorted(set(train["labels"])) == ["Cello", "Drum kit"]
    assert (train["duration"] == 1.5).all() and (train["sample_rate"] == 16000).all()
    check_split_leakage(str(out / "train.csv"), str(out / "test.csv"))
    clips = {path: sf.read(path)[0] for path in list(train["path"]) + list(test["path"])}
    for path, clip in clips.items():
        assert 0.3 - 1e-3 <= np.abs(clip).max() <= 0.9 + 1e-3, path  # peak level drawn
        assert np.sqrt(np.mean(clip**2)) > 0.01, path  # a phrase, not silence
    train_cello, test_cello = (t["path"][t["labels"] == "Cello"].iloc[0] for t in (train, test))
    n = min(clips[train_cello].size, clips[test_cello].size)
    assert not np.allclose(clips[train_cello][:n], clips[test_cello][:n], atol=1e-3)
    assert "MIT" in (out / "README.txt").read_text()
