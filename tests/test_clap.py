"""LAION-CLAP queries through the real laion-clap code, on a tiny offline checkpoint."""

import numpy as np
import torch

from asteroid_lass import AudioQuery, LASSResUNet
from asteroid_lass.queries import build_query_encoder


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
    mixture = torch.randn(1, 8000)
    by_text = model.separate(mixture, query="a dog barking")
    by_audio = model.separate(mixture, query=AudioQuery(clip, 32000))
    assert by_text.shape == by_audio.shape == (1, 8000)
    path = tmp_path / "clap_model.pth"
    torch.save(model.serialize(), path)
    reloaded = LASSResUNet.from_pretrained(str(path)).eval()
    assert reloaded.query_encoder is encoder
    torch.testing.assert_close(reloaded.separate(mixture, query="a dog barking"), by_text)
