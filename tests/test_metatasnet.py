import argparse

import pytest
import torch
from asteroid.models import BaseModel
from asteroid.models import get as get_registered

from asteroid_lass.converters.metatasnet import convert_metatasnet
from asteroid_lass.errors import LASSInputError
from asteroid_lass.losses import build_objective
from asteroid_lass.models import MetaTasNet
from asteroid_lass.models.base import save_model_file
from metatasnet_layout import official_args, official_state_shapes, trainable_count

LABELS = ["drums", "bass", "other", "vocals"]
# A small official configuration: three stages like the paper, narrow layers.
SMALL_OFFICIAL = dict(N=64, B=32, H=32, layers=2, stack=1, num_mels=16)


def n_trainable(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


@pytest.fixture
def tiny():
    torch.manual_seed(0)
    return MetaTasNet(preset="tiny", sample_rate=16000).eval()


# ----------------------------------------------------------------------------- size
def test_paper_preset_has_official_parameter_count():
    assert n_trainable(MetaTasNet(preset="paper")) == 45_531_260


def test_independent_weights_ablation_has_official_parameter_count():
    assert n_trainable(MetaTasNet(preset="paper", generated_weights=False)) == 34_673_054


def test_official_layout_table_matches_the_reference_counts():
    """The layout the converter tests build checkpoints from is the official one."""
    shapes = official_state_shapes(official_args())
    assert len(shapes) == 1539
    assert trainable_count(shapes) == 45_531_260
    assert trainable_count(official_state_shapes(official_args(independent_params=True))) == (
        34_673_054
    )


def test_registered_by_name():
    assert get_registered("metatasnet") is MetaTasNet


# ----------------------------------------------------------------------------- behaviour
@pytest.mark.parametrize("n_samples", [12345, 301])
def test_output_has_input_length_and_rate(tiny, n_samples):
    mixture = torch.randn(2, 1, n_samples)
    with torch.no_grad():
        estimates = tiny(mixture, torch.tensor([[0, 3], [1, 2]]))
    assert estimates.shape == (2, 2, 1, n_samples)
    assert torch.isfinite(estimates).all()


def test_stereo_is_separated_channel_by_channel():
    torch.manual_seed(0)
    model = MetaTasNet(preset="tiny", sample_rate=16000, in_channels=2).eval()
    left, right = torch.randn(2, 1, 1, 4001)
    ids = torch.tensor([[3, 0]])
    with torch.no_grad():
        both = model(torch.cat([left, right], dim=1), ids)
        mono = MetaTasNet.from_pretrained(
            {**model.serialize(), "model_args": {**model.get_model_args(), "in_channels": 1}}
        )
        alone = mono(right, ids)
    assert both.shape == (1, 2, 2, 4001)
    torch.testing.assert_close(both[:, :, 1:], alone, rtol=1e-5, atol=1e-6)


def test_subset_request_equals_rows_of_full_request(tiny):
    mixture = torch.randn(2, 1, 9000)
    with torch.no_grad():
        full = tiny(mixture, torch.tensor([[0, 1, 2, 3]] * 2))
        subset = tiny(mixture, torch.tensor([[3, 1], [2, 0]]))
    torch.testing.assert_close(subset[0], full[0, [3, 1]], rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(subset[1], full[1, [2, 0]], rtol=1e-5, atol=1e-6)


def test_masks_share_the_latent_across_labels(tiny):
    """Softmax over all labels: the masked latents of every label sum to the mixture latent."""
    inputs = [torch.randn(1, 1, 2000), torch.randn(1, 1, 4000)]
    with torch.no_grad():
        stages = tiny.forward_stages(inputs)
    for latent, masked in zip(stages["mixture_latents"], stages["masked_latents"]):
        torch.testing.assert_close(masked.sum(dim=1), latent, rtol=1e-4, atol=1e-5)


def test_label_changes_the_output(tiny):
    mixture = torch.randn(1, 1, 8000)
    with torch.no_grad():
        estimates = tiny(mixture, torch.tensor([[0, 1]]))
    assert (estimates[0, 0] - estimates[0, 1]).abs().max() > 1e-3 * estimates.abs().max()


def test_output_follows_input_scale(tiny):
    """Inputs are divided by their std and outputs multiplied back: scale equivariant."""
    mixture = torch.randn(1, 1, 8000)
    ids = torch.tensor([[2]])
    with torch.no_grad():
        torch.testing.assert_close(tiny(7.0 * mixture, ids), 7.0 * tiny(mixture, ids))


def test_forward_stages_checks_frames(tiny):
    with pytest.raises(ValueError, match="frames"):
        tiny.forward_stages([torch.randn(1, 1, 2000), torch.randn(1, 1, 2000)])


def test_bad_conditions_raise(tiny):
    with pytest.raises(LASSInputError, match="outside"):
        tiny(torch.randn(1, 1, 4000), torch.tensor([[4]]))
    with pytest.raises(LASSInputError, match="shape"):
        tiny(torch.randn(1, 1, 4000), torch.tensor([0]))


def test_separate_by_label_names(tiny):
    estimates = tiny.separate(torch.randn(2, 5000), query=["vocals", "bass"])
    assert estimates.shape == (2, 2, 5000)
    with pytest.raises(LASSInputError, match="guitar"):
        tiny.separate(torch.randn(5000), query="guitar")


def test_any_vocabulary():
    model = MetaTasNet(labels=["speech", "music", "noise"], preset="tiny", sample_rate=8000)
    assert model.stages[0].label_embedding.weight.shape == (3, 8)
    with torch.no_grad():
        out = model(torch.randn(1, 1, 3000), model.conditions_for(["noise"], 1))
    assert out.shape == (1, 1, 1, 3000)


def test_spectrogram_statistics_normalise_training_data(tiny):
    mixture = torch.randn(3, 1, 16000) * torch.linspace(0.1, 1.0, 16000)
    tiny.compute_spectrogram_stats([mixture])
    inputs, _ = tiny.prepare_stage_inputs(mixture)
    for stage, signal in zip(tiny.stages, inputs):
        branch = stage.encoder.spectrogram
        normalised = (branch.log_power(signal) - branch.mean) / branch.std
        assert normalised.mean(dim=(0, 2)).abs().max() < 1e-4
        assert (normalised.std(dim=(0, 2)) - 1).abs().max() < 1e-3


def test_serialize_from_pretrained_round_trip(tiny, tmp_path):
    path = str(tmp_path / "metatasnet.pth")
    save_model_file(tiny, path)
    loaded = BaseModel.from_pretrained(path)
    assert isinstance(loaded, MetaTasNet)
    assert loaded.vocabulary == LABELS and loaded.get_model_args() == tiny.get_model_args()
    mixture, ids = torch.randn(1, 1, 7001), torch.tensor([[1, 3]])
    with torch.no_grad():
        assert torch.equal(loaded(mixture, ids), tiny(mixture, ids))


# ----------------------------------------------------------------------------- objective
def _batch(n_samples=8000):
    torch.manual_seed(1)
    targets = torch.randn(2, 4, 1, n_samples) * torch.tensor([1.0, 0.5, 0.3, 0.8])[:, None, None]
    targets[0, 2] = 0.0  # silent reference
    ids = torch.tensor([[0, 1, 2, 3]] * 2)
    return {"mixture": targets.sum(1), "targets": targets, "condition_ids": ids}


def test_objective_runs_and_backpropagates(tiny):
    tiny.train()
    batch = _batch()
    objective = build_objective({"objective": "metatasnet"})
    terms = objective(tiny.training_outputs(batch["mixture"], batch["condition_ids"]), batch)
    for name in ("loss", "sisnr", "reconstruction_sisnr", "similarity", "dissimilarity"):
        assert terms[name].ndim == 0 and torch.isfinite(terms[name]), name
    terms["loss"].backward()
    stage = tiny.stages[-1]
    for param in (
        stage.label_embedding.weight,
        stage.mask.tcn[0].dconv1d.kernel.weight,
        stage.encoder.filters[0].weight,
        stage.decoder.filters[2].weight,
        tiny.stages[0].encoder.spectrogram.affine_scale,
    ):
        assert param.grad is not None and param.grad.abs().sum() > 0


def test_objective_ignores_silent_references(tiny):
    """An output whose reference is silent everywhere adds nothing: the loss equals the loss
    of the same batch without that output (the other outputs are unchanged, see the subset
    test)."""
    batch = _batch()
    batch["targets"][:, 2] = 0.0
    keep = [0, 1, 3]
    reduced = {
        "mixture": batch["mixture"],
        "targets": batch["targets"][:, keep],
        "condition_ids": batch["condition_ids"][:, keep],
    }
    objective = build_objective({"objective": "metatasnet"})
    with torch.no_grad():
        full = objective(tiny.training_outputs(batch["mixture"], batch["condition_ids"]), batch)
        part = objective(
            tiny.training_outputs(reduced["mixture"], reduced["condition_ids"]), reduced
        )
    for name in ("loss", "similarity", "dissimilarity", "reconstruction_sisnr"):
        torch.testing.assert_close(full[name], part[name], rtol=1e-5, atol=1e-5)


def test_objective_weights_are_factory_arguments(tiny):
    batch = _batch()
    with torch.no_grad():
        outputs = tiny.training_outputs(batch["mixture"], batch["condition_ids"])
        base = build_objective({"objective": "metatasnet"})(outputs, batch)
        only_sisnr = build_objective(
            {
                "objective": "metatasnet",
                "reconstruction_weight": 0.0,
                "similarity_weight": 0.0,
                "dissimilarity_weight": 0.0,
            }
        )(outputs, batch)
    # loss = -sum over stages and outputs of SI-SNR - 0.05 rec + 3 dis - 2 sim (stage sums)
    n_stages = len(tiny.stages)
    expected = (
        only_sisnr["loss"]
        - 0.05 * n_stages * base["reconstruction_sisnr"]
        + 3.0 * n_stages * base["dissimilarity"]
        - 2.0 * n_stages * base["similarity"]
    )
    torch.testing.assert_close(base["loss"], expected, rtol=1e-5, atol=1e-4)
    assert 0.0 < float(base["similarity"]) <= 1.0 and 0.0 < float(base["dissimilarity"]) <= 1.0


# ----------------------------------------------------------------------------- converter
class NotATensor:
    """An arbitrary class: a checkpoint holding one must not be unpickled."""


def _official_checkpoint(path, args, seed=0, extra=None, drop=None):
    generator = torch.Generator().manual_seed(seed)
    state = {
        key: torch.randn(shape, generator=generator)
        for key, shape in official_state_shapes(args).items()
    }
    for key in [k for k in state if k.endswith(".spectrogram.std")]:
        state[key] = state[key].abs() + 0.5
    state.update(extra or {})
    for key in drop or ():
        del state[key]
    checkpoint = {"epoch": 7, "state_dict": state, "optimizer": {}, "steps": 123, "args": args}
    torch.save(checkpoint, path)
    return state


@pytest.mark.parametrize("independent", [False, True])
def test_converter_places_every_official_tensor(tmp_path, independent):
    args = official_args(independent_params=independent, **SMALL_OFFICIAL)
    state = _official_checkpoint(tmp_path / "best_checkpoint", args)
    out_path = tmp_path / "converted.pth"
    model = convert_metatasnet(str(tmp_path / "best_checkpoint"), str(out_path), labels=LABELS)
    converted = model.state_dict()
    expected_names = set()
    for key, value in state.items():
        if key.endswith(".spectrogram.window"):
            continue  # a constant Hann window, rebuilt by the model
        name = key.replace("instrument_embedding", "label_embedding")
        expected_names.add(name)
        assert torch.equal(converted[name], value), key
    assert set(converted) == expected_names
    assert model.stage_rates == [8000, 16000, 32000] and model.generated_weights is not independent

    # The written file loads with weights_only and gives the same outputs.
    loaded = BaseModel.from_pretrained(str(out_path))
    mixture, ids = torch.randn(1, 1, 6000), torch.tensor([[3, 0]])
    with torch.no_grad():
        reference = model(mixture, ids)
        assert torch.isfinite(reference).all()
        assert torch.equal(loaded(mixture, ids), reference)


def test_converter_rejects_unknown_missing_and_misshapen_tensors(tmp_path):
    args = official_args(**SMALL_OFFICIAL)
    path = str(tmp_path / "ckpt")
    _official_checkpoint(path, args, extra={"stages.0.mask.bogus.weight": torch.zeros(3)})
    with pytest.raises(ValueError, match="unexpected keys: stages.0.mask.bogus.weight"):
        convert_metatasnet(path)
    _official_checkpoint(path, args, drop=["stages.1.mask.norm_4.affine.bias"])
    with pytest.raises(ValueError, match="missing .*stages.1.mask.norm_4.affine.bias"):
        convert_metatasnet(path)
    _official_checkpoint(path, args, extra={"stages.2.encoder.filters.0.weight": torch.zeros(5)})
    with pytest.raises(ValueError, match="mismatches: stages.2.encoder.filters.0.weight"):
        convert_metatasnet(path)


def test_converter_needs_four_labels_and_its_args(tmp_path):
    path = str(tmp_path / "ckpt")
    _official_checkpoint(path, official_args(**SMALL_OFFICIAL))
    with pytest.raises(ValueError, match="4 instruments"):
        convert_metatasnet(path, labels=["vocals", "accompaniment"])
    torch.save({"state_dict": {}, "args": {"N": 64}}, path)
    with pytest.raises(ValueError, match="argparse.Namespace"):
        convert_metatasnet(path)


def test_converter_never_unpickles_other_objects(tmp_path):
    path = str(tmp_path / "ckpt")
    torch.save({"state_dict": {}, "args": official_args(), "extra": NotATensor()}, path)
    with pytest.raises(ValueError, match="weights_only"):
        convert_metatasnet(path)
    assert isinstance(official_args(), argparse.Namespace)
