import importlib

import numpy as np
import pytest
import torch
from asteroid.models import BaseModel
from asteroid.models import get as get_registered

from asteroid_lass import LASSResUNet
from conftest import write_wav


def test_base_preset_has_audiosep_used_parameter_count():
    model = LASSResUNet(channels="base", condition_dim=512)
    n_params = sum(p.numel() for p in model.parameters() if p.requires_grad)
    assert n_params == 26_447_941 - 824_000 == 25_623_941


def test_registered_by_name_and_import_twice_is_safe():
    import asteroid_lass.models

    importlib.reload(asteroid_lass.models)
    assert get_registered("lassresunet").__name__ == "LASSResUNet"
    assert get_registered("LASSResUNet").__name__ == "LASSResUNet"


@pytest.mark.parametrize("n_samples", [16000, 16001, 12345, 999])
def test_output_has_input_length(tiny_model, n_samples):
    mixture = torch.randn(2, n_samples)
    with torch.no_grad():
        estimate = tiny_model(mixture, torch.randn(2, 384))
    assert estimate.shape == (2, 1, n_samples)
    assert torch.isfinite(estimate).all()


def test_film_conditions_the_output(tiny_model):
    mixture = torch.randn(1, 1, 16000)
    first, second = torch.randn(2, 1, 384)
    with torch.no_grad():
        out_a = tiny_model(mixture, first)
        out_a_again = tiny_model(mixture, first)
        out_b = tiny_model(mixture, second)
    assert torch.equal(out_a, out_a_again)
    assert (out_a - out_b).abs().max() > 1e-3 * out_a.abs().max()


def test_mask_bounds_the_magnitude(tiny_model):
    """|Y| <= |X| bin by bin: the magnitude mask is a sigmoid."""
    mixture = torch.randn(1, 1, 16000)
    with torch.no_grad():
        estimate = tiny_model(mixture, torch.randn(1, 384))
        ratio = tiny_model.stft(estimate).abs() / tiny_model.stft(mixture).abs().clamp_min(1e-6)
    # resynthesis mixes neighbouring frames; the bound holds up to that leakage
    assert ratio.median() < 1.0


def test_serialize_from_pretrained_round_trip(tiny_model, tmp_path):
    mixture = torch.randn(1, 1, 8000)
    embedding = torch.randn(1, 384)
    with torch.no_grad():
        expected = tiny_model(mixture, embedding)
    conf = tiny_model.serialize()
    path = tmp_path / "model.pth"
    torch.save(conf, path)
    loaded_conf = torch.load(path, weights_only=True)  # plain types only
    assert loaded_conf["model_args"]["query_encoder"] == {"name": "sentence"}
    assert all(not k.startswith("_query_encoder") for k in loaded_conf["state_dict"])
    for loaded in (
        BaseModel.from_pretrained(str(path)),
        LASSResUNet.from_pretrained(str(path)),
        LASSResUNet.from_pretrained(conf),
    ):
        assert isinstance(loaded, LASSResUNet)
        loaded.eval()
        with torch.no_grad():
            torch.testing.assert_close(loaded(mixture, embedding), expected)


def test_separate_tensor_numpy_and_file_with_text_query(tiny_model, tmp_path):
    rng = np.random.RandomState(0)
    wav = (0.1 * rng.randn(1, 12000)).astype(np.float32)
    as_tensor = tiny_model.separate(torch.from_numpy(wav), query="dog barking")
    as_numpy = tiny_model.separate(wav, query="dog barking")
    assert isinstance(as_tensor, torch.Tensor) and as_tensor.shape == (1, 12000)
    assert isinstance(as_numpy, np.ndarray) and as_numpy.shape == (1, 12000)
    np.testing.assert_allclose(as_numpy, as_tensor.numpy(), atol=1e-6)
    # No L1 rescaling: the estimate is exactly the model's output.
    embedding = tiny_model.query_encoder.embed_text(["dog barking"])
    with torch.no_grad():
        direct = tiny_model(torch.from_numpy(wav)[None], embedding)[0]
    torch.testing.assert_close(as_tensor, direct)
    path = write_wav(tmp_path / "mix.wav", wav, 16000)
    (written,) = tiny_model.separate(path, query="dog barking", output_dir=str(tmp_path / "out"))
    assert written.endswith("mix_dog-barking.wav")
    import soundfile as sf

    from_file, rate = sf.read(written, dtype="float32")
    assert rate == 16000
    np.testing.assert_allclose(from_file, as_numpy[0], atol=1e-5)


def test_batched_separate_with_one_query_per_item(tiny_model):
    wav = torch.randn(2, 1, 8000)
    out = tiny_model.separate(wav, query=["dog barking", "violin"])
    assert out.shape == (2, 1, 8000)
    single = tiny_model.separate(wav[1], query="violin")
    torch.testing.assert_close(out[1], single, atol=1e-5, rtol=1e-4)


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
    with pytest.raises(ValueError, match="No query given"):
        tiny_model.separate(path)


@pytest.mark.parametrize("query", ["", "   ", []])
def test_empty_query_is_refused(tiny_model, query):
    with pytest.raises(ValueError, match="(?i)empty|no query"):
        tiny_model.separate(torch.randn(1, 4000), query=query)


def test_embedding_of_wrong_dimension_is_refused(tiny_model):
    with pytest.raises(ValueError, match=r"\(batch, 384\)"):
        tiny_model.separate(torch.randn(1, 4000), query=torch.randn(1, 512))


def test_audio_query_on_text_only_encoder_is_refused(tiny_model):
    from asteroid_lass import AudioQuery

    with pytest.raises(NotImplementedError, match="text only"):
        tiny_model.separate(torch.randn(1, 4000), query=AudioQuery(np.zeros(4000), 16000))


def test_file_at_another_rate_without_resampling_is_refused(tiny_model, tmp_path):
    path = write_wav(tmp_path / "mix44.wav", np.zeros(4410, np.float32), 44100)
    with pytest.raises(ValueError, match="44100 Hz.*16000 Hz"):
        tiny_model.separate(path, query="dog", resample=False)


def test_missing_model_and_checkpoint_paths_are_named(tmp_path):
    missing = str(tmp_path / "nope.pth")
    with pytest.raises(FileNotFoundError, match="nope.pth"):
        LASSResUNet.from_pretrained(missing)
    from asteroid_lass.queries.clap import ClapQueryEncoder

    with pytest.raises(FileNotFoundError, match="nope.pt"):
        ClapQueryEncoder(str(tmp_path / "nope.pt"))


def test_bad_constructor_args():
    with pytest.raises(ValueError, match="preset"):
        LASSResUNet(channels="huge")
    with pytest.raises(ValueError, match="n_fft"):
        LASSResUNet(n_fft=1000)


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
    loaded = LASSResUNet.from_pretrained("someone/lass-tiny").eval()
    mixture, embedding = torch.randn(1, 4000), torch.randn(1, 384)
    with torch.no_grad():
        torch.testing.assert_close(loaded(mixture, embedding), tiny_model(mixture, embedding))
    with pytest.raises(ValueError, match="someone/absent"):
        LASSResUNet.from_pretrained("someone/absent")


def test_multichannel_model_masks_each_channel():
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
        estimate = model(stereo, torch.randn(3, 16))
    assert estimate.shape == (3, 2, 7000)
    restored = LASSResUNet.from_pretrained(model.serialize())
    assert restored.in_channels == 2
    with pytest.raises(ValueError, match=r"\(batch, 2, time\)"):
        model(torch.randn(3, 1, 7000), torch.randn(3, 16))
