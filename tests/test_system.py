"""The N-output System on real wav files with a real Lightning Trainer, and its schedule."""

import io

import numpy as np
import pytorch_lightning as pl
import torch
from conftest import small_corpus
from torch.utils.data import DataLoader

from asteroid_lass import LASSResUNet
from asteroid_lass.data import FixedMixtureDataset, QueryMixtureDataset, write_fixed_mixtures
from asteroid_lass.data.batch import collate_separation
from asteroid_lass.losses import build_objective
from asteroid_lass.queries import build_query_encoder
from asteroid_lass.system import (
    EpochLine,
    SeparationSystem,
    make_optimizer_and_scheduler,
    schedule_factor,
    warmup_factor,
)


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
    loader = DataLoader(fixed, batch_size=4, shuffle=False, collate_fn=collate_separation)
    encoder = build_query_encoder({"name": "sentence"})
    torch.manual_seed(0)
    model = LASSResUNet(
        sample_rate=8000, n_fft=256, hop_length=64, channels="tiny", condition_dim=384
    )
    optimizer, scheduler = make_optimizer_and_scheduler(model.parameters(), 3e-3, 0.0, 0)
    system = SeparationSystem(
        model,
        optimizer,
        build_objective({"objective": "waveform", "loss": "neg_sisdr"}),
        loader,
        loader,
        scheduler,
        config={"training": {"lr": 3e-3}},
        query_encoder=encoder,
    )
    recorder, log = _LossRecorder(), io.StringIO()
    trainer = pl.Trainer(
        max_epochs=25,
        callbacks=[recorder, EpochLine(stream=log)],
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
    lines = log.getvalue().splitlines()
    assert len(lines) == 25 and lines[0].startswith("epoch 1/25  train_loss ")
    assert "val_loss" in lines[-1] and "val_si_sdri" in lines[-1] and "left ~0m00s" in lines[-1]


def test_warmup_schedule_matches_audiosep():
    factors = [warmup_factor(step, 10) for step in (0, 9, 10, 19, 20, 29, 30, 10_000)]
    assert factors == [0.001, 0.001, 0.01, 0.01, 0.1, 0.1, 1.0, 1.0]
    assert warmup_factor(5, 0) == 1.0


def _run_schedule(schedulers, optimizer, epochs, steps_per_epoch, val_losses):
    """Learning rate at the end of each epoch, stepping the schedulers as Lightning does."""
    stepwise = schedulers[0]["scheduler"]
    rates = []
    for epoch in range(epochs):
        for _ in range(steps_per_epoch):
            optimizer.step()
            stepwise.step()
        if len(schedulers) > 1:
            schedulers[1]["scheduler"].step(val_losses[epoch])
        rates.append(optimizer.param_groups[0]["lr"])
    return rates


def test_plateau_halving_lasts_through_the_stepwise_warmup():
    weight = torch.nn.Parameter(torch.zeros(1))
    optimizer, schedulers = make_optimizer_and_scheduler([weight], 1e-3, 0.0, 2, half_lr_patience=1)
    # Warm-up over the first 6 steps (2 epochs), then a validation loss that never improves.
    rates = _run_schedule(schedulers, optimizer, 6, 3, [1.0] * 6)
    expected = [1e-5, 1e-3, 5e-4, 5e-4, 2.5e-4, 2.5e-4]
    np.testing.assert_allclose(rates, expected, rtol=1e-9)


def test_cosine_decay_reaches_one_percent_and_halvings_compose():
    assert schedule_factor(0, 0, 100) == 1.0
    assert abs(schedule_factor(50, 0, 100) - 0.505) < 1e-12  # 0.01 + 0.99 * (1 + cos(pi/2)) / 2
    assert abs(schedule_factor(100, 0, 100) - 0.01) < 1e-12
    assert schedule_factor(500, 0, 100) == schedule_factor(100, 0, 100)
    weight = torch.nn.Parameter(torch.zeros(1))
    optimizer, schedulers = make_optimizer_and_scheduler(
        [weight], 2e-3, 0.0, 0, half_lr_patience=0, decay_steps=40
    )
    # Four epochs of 10 steps; the plateau halves at the end of epochs 2, 3 and 4.
    rates = _run_schedule(schedulers, optimizer, 4, 10, [1.0, 1.0, 1.0, 1.0])
    cosine = [schedule_factor(10 * (epoch + 1), 0, 40) for epoch in range(4)]
    expected = [2e-3 * c * 0.5**epoch for epoch, c in enumerate(cosine)]
    np.testing.assert_allclose(rates, expected, rtol=1e-9)


def test_recompute_batchnorm_sets_the_statistics_of_the_given_batches(tmp_path):
    """Running statistics become the average of the per-batch statistics each BatchNorm layer
    saw (read by hooks in a separate pass); weights and the training flag are left alone."""
    manifest = small_corpus(tmp_path, ["Siren", "Drum"], split="t", seconds_range=(1.0, 1.5))
    sampler = QueryMixtureDataset(manifest, 8000, segment_seconds=1.0, seed=0)
    fixed = FixedMixtureDataset(write_fixed_mixtures(sampler, str(tmp_path / "f.csv"), 6, seed=0))
    batches = list(DataLoader(fixed, batch_size=2, collate_fn=collate_separation))
    torch.manual_seed(0)
    model = LASSResUNet(
        sample_rate=8000, n_fft=256, hop_length=64, channels="tiny", condition_dim=384
    )
    system = SeparationSystem(
        model,
        None,
        build_objective({"objective": "waveform", "loss": "neg_snr"}),
        batches,
        query_encoder=build_query_encoder({"name": "sentence"}),
    )
    layers = {n: m for n, m in model.named_modules() if isinstance(m, torch.nn.BatchNorm2d)}
    seen = {name: [] for name in layers}
    hooks = [
        layer.register_forward_hook(
            lambda m, inputs, out, name=name: seen[name].append(
                (inputs[0].mean((0, 2, 3)), inputs[0].var((0, 2, 3), unbiased=True))
            )
        )
        for name, layer in layers.items()
    ]
    system.train()
    with torch.no_grad():
        for batch in batches:
            system._outputs(dict(batch))
    for hook in hooks:
        hook.remove()
    weights = {k: v.clone() for k, v in model.state_dict().items() if "running" not in k}
    system.eval()
    system.recompute_batchnorm(dict(batch) for batch in batches)
    assert not system.training
    for name, layer in layers.items():
        means, variances = zip(*seen[name])
        assert len(means) == 3
        torch.testing.assert_close(layer.running_mean, torch.stack(means).mean(0))
        torch.testing.assert_close(layer.running_var, torch.stack(variances).mean(0))
    state = model.state_dict()
    assert all(torch.equal(state[k], v) for k, v in weights.items() if "num_batches" not in k)
