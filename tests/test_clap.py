"""LAION-CLAP queries through the real laion-clap code, on a tiny offline checkpoint."""

import functools
import hashlib
import os

import numpy as np
import pytest
import torch

from asteroid_lass import AudioQuery, LASSResUNet
from asteroid_lass.queries import build_query_encoder
from asteroid_lass.queries.clap import CHECKPOINT_ENV, find_checkpoint


@functools.lru_cache(maxsize=None)
def _sha256(path: str) -> str:
    with open(path, "rb") as stream:
        return hashlib.sha256(stream.read()).hexdigest()


def test_clap_text_and_audio_queries(tiny_clap_checkpoint, tmp_path):
    spec = {"name": "clap", "checkpoint": tiny_clap_checkpoint}
    encoder = build_query_encoder(spec)
    assert build_query_encoder(dict(spec)) is encoder  # one CLAP per process
    text = encoder.embed_text(["a dog barking", "a violin", "a dog barking"])
    assert text.shape == (3, 512)
    torch.testing.assert_close(text.norm(dim=-1), torch.ones(3))
    assert torch.equal(text[0], text[2]) and not torch.allclose(text[0], text[1])

    rng = np.random.RandomState(0)
    clip = rng.randn(2, 32000 * 3).astype(np.float32) * 0.1  # stereo, 32 kHz
    audio = encoder.embed_audio(clip, 32000)
    assert audio.shape == (1, 512)
    torch.testing.assert_close(audio.norm(dim=-1), torch.ones(1))
    # The same sound at 48 kHz gives nearly the same embedding: the encoder resamples.
    from asteroid_lass.audio import resample

    at_48k = resample(torch.from_numpy(clip), 32000, 48000)
    assert torch.nn.functional.cosine_similarity(audio, encoder.embed_audio(at_48k, 48000)) > 0.99

    model = LASSResUNet(
        sample_rate=16000, n_fft=512, hop_length=128, channels="tiny", query_encoder=spec
    ).eval()
    mixture = torch.randn(8000)
    by_text = model.separate(mixture, query="a dog barking")
    by_audio = model.separate(mixture, query=AudioQuery(clip, 32000))
    assert by_text.shape == by_audio.shape == (1, 8000)
    with torch.no_grad():
        direct = model(mixture[None, None], audio[None])[0, :, 0]
    torch.testing.assert_close(by_audio, direct)

    # The model records the checkpoint by file name and content hash, not by this machine's path.
    assert model.query_encoder_spec == {
        "name": "clap",
        "checkpoint": "tiny_clap.pt",
        "sha256": _sha256(tiny_clap_checkpoint),
        "amodel": "HTSAT-base",
    }
    path = tmp_path / "clap_model.pth"
    torch.save(model.serialize(), path)
    assert os.path.dirname(tiny_clap_checkpoint).encode() not in path.read_bytes()
    reloaded = LASSResUNet.from_pretrained(str(path))
    assert reloaded.query_encoder is encoder
    torch.testing.assert_close(reloaded.separate(mixture, query="a dog barking"), by_text)


def test_checkpoint_is_found_by_name_and_hash(tiny_clap_checkpoint, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # no file of that name in the working directory
    monkeypatch.delenv(CHECKPOINT_ENV, raising=False)
    name, sha256 = os.path.basename(tiny_clap_checkpoint), _sha256(tiny_clap_checkpoint)
    with pytest.raises(FileNotFoundError, match=f"{name} not found.*{CHECKPOINT_ENV}"):
        find_checkpoint(name, sha256)
    # The environment variable may name the folder or the file itself.
    for where in (os.path.dirname(tiny_clap_checkpoint), tiny_clap_checkpoint):
        monkeypatch.setenv(CHECKPOINT_ENV, where)
        assert os.path.samefile(find_checkpoint(name, sha256), tiny_clap_checkpoint)
    # A different file of the same name is not taken for it when the hash is known.
    impostor = tmp_path / "elsewhere" / name
    impostor.parent.mkdir()
    impostor.write_bytes(b"not the checkpoint")
    monkeypatch.setenv(CHECKPOINT_ENV, str(impostor.parent))
    with pytest.raises(FileNotFoundError, match="another SHA-256"):
        find_checkpoint(name, sha256)
    assert os.path.samefile(find_checkpoint(name), impostor)  # no hash: the name is enough
    # An explicit path wins over the environment.
    assert os.path.samefile(find_checkpoint(tiny_clap_checkpoint, sha256), tiny_clap_checkpoint)
