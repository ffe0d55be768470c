"""Blind models through chunked inference (window-to-window output alignment, Asteroid's
ConvTasNet), and model files that hold no path of the machine that wrote them."""

import os

import numpy as np
import pytest
import soundfile as sf
import torch
from conftest import write_wav

from asteroid_lass.cli import main as cli
from asteroid_lass.inference import separate_file, separate_waveform
from asteroid_lass.models import Separator, as_separator, register
from asteroid_lass.models.base import save_model_file
from asteroid_lass.queries.clap import CHECKPOINT_ENV, file_sha256, find_checkpoint

RATE = 8000


class BandSplitShuffled(Separator):
    """An exact blind separator of a low and a high tone (a brick-wall split at 1 kHz) whose
    output order flips from one input to the next, as a blind model's may."""

    condition_kind = "none"

    def __init__(self, sample_rate=RATE):
        super().__init__(sample_rate=sample_rate)
        self.n_src = 2
        self.anchor = torch.nn.Parameter(torch.zeros(1))  # a parameter, for the device
        self.calls = 0

    def forward(self, mixture, conditions=None):
        spectrum = torch.fft.rfft(mixture.double())
        freqs = torch.fft.rfftfreq(mixture.shape[-1], 1 / self.sample_rate)
        low = torch.fft.irfft(spectrum * (freqs < 1000), n=mixture.shape[-1])
        high = torch.fft.irfft(spectrum * (freqs >= 1000), n=mixture.shape[-1])
        self.calls += 1
        pair = [low, high] if self.calls % 2 else [high, low]
        return torch.stack(pair, dim=1).float()

    def get_model_args(self):
        return dict(sample_rate=float(self.sample_rate))


register(BandSplitShuffled)


def _two_tones(seconds: float):
    t = np.arange(int(seconds * RATE)) / RATE
    low = 0.5 * np.sin(2 * np.pi * 200 * t) * (1 + 0.3 * np.sin(2 * np.pi * 0.5 * t))
    high = 0.3 * np.sin(2 * np.pi * 2500 * t) * (1 + 0.3 * np.cos(2 * np.pi * 0.7 * t))
    return low.astype(np.float32), high.astype(np.float32)


def test_blind_outputs_keep_following_one_source_across_windows():
    low, high = _two_tones(12.0)
    outputs = separate_waveform(BandSplitShuffled(), low + high, RATE, window=1.0, overlap=0.25)
    assert outputs.shape == (2, 1, low.size)
    which = int(np.argmax([abs(np.corrcoef(outputs[0, 0], s)[0, 1]) for s in (low, high)]))
    aligned = [outputs[0, 0], outputs[1, 0]] if which == 0 else [outputs[1, 0], outputs[0, 0]]
    for estimate, source in zip(aligned, (low, high)):
        # Every one-second stretch, not just the whole: a swap mid-file would show here.
        for start in range(0, low.size - RATE, RATE):
            part = slice(start, start + RATE)
            error = np.sum((estimate[part] - source[part]) ** 2) / np.sum(source[part] ** 2)
            assert error < 1e-2, start


def test_blind_outputs_stay_on_their_sources_across_pauses_of_every_source():
    """Where both tones pause over the samples two windows share, those samples say nothing
    about the order; the tracks' spectral envelopes carry it across the pause."""
    low, high = _two_tones(12.0)
    t = np.arange(low.size) / RATE
    # Windows of 1 s overlapping by 0.25 s meet over [0.75 k, 0.75 k + 0.25) s; three of
    # those meetings fall in silence (gates with 20 ms raised-cosine edges).
    gate = np.ones(low.size)
    for k in (4, 9, 13):
        start, stop = 0.75 * k - 0.1, 0.75 * k + 0.35
        edge = np.clip(np.minimum(t - start, stop - t) / 0.02, 0.0, 1.0)
        gate *= 1.0 - np.sin(0.5 * np.pi * edge) ** 2
    low, high = (low * gate).astype(np.float32), (high * gate).astype(np.float32)
    outputs = separate_waveform(BandSplitShuffled(), low + high, RATE, window=1.0, overlap=0.25)
    which = int(np.argmax([abs(np.corrcoef(outputs[0, 0], s)[0, 1]) for s in (low, high)]))
    aligned = [outputs[0, 0], outputs[1, 0]] if which == 0 else [outputs[1, 0], outputs[0, 0]]
    for estimate, source in zip(aligned, (low, high)):
        for start in range(0, low.size - RATE, RATE // 2):
            part = slice(start, start + RATE // 2)
            error = np.sum((estimate[part] - source[part]) ** 2) / np.sum(source[part] ** 2)
            assert error < 1e-2, start / RATE


def test_the_toy_really_swaps_its_outputs_between_calls():
    """Without alignment the check above would fail: consecutive windows swap outputs."""
    low, high = _two_tones(1.0)
    model = BandSplitShuffled()
    mixture = torch.from_numpy(low + high)[None, None]
    first, second = model(mixture)[0, :, 0], model(mixture)[0, :, 0]
    torch.testing.assert_close(first, second[[1, 0]])
    assert not torch.allclose(first, second, atol=1e-2)


def test_stereo_channels_of_a_blind_model_are_put_in_one_order(tmp_path):
    low, high = _two_tones(3.0)
    stereo = np.stack([low + high, 0.5 * low + 2 * high])
    outputs = separate_waveform(BandSplitShuffled(), stereo, RATE, window=1.0)
    for output in outputs:
        left = np.corrcoef(output[0], low)[0, 1]
        right = np.corrcoef(output[1], low)[0, 1]
        assert np.sign(left) == np.sign(right) and abs(left) > 0.9 or abs(left) < 0.1


def test_asteroid_convtasnet_runs_as_a_blind_model_from_its_own_file(tmp_path):
    from asteroid.models import ConvTasNet

    torch.manual_seed(0)
    convtasnet = ConvTasNet(n_src=2, n_blocks=2, n_repeats=1, n_filters=32, sample_rate=RATE)
    path = tmp_path / "convtasnet.pth"
    torch.save(convtasnet.serialize() | {"infos": {}}, path)  # Asteroid's own file layout
    mixture = 0.1 * np.random.default_rng(0).standard_normal(RATE + 123).astype(np.float32)
    source = write_wav(tmp_path / "mix.wav", mixture, RATE)
    out = tmp_path / "out"
    code = cli(["separate", source, "--model", str(path), "--out", str(out), "--no-progress"])
    assert code == 0
    assert sorted(os.listdir(out)) == ["mix_source1.wav", "mix_source2.wav"]
    wrapped = as_separator(convtasnet).eval()
    with torch.no_grad():
        direct = convtasnet.eval()(torch.from_numpy(mixture)[None])[0].numpy()
    for k in range(2):
        written = sf.read(str(out / f"mix_source{k + 1}.wav"))[0]
        assert written.shape == mixture.shape
        # The same network on one window: exactly Asteroid's own forward pass.
        np.testing.assert_allclose(written, direct[k, : mixture.size], atol=1e-5)
    assert wrapped.n_src == 2


def test_file_of_a_blind_model_refuses_a_query(tmp_path):
    low, high = _two_tones(1.0)
    source = write_wav(tmp_path / "mix.wav", low + high, RATE)
    with pytest.raises(ValueError, match="blind"):
        separate_file(BandSplitShuffled(), source, query="dog")


def test_clap_checkpoint_is_found_by_name_and_hash(tmp_path, monkeypatch):
    weights = tmp_path / "models" / "clap.pt"
    weights.parent.mkdir()
    weights.write_bytes(b"not really weights, but bytes to hash")
    digest = file_sha256(str(weights))
    monkeypatch.delenv(CHECKPOINT_ENV, raising=False)
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    with pytest.raises(FileNotFoundError) as missing:
        find_checkpoint("clap.pt", digest)
    message = str(missing.value)
    assert "clap.pt" in message and CHECKPOINT_ENV in message and str(tmp_path / "hf") in message
    monkeypatch.setenv(CHECKPOINT_ENV, str(weights.parent))  # a folder holding the name
    assert find_checkpoint("clap.pt", digest) == str(weights)
    with pytest.raises(FileNotFoundError, match="another SHA-256"):
        find_checkpoint("clap.pt", "0" * 64)
    monkeypatch.delenv(CHECKPOINT_ENV)
    cached = tmp_path / "hf" / "hub" / "models--laion--clap" / "snapshots" / "abc" / "clap.pt"
    cached.parent.mkdir(parents=True)
    cached.write_bytes(weights.read_bytes())
    assert find_checkpoint("clap.pt", digest) == str(cached)


def test_saved_clap_model_records_no_machine_path(tiny_clap_checkpoint, tmp_path):
    from asteroid_lass import LASSResUNet

    model = LASSResUNet(
        sample_rate=16000,
        n_fft=512,
        hop_length=160,
        channels="tiny",
        condition_dim=512,
        query_encoder={"name": "clap", "checkpoint": tiny_clap_checkpoint},
    )
    model.query_encoder  # builds it, recording its name and hash
    path = tmp_path / "model.pth"
    save_model_file(model, str(path))
    spec = torch.load(path, weights_only=True)["model_args"]["query_encoder"]
    assert spec["checkpoint"] == os.path.basename(tiny_clap_checkpoint)
    assert spec["sha256"] == file_sha256(tiny_clap_checkpoint)
    assert os.path.dirname(tiny_clap_checkpoint) not in repr(spec)


class BandSplitPrompted(BandSplitShuffled):
    """The same exact band split asked through prompts: a repeated ``band`` prompt has two
    interchangeable outputs (flipping between calls), ``mixture`` returns the input."""

    condition_kind = "prompt"

    def __init__(self, sample_rate=RATE):
        Separator.__init__(self, sample_rate=sample_rate, vocabulary=["band", "mixture"])
        self.anchor = torch.nn.Parameter(torch.zeros(1))
        self.calls = 0

    def forward(self, mixture, conditions):
        pair = iter(super().forward(mixture).unbind(1))
        outputs = [next(pair) if int(c) == 0 else mixture for c in conditions[0]]
        return torch.stack(outputs, dim=1)


register(BandSplitPrompted)


def test_repeated_prompts_keep_following_one_source_across_windows():
    low, high = _two_tones(6.0)
    mixture = low + high
    outputs = separate_waveform(
        BandSplitPrompted(), mixture, RATE, query=["band", "mixture", "band"], window=1.0
    )
    np.testing.assert_allclose(outputs[1, 0], mixture, atol=1e-5)  # a distinct prompt stays put
    first = 0 if abs(np.corrcoef(outputs[0, 0], low)[0, 1]) > 0.5 else 2
    for estimate, source in zip((outputs[first, 0], outputs[2 - first, 0]), (low, high)):
        for start in range(0, low.size - RATE, RATE):
            part = slice(start, start + RATE)
            error = np.sum((estimate[part] - source[part]) ** 2) / np.sum(source[part] ** 2)
            assert error < 1e-2, start
