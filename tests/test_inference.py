import os

import numpy as np
import pytest
import soundfile as sf
import torch

from asteroid_lass.cli import main as cli_main
from asteroid_lass.inference import WindowPlan, separate_file, separate_waveform
from conftest import write_wav


def _plan_weights(plan: WindowPlan) -> np.ndarray:
    total = np.zeros(plan.length)
    fade = plan.fade()
    for index in range(plan.n_windows):
        start, stop = plan.bounds(index)
        weight = np.ones(stop - start)
        if index > 0:
            weight[: plan.overlap] *= fade
        if index < plan.n_windows - 1:
            weight[-plan.overlap :] *= fade[::-1]
        total[start:stop] += weight
    return total


@pytest.mark.parametrize("length", [100, 1000, 1001, 2500, 9999])
def test_overlap_add_weights_sum_to_one(length):
    plan = WindowPlan(length=length, window=min(length, 1000), overlap=250 if length > 1000 else 0)
    np.testing.assert_allclose(_plan_weights(plan), 1.0, atol=1e-12)


def test_outputs_keep_length_rate_channels_and_residual_sums_to_mixture(tiny_model, tmp_path):
    rng = np.random.RandomState(0)
    stereo = (0.1 * rng.randn(2, int(44100 * 2.3))).astype(np.float32)
    path = write_wav(tmp_path / "song.wav", stereo, 44100)
    written = separate_file(
        tiny_model,
        path,
        ["dog barking", "violin"],
        residual=True,
        output_dir=str(tmp_path / "out"),
        window=1.0,
        overlap=0.25,
    )
    assert [os.path.basename(p) for p in written] == [
        "song_dog-barking.wav",
        "song_violin.wav",
        "song_residual.wav",
    ]
    outputs = []
    for p in written:
        data, rate = sf.read(p, dtype="float32", always_2d=True)
        assert rate == 44100 and data.shape == stereo.T.shape
        outputs.append(data.T)
    np.testing.assert_allclose(sum(outputs), stereo, atol=1e-5)


@pytest.mark.parametrize("seconds", [1.0, 2.0])
def test_one_second_file_and_file_of_exactly_one_window(tiny_model, seconds):
    wav = np.random.RandomState(1).randn(1, int(16000 * seconds)).astype(np.float32)
    out = separate_waveform(tiny_model, wav, 16000, ["siren"], window=2.0)
    assert out.shape == (1, 1, wav.shape[1])
    with torch.no_grad():
        full = tiny_model.separate(torch.from_numpy(wav), query="siren").numpy()
    np.testing.assert_allclose(out[0], full, atol=1e-5)  # one window == one full pass
    assert np.abs(out).max() > 0  # AudioSep's chunked mode returns silence here


def test_multi_query_equals_single_query_calls(tiny_model):
    wav = np.random.RandomState(2).randn(1, 16000 * 3).astype(np.float32)
    both = separate_waveform(tiny_model, wav, 16000, ["siren", "bell"], window=1.0, batch_size=3)
    for k, query in enumerate(["siren", "bell"]):
        single = separate_waveform(tiny_model, wav, 16000, [query], window=1.0, batch_size=1)
        np.testing.assert_allclose(both[k], single[0], atol=1e-5)


def test_negative_query_conditions_on_the_combined_embedding(tiny_model):
    wav = np.random.RandomState(3).randn(1, 16000 * 2).astype(np.float32)
    cleaned = separate_waveform(tiny_model, wav, 16000, ["siren"], negative=["wind"], window=2.0)
    siren, wind = tiny_model.query_encoder.embed_text(["siren", "wind"])
    combined = torch.nn.functional.normalize(siren - 0.25 * wind, dim=-1)
    with torch.no_grad():
        expected = tiny_model(torch.from_numpy(wav)[None], combined[None])[0].numpy()
    np.testing.assert_allclose(cleaned[0], expected, atol=1e-5)
    plain = separate_waveform(tiny_model, wav, 16000, ["siren"], window=2.0)
    assert np.abs(cleaned - plain).max() > 1e-4  # the negative query changed the estimate
    both = separate_waveform(
        tiny_model, wav, 16000, ["siren", "bell"], negative=["wind"], residual=True, window=2.0
    )
    np.testing.assert_allclose(both.sum(axis=0), wav, atol=1e-5)


def _save(model, path):
    torch.save(model.serialize(), path)
    return str(path)


def test_cli_separates_a_directory_and_refuses_to_overwrite(tiny_model, tmp_path, capsys):
    model_path = _save(tiny_model, tmp_path / "model.pth")
    inputs = tmp_path / "in"
    inputs.mkdir()
    for name in ("a.wav", "b.flac"):
        sf.write(str(inputs / name), np.random.RandomState(0).randn(8000) * 0.1, 16000)
    out = tmp_path / "out"
    args = [
        "separate",
        str(inputs),
        "--query",
        "Dog barking!",
        "--model",
        model_path,
        "--out",
        str(out),
        "--no-progress",
        "--window",
        "0.3",
    ]
    assert cli_main(args) == 0
    assert sorted(os.listdir(out)) == ["a_dog-barking.wav", "b_dog-barking.wav"]
    before, _ = sf.read(str(out / "a_dog-barking.wav"))
    (out / "a_dog-barking.wav").write_bytes(b"user data")
    assert cli_main(args) == 1
    assert "output exists" in capsys.readouterr().err
    assert (out / "a_dog-barking.wav").read_bytes() == b"user data"
    assert cli_main(args + ["--force"]) == 0
    after, _ = sf.read(str(out / "a_dog-barking.wav"))
    np.testing.assert_allclose(after, before, atol=1e-6)


def test_cli_error_cases_exit_non_zero_with_reason(tiny_model, tmp_path, capsys):
    model_path = _save(tiny_model, tmp_path / "model.pth")
    good = write_wav(tmp_path / "x.wav", np.zeros(1600, np.float32), 16000)
    junk = tmp_path / "junk.wav"
    junk.write_bytes(b"not audio at all")
    broken_model = tmp_path / "broken.pth"
    broken_model.write_bytes(b"garbage")
    out = str(tmp_path / "o")
    cases = {
        "input not found": [
            "separate",
            str(tmp_path / "missing.wav"),
            "--query",
            "a",
            "--model",
            model_path,
            "--out",
            out,
        ],
        "unreadable audio": [
            "separate",
            str(junk),
            "--query",
            "a",
            "--model",
            model_path,
            "--out",
            out,
        ],
        "no query": ["separate", good, "--model", model_path, "--out", out],
        "does not load": [
            "separate",
            good,
            "--query",
            "a",
            "--model",
            str(broken_model),
            "--out",
            out,
        ],
    }
    for reason, args in cases.items():
        assert cli_main(args + ["--no-progress"]) == 1, reason
        err = capsys.readouterr().err.strip()
        assert reason in err and len(err.splitlines()) == 1, err
