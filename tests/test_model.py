import importlib
import copy
import math

import numpy as np
import pytest
import soundfile as sf
import torch
from asteroid.models import BaseModel
from asteroid.models import get as get_registered

from asteroid_lass import LASSResUNet
from asteroid_lass.errors import LASSInputError, ModelFileError
from audiosep_layout import (
    AUDIOSEP_TRAINABLE,
    AUDIOSEP_UNUSED,
    audiosep_shapes,
    trainable_count,
)
from conftest import write_wav

# A logit whose sigmoid (and tanh) is exactly 1.0 in float32.
SATURATED = 50.0


def _n_params(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


def test_base_preset_has_the_parameters_audiosep_uses():
    layout = audiosep_shapes()
    # The layout table, written from the reference notes, reproduces their published figures.
    assert trainable_count(layout, used_only=False) == AUDIOSEP_TRAINABLE
    assert AUDIOSEP_TRAINABLE - trainable_count(layout, used_only=True) == AUDIOSEP_UNUSED
    model = LASSResUNet(channels="base", condition_dim=512)
    assert _n_params(model) == trainable_count(layout, used_only=True)


@pytest.mark.parametrize(
    "channels, condition_dim, n_fft, in_channels",
    [
        ("tiny", 384, 512, 1),
        ("compact", 384, 512, 1),
        ("lean", 384, 512, 1),
        ("small", 512, 1024, 2),
        ([4, 8, 8, 16, 16, 24], 7, 256, 3),
    ],
)
def test_other_sizes_have_the_layouts_parameter_count(channels, condition_dim, n_fft, in_channels):
    model = LASSResUNet(
        n_fft=n_fft, channels=channels, condition_dim=condition_dim, in_channels=in_channels
    )
    widths = {
        "tiny": (8, 16, 32, 64, 64, 64),
        "compact": (8, 16, 32, 64, 128, 128),
        "lean": (4, 16, 32, 64, 128, 128),
        "small": (16, 32, 64, 128, 192, 192),
    }
    enc = widths.get(channels, channels) if isinstance(channels, str) else channels
    layout = audiosep_shapes(enc, condition_dim, n_fft, in_channels)
    assert _n_params(model) == trainable_count(layout, used_only=True)


def test_registered_by_name_and_import_twice_is_safe():
    import asteroid_lass.models

    importlib.reload(asteroid_lass.models)
    assert get_registered("lassresunet").__name__ == "LASSResUNet"
    assert get_registered("LASSResUNet").__name__ == "LASSResUNet"


@pytest.mark.parametrize("n_samples", [16000, 16001, 12345, 999])
def test_output_has_input_length_and_one_output_per_query(tiny_model, n_samples):
    mixture = torch.randn(2, 1, n_samples)
    with torch.no_grad():
        estimate = tiny_model(mixture, torch.randn(2, 2, 384))
    assert estimate.shape == (2, 2, 1, n_samples)
    assert torch.isfinite(estimate).all()


def test_film_conditions_the_output(tiny_model):
    mixture = torch.randn(1, 1, 16000)
    first, second = torch.randn(2, 1, 1, 384)
    with torch.no_grad():
        out_a = tiny_model(mixture, first)
        out_a_again = tiny_model(mixture, first)
        out_b = tiny_model(mixture, second)
    assert torch.equal(out_a, out_a_again)
    assert (out_a - out_b).abs().max() > 1e-3 * out_a.abs().max()


def test_queries_of_one_call_are_independent(tiny_model):
    """Several queries in one pass give what each gives alone (no cross-talk in the batch)."""
    mixture = torch.randn(2, 1, 4000)
    embeddings = torch.randn(2, 2, 384)
    with torch.no_grad():
        together = tiny_model(mixture, embeddings)
        for b in range(2):
            for k in range(2):
                alone = tiny_model(mixture[b : b + 1], embeddings[b : b + 1, k : k + 1])
                torch.testing.assert_close(together[b, k], alone[0, 0], atol=1e-5, rtol=1e-4)


@pytest.mark.parametrize("channels", ["tiny", [8, 16, 24, 32, 48, 48]])
def test_lean_inference_matches_the_layer_by_layer_pass_and_leaves_inputs_alone(channels):
    """Without gradients the eval pass fuses BatchNorm and FiLM and reuses maps; with them it
    runs torch's BatchNorm layers one by one (AudioSep's structure). Both must agree, on
    non-trivial running statistics, and the caller's tensors must come back untouched."""
    torch.manual_seed(0)
    model = LASSResUNet(
        sample_rate=8000, n_fft=256, hop_length=64, channels=channels, condition_dim=32
    )
    generator = torch.Generator().manual_seed(1)
    for layer in model.modules():
        if isinstance(layer, torch.nn.BatchNorm2d):
            layer.running_mean.copy_(0.3 * torch.randn(layer.num_features, generator=generator))
            layer.running_var.copy_(0.5 + torch.rand(layer.num_features, generator=generator))
    model.eval()
    mixture = 0.1 * torch.randn(2, 1, 8000, generator=generator)
    embeddings = torch.randn(2, 3, 32, generator=generator)
    mixture_copy, embeddings_copy = mixture.clone(), embeddings.clone()
    with torch.enable_grad():
        layer_by_layer = model(mixture, embeddings).detach()
    for no_gradients in (torch.no_grad, torch.inference_mode):
        with no_gradients():
            lean = model(mixture, embeddings)
        relative = (lean - layer_by_layer).norm() / layer_by_layer.norm()
        assert relative < 1e-5, relative
    assert torch.equal(mixture, mixture_copy) and torch.equal(embeddings, embeddings_copy)
    # Both modes keep the convolution weights channels-last (oneDNN's own layout).
    for mode in (True, False):
        model.train(mode)
        assert model.encoder_blocks[0].unit.conv1.weight.is_contiguous(
            memory_format=torch.channels_last
        )


def test_training_step_does_not_depend_on_the_weights_layout():
    """Channels-last weights (what ``train()`` sets, for speed) and the default layout give the
    same training loss and gradients, to float rounding."""
    torch.manual_seed(0)
    model = LASSResUNet(
        sample_rate=8000, n_fft=256, hop_length=64, channels="tiny", condition_dim=8
    )
    mixture = 0.1 * torch.randn(3, 1, 4000)
    embeddings = torch.randn(3, 1, 8)
    target = 0.1 * torch.randn(3, 1, 1, 4000)
    results = []
    for layout in (torch.channels_last, torch.contiguous_format):
        replica = copy.deepcopy(model).train()
        replica.to(memory_format=layout)
        loss = (replica(mixture, embeddings) - target).square().mean()
        loss.backward()
        results.append((loss.detach(), [p.grad.flatten() for p in replica.parameters()]))
    (loss_last, grads_last), (loss_default, grads_default) = results
    assert torch.allclose(loss_last, loss_default, rtol=1e-5)
    assert model.encoder_blocks[1].unit.conv1.weight.grad is None  # the copies, not the model
    gradient_last, gradient_default = torch.cat(grads_last), torch.cat(grads_default)
    relative = (gradient_last - gradient_default).norm() / gradient_default.norm()
    assert relative < 1e-4, relative


def _saturate_output_conv(model: LASSResUNet, logits_per_channel) -> LASSResUNet:
    """Make the mask a constant: zero output-conv weights, biases set to the given logits.

    ``logits_per_channel`` lists (magnitude logit, phase real logit, phase imaginary logit) for
    each audio channel.
    """
    with torch.no_grad():
        model.after_conv.weight.zero_()
        model.after_conv.bias.copy_(torch.tensor(logits_per_channel).flatten())
    return model


def _without_top_bin(wav: torch.Tensor, n_fft: int, hop_length: int) -> torch.Tensor:
    """``wav`` (..., time) with the top (Nyquist) STFT bin of every frame zeroed."""
    window = torch.hann_window(n_fft)
    flat = wav.reshape(-1, wav.shape[-1]).double()
    spec = torch.stft(flat, n_fft, hop_length, window=window.double(), return_complex=True)
    spec[:, -1] = 0
    out = torch.istft(spec, n_fft, hop_length, window=window.double(), length=wav.shape[-1])
    return out.reshape(wav.shape).float()


@pytest.mark.parametrize(
    "magnitude_logit, phase_logit, gain",
    [
        (SATURATED, SATURATED, 1.0),  # mask 1, no rotation: the mixture comes back
        (0.0, SATURATED, 0.5),  # sigmoid(0) = 1/2
        (math.log(3.0), SATURATED, 0.75),  # sigmoid(log 3) = 3/4
        (math.log(1 / 3), -SATURATED, -0.25),  # rotation by pi flips the sign
        (-SATURATED, SATURATED, 0.0),  # mask 0: silence
    ],
)
def test_a_constant_mask_scales_the_mixture_by_its_known_gain(
    tiny_model, magnitude_logit, phase_logit, gain
):
    """With the mask M = sigmoid(k0) * unit(tanh(k1), tanh(k2)) made constant, the estimate is
    ``gain`` times the mixture, except the top frequency bin, which AudioSep's U-Net never sees:
    its logits are the zero padding (rotation unit(0, 0) = 0), so that bin is silenced."""
    model = _saturate_output_conv(tiny_model, [(magnitude_logit, phase_logit, 0.0)])
    mixture = torch.randn(2, 1, 12345)
    with torch.no_grad():
        estimate = model(mixture, torch.randn(2, 2, 384))
    expected = gain * _without_top_bin(mixture, 512, 128)
    for k in range(2):
        torch.testing.assert_close(estimate[:, k], expected, atol=2e-5, rtol=1e-4)
    # The top bin of white noise is not negligible: the comparison above can tell.
    assert (mixture - _without_top_bin(mixture, 512, 128)).abs().max() > 1e-2


def test_multichannel_model_masks_each_channel_with_its_own_mask():
    torch.manual_seed(0)
    model = LASSResUNet(
        sample_rate=16000,
        n_fft=512,
        hop_length=128,
        channels="tiny",
        condition_dim=16,
        in_channels=2,
    ).eval()
    stereo = torch.randn(3, 2, 7000)
    with torch.no_grad():
        estimate = model(stereo, torch.randn(3, 1, 16))
    assert estimate.shape == (3, 1, 2, 7000)
    # Channel 0 kept at half level, channel 1 at three quarters with its sign flipped.
    _saturate_output_conv(model, [(0.0, SATURATED, 0.0), (math.log(3.0), -SATURATED, 0.0)])
    with torch.no_grad():
        estimate = model(stereo, torch.randn(3, 1, 16))
    expected = _without_top_bin(stereo, 512, 128)
    torch.testing.assert_close(estimate[:, 0, 0], 0.5 * expected[:, 0], atol=2e-5, rtol=1e-4)
    torch.testing.assert_close(estimate[:, 0, 1], -0.75 * expected[:, 1], atol=2e-5, rtol=1e-4)

    restored = LASSResUNet.from_pretrained(model.serialize())
    assert restored.in_channels == 2
    with pytest.raises(LASSInputError, match=r"\(batch, 2, time\)"):
        model.separate(torch.randn(3, 7000), query=torch.randn(16))
    with pytest.raises(LASSInputError, match=r"\(batch, 2, time\)"):
        model.separate(torch.randn(3, 1, 7000), query=torch.randn(16))


def test_serialize_from_pretrained_round_trip_returns_eval_mode(tiny_model, tmp_path):
    mixture = torch.randn(1, 1, 8000)
    embedding = torch.randn(1, 1, 384)
    with torch.no_grad():
        expected = tiny_model(mixture, embedding)
    conf = tiny_model.serialize()
    path = tmp_path / "model.pth"
    torch.save(conf, path)
    loaded_conf = torch.load(path, weights_only=True)  # plain types only
    assert loaded_conf["model_args"]["query_encoder"] == {"name": "sentence"}
    assert all(not k.startswith("_query_encoder") for k in loaded_conf["state_dict"])
    for loaded in (
        LASSResUNet.from_pretrained(str(path)),
        LASSResUNet.from_pretrained(conf),
        BaseModel.from_pretrained(str(path)).eval(),  # Asteroid's own loader: train mode
    ):
        assert isinstance(loaded, LASSResUNet)
        # BatchNorm in training mode would use batch statistics and change the output.
        assert not any(module.training for module in loaded.modules())
        with torch.no_grad():
            torch.testing.assert_close(loaded(mixture, embedding), expected)


def test_separate_shapes_follow_the_input(tiny_model):
    """(time,) -> (n, time); (batch, time) -> (batch, n, time); (batch, 1, time) -> 4-D."""
    queries = torch.randn(2, 384)
    one = torch.randn(6000)
    assert tiny_model.separate(one, query=queries).shape == (2, 6000)
    assert tiny_model.separate(torch.randn(3, 6000), query=queries).shape == (3, 2, 6000)
    assert tiny_model.separate(torch.randn(3, 1, 6000), query=queries).shape == (3, 2, 1, 6000)
    assert tiny_model.separate(one, query=queries[0]).shape == (1, 6000)
    # The same mixture in any layout gives the same estimates.
    with torch.no_grad():
        direct = tiny_model(one[None, None], queries[None])[0, :, 0]
    torch.testing.assert_close(tiny_model.separate(one, query=queries), direct)
    torch.testing.assert_close(tiny_model.separate(one[None], query=queries)[0], direct)


def test_separate_accepts_inputs_shorter_than_the_stft(tiny_model):
    """The model declares min_input_samples; separate pads to it and crops back."""
    assert tiny_model.min_input_samples > 100
    estimate = tiny_model.separate(torch.randn(100), query=torch.randn(384))
    assert estimate.shape == (1, 100) and torch.isfinite(estimate).all()


def test_separate_tensor_numpy_and_file_with_text_query(tiny_model, tmp_path):
    rng = np.random.RandomState(0)
    wav = (0.1 * rng.randn(12000)).astype(np.float32)
    as_tensor = tiny_model.separate(torch.from_numpy(wav), query="dog barking")
    as_numpy = tiny_model.separate(wav, query="dog barking")
    assert isinstance(as_tensor, torch.Tensor) and as_tensor.shape == (1, 12000)
    assert isinstance(as_numpy, np.ndarray) and as_numpy.shape == (1, 12000)
    np.testing.assert_allclose(as_numpy, as_tensor.numpy(), atol=1e-6)
    # No L1 rescaling: the estimate is exactly the model's output.
    embedding = tiny_model.query_encoder.embed_text(["dog barking"])
    with torch.no_grad():
        direct = tiny_model(torch.from_numpy(wav)[None, None], embedding[None])[0, :, 0]
    torch.testing.assert_close(as_tensor, direct)
    path = write_wav(tmp_path / "mix.wav", wav, 16000)
    (written,) = tiny_model.separate(path, query="dog barking", output_dir=str(tmp_path / "out"))
    assert written.endswith("mix_dog-barking.wav")
    from_file, rate = sf.read(written, dtype="float32")
    assert rate == 16000
    np.testing.assert_allclose(from_file, as_numpy[0], atol=1e-5)


def test_separate_leaves_training_mode_as_it_was(tiny_model):
    tiny_model.train()
    tiny_model.separate(torch.randn(4000), query=torch.randn(384))
    assert all(module.training for module in tiny_model.modules())
    assert torch.is_grad_enabled()


def test_query_embeddings_are_cached_by_string(tiny_model):
    encoder = tiny_model.query_encoder
    first = encoder.embed_text(["a siren", "a bell", "a siren"])
    assert first.shape == (3, 384)
    torch.testing.assert_close(first.norm(dim=-1), torch.ones(3))
    assert torch.equal(first[0], first[2])
    size = len(encoder._text_cache)
    encoder.embed_text(["a bell", "a siren"])
    assert len(encoder._text_cache) == size


def test_file_without_a_query_is_refused(tiny_model, tmp_path):
    path = write_wav(tmp_path / "mix.wav", np.zeros(1600, np.float32), 16000)
    with pytest.raises(LASSInputError, match="No query given"):
        tiny_model.separate(path)
    with pytest.raises(LASSInputError, match="No query given"):
        tiny_model.separate(torch.zeros(1600))


@pytest.mark.parametrize("query", ["", "   ", []])
def test_empty_query_is_refused(tiny_model, query):
    with pytest.raises(LASSInputError, match="(?i)empty|no query"):
        tiny_model.separate(torch.randn(1, 4000), query=query)


def test_embedding_of_wrong_dimension_is_refused(tiny_model):
    with pytest.raises(LASSInputError, match="512 values.*expects 384"):
        tiny_model.separate(torch.randn(1, 4000), query=torch.randn(1, 512))


def test_audio_query_on_text_only_encoder_is_refused(tiny_model):
    from asteroid_lass import AudioQuery

    with pytest.raises(NotImplementedError, match="text only"):
        tiny_model.separate(torch.randn(1, 4000), query=AudioQuery(np.zeros(4000), 16000))


def test_file_at_another_rate_without_resampling_is_refused(tiny_model, tmp_path):
    path = write_wav(tmp_path / "mix44.wav", np.zeros(4410, np.float32), 44100)
    with pytest.raises(LASSInputError, match="44100 Hz.*16000 Hz"):
        tiny_model.separate(path, query="dog", resample=False)


def test_missing_model_and_checkpoint_paths_are_named(tmp_path):
    missing = str(tmp_path / "nope.pth")
    with pytest.raises(ModelFileError, match="nope.pth"):
        LASSResUNet.from_pretrained(missing)
    from asteroid_lass.queries.clap import ClapQueryEncoder

    with pytest.raises(FileNotFoundError, match="nope.pt"):
        ClapQueryEncoder(str(tmp_path / "nope.pt"))


def test_bad_constructor_args():
    with pytest.raises(ValueError, match="preset"):
        LASSResUNet(channels="huge")
    with pytest.raises(ValueError, match="n_fft"):
        LASSResUNet(n_fft=1000)
    with pytest.raises(ValueError, match="condition_dim"):
        LASSResUNet(condition_dim=0)


def test_hub_id_goes_through_asteroids_hub_code(tiny_model, tmp_path, monkeypatch):
    """An ``owner/name`` id is resolved by Asteroid's cached_download (Hugging Face hub), here
    from a hub cache filled beforehand, since the network is off."""
    import asteroid.utils.hub_utils

    # Asteroid reads ASTEROID_CACHE once, at import: point its cache at this test's folder.
    monkeypatch.setattr(asteroid.utils.hub_utils, "CACHE_DIR", str(tmp_path))
    snapshot = tmp_path / "models--someone--lass-tiny" / "snapshots" / ("a" * 40)
    snapshot.mkdir(parents=True)
    (tmp_path / "models--someone--lass-tiny" / "refs").mkdir()
    (tmp_path / "models--someone--lass-tiny" / "refs" / "main").write_text("a" * 40)
    torch.save(tiny_model.serialize(), snapshot / "pytorch_model.bin")
    loaded = LASSResUNet.from_pretrained("someone/lass-tiny")
    mixture, embedding = torch.randn(1, 1, 4000), torch.randn(1, 1, 384)
    with torch.no_grad():
        torch.testing.assert_close(loaded(mixture, embedding), tiny_model(mixture, embedding))
    with pytest.raises(ModelFileError, match="someone/absent"):
        LASSResUNet.from_pretrained("someone/absent")
