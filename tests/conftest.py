"""Test-wide setup: no network, a private Hugging Face cache, shared fixtures."""

import os
import tempfile

# Before anything imports huggingface_hub: a private cache, and never the network.
_HF_HOME = tempfile.mkdtemp(prefix="asteroid-lass-hf-")
os.environ["HF_HOME"] = _HF_HOME
os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["TRANSFORMERS_OFFLINE"] = "1"

import numpy as np  # noqa: E402
import pytest  # noqa: E402
import soundfile as sf  # noqa: E402
import torch  # noqa: E402

torch.set_num_threads(2)


@pytest.fixture(scope="session")
def tiny_clap_checkpoint(tmp_path_factory) -> str:
    """A LAION-CLAP checkpoint with random weights and a tiny RoBERTa, built offline."""
    from tiny_clap import write_tiny_clap_checkpoint, write_tiny_roberta

    write_tiny_roberta(_HF_HOME)
    return write_tiny_clap_checkpoint(str(tmp_path_factory.mktemp("clap") / "tiny_clap.pt"))


@pytest.fixture(scope="session")
def sentence_spec() -> dict:
    return {"name": "sentence"}


@pytest.fixture
def tiny_model():
    """A tiny LASSResUNet on the offline sentence encoder, in eval mode."""
    from asteroid_lass import LASSResUNet

    torch.manual_seed(0)
    model = LASSResUNet(
        sample_rate=16000,
        n_fft=512,
        hop_length=128,
        channels="tiny",
        condition_dim=384,
        query_encoder={"name": "sentence"},
    )
    return randomize_batchnorm(model).eval()


def randomize_batchnorm(model: torch.nn.Module, seed: int = 0) -> torch.nn.Module:
    """Give BatchNorm layers non-trivial statistics, as a trained model has."""
    generator = torch.Generator().manual_seed(seed)
    for module in model.modules():
        if isinstance(module, torch.nn.BatchNorm2d):
            module.running_mean.normal_(0, 0.2, generator=generator)
            module.running_var.uniform_(0.5, 2.0, generator=generator)
    return model


def small_corpus(root, classes, clips_per_class=2, split="s", seconds_range=(1.0, 1.2)) -> str:
    """A few short built-in-corpus clips at 8 kHz of the given classes; returns the manifest."""
    from asteroid_lass.data.synth import make_corpus

    return make_corpus(
        str(root),
        clips_per_class=clips_per_class,
        sample_rate=8000,
        seconds_range=seconds_range,
        classes=list(classes),
        split=split,
    )


def write_wav(path, wav: np.ndarray, sample_rate: int) -> str:
    """(channels, time) or (time,) float array to a wav file."""
    wav = np.asarray(wav, dtype=np.float32)
    sf.write(str(path), wav.T if wav.ndim == 2 else wav, sample_rate, subtype="FLOAT")
    return str(path)


def quiet_trainer(**kwargs):
    """A real Lightning Trainer without logger, checkpoints, progress bar or summary."""
    import pytorch_lightning as pl

    quiet = dict(
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
    )
    return pl.Trainer(**{**quiet, **kwargs})
