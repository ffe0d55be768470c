"""Text and audio queries on blind models: a CLAP encoder picks among their outputs.

The expected picks come from the real laion-clap model (a tiny offline checkpoint) called
through laion-clap's own API, never through asteroid_lass's encoder or ranking code.
"""

import os

import numpy as np
import pytest
import soundfile as sf
import torch
import torchaudio
from conftest import write_wav
from tiny_clap import CORPUS, write_tiny_clap_checkpoint, write_tiny_roberta

from asteroid_lass import AudioQuery
from asteroid_lass.cli import main as cli
from asteroid_lass.errors import LASSInputError
from asteroid_lass.inference import separate_waveform
from asteroid_lass.models import Separator, register
from asteroid_lass.queries import build_query_encoder

RATE = 48000  # CLAP's own rate: the oracle embeds the outputs exactly as the model returns them


class ScaledAndSaturated(Separator):
    """A blind toy with known outputs: ``[0.2 * mixture, 0.3 * tanh(20 * mixture)]`` (or the
    other order). Both are pointwise, so windowed inference reproduces them exactly."""

    condition_kind = "none"

    def __init__(self, swap: bool = False, sample_rate: float = RATE):
        super().__init__(sample_rate=sample_rate)
        self.swap = bool(swap)
        self.n_src = 2
        self.anchor = torch.nn.Parameter(torch.zeros(1))  # a parameter, for the device

    def forward(self, mixture, conditions=None):
        outputs = [0.2 * mixture, 0.3 * torch.tanh(20 * mixture)]
        return torch.stack(outputs[::-1] if self.swap else outputs, dim=1)

    def get_model_args(self):
        return dict(swap=self.swap, sample_rate=float(self.sample_rate))


class FixedPair(Separator):
    """A blind toy that returns two fixed signals, whatever the mixture."""

    condition_kind = "none"

    def __init__(self, first: torch.Tensor, second: torch.Tensor):
        super().__init__(sample_rate=RATE)
        self.n_src = 2
        self.register_buffer("pair", torch.stack([first, second])[:, None])

    def forward(self, mixture, conditions=None):
        return self.pair[None, ..., : mixture.shape[-1]].expand(mixture.shape[0], -1, -1, -1)

    def get_model_args(self):
        return {}


register(ScaledAndSaturated)


#: The smallest audio tower laion-clap runs: 4x faster than HTSAT-base, same code path.
AMODEL = "HTSAT-tiny"


@pytest.fixture(scope="module")
def htsat_tiny_checkpoint(tmp_path_factory) -> str:
    write_tiny_roberta(os.environ["HF_HOME"])  # conftest's private Hugging Face cache
    path = tmp_path_factory.mktemp("clap") / "tiny_htsat_tiny.pt"
    return write_tiny_clap_checkpoint(str(path), amodel=AMODEL)


@pytest.fixture(scope="module")
def encoder(htsat_tiny_checkpoint):
    spec = {"name": "clap", "checkpoint": htsat_tiny_checkpoint, "amodel": AMODEL}
    return build_query_encoder(spec)


@pytest.fixture(scope="module")
def oracle(encoder):
    """The laion-clap ``CLAP_Module`` itself, called through its own API below: the independent
    truth (the encoder only loaded the checkpoint into it; loading it twice costs seconds)."""
    return encoder._clap


def _expected_picks(oracle, outputs: torch.Tensor, rate: int, texts) -> list:
    """argmax over outputs of laion-clap's cosine similarity, for each text."""
    audio = (
        torchaudio.functional.resample(outputs.float(), rate, 48000) if rate != 48000 else outputs
    )
    with torch.no_grad():
        audio_emb = oracle.get_audio_embedding_from_data(audio.float(), use_tensor=True)
        text_emb = oracle.get_text_embedding(list(texts), use_tensor=True)
    similarity = (
        torch.nn.functional.normalize(text_emb, dim=-1)
        @ torch.nn.functional.normalize(audio_emb, dim=-1).T
    )
    return similarity.argmax(dim=1).tolist()


def _mixtures() -> torch.Tensor:
    rng = np.random.default_rng(0)
    t = np.arange(RATE) / RATE
    noise = 0.05 * rng.standard_normal(RATE)
    chord = 0.4 * np.sin(2 * np.pi * 330 * t) + 0.2 * np.sin(2 * np.pi * 1200 * t)
    return torch.tensor(np.stack([noise + 0.02 * chord, chord]), dtype=torch.float32)


def test_text_queries_pick_the_output_clap_ranks_first(encoder, oracle):
    texts = CORPUS[:2]
    mixtures = _mixtures()
    model = ScaledAndSaturated().eval()
    model.set_query_encoder(encoder)
    blind = model.separate(mixtures)  # (batch, 2, time)
    picked = model.separate(mixtures, query=texts)
    assert picked.shape == (2, len(texts), RATE)  # (batch, time) in -> (batch, n_queries, time)
    for item in range(2):
        expected = _expected_picks(oracle, blind[item], RATE, texts)
        for query, index in enumerate(expected):
            torch.testing.assert_close(picked[item, query], blind[item, index], atol=0, rtol=0)
    # The same model with its outputs in the other order picks the same sounds; each query is
    # answered on its own (one text alone gets what it got among two).
    swapped = ScaledAndSaturated(swap=True).eval()
    swapped.set_query_encoder(encoder)
    alone = swapped.separate(mixtures[1], query=texts[1])
    assert alone.shape == (1, RATE)
    torch.testing.assert_close(alone[0], picked[1, 1], atol=0, rtol=0)


def test_any_blind_model_audioslots_beyond_its_longest_input(encoder, oracle):
    """AudioSlots takes 1/16 s at most: a longer input goes through windowed inference, and the
    query picks among the stitched outputs (ranked as a whole, not window by window)."""
    from asteroid_lass.models import AudioSlots

    torch.manual_seed(0)
    rate = 8000
    model = AudioSlots(
        sample_rate=rate, n_fft=64, hop_length=16, chunk_seconds=0.0625, d_model=32, n_heads=2,
        encoder_layers=1, slot_layers=2, ff_dim=64, decoder_width=32, decoder_depth=2,
        n_fourier_bands=4,
    ).eval()  # fmt: skip
    model.set_query_encoder(encoder)
    mixture = torch.randn(rate // 4, generator=torch.Generator().manual_seed(2)) * 0.1
    blind = model.separate(mixture)
    text = CORPUS[4]
    picked = model.separate(mixture, query=text)
    assert picked.shape == (1, mixture.numel())
    (expected,) = _expected_picks(oracle, blind, rate, [text])
    torch.testing.assert_close(picked[0], blind[expected], atol=0, rtol=0)


def test_audio_query_picks_the_same_sound(encoder):
    """By audio-audio similarity: an output used as the query is its own best match (cosine 1),
    through windowed in-memory inference."""
    model = ScaledAndSaturated().eval()
    model.set_query_encoder(encoder)
    mixture = _mixtures()[0].numpy()
    saturated = 0.3 * np.tanh(20 * mixture)
    picked = separate_waveform(model, mixture, RATE, query=AudioQuery(saturated, RATE), window=0.4)
    assert picked.shape == (1, 1, RATE)
    np.testing.assert_allclose(picked[0, 0], saturated, atol=1e-5)


def test_outputs_are_ranked_on_their_whole_length(encoder):
    """Two outputs equal over CLAP's first 10 s and different after: only the rest decides.

    With unit embeddings, mean(e(tone), e(noise)) is closer to e(noise) than e(tone) is
    (sqrt((1 + c) / 2) > c for c < 1), so the second output must win for a noise query; looking
    at the first 10 s only would tie, and argmax would take the first."""
    seconds = 10
    t = torch.arange(seconds * RATE) / RATE
    tone = 0.3 * torch.sin(2 * np.pi * 440 * t)
    noise = 0.1 * torch.randn(seconds * RATE, generator=torch.Generator().manual_seed(0))
    model = FixedPair(torch.cat([tone, tone]), torch.cat([tone, noise])).eval()
    model.set_query_encoder(encoder)
    picked = model.separate(torch.zeros(2 * seconds * RATE), query=AudioQuery(noise, RATE))
    torch.testing.assert_close(picked[0], torch.cat([tone, noise]), atol=0, rtol=0)


def test_queries_on_blind_models_need_an_audio_text_encoder(sentence_spec, encoder):
    from asteroid_lass.models import MetaTasNet

    model = ScaledAndSaturated().eval()
    mixture = torch.zeros(RATE // 10)
    with pytest.raises(LASSInputError, match=r"audio-text encoder.*set_query_encoder.*clap"):
        model.separate(mixture, query="dog barking")
    with pytest.raises(LASSInputError, match=r"'sentence' query encoder embeds text only.*clap"):
        model.set_query_encoder(build_query_encoder(sentence_spec))
    with pytest.raises(LASSInputError, match="--clap-checkpoint"):
        separate_waveform(model, mixture.numpy(), RATE, query=["dog barking"])
    label_model = MetaTasNet(preset="tiny", labels=["a", "b"])
    with pytest.raises(LASSInputError, match="label model.*vocabulary"):
        label_model.set_query_encoder(encoder)
    model.set_query_encoder(encoder)
    with pytest.raises(LASSInputError, match="text, a list of texts or an AudioQuery"):
        model.separate(mixture, query=torch.ones(512))
    with pytest.raises(LASSInputError, match="residual"):
        separate_waveform(model, mixture.numpy(), RATE, query="dog barking", residual=True)


def test_cli_writes_one_file_per_query_ranked_on_the_whole_file(
    tiny_clap_checkpoint, tmp_path, capsys
):
    """Asteroid's own ConvTasNet file, windowed: every query gets the blind output laion-clap
    ranks first, and the folder holds nothing else (a user's file of a blind output's name
    is left alone). --clap-checkpoint means the HTSAT-base tower (AudioSep's)."""
    from asteroid.models import ConvTasNet

    rate = 8000
    torch.manual_seed(0)
    convtasnet = ConvTasNet(n_src=2, n_blocks=2, n_repeats=1, n_filters=32, sample_rate=rate)
    model_path = tmp_path / "convtasnet.pth"
    torch.save(convtasnet.serialize() | {"infos": {}}, model_path)
    t = np.arange(int(1.5 * rate)) / rate
    mixture = 0.3 * np.sin(2 * np.pi * 300 * t) + 0.05 * np.random.default_rng(1).standard_normal(
        t.size
    )
    wav = write_wav(tmp_path / "mix.wav", mixture, rate)
    common = ["--model", str(model_path), "--window", "0.5", "--no-progress"]

    blind_dir = tmp_path / "blind"
    assert cli(["separate", wav, "--out", str(blind_dir)] + common) == 0
    capsys.readouterr()
    blind = [sf.read(str(blind_dir / f"mix_source{i}.wav"), dtype="float32")[0] for i in (1, 2)]

    out = tmp_path / "out"
    out.mkdir()
    (out / "mix_source1.wav").write_bytes(b"the user's own file")
    texts = CORPUS[2:4]
    queries = [arg for text in texts for arg in ("--query", text)]
    args = ["separate", wav, "--out", str(out), "--clap-checkpoint", tiny_clap_checkpoint]
    assert cli(args + queries + common) == 0
    names = [
        "mix_birds-chirping-in-the-morning.wav",
        "mix_someone-playing-the-violin-and-piano.wav",
    ]
    assert sorted(os.listdir(out)) == sorted(names + ["mix_source1.wav"])
    assert (out / "mix_source1.wav").read_bytes() == b"the user's own file"
    assert capsys.readouterr().out.split() == [str(out / name) for name in names]

    # The CLI's own CLAP instance (one per spec and process), called through laion-clap's API.
    oracle = build_query_encoder({"name": "clap", "checkpoint": tiny_clap_checkpoint})._clap
    expected = _expected_picks(oracle, torch.from_numpy(np.stack(blind)), rate, texts)
    for name, index in zip(names, expected):
        written, written_rate = sf.read(str(out / name), dtype="float32")
        assert written_rate == rate
        np.testing.assert_array_equal(written, blind[index])
