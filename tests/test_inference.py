import math
import os

import numpy as np
import pytest
import soundfile as sf
import torch

from asteroid_lass.cli import main as cli_main
from asteroid_lass.errors import LASSInputError
from asteroid_lass.inference import separate_file, separate_waveform
from asteroid_lass.models import Separator
from conftest import write_wav

RATE = 1000  # 1 kHz: window lengths in milliseconds are sample counts


class GainSeparator(Separator):
    """Each label scales the mixture by a fixed gain: every expected output is known exactly."""

    condition_kind = "label"
    GAINS = {"half": 0.5, "minus-quarter": -0.25, "double": 2.0}

    def __init__(self, sample_rate: float = RATE, in_channels: int = 1):
        super().__init__(sample_rate, in_channels, vocabulary=list(self.GAINS))
        self.register_buffer("gains", torch.tensor(list(self.GAINS.values())))

    def forward(self, mixture, conditions):
        return self.gains[conditions][..., None, None] * mixture[:, None]

    def get_model_args(self):
        return dict(sample_rate=float(self.sample_rate), in_channels=int(self.in_channels))


class WindowStartSeparator(Separator):
    """Outputs its window's first input sample everywhere: on a ramp t -> t, each window
    gives the constant index where it starts, which shows where windows start and how two
    neighbours are blended."""

    condition_kind = "label"

    def __init__(self, sample_rate: float = RATE):
        super().__init__(sample_rate, 1, vocabulary=["start"])

    def forward(self, mixture, conditions):
        return mixture[:, None, :, :1].expand(-1, 1, -1, mixture.shape[-1]).clone()

    def get_model_args(self):
        return dict(sample_rate=float(self.sample_rate))


class SwappingBlind(Separator):
    """Two unordered outputs, 0.5 and -0.25 times the mixture, swapped in every window whose
    first sample is positive, as a blind model's outputs may come in any order."""

    condition_kind = "none"
    n_src = 2

    def __init__(self, sample_rate: float = RATE):
        super().__init__(sample_rate)

    def forward(self, mixture, conditions=None):
        outputs = torch.stack([0.5 * mixture, -0.25 * mixture], dim=1)
        swap = mixture[:, 0, 0] > 0
        outputs[swap] = outputs[swap].flip(1)
        return outputs

    def get_model_args(self):
        return dict(sample_rate=float(self.sample_rate))


class LongestInputHalf(Separator):
    """Halves the mixture; declares a longest input of 0.25 s, refuses anything longer and
    records the lengths it is given."""

    condition_kind = "none"
    n_src = 1
    max_input_seconds = 0.25

    def __init__(self, sample_rate: float = RATE):
        super().__init__(sample_rate)
        self.seen = []

    def forward(self, mixture, conditions=None):
        if mixture.shape[-1] > 250:
            raise ValueError(f"{mixture.shape[-1]} samples, more than the declared 250")
        self.seen.append(mixture.shape[-1])
        return 0.5 * mixture[:, None]

    def get_model_args(self):
        return dict(sample_rate=float(self.sample_rate))


# (samples, window seconds, overlap): lengths shorter than, equal to, one past, a multiple of
# and not a multiple of the hop; odd windows; no and maximal overlap; one-sample windows.
PLANS = [
    (1, 0.1, 0.25),
    (60, 0.1, 0.25),
    (100, 0.1, 0.25),
    (101, 0.1, 0.25),
    (250, 0.1, 0.25),
    (1234, 0.1, 0.25),
    (1234, 0.1, 0.5),
    (1234, 0.1, 0.0),
    (777, 0.037, 0.3),
    (50, 0.001, 0.5),
]


@pytest.mark.parametrize("length, window, overlap", PLANS)
@pytest.mark.parametrize("batch_size", [1, 3])
def test_overlap_add_of_a_fixed_gain_is_the_gain(length, window, overlap, batch_size):
    """Whatever the windows, a model that multiplies by g gives g * mixture everywhere,
    at window joins too, and the residual is (1 - sum of gains) * mixture."""
    model = GainSeparator(in_channels=1)
    wav = np.random.RandomState(length).randn(2, length).astype(np.float32)  # stereo
    out = separate_waveform(
        model,
        wav,
        RATE,
        query=["half", "minus-quarter", "double"],
        residual=True,
        window=window,
        overlap=overlap,
        batch_size=batch_size,
    )
    assert out.shape == (4, 2, length) and out.dtype == np.float32
    for k, gain in enumerate([0.5, -0.25, 2.0, 1 - (0.5 - 0.25 + 2.0)]):
        np.testing.assert_allclose(out[k], gain * wav, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("length, window, overlap", [(1234, 0.1, 0.25), (777, 0.037, 0.3)])
def test_windows_start_every_hop_and_blend_with_complementary_fades(length, window, overlap):
    window_n = round(window * RATE)
    overlap_n = round(overlap * window_n)
    hop = window_n - overlap_n
    # Enough windows to cover the signal, each starting one hop after the previous one.
    n_windows = math.ceil((length - window_n) / hop) + 1
    starts = [k * hop for k in range(n_windows)]
    assert starts[-1] + window_n >= length > starts[-1] + overlap_n

    ramp = np.arange(length, dtype=np.float32)
    out = separate_waveform(
        WindowStartSeparator(), ramp, RATE, query="start", window=window, overlap=overlap
    )[0, 0]
    fades = []
    for k, start in enumerate(starts):
        solo_from = start + (overlap_n if k > 0 else 0)
        solo_to = min(start + hop, length) if k < n_windows - 1 else length
        # Samples in one window only: exactly that window's output.
        np.testing.assert_array_equal(out[solo_from:solo_to], start)
        if k > 0:
            # Shared with the previous window: previous + fade * (this - previous).
            fades.append((out[start : start + overlap_n] - starts[k - 1]) / hop)
    fades = np.array(fades)
    # The same fade at every join, strictly rising inside (0, 1), mirror-symmetric: the
    # fade-out is the mirror of the fade-in and the two sum to one at every sample.
    np.testing.assert_allclose(fades, np.broadcast_to(fades[0], fades.shape), atol=1e-5)
    fade = fades[0]
    assert np.all(fade > 0) and np.all(fade < 1) and np.all(np.diff(fade) > 0)
    np.testing.assert_allclose(fade + fade[::-1], 1.0, atol=1e-5)


def test_file_outputs_scale_the_file_read_back_from_disk(tmp_path):
    """Outputs and residual of a file, read back from disk, against the input file's own
    samples, with blocks read from the file shorter than a window."""
    rng = np.random.RandomState(0)
    stereo = (0.3 * rng.randn(2, 2345)).astype(np.float32)
    path = str(tmp_path / "song.wav")
    sf.write(path, stereo.T, RATE, subtype="PCM_16")  # the samples on disk are not `stereo`
    written = separate_file(
        GainSeparator(),
        path,
        query=["half", "minus-quarter"],
        residual=True,
        output_dir=str(tmp_path / "out"),
        window=0.1,
        overlap=0.25,
        block_seconds=0.07,
    )
    assert [os.path.basename(p) for p in written] == [
        "song_half.wav",
        "song_minus-quarter.wav",
        "song_residual.wav",
    ]
    mixture, _ = sf.read(path, dtype="float32", always_2d=True)
    outputs = []
    for p, gain in zip(written, [0.5, -0.25, 0.75]):
        data, rate = sf.read(p, dtype="float32", always_2d=True)
        assert rate == RATE and data.shape == mixture.shape == (2345, 2)
        np.testing.assert_allclose(data, gain * mixture, rtol=1e-5, atol=1e-7)
        outputs.append(data)
    np.testing.assert_allclose(sum(outputs), mixture, atol=1e-6)


def test_blind_outputs_keep_their_order_across_windows(tmp_path):
    length = 2000
    wav = np.random.RandomState(5).randn(1, length).astype(np.float32)
    starts = range(0, length - 25, 75)  # 100-sample windows, 25 overlap
    swapped = [wav[0, s] > 0 for s in starts]
    assert any(swapped) and not all(swapped)  # the model really swaps between windows
    path = write_wav(tmp_path / "mix.wav", wav, RATE)
    written = separate_file(
        SwappingBlind(), path, output_dir=str(tmp_path), window=0.1, overlap=0.25
    )
    assert [os.path.basename(p) for p in written] == ["mix_source1.wav", "mix_source2.wav"]
    first, second = (sf.read(p, dtype="float32")[0] for p in written)
    gains = (-0.25, 0.5) if swapped[0] else (0.5, -0.25)  # the first window's order
    np.testing.assert_allclose(first, gains[0] * wav[0], rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(second, gains[1] * wav[0], rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("window, longest", [(10.0, 250), (0.1, 100)])
def test_windows_are_capped_at_the_models_longest_input(window, longest):
    model = LongestInputHalf()
    wav = np.random.RandomState(6).randn(1, 1000).astype(np.float32)
    out = separate_waveform(model, wav, RATE, window=window)
    assert max(model.seen) == longest
    np.testing.assert_allclose(out[0], 0.5 * wav, rtol=1e-5, atol=1e-6)


def test_resampled_windows_with_their_context_fit_the_longest_input():
    model = LongestInputHalf()
    wav = np.random.RandomState(7).randn(1, 3000).astype(np.float32)
    out = separate_waveform(model, wav, 3 * RATE)  # 0.05 s of context each side
    assert out.shape == (1, 1, 3000)
    assert 200 < max(model.seen) <= 250


def test_separate_on_a_longer_tensor_goes_through_windows():
    model = LongestInputHalf()
    wav = torch.randn(2, 1000, generator=torch.Generator().manual_seed(8))
    out = model.separate(wav)
    assert out.shape == (2, 1, 1000) and max(model.seen) == 250
    torch.testing.assert_close(out, 0.5 * wav[:, None])
    model.seen.clear()
    torch.testing.assert_close(model.separate(wav[0, :200]), 0.5 * wav[:1, :200])
    assert model.seen == [200]  # a short input is one pass


def test_outputs_keep_length_rate_channels_and_residual_sums_to_mixture(tiny_model, tmp_path):
    """The real model on a 44.1 kHz stereo file (resampled to 16 kHz and back, windows read
    with context): every output has the input's shape and rate, and the files written,
    read back, add up to the input file's samples."""
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
    mixture, _ = sf.read(path, dtype="float32", always_2d=True)
    outputs = []
    for p in written:
        data, rate = sf.read(p, dtype="float32", always_2d=True)
        assert rate == 44100 and data.shape == mixture.shape
        outputs.append(data)
    assert np.abs(outputs[0]).max() > 1e-3 and np.abs(outputs[0] - outputs[1]).max() > 1e-4
    np.testing.assert_allclose(sum(outputs), mixture, atol=1e-5)


@pytest.mark.parametrize("seconds", [1.0, 2.0])
def test_one_second_file_and_file_of_exactly_one_window(tiny_model, seconds):
    wav = np.random.RandomState(1).randn(1, int(16000 * seconds)).astype(np.float32)
    out = separate_waveform(tiny_model, wav, 16000, "siren", window=2.0)
    assert out.shape == (1, 1, wav.shape[1])
    full = tiny_model.separate(torch.from_numpy(wav[0]), query="siren").numpy()
    np.testing.assert_allclose(out[:, 0], full, atol=1e-5)  # one window == one full pass
    assert np.abs(out).max() > 0  # AudioSep's chunked mode returns silence here


def test_inputs_shorter_than_the_stft_are_padded_and_cropped(tiny_model):
    for length in (1, 100):
        wav = np.random.RandomState(length).randn(length).astype(np.float32)
        out = separate_waveform(tiny_model, wav, 16000, "siren")
        assert out.shape == (1, 1, length) and np.isfinite(out).all()


def test_multi_query_equals_single_query_calls(tiny_model):
    wav = np.random.RandomState(2).randn(1, 40000).astype(np.float32)  # three equal windows
    both = separate_waveform(tiny_model, wav, 16000, ["siren", "bell"], window=1.0, batch_size=3)
    for k, query in enumerate(["siren", "bell"]):
        single = separate_waveform(tiny_model, wav, 16000, query, window=1.0, batch_size=1)
        np.testing.assert_allclose(both[k], single[0], atol=1e-5)


def test_negative_query_conditions_on_the_combined_embedding(tiny_model):
    wav = np.random.RandomState(3).randn(1, 16000 * 2).astype(np.float32)
    cleaned = separate_waveform(tiny_model, wav, 16000, "siren", negative=["wind"], window=2.0)
    siren, wind = tiny_model.query_encoder.embed_text(["siren", "wind"])
    combined = torch.nn.functional.normalize(siren - 0.25 * wind, dim=-1)
    with torch.no_grad():
        expected = tiny_model(torch.from_numpy(wav)[None], combined[None, None])[0].numpy()
    np.testing.assert_allclose(cleaned, expected, atol=1e-5)
    plain = separate_waveform(tiny_model, wav, 16000, "siren", window=2.0)
    assert np.abs(cleaned - plain).max() > 1e-4  # the negative query changed the estimate
    # Adding a query does not change the other's negative-conditioned estimate.
    both = separate_waveform(
        tiny_model, wav, 16000, ["siren", "bell"], negative=["wind"], window=2.0
    )
    np.testing.assert_allclose(both[0], cleaned[0], atol=1e-5)


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
    capsys.readouterr()
    assert cli_main(args) == 2
    assert "output exists" in capsys.readouterr().err
    assert (out / "a_dog-barking.wav").read_bytes() == b"user data"
    assert cli_main(args + ["--force"]) == 0
    after, _ = sf.read(str(out / "a_dog-barking.wav"))
    np.testing.assert_allclose(after, before, atol=1e-6)


@pytest.mark.parametrize(
    "reason", ["input not found", "unreadable audio", "no query given", "could not load model"]
)
def test_cli_error_cases_exit_with_one_line_reason(tiny_model, tmp_path, capsys, reason):
    model_path = _save(tiny_model, tmp_path / "model.pth")
    good = write_wav(tmp_path / "x.wav", np.zeros(1600, np.float32), 16000)
    junk = tmp_path / "junk.wav"
    junk.write_bytes(b"not audio at all")
    broken_model = tmp_path / "broken.pth"
    broken_model.write_bytes(b"garbage")
    out = str(tmp_path / "o")
    args = {
        "input not found": [str(tmp_path / "missing.wav"), "--query", "a", "--model", model_path],
        "unreadable audio": [str(junk), "--query", "a", "--model", model_path],
        "no query given": [good, "--model", model_path],
        "could not load model": [good, "--query", "a", "--model", str(broken_model)],
    }[reason]
    assert cli_main(["separate"] + args + ["--out", out, "--no-progress"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("asteroid-lass separate: error: "), err
    assert reason in err.lower() and len(err.splitlines()) == 1, err
    assert not os.path.exists(out)  # nothing written, not even the output folder


def test_bf16_precision_is_opt_in_close_to_fp32_and_named_when_wrong(tiny_model, tmp_path, capsys):
    wav = np.random.RandomState(4).randn(1, 16000).astype(np.float32)
    fp32 = separate_waveform(tiny_model, wav, 16000, "siren")
    assert np.array_equal(
        fp32, separate_waveform(tiny_model, wav, 16000, "siren", precision="fp32")
    )
    bf16 = separate_waveform(tiny_model, wav, 16000, "siren", precision="bf16")
    assert bf16.dtype == np.float32
    error = np.linalg.norm(bf16 - fp32) / np.linalg.norm(fp32)
    # bf16 keeps 8 significant bits (relative rounding 2**-9 per operation); over the layers of
    # a random network on noise the error grows to a few percent (6.5 % here), far from a
    # broken pass (~100 %): the outputs agree within 20 dB ...
    assert error < 0.1, error
    # ... and is not zero: the forward pass really ran in bf16.
    assert error > 1e-4, error
    with pytest.raises(LASSInputError, match="precision must be one of"):
        separate_waveform(tiny_model, wav, 16000, "siren", precision="fp16")

    model_path = _save(tiny_model, tmp_path / "model.pth")
    good = write_wav(tmp_path / "x.wav", wav[0], 16000)
    common = [good, "--query", "siren", "--model", model_path, "--no-progress"]
    assert cli_main(["separate", *common, "--out", str(tmp_path / "b"), "--precision", "bf16"]) == 0
    written, _ = sf.read(str(tmp_path / "b" / "x_siren.wav"), dtype="float32")
    np.testing.assert_allclose(written, bf16[0, 0], atol=1e-6)  # outputs are float WAV
    capsys.readouterr()
    assert cli_main(["separate", *common, "--out", str(tmp_path / "c"), "--precision", "fp16"]) == 2
    err = capsys.readouterr().err.strip()
    assert "precision must be one of" in err and len(err.splitlines()) == 1, err
