"""Bad inputs (issue 15): every one gets one clear line, and nothing is lost.

Each case checks the exit status or the exception type, that the message names the culprit
(file, argument or position), and that no file of the user changed: every file and folder
under ``tmp_path`` is hashed before and after (:class:`Guard`).
"""

import copy
import hashlib
import math
import os
import re
import signal
import subprocess
import sys
import time

import numpy as np
import pandas as pd
import pytest
import soundfile as sf
import torch

from asteroid_lass.cli import main as cli
from asteroid_lass.data.datasets import QueryMixtureDataset
from asteroid_lass.data.manifest import check_split_leakage, load_manifest
from asteroid_lass.errors import (
    AudioFileError,
    LASSError,
    LASSInputError,
    ManifestError,
    ModelFileError,
    OutputExistsError,
    SeparationError,
)
from asteroid_lass.inference import separate_file, separate_waveform
from asteroid_lass.models import AsteroidSeparator, LASSResUNet, Separator
from asteroid_lass.models.base import load_model_file, query_slug, save_model_file
from asteroid_lass.queries import AudioQuery, QueryEncoder, register_query_encoder
from conftest import randomize_batchnorm, write_wav
from recipe_tools import user_error_line

RATE = 8000
ENCODER = "bad-input-hash"
PREFIX = "asteroid-lass separate: error: "


class HashEncoder(QueryEncoder):
    """16-d unit vectors drawn from a seed hashed from the text: a query encoder that loads in
    no time, so the CLI runs in-process on real model files."""

    name = ENCODER
    dim = 16

    def _encode_text(self, texts):
        rows = []
        for text in texts:
            seed = int.from_bytes(hashlib.sha256(text.encode()).digest()[:4], "little")
            rows.append(torch.randn(self.dim, generator=torch.Generator().manual_seed(seed)))
        return torch.nn.functional.normalize(torch.stack(rows), dim=-1)

    def embed_audio(self, waveform, sample_rate):
        level = torch.as_tensor(waveform, dtype=torch.float32).abs().mean()
        return torch.nn.functional.normalize(torch.ones(1, self.dim) + level, dim=-1)


register_query_encoder(ENCODER, HashEncoder)


class CopySeparator(Separator):
    """A label model whose label ``copy`` returns the mixture as the model received it: shows
    exactly how an input was converted to float."""

    condition_kind = "label"

    def __init__(self, sample_rate: float = RATE, fill: float = 1.0):
        super().__init__(sample_rate, 1, vocabulary=["copy"])
        self.register_buffer("gain", torch.tensor(1.0))
        self.fill = fill

    def forward(self, mixture, conditions):
        return self.gain * self.fill * mixture[:, None].expand(-1, conditions.shape[1], -1, -1)

    def get_model_args(self):
        return dict(sample_rate=float(self.sample_rate))


def make_model(seed: int = 0) -> LASSResUNet:
    torch.manual_seed(seed)
    model = LASSResUNet(
        sample_rate=RATE,
        n_fft=256,
        hop_length=64,
        channels="tiny",
        condition_dim=HashEncoder.dim,
        query_encoder={"name": ENCODER},
    )
    return randomize_batchnorm(model, seed)


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """The tiny models run faster on one thread, above all on a busy machine."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def model():
    return make_model().eval()


@pytest.fixture(scope="module")
def model_file(tmp_path_factory) -> str:
    path = str(tmp_path_factory.mktemp("models") / "tiny.pth")
    save_model_file(make_model(), path)
    return path


def snapshot(root) -> dict:
    """Every folder and (hashed) file under ``root``, hidden ones included."""
    state = {}
    for folder, _, files in os.walk(root):
        state[os.path.relpath(folder, root) + "/"] = "folder"
        for name in files:
            path = os.path.join(folder, name)
            with open(path, "rb") as handle:
                state[os.path.relpath(path, root)] = hashlib.sha256(handle.read()).hexdigest()
    return state


class Guard:
    """Hashes a folder before a run, then checks that nothing in it changed."""

    def __init__(self, root):
        self.root = root
        self.before = snapshot(root)

    def unchanged(self) -> None:
        assert snapshot(self.root) == self.before

    def added(self) -> list:
        """Checks that every earlier file is intact; returns what the run added."""
        after = snapshot(self.root)
        changed = [key for key, value in self.before.items() if after.get(key) != value]
        assert not changed, f"changed or removed: {changed}"
        return sorted(set(after) - set(self.before))


def noise(length: int, channels: int = 0, seed: int = 0) -> np.ndarray:
    shape = (channels, length) if channels else (length,)
    return (0.1 * np.random.default_rng(seed).standard_normal(shape)).astype(np.float32)


def run(capsys, *args):
    """The CLI in-process: (exit status, stdout, stderr)."""
    code = cli(["separate", *map(str, args), "--no-progress"])
    out, err = capsys.readouterr()
    return code, out, err


def one_line(err: str, *culprits: str) -> str:
    """stderr is one ``error:`` line, short, plain, naming every culprit."""
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith(PREFIX), err
    assert len(lines[0]) <= 400 + len(PREFIX), err
    assert "\x1b" not in err and "Traceback" not in err, err
    for culprit in culprits:
        assert str(culprit) in lines[0], (culprit, err)
    return lines[0]


def explicit_eval(model, mixture: torch.Tensor, texts) -> torch.Tensor:
    """The oracle: an explicit eval() forward on embeddings from a fresh encoder."""
    reference = copy.deepcopy(model).eval()
    with torch.no_grad():
        return reference(mixture, HashEncoder().embed_text(texts)[None])


def state_of(model) -> tuple:
    return (
        {k: v.clone() for k, v in model.state_dict().items()},
        [m.training for m in model.modules()],
    )


def assert_state(model, state) -> None:
    tensors, modes = state
    after = model.state_dict()
    assert all(torch.equal(after[k], v) for k, v in tensors.items())
    assert [m.training for m in model.modules()] == modes
    assert all(p.grad is None for p in model.parameters())


# ------------------------------------------------------------------ 1. model state
ENTRY_POINTS = ["tensor", "array", "method-file", "separate_file", "separate_waveform"]


@pytest.mark.parametrize("entry", ENTRY_POINTS)
def test_every_entry_point_runs_a_training_model_in_eval_mode_and_restores_it(entry, tmp_path):
    model = make_model().train()
    wav = noise(1200)
    path = write_wav(tmp_path / "mix.wav", wav, RATE)
    guard = Guard(tmp_path)
    state = state_of(model)
    with torch.enable_grad():
        if entry == "tensor":
            result = model.separate(torch.from_numpy(wav), query="dog")
            assert not result.requires_grad
        elif entry == "array":
            result = model.separate(wav, query="dog")
            assert isinstance(result, np.ndarray)
        elif entry == "separate_waveform":
            result = separate_waveform(model, wav, RATE, query="dog")
        else:
            if entry == "method-file":
                written = model.separate(path, query="dog")
            else:
                written = separate_file(model, path, query="dog")
            assert guard.added() == ["mix_dog.wav"]
            result = sf.read(written[0], dtype="float32")[0]
        assert torch.is_grad_enabled()
    assert_state(model, state)
    expected = explicit_eval(model, torch.from_numpy(wav)[None, None], ["dog"])[0, 0, 0]
    np.testing.assert_allclose(np.asarray(result).reshape(-1), expected.numpy(), atol=1e-5)
    # Train mode would have given something else (the check can fail).
    with torch.no_grad():
        train_out = copy.deepcopy(model)(
            torch.from_numpy(wav)[None, None], HashEncoder().embed_text(["dog"])[None]
        )
    assert not torch.allclose(train_out[0, 0, 0], expected, atol=1e-3)


def test_cli_output_equals_an_explicit_eval_forward(model_file, tmp_path, capsys):
    wav = noise(1500)
    path = write_wav(tmp_path / "a.wav", wav, RATE)
    guard = Guard(tmp_path)
    code, out, err = run(capsys, path, "--model", model_file, "--out", tmp_path, "--query", "dog")
    assert code == 0, err
    assert guard.added() == ["a_dog.wav"]
    expected = explicit_eval(make_model(), torch.from_numpy(wav)[None, None], ["dog"])
    np.testing.assert_allclose(sf.read(out.strip())[0], expected[0, 0, 0].numpy(), atol=1e-5)


@pytest.mark.parametrize("loader", ["asteroid", "separator", "class"])
def test_a_model_loaded_from_disk_separates_like_an_explicit_eval_forward(loader, model_file):
    from asteroid.models import BaseModel

    load = {
        "asteroid": BaseModel.from_pretrained,
        "separator": Separator.from_pretrained,
        "class": LASSResUNet.from_pretrained,
    }[loader]
    loaded = load(model_file).train()  # even if the caller put it back in training mode
    state = state_of(loaded)
    wav = torch.from_numpy(noise(900, seed=3))
    result = loaded.separate(wav, query="a dog")
    assert_state(loaded, state)
    expected = explicit_eval(make_model(), wav[None, None], ["a dog"])[0, 0, 0]
    torch.testing.assert_close(result[0], expected, atol=1e-5, rtol=0)


def test_a_failed_separation_leaves_the_model_as_it_was():
    model = make_model().train()
    state = state_of(model)
    with pytest.raises(LASSInputError, match="query"):
        model.separate(torch.zeros(500), query=[])
    with pytest.raises(LASSInputError, match="query"):
        separate_waveform(model, np.zeros(500), RATE, query=["dog", "  "])
    assert torch.is_grad_enabled()
    assert_state(model, state)


# ------------------------------------------------------------------ 2. any length
@pytest.mark.parametrize(
    "length, window, overlap, batch",
    [
        (1, 10.0, 0.25, 1),
        (2, 0.001, 0.5, 2),  # 8-sample windows, far shorter than the STFT's 256
        (255, 0.01, 0.0, 3),
        (256, 0.02, 0.5, 1),
        (257, 0.0125, 0.3, 2),
        (1000, 0.05, 0.25, 4),
        (1501, 0.05, 0.1, 1),
    ],
)
def test_any_length_with_any_window_keeps_the_input_length(model, length, window, overlap, batch):
    wav = noise(length, channels=2)
    out = separate_waveform(
        model,
        wav,
        RATE,
        query="dog",
        residual=True,
        window=window,
        overlap=overlap,
        batch_size=batch,
    )
    assert out.shape == (2, 2, length)
    assert np.isfinite(out).all()
    np.testing.assert_allclose(out.sum(axis=0), wav, atol=1e-5)  # residual completes the sum


@pytest.mark.parametrize("length", [1, 100])
def test_model_separate_pads_inputs_shorter_than_the_stft(model, length):
    wav = noise(length, seed=1)
    direct = model.separate(torch.from_numpy(wav), query="dog")
    assert direct.shape == (1, length)
    chunked = separate_waveform(model, wav, RATE, query="dog")
    np.testing.assert_allclose(direct.numpy(), chunked[:, 0], atol=1e-6)


def test_a_one_sample_file_gives_one_sample_outputs(model, tmp_path):
    path = write_wav(tmp_path / "blip.wav", np.array([0.5], np.float32), RATE)
    guard = Guard(tmp_path)
    written = separate_file(model, path, query="dog", residual=True)
    assert guard.added() == ["blip_dog.wav", "blip_residual.wav"]
    assert [sf.info(p).frames for p in written] == [1, 1]


NONSENSE = [
    ("window", 0),
    ("window", -1.0),
    ("window", math.inf),
    ("window", math.nan),
    ("window", "1"),
    ("window", True),  # a switch where seconds were meant, not 1 s
    ("overlap", -0.1),
    ("overlap", 0.6),
    ("overlap", math.nan),
    ("batch_size", 0),
    ("batch_size", 1.5),
    ("batch_size", math.inf),
    ("batch_size", True),
]


@pytest.mark.parametrize("argument, value", NONSENSE)
def test_nonsense_options_are_refused_by_name(model, argument, value):
    with pytest.raises(LASSInputError, match=argument):
        separate_waveform(model, noise(300), RATE, query="dog", **{argument: value})


@pytest.mark.parametrize("value", [0, -8000, math.nan, 8000.5, True])
def test_a_nonsense_sample_rate_is_refused_by_name(model, value):
    with pytest.raises(LASSInputError, match="sample_rate"):
        separate_waveform(model, noise(300), value, query="dog")


@pytest.mark.parametrize(
    "option, value",
    [
        ("--window", "0"),
        ("--window", "-1"),
        ("--window", "inf"),
        ("--window", "nan"),
        ("--overlap", "0.75"),
        ("--overlap", "-0.1"),
        ("--batch", "0"),
    ],
)
def test_cli_refuses_nonsense_options_by_name(option, value, model_file, tmp_path, capsys):
    path = write_wav(tmp_path / "a.wav", noise(300), RATE)
    guard = Guard(tmp_path)
    out = tmp_path / "out"
    code, _, err = run(
        capsys, path, "--model", model_file, "--out", out, "--query", "d", option, value
    )
    assert code == 2
    one_line(err, option)
    guard.unchanged()


# ------------------------------------------------------------------ 3. non-finite data
@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf])
def test_non_finite_arrays_are_refused_at_their_position(model, bad):
    wav = noise(1000, channels=2)
    wav[1, 700] = bad
    with pytest.raises(
        LASSInputError, match=r"wav has a NaN or infinite value at sample 700 of channel 1"
    ):
        separate_waveform(model, wav, RATE, query="dog")
    tensor = torch.from_numpy(wav[1])
    with pytest.raises(LASSInputError, match=r"mixture .*sample 700"):
        model.separate(tensor, query="dog")


def test_a_file_with_nan_fails_naming_file_and_position_and_leaves_nothing(model, tmp_path):
    wav = noise(4000)
    wav[3000] = np.nan
    path = write_wav(tmp_path / "late.wav", wav, RATE)
    guard = Guard(tmp_path)
    # Small windows and blocks: outputs are half written when the NaN is reached.
    with pytest.raises(AudioFileError) as info:
        separate_file(model, path, query="dog", window=0.05, block_seconds=0.05)
    assert path in str(info.value) and "sample 3000 (0.375 s)" in str(info.value)
    guard.unchanged()


def test_cli_on_a_file_with_inf_is_one_line_and_leaves_no_folder(model_file, tmp_path, capsys):
    wav = noise(2000)
    wav[1234] = np.inf
    path = write_wav(tmp_path / "inf.wav", wav, RATE)
    guard = Guard(tmp_path)
    code, out, err = run(
        capsys, path, "--model", model_file, "--out", tmp_path / "o", "--query", "x"
    )
    assert code == 2 and not out
    one_line(err, path, "sample 1234")
    guard.unchanged()


@pytest.mark.parametrize("shape", [(16,), (2, 16)])
def test_a_non_finite_query_embedding_is_refused(model, shape):
    embedding = torch.ones(shape)
    embedding.view(-1)[5] = math.nan
    with pytest.raises(LASSInputError, match="query embedding"):
        model.separate(torch.zeros(400), query=embedding)


def test_a_non_finite_audio_query_is_refused(model):
    example = noise(500)
    example[42] = np.inf
    with pytest.raises(LASSInputError, match="audio query .*sample 42"):
        model.separate(torch.zeros(400), query=AudioQuery(example, RATE))


@pytest.mark.parametrize("weight", ["bn0.running_var", "pre_conv.weight"])
def test_a_model_file_with_non_finite_weights_is_refused(weight, tmp_path, capsys):
    model = make_model()
    model.state_dict()[weight].view(-1)[0] = math.nan
    path = str(tmp_path / "nan.pth")
    save_model_file(model, path)
    audio = write_wav(tmp_path / "a.wav", noise(300), RATE)
    guard = Guard(tmp_path)
    with pytest.raises(ModelFileError, match=re.escape(f"{path}: weight {weight} has NaN")):
        load_model_file(path)
    code, _, err = run(capsys, audio, "--model", path, "--out", tmp_path / "o", "--query", "x")
    assert code == 2
    one_line(err, path, weight)
    guard.unchanged()


def test_a_model_producing_nan_is_an_error_not_a_silent_output(tmp_path):
    broken = CopySeparator(fill=math.nan)
    with pytest.raises(SeparationError, match="wav: the model produced NaN"):
        separate_waveform(broken, noise(300), RATE, query="copy")
    with pytest.raises(SeparationError, match="NaN"):
        broken.separate(noise(300), query="copy")
    path = write_wav(tmp_path / "a.wav", noise(3000), RATE)
    guard = Guard(tmp_path)
    with pytest.raises(SeparationError, match=re.escape(path)):
        separate_file(broken, path, query="copy", window=0.1)
    guard.unchanged()


# ------------------------------------------------------------------ 4. array types
PCM = [
    (np.int16, [-32768, -16384, 0, 16384, 32767], [-1.0, -0.5, 0.0, 0.5, 32767 / 32768]),
    (np.int32, [-(2**31), 2**30, 0], [-1.0, 0.5, 0.0]),
    (np.uint8, [0, 64, 128, 255], [-1.0, -0.5, 0.0, 127 / 128]),
    (np.int8, [-128, 64, 0], [-1.0, 0.5, 0.0]),
]


@pytest.mark.parametrize("dtype, samples, expected", PCM)
@pytest.mark.parametrize("entry", ["separate_waveform", "array", "tensor"])
def test_integer_pcm_is_scaled_like_wav(dtype, samples, expected, entry):
    model = CopySeparator()
    wav = np.array(samples, dtype=dtype)
    if entry == "separate_waveform":
        out = separate_waveform(model, wav, RATE, query="copy")[0, 0]
    elif entry == "array":
        out = model.separate(wav, query="copy")[0]
    else:
        out = model.separate(torch.from_numpy(wav), query="copy")[0].numpy()
    np.testing.assert_allclose(out, np.array(expected, np.float32), atol=1e-7)


REFUSED = [
    np.array([True, False, True]),
    np.array([1 + 1j, 0.5j, 0], dtype=np.complex64),
    np.array([0.1, "a", None], dtype=object),
    np.array(["0.1", "0.2"]),
]


@pytest.mark.parametrize("wav", REFUSED, ids=["bool", "complex", "object", "text"])
@pytest.mark.parametrize("entry", ["separate_waveform", "separate"])
def test_non_audio_arrays_are_refused_naming_the_dtype(wav, entry):
    model = CopySeparator()
    with pytest.raises(LASSInputError, match=f"expected real audio samples, got dtype {wav.dtype}"):
        if entry == "separate":
            model.separate(wav, query="copy")
        else:
            separate_waveform(model, wav, RATE, query="copy")


def test_a_single_text_query_is_one_query_not_its_characters(model):
    out = model.separate(torch.from_numpy(noise(500)), query="dog barking")
    assert out.shape == (1, 500)
    assert model.output_names("dog barking") == ["dog-barking"]
    assert CopySeparator().separate(noise(10), query="copy").shape == (1, 10)


def test_a_list_of_queries_on_a_file_separates_every_query(model, tmp_path):
    path = write_wav(tmp_path / "mix.wav", noise(2000), RATE)
    guard = Guard(tmp_path)
    queries = ["dog", "a cat", "rain on a roof"]
    written = separate_file(model, path, query=queries, window=0.1)
    assert guard.added() == ["mix_a-cat.wav", "mix_dog.wav", "mix_rain-on-a-roof.wav"]
    for query, output in zip(queries, written):
        alone = separate_waveform(
            model, sf.read(path, dtype="float32")[0], RATE, query=query, window=0.1
        )
        np.testing.assert_allclose(sf.read(output, dtype="float32")[0], alone[0, 0], atol=1e-6)


# ------------------------------------------------------------------ 5. output names
@pytest.mark.parametrize(
    "first, second",
    [
        ("犬の鳴き声", "猫の鳴き声"),
        ("🐶", "🐱"),
        ("!!!", "???"),
        ("a very long query " * 4 + "with a dog", "a very long query " * 4 + "with a cat"),
        ("собака", "кошка"),
    ],
)
def test_distinct_queries_get_distinct_safe_names(first, second):
    names = [query_slug(first), query_slug(second)]
    assert names[0] != names[1]
    assert all(re.fullmatch(r"[a-z0-9][a-z0-9-]*", name) and len(name) <= 60 for name in names)
    assert query_slug(first) == names[0]  # stable


def test_ascii_and_accented_queries_keep_readable_names():
    assert query_slug("Dog barking!") == "dog-barking"
    assert query_slug("Café  crème") == "cafe-creme"


def _two_inputs(tmp_path, first: str, second: str):
    paths = []
    for name in (first, second):
        (tmp_path / os.path.dirname(name)).mkdir(exist_ok=True, parents=True)
        sf.write(str(tmp_path / name), noise(400), RATE)  # PCM: FLAC has no float samples
        paths.append(str(tmp_path / name))
    return paths


@pytest.mark.parametrize("layout", [("a/x.wav", "b/x.wav"), ("in/x.wav", "in/x.flac")])
def test_cli_refuses_two_inputs_writing_one_output(layout, model_file, tmp_path, capsys):
    paths = _two_inputs(tmp_path, *layout)
    guard = Guard(tmp_path)
    code, _, err = run(
        capsys, *paths, "--model", model_file, "--out", tmp_path / "o", "--query", "d"
    )
    assert code == 2
    one_line(err, paths[0], paths[1], "x_d.wav")
    guard.unchanged()


@pytest.mark.parametrize(
    "queries, culprit",
    [(["Dog", "dog!"], "dog"), (["Residual"], "residual"), (["狗", "狗!"], "狗")],
)
def test_cli_refuses_queries_with_one_output_name(queries, culprit, model_file, tmp_path, capsys):
    path = write_wav(tmp_path / "a.wav", noise(400), RATE)
    guard = Guard(tmp_path)
    args = [path, "--model", model_file, "--out", tmp_path / "o", "--residual"]
    for query in queries:
        args += ["--query", query]
    code, _, err = run(capsys, *args)
    assert code == 2
    one_line(err, culprit)
    guard.unchanged()


def test_an_output_never_replaces_an_input_even_with_force(model_file, tmp_path, capsys):
    folder = tmp_path / "in"
    folder.mkdir()
    write_wav(folder / "x.wav", noise(400), RATE)
    victim = write_wav(folder / "x_d.wav", noise(400, seed=1), RATE)
    guard = Guard(tmp_path)
    args = [folder, "--model", model_file, "--out", folder, "--query", "d", "--force"]
    code, _, err = run(capsys, *args)
    assert code == 2
    one_line(err, victim, "would replace the input")
    guard.unchanged()


def test_separate_file_never_writes_through_a_link_to_its_input(model, tmp_path):
    path = write_wav(tmp_path / "x.wav", noise(400), RATE)
    os.symlink(path, tmp_path / "x_dog.wav")
    guard = Guard(tmp_path)
    with pytest.raises(OutputExistsError, match="would replace the input"):
        separate_file(model, path, query="dog", force=True)
    guard.unchanged()


def test_outputs_are_planned_before_any_work(model_file, tmp_path, capsys):
    first, second = _two_inputs(tmp_path, "in/a.wav", "in/b.wav")
    (tmp_path / "o").mkdir()
    taken = tmp_path / "o" / "b_d.wav"
    taken.write_bytes(b"the user's own file")
    guard = Guard(tmp_path)
    code, _, err = run(
        capsys, tmp_path / "in", "--model", model_file, "--out", tmp_path / "o", "--query", "d"
    )
    assert code == 2
    one_line(err, str(taken), "--force")
    guard.unchanged()  # a_d.wav was not written either


def test_leftover_temporary_files_are_not_inputs(model_file, tmp_path, capsys):
    folder = tmp_path / "in"
    folder.mkdir()
    write_wav(folder / "a.wav", noise(400), RATE)
    write_wav(folder / ".a_d.4242.tmp.wav", noise(10), RATE)
    guard = Guard(tmp_path)
    code, out, err = run(capsys, folder, "--model", model_file, "--out", folder, "--query", "d")
    assert code == 0, err
    assert guard.added() == ["in/a_d.wav"]


def test_sigterm_removes_temporary_and_partial_outputs(tmp_path):
    model = AsteroidSeparator(
        "ConvTasNet",
        dict(n_src=2, n_blocks=2, n_repeats=1, bn_chan=16, hid_chan=32, skip_chan=16, n_filters=32),
    )
    model_path = str(tmp_path / "blind.pth")
    save_model_file(model, model_path)
    source = write_wav(tmp_path / "long.wav", noise(120 * RATE), RATE)
    out = tmp_path / "out"
    guard = Guard(tmp_path)
    command = [sys.executable, "-m", "asteroid_lass.cli", "separate", source, "--model", model_path]
    command += ["--out", str(out), "--window", "0.25", "--no-progress"]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 600  # a loaded machine can take minutes to start
        while not (out.is_dir() and os.listdir(out)):  # temporaries: separation has begun
            assert process.poll() is None, process.communicate()
            assert time.monotonic() < deadline
            time.sleep(0.05)
        assert all(name.startswith(".") for name in os.listdir(out))  # invisible to later runs
        process.send_signal(signal.SIGTERM)
        _, err = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == 130, err
    assert "interrupted" in err and "Traceback" not in err
    guard.unchanged()  # no temporary, no partial output, not even the --out folder


# ------------------------------------------------------------------ 6. many inputs
@pytest.mark.parametrize("bad", ["junk", "empty", "nan"])
def test_one_bad_file_does_not_stop_a_multi_file_run(bad, model_file, tmp_path, capsys):
    folder = tmp_path / "in"
    folder.mkdir()
    write_wav(folder / "a.wav", noise(400), RATE)
    write_wav(folder / "c.wav", noise(400, seed=2), RATE)
    broken = folder / "b.wav"
    if bad == "junk":
        broken.write_bytes(b"RIFF but not audio")
    elif bad == "empty":
        broken.write_bytes(b"")
    else:
        wav = noise(400)
        wav[7] = np.nan
        write_wav(broken, wav, RATE)
    guard = Guard(tmp_path)
    code, out, err = run(
        capsys, folder, "--model", model_file, "--out", tmp_path / "o", "--query", "d"
    )
    assert code == 1
    assert guard.added() == ["o/", "o/a_d.wav", "o/c_d.wav"]
    assert out.split() == [str(tmp_path / "o" / "a_d.wav"), str(tmp_path / "o" / "c_d.wav")]
    lines = err.strip().splitlines()
    assert len(lines) == 2, err
    one_line(lines[0], str(broken))
    assert lines[1] == f"asteroid-lass separate: 1 of 3 files failed: {broken}"


def test_a_run_where_every_file_fails_leaves_no_folder(model_file, tmp_path, capsys):
    for name in ("a.wav", "b.wav"):
        (tmp_path / name).write_bytes(b"not audio")
    guard = Guard(tmp_path)
    args = [tmp_path / "a.wav", tmp_path / "b.wav", "--model", model_file, "--query", "d"]
    code, _, err = run(capsys, *args, "--out", tmp_path / "new" / "deeper")
    assert code == 1
    assert "2 of 2 files failed" in err
    guard.unchanged()


# ------------------------------------------------------------------ 7. devices and paths
@pytest.mark.parametrize("device", ["gpu0", "cuda", "cuda:7", "meta"])
def test_unknown_or_unavailable_devices_are_one_line(device, model_file, tmp_path, capsys):
    if device.startswith("cuda") and torch.cuda.is_available():
        pytest.skip("this machine has a GPU")
    path = write_wav(tmp_path / "a.wav", noise(300), RATE)
    guard = Guard(tmp_path)
    args = [
        path,
        "--model",
        model_file,
        "--out",
        tmp_path / "o",
        "--query",
        "d",
        "--device",
        device,
    ]
    code, _, err = run(capsys, *args)
    assert code == 2
    one_line(err, "--device", device)
    guard.unchanged()


@pytest.mark.parametrize("out", ["under-a-file", "empty", "nested"])
def test_unusable_out_folders_are_one_line_and_leave_no_folder(out, model_file, tmp_path, capsys):
    path = write_wav(tmp_path / "a.wav", noise(300), RATE)
    (tmp_path / "notes.txt").write_text("a regular file")
    wav = noise(300)
    wav[5] = np.nan
    nan_path = write_wav(tmp_path / "n.wav", wav, RATE)
    guard = Guard(tmp_path)
    target, source = {
        "under-a-file": (tmp_path / "notes.txt" / "out", path),
        "empty": ("", path),
        "nested": (tmp_path / "x" / "y" / "z", nan_path),  # created, then the input fails
    }[out]
    code, _, err = run(capsys, source, "--model", model_file, "--query", "d", "--out", target)
    assert code == 2
    one_line(err, "--out" if out != "nested" else nan_path)
    guard.unchanged()


@pytest.mark.parametrize("model_name", ["missing.pth", "owner/name", "folder"])
def test_missing_models_are_one_line_without_a_misleading_cause(
    model_name, tmp_path, capsys, monkeypatch
):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "folder").mkdir()
    path = write_wav(tmp_path / "a.wav", noise(300), RATE)
    guard = Guard(tmp_path)
    code, _, err = run(capsys, path, "--model", model_name, "--out", tmp_path / "o", "--query", "d")
    assert code == 2
    line = one_line(err, model_name)
    assert not re.search("internet|connection", line, re.I), line
    guard.unchanged()


def test_a_missing_clap_checkpoint_is_one_line(model_file, tmp_path, capsys):
    path = write_wav(tmp_path / "a.wav", noise(300), RATE)
    guard = Guard(tmp_path)
    args = [path, "--model", model_file, "--out", tmp_path / "o", "--query", "d"]
    code, _, err = run(capsys, *args, "--clap-checkpoint", tmp_path / "clap.pt")
    assert code == 2
    one_line(err, "--clap-checkpoint", str(tmp_path / "clap.pt"))
    guard.unchanged()


# ------------------------------------------------------------------ 8. manifests
def _clips(root, count: int, labels=None) -> list:
    rows = []
    for k in range(count):
        name = f"clip{k}.wav"
        write_wav(root / name, noise(80, seed=k), RATE)
        rows.append(dict(path=name, labels=labels[k] if labels else f"Label{k}"))
    return rows


def _manifest(root, rows, name="m.csv") -> str:
    path = root / name
    pd.DataFrame(rows).to_csv(path, index=False)
    return str(path)


def test_a_clip_listed_twice_is_reported_with_both_rows(tmp_path):
    rows = _clips(tmp_path, 2)
    csv = _manifest(tmp_path, rows + [dict(path="clip0.wav", labels="Other")])
    guard = Guard(tmp_path)
    with pytest.raises(
        ManifestError, match=r"row 3: clip0.wav is listed more than once \(rows 1 and 3\)"
    ):
        load_manifest(csv)
    guard.unchanged()


@pytest.mark.parametrize(
    "content, reason",
    [
        (b"", "the file is empty"),
        (b"  \n\n", "the file is empty"),
        (b"path,labels\n", "no rows"),
        (b"path,labels\nclip0.wav,Dog\nclip1.wav,Cat,extra,cells\n", "not a valid CSV"),
        (b"path,labels\nclip0.wav,Dog\nclip1.wav,Caf\xe9\n", "line 3 is not valid UTF-8"),
    ],
    ids=["zero-byte", "blank", "header-only", "ragged", "latin-1"],
)
def test_broken_csv_files_name_the_file_and_the_reason(content, reason, tmp_path):
    _clips(tmp_path, 2)
    csv = tmp_path / "m.csv"
    csv.write_bytes(content)
    guard = Guard(tmp_path)
    with pytest.raises(ManifestError) as info:
        load_manifest(str(csv))
    assert str(csv) in str(info.value) and reason in str(info.value)
    guard.unchanged()


def test_a_byte_order_mark_is_not_part_of_the_first_column(tmp_path):
    _clips(tmp_path, 1)
    (tmp_path / "m.csv").write_bytes(b"\xef\xbb\xbfpath,labels\nclip0.wav,Dog\n")
    table = load_manifest(str(tmp_path / "m.csv"))
    assert table["path"].tolist() == [str(tmp_path / "clip0.wav")]


def test_every_bad_row_is_listed(tmp_path):
    rows = _clips(tmp_path, 4)
    rows[0]["duration"], rows[1]["duration"], rows[2]["duration"] = 1.0, -2.0, "abc"
    rows[3]["sample_rate"] = 0
    rows[3]["duration"] = 1.0
    csv = _manifest(tmp_path, rows)
    with pytest.raises(ManifestError) as info:
        load_manifest(csv, check_audio=False)
    message = str(info.value)
    assert "3 problem(s)" in message
    assert "row 2: duration -2.0" in message and "row 3: duration abc" in message
    assert "row 4: sample_rate 0" in message


def test_a_manifest_whose_paths_do_not_resolve_is_refused_in_a_short_message(tmp_path):
    # 480 rows whose relative paths point nowhere (the manifest moved without its clips).
    rows = [dict(path=f"clips/c{k:03d}.wav", labels="Dog") for k in range(480)]
    csv = _manifest(tmp_path, rows)
    with pytest.raises(ManifestError) as info:
        load_manifest(csv, check_audio=False)
    message = " ".join(str(info.value).split())  # as a recipe script prints it
    assert "480 problem(s)" in message and "and 470 more" in message
    assert "row 10: missing file clips/c009.wav" in message
    assert "row 11:" not in message
    assert f"relative paths are read from the manifest's folder, {tmp_path}" in message
    assert len(message) < 1000


def test_a_clip_with_nan_is_reported_when_audio_is_checked(tmp_path):
    rows = _clips(tmp_path, 2)
    wav = noise(80)
    wav[33] = np.nan
    write_wav(tmp_path / "clip1.wav", wav, RATE)
    csv = _manifest(tmp_path, rows)
    with pytest.raises(
        ManifestError, match="row 2: NaN or infinite value at sample 33 of clip1.wav"
    ):
        load_manifest(csv)


@pytest.mark.parametrize("bad", ["nan", "junk"])
def test_with_audio_checks_off_a_bad_clip_fails_when_read_naming_it(bad, tmp_path):
    rows = _clips(tmp_path, 2, labels=["Dog", "Cat"])
    clip = tmp_path / "clip1.wav"
    if bad == "nan":
        wav = noise(80)
        wav[10] = np.inf
        write_wav(clip, wav, RATE)
    else:
        clip.write_bytes(b"RIFF junk")
    table = load_manifest(_manifest(tmp_path, rows), check_audio=False)
    table["duration"] = 0.01
    dataset = QueryMixtureDataset(table, sample_rate=RATE, segment_seconds=0.01)
    with pytest.raises((AudioFileError, ValueError)) as info:
        for index in range(len(dataset)):
            dataset[index]
    assert str(clip) in str(info.value)


def test_labels_are_compared_after_trimming_and_case(tmp_path):
    rows = _clips(tmp_path, 2, labels=["Dog", " dog  "])
    with pytest.raises(ValueError, match="disjoint labels"):
        QueryMixtureDataset(_manifest(tmp_path, rows), sample_rate=RATE, segment_seconds=0.01)


def test_label_disjointness_is_looked_for_over_all_rows(tmp_path):
    # The first 50 clips share a label with every other clip; only the last two can be mixed.
    labels = ["A;B"] * 50 + ["A", "B"]
    rows = _clips(tmp_path, 52, labels=labels)
    csv = _manifest(tmp_path, rows)
    dataset = QueryMixtureDataset(
        load_manifest(csv, check_audio=False).assign(duration=0.01), RATE, 0.01
    )
    recipe = dataset.draw_recipe(np.random.default_rng(0))
    assert {os.path.basename(recipe["target_path"])} | {
        os.path.basename(p) for p in recipe["interferer_paths"]
    } == {"clip50.wav", "clip51.wav"}


@pytest.mark.parametrize("segment", [0, -1.0, math.nan, 1e-6])
def test_segment_seconds_must_be_positive(segment, tmp_path):
    rows = _clips(tmp_path, 2)
    with pytest.raises(ValueError, match="segment_seconds"):
        QueryMixtureDataset(_manifest(tmp_path, rows), sample_rate=RATE, segment_seconds=segment)


def test_a_clip_in_both_training_and_test_manifests_is_reported(tmp_path):
    (tmp_path / "train").mkdir()
    (tmp_path / "test").mkdir()
    train = _manifest(tmp_path / "train", _clips(tmp_path / "train", 3))
    test_rows = _clips(tmp_path / "test", 2) + [dict(path="../train/clip2.wav", labels="Dog")]
    test = _manifest(tmp_path / "test", test_rows)
    guard = Guard(tmp_path)
    with pytest.raises(ManifestError) as info:
        check_split_leakage(train, test)
    message = str(info.value)
    assert "1 clip(s)" in message and test in message and train in message
    assert os.path.join(tmp_path, "train", "clip2.wav") in message
    check_split_leakage(train, _manifest(tmp_path / "test", test_rows[:2], "clean.csv"))
    assert guard.added() == ["test/clean.csv"]


# ------------------------------------------------------------------ 9. messages
def test_errors_are_typed():
    for error in (AudioFileError, LASSInputError, ManifestError, ModelFileError, SeparationError):
        assert issubclass(error, LASSError) and issubclass(error, Exception)
    assert issubclass(OutputExistsError, FileExistsError)
    assert issubclass(ManifestError, ValueError)


def test_debug_adds_the_traceback_and_only_then(model_file, tmp_path, capsys):
    args = ["separate", str(tmp_path / "gone.wav"), "--model", model_file, "--out", str(tmp_path)]
    assert cli(args) == 2
    one_line(capsys.readouterr().err, "gone.wav")
    assert cli(["--debug"] + args) == 2
    err = capsys.readouterr().err
    assert "Traceback" in err and err.strip().splitlines()[-1].startswith(PREFIX)


def test_long_messages_are_cut_and_control_characters_escaped(model_file, tmp_path, capsys):
    long_name = str(tmp_path / ("x" * 900 + ".wav"))
    code, _, err = run(capsys, long_name, "--model", model_file, "--out", tmp_path, "--query", "d")
    assert code == 2 and one_line(err).endswith("...")
    coloured = str(tmp_path / "\x1b[31mred.wav")
    code, _, err = run(capsys, coloured, "--model", model_file, "--out", tmp_path, "--query", "d")
    assert code == 2
    one_line(err, "\\x1b[31mred.wav")


@pytest.mark.parametrize("name", ["owner/name", "missing.pth", "owner/name@v1"])
def test_load_model_file_says_what_is_missing(name, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ModelFileError) as info:
        load_model_file(name)
    message = str(info.value)
    assert name in message and ("no such local file" in message or "not found" in message)
    assert not re.search("internet|connection", message, re.I), message
    assert len(message) <= 400


def test_a_local_looking_path_is_not_sent_to_the_hub(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "models").mkdir()
    with pytest.raises(ModelFileError, match="model file not found: models/mine"):
        load_model_file("models/mine")


def test_a_pickled_model_object_is_refused_with_the_reason(tmp_path):
    path = tmp_path / "pickled.pth"
    torch.save(make_model(), path)
    with pytest.raises(ModelFileError, match=re.escape(f"could not load model file {path}")):
        load_model_file(str(path))


RECIPES = os.path.join(os.path.dirname(__file__), "..", "egs")
RECIPE_SCRIPTS = [
    (recipe, script)
    for recipe in ("audioset/lass", "musdb18/metatasnet", "unified/tuss", "librimix/audioslots")
    for script in ("local/prepare_data.py", "train.py", "eval.py")
]


@pytest.mark.parametrize("recipe, script", RECIPE_SCRIPTS)
def test_every_recipe_script_shows_a_missing_conf_as_one_line(tmp_path, recipe, script):
    missing = tmp_path / "my_conf.yml"
    line = user_error_line(
        [sys.executable, script, "--conf", str(missing)], os.path.join(RECIPES, recipe)
    )
    assert line == f"error: --conf: configuration file not found: {missing}"


def test_audioset_preparation_shows_a_missing_folder_as_one_line(tmp_path):
    missing = tmp_path / "audioset"
    line = user_error_line(
        [sys.executable, "local/prepare_audioset.py", "--audioset_dir", str(missing)]
        + ["--out_dir", str(tmp_path / "out")],
        os.path.join(RECIPES, "audioset", "lass"),
    )
    assert line == f"error: AudioSet class list not found: {missing}/class_labels_indices.csv"
    assert not (tmp_path / "out").exists()
