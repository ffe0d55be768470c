"""The separation contract: a toy separator of each condition kind goes through ``separate``,
chunked file inference, the CLI, the System (a real Lightning Trainer) and ``from_pretrained``
with no change to the package.

The toys scale the mixture by a learned gain per condition, so every expected output is known
exactly.
"""

import numpy as np
import pytest
import soundfile as sf
import torch
from conftest import quiet_trainer, write_wav
from torch.utils.data import DataLoader

from asteroid_lass.cli import main as cli
from asteroid_lass.data.batch import collate_separation, separation_item
from asteroid_lass.errors import LASSInputError
from asteroid_lass.inference import separate_file
from asteroid_lass.losses import build_objective
from asteroid_lass.models import Separator, register
from asteroid_lass.models.base import EmbeddingSeparator, save_model_file
from asteroid_lass.system import SeparationSystem

RATE = 8000


class ToyLabel(Separator):
    """One output per label asked: the mixture times that label's gain."""

    condition_kind = "label"

    def __init__(self, labels=("low", "high"), sample_rate=RATE):
        super().__init__(sample_rate=sample_rate, in_channels=1, vocabulary=labels)
        self.gains = torch.nn.Parameter(torch.arange(1.0, len(labels) + 1) / 4)

    def forward(self, mixture, conditions):
        return self.gains[conditions][..., None, None] * mixture[:, None]

    def get_model_args(self):
        return dict(labels=list(self.vocabulary), sample_rate=float(self.sample_rate))


class ToyPrompt(ToyLabel):
    """One output per prompt, in order, repeats allowed."""

    condition_kind = "prompt"


class ToyBlind(Separator):
    """Two unordered outputs: fixed fractions of the mixture."""

    condition_kind = "none"

    def __init__(self, sample_rate=RATE):
        super().__init__(sample_rate=sample_rate)
        self.n_src = 2
        self.gains = torch.nn.Parameter(torch.tensor([0.25, 0.75]))

    def forward(self, mixture, conditions=None):
        return self.gains[None, :, None, None] * mixture[:, None]

    def get_model_args(self):
        return dict(sample_rate=float(self.sample_rate))


class ToyEmbedding(EmbeddingSeparator):
    """The mixture times a learned linear function of the query embedding."""

    def __init__(self, sample_rate=RATE, condition_dim=384, query_encoder=None):
        super().__init__(sample_rate, 1, condition_dim, query_encoder)
        self.readout = torch.nn.Linear(condition_dim, 1)

    def forward(self, mixture, conditions):
        return self.readout(conditions)[..., None] * mixture[:, None]

    def get_model_args(self):
        return dict(
            sample_rate=float(self.sample_rate),
            condition_dim=self.condition_dim,
            query_encoder=self.query_encoder_spec,
        )


for toy in (ToyLabel, ToyPrompt, ToyBlind, ToyEmbedding):
    register(toy)


def _toys():
    torch.manual_seed(0)
    return {
        "label": (ToyLabel(), ["high", "low"], [0.5, 0.25]),
        "prompt": (ToyPrompt(), ["low", "high", "low"], [0.25, 0.5, 0.25]),
        "none": (ToyBlind(), None, [0.25, 0.75]),
    }


@pytest.mark.parametrize("kind", ["label", "prompt", "none"])
def test_separate_follows_the_contract_shapes_and_values(kind):
    model, query, gains = _toys()[kind]
    mixture = torch.randn(3, 1, 500)
    estimates = model.separate(mixture, query=query)
    assert estimates.shape == (3, len(gains), 1, 500)
    for k, gain in enumerate(gains):
        torch.testing.assert_close(estimates[:, k], gain * mixture)
    # (batch, time) for a mono model, (time,) unbatched, numpy in -> numpy out
    assert model.separate(mixture[:, 0], query=query).shape == (3, len(gains), 500)
    out = model.separate(mixture[0, 0].numpy(), query=query)
    assert isinstance(out, np.ndarray) and out.shape == (len(gains), 500)


def test_query_is_keyword_only_and_checked_against_the_vocabulary(tmp_path):
    model = ToyLabel()
    with pytest.raises(LASSInputError, match=r"'drums'.*\['low', 'high'\]"):
        model.separate(torch.randn(1, 100), query=["low", "drums"])
    # A single name is one label, never iterated character by character.
    assert model.separate(torch.randn(1, 100), query="low").shape == (1, 1, 100)
    with pytest.raises(TypeError):
        model.separate(torch.randn(1, 100), str(tmp_path), False, True, "low")
    with pytest.raises(LASSInputError, match="blind"):
        ToyBlind().separate(torch.randn(1, 100), query="low")


def test_separation_leaves_the_model_as_it_was():
    model = ToyLabel().train()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    model.separate(torch.randn(2, 100), query="low")
    assert model.training
    for key, value in model.state_dict().items():
        torch.testing.assert_close(value, before[key])


@pytest.mark.parametrize("kind", ["label", "prompt", "none"])
def test_from_pretrained_round_trip(kind, tmp_path):
    from asteroid.models import BaseModel

    model, query, _ = _toys()[kind]
    with torch.no_grad():
        model.gains.mul_(1.5)
    path = tmp_path / "toy.pth"
    save_model_file(model, str(path))
    loaded = BaseModel.from_pretrained(str(path))  # Asteroid's own loader finds our class
    assert type(loaded) is type(model)
    assert not Separator.from_pretrained(str(path)).training  # ours also returns eval mode
    mixture = torch.randn(2, 1, 300)
    torch.testing.assert_close(
        loaded.separate(mixture, query=query), model.separate(mixture, query=query)
    )


@pytest.mark.parametrize("kind", ["label", "prompt", "none"])
def test_file_inference_and_cli_for_every_kind(kind, tmp_path):
    model, query, gains = _toys()[kind]
    rng = np.random.default_rng(0)
    wav = (0.1 * rng.standard_normal((2, 3 * RATE + 17))).astype(np.float32)  # stereo, odd length
    source = write_wav(tmp_path / "song.wav", wav, RATE)
    written = separate_file(model, source, query=query, residual=True, window=1.0)
    expected_names = {
        "label": ["high", "low"],
        "prompt": ["low", "high", "low-2"],
        "none": ["source1", "source2"],
    }[kind] + ["residual"]
    assert [p.rsplit("_", 1)[1][:-4] for p in written] == expected_names
    outputs = [sf.read(p, always_2d=True)[0].T for p in written]
    read_back = sf.read(source, always_2d=True)[0].T
    for output, gain in zip(outputs, gains):
        np.testing.assert_allclose(output, gain * read_back, atol=1e-6)
    np.testing.assert_allclose(sum(outputs), read_back, atol=1e-5)  # residual completes the sum

    model_path = tmp_path / "toy.pth"
    save_model_file(model, str(model_path))
    args = ["separate", source, "--model", str(model_path), "--out", str(tmp_path / "cli")]
    for name in query or []:
        args += ["--query", name]
    assert cli(args + ["--no-progress"]) == 0
    first = sf.read(str(tmp_path / "cli" / f"song_{expected_names[0]}.wav"), always_2d=True)[0].T
    np.testing.assert_allclose(first, gains[0] * read_back, atol=1e-6)


def test_embedding_toy_through_the_sentence_encoder():
    model = ToyEmbedding(query_encoder={"name": "sentence"})
    mixture = torch.randn(2, 1, 200)
    both = model.separate(mixture, query=["dog barking", "violin"])
    dog = model.separate(mixture, query="dog barking")
    assert both.shape == (2, 2, 1, 200)
    torch.testing.assert_close(both[:, :1], dog)
    embedding = model.query_encoder.embed_text(["violin"])[0]
    gain = model.readout(embedding).item()
    torch.testing.assert_close(both[:, 1], gain * mixture)


class _Items(torch.utils.data.Dataset):
    def __init__(self, conditions, gains, n_outputs):
        self.conditions, self.gains, self.n_outputs = conditions, gains, n_outputs

    def __len__(self):
        return 8

    def __getitem__(self, index):
        mixture = torch.randn(1, 400, generator=torch.Generator().manual_seed(index))
        targets = torch.stack([g * mixture for g in self.gains])
        return separation_item(mixture, targets, self.conditions)


@pytest.mark.parametrize(
    "kind, objective",
    [
        ("label", dict(objective="waveform", loss="neg_snr", assignment="fixed")),
        ("prompt", dict(objective="waveform", loss="neg_snr", assignment="prompt")),
        ("none", dict(objective="waveform", loss="neg_snr", assignment="hungarian")),
        ("embedding", dict(objective="waveform", loss="neg_snr", assignment="fixed")),
    ],
)
def test_one_training_step_with_a_real_trainer(kind, objective):
    if kind == "embedding":
        model, conditions = ToyEmbedding(query_encoder={"name": "sentence"}), ["violin"]
        gains = [0.9]
    else:
        model, conditions, _ = _toys()[kind]
        gains = [0.6] * (len(conditions) if conditions else 2)
        gains[-1] = 0.4
    before = [p.detach().clone() for p in model.parameters()]
    loader = DataLoader(_Items(conditions, gains, len(gains)), 4, collate_fn=collate_separation)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01)
    system = SeparationSystem(model, optimizer, build_objective(objective), loader, loader)
    trainer = quiet_trainer(max_epochs=1, limit_train_batches=1, limit_val_batches=1)
    trainer.fit(system)
    assert trainer.global_step == 1
    assert torch.isfinite(trainer.callback_metrics["val_loss"])
    assert any(not torch.equal(a, b) for a, b in zip(before, model.parameters()))
