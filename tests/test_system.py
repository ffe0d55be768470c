import numpy as np
import pytest
import pytorch_lightning as pl
import torch
from torch.utils.data import DataLoader

from asteroid_lass import LASSResUNet
from asteroid_lass.data import FixedMixtureDataset, QueryMixtureDataset, write_fixed_mixtures
from asteroid_lass.queries import build_query_encoder
from asteroid_lass.system import (
    TextConditionedSystem,
    get_loss,
    make_optimizer_and_scheduler,
    warmup_factor,
)
from conftest import small_corpus


class _LossRecorder(pl.Callback):
    def __init__(self):
        self.losses = []

    def on_train_batch_end(self, trainer, module, outputs, batch, batch_idx):
        self.losses.append(float(outputs["loss"]))


def test_system_trains_on_wav_files_and_loss_decreases(tmp_path):
    manifest = small_corpus(
        tmp_path, ["Siren", "Drum", "Wind", "Bell"], split="t", seconds_range=(1.0, 1.5)
    )
    sampler = QueryMixtureDataset(manifest, 8000, segment_seconds=1.0, seed=0)
    fixed = FixedMixtureDataset(
        write_fixed_mixtures(sampler, str(tmp_path / "fixed.csv"), 8, seed=0)
    )
    loader = DataLoader(fixed, batch_size=4, shuffle=False)
    encoder = build_query_encoder({"name": "sentence"})
    torch.manual_seed(0)
    model = LASSResUNet(
        sample_rate=8000, n_fft=256, hop_length=64, channels="tiny", condition_dim=384
    )
    optimizer, scheduler = make_optimizer_and_scheduler(model.parameters(), 3e-3, 0.0, 0)
    system = TextConditionedSystem(
        model,
        optimizer,
        get_loss("neg_sisdr"),
        loader,
        loader,
        scheduler,
        config={"training": {"lr": 3e-3}},
        query_encoder=encoder,
    )
    recorder = _LossRecorder()
    trainer = pl.Trainer(
        max_epochs=25,
        callbacks=[recorder],
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        accelerator="cpu",
    )
    trainer.fit(system)
    first, last = np.mean(recorder.losses[:4]), np.mean(recorder.losses[-4:])
    assert len(recorder.losses) == 50
    assert last < first - 3.0, (first, last)  # at least 3 dB better SI-SDR on the training set
    assert "val_si_sdri" in trainer.callback_metrics
    assert model.query_encoder_spec == {"name": "sentence"}


def test_warmup_schedule_matches_audiosep():
    factors = [warmup_factor(step, 10) for step in (0, 9, 10, 19, 20, 29, 30, 10_000)]
    assert factors == [0.001, 0.001, 0.01, 0.01, 0.1, 0.1, 1.0, 1.0]
    assert warmup_factor(5, 0) == 1.0


def test_losses_by_name():
    target = torch.randn(3, 800)
    assert get_loss("l1_wav")(target, target) == 0
    assert get_loss("neg_sisdr")(target, target) < -50
    combined = get_loss("l1_wav+neg_sisdr")(target * 0.5, target)
    torch.testing.assert_close(
        combined,
        get_loss("l1_wav")(target * 0.5, target) + get_loss("neg_sisdr")(target * 0.5, target),
    )
    with pytest.raises(ValueError, match="Unknown loss"):
        get_loss("mse")
