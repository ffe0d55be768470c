"""Training of every separator of the package with Asteroid's ``System``.

One System serves every condition kind: batches are dicts (see
:mod:`asteroid_lass.data.batch`), the model turns the batch's conditions into its own
(:meth:`~asteroid_lass.models.base.Separator.conditions_from_batch`), and the objective (see
:mod:`asteroid_lass.losses`) sees the model's training outputs and the batch.
"""

import json
import math
import os
import sys
import time
from typing import Any, Dict, Iterable, Optional

import pytorch_lightning as pl
import torch
from asteroid.engine.system import System
from pytorch_lightning.utilities import move_data_to_device
from torch.optim.swa_utils import update_bn

from .losses import Objective
from .metrics import audible, match_to_references, match_within_prompts, si_sdr_improvement
from .queries import QueryEncoder


def warmup_factor(step: int, warmup_steps: int) -> float:
    """AudioSep's warm-up: x0.001, x0.01, x0.1 for ``warmup_steps`` each, then x1."""
    if warmup_steps <= 0:
        return 1.0
    return (0.001, 0.01, 0.1, 1.0)[min(step // warmup_steps, 3)]


def schedule_factor(
    step: int, warmup_steps: int, decay_steps: Optional[int] = None, final_factor: float = 0.01
) -> float:
    """Learning-rate factor at optimiser step ``step``: the warm-up (:func:`warmup_factor`)
    times, if ``decay_steps`` is set, a cosine decay from 1 to ``final_factor`` over
    ``decay_steps`` steps (held at ``final_factor`` after them)."""
    factor = warmup_factor(step, warmup_steps)
    if decay_steps:
        progress = min(step / decay_steps, 1.0)
        factor *= final_factor + (1.0 - final_factor) * 0.5 * (1.0 + math.cos(math.pi * progress))
    return factor


def make_optimizer_and_scheduler(
    parameters,
    lr: float,
    weight_decay: float,
    warmup_steps: int,
    half_lr_patience: Optional[int] = None,
    decay_steps: Optional[int] = None,
):
    """AdamW (amsgrad) with a step-wise schedule (:func:`schedule_factor`: AudioSep's warm-up,
    optionally a cosine decay), in the form ``System`` takes.

    Args:
        half_lr_patience: If set, also halve the learning rate when ``val_loss`` has not
            improved for this many epochs (Asteroid recipes' ``half_lr``).
        decay_steps: If set, the learning rate decays along a cosine to 1 % of ``lr`` over
            this many optimiser steps (usually the whole planned run).
    """
    optimizer = torch.optim.AdamW(
        parameters, lr=lr, betas=(0.9, 0.999), weight_decay=weight_decay, amsgrad=True
    )

    def factor(step: int) -> float:
        return schedule_factor(step, warmup_steps, decay_steps)

    for group in optimizer.param_groups:
        group["lr"] = lr * factor(0)
    # Step-to-step ratios rather than absolute factors (LambdaLR): a halving by the plateau
    # scheduler then lasts, instead of being overwritten at the next step.
    stepwise = torch.optim.lr_scheduler.MultiplicativeLR(
        optimizer, lambda step: factor(step) / factor(step - 1)
    )
    schedulers = [{"scheduler": stepwise, "interval": "step"}]
    if half_lr_patience is not None:
        plateau = torch.optim.lr_scheduler.ReduceLROnPlateau(
            optimizer, factor=0.5, patience=half_lr_patience
        )
        schedulers.append({"scheduler": plateau, "interval": "epoch", "monitor": "val_loss"})
    return optimizer, schedulers


def training_precision(setting: str = "auto") -> str:
    """Lightning precision for ``setting``; ``auto`` picks bf16 mixed precision where the
    hardware computes bf16 natively (CUDA with bf16, CPUs with AVX512-BF16 or AMX), else 32."""
    if setting != "auto":
        return setting
    if torch.cuda.is_available():
        return "bf16-mixed" if torch.cuda.is_bf16_supported() else "32"
    # Private torch probes (stable since 2.1); absent ones count as "no native bf16".
    probes = ("_is_avx512_bf16_supported", "_is_amx_tile_supported")
    native = any(getattr(torch.cpu, probe, lambda: False)() for probe in probes)
    return "bf16-mixed" if native else "32"


class SeparationSystem(System):
    """An Asteroid ``System`` for N-output separators of any condition kind.

    Validation logs ``val_loss`` and ``val_si_sdri`` (SI-SDR improvement averaged over the
    audible references; a blind model's outputs are first matched to the references).

    Args:
        model: A :class:`~asteroid_lass.models.base.Separator`.
        optimizer, train_loader, val_loader, scheduler, config: As
            :class:`asteroid.engine.System`.
        loss_func: An objective ``objective(outputs, batch) -> {"loss": ..., ...}`` (see
            :func:`asteroid_lass.losses.build_objective`).
        query_encoder: For an embedding model: the frozen encoder, attached to the model so
            that its spec is saved with it. It is never trained.
    """

    def __init__(
        self,
        model,
        optimizer,
        loss_func: Objective,
        train_loader,
        val_loader=None,
        scheduler=None,
        config: Optional[dict] = None,
        query_encoder: Optional[QueryEncoder] = None,
    ):
        super().__init__(model, optimizer, loss_func, train_loader, val_loader, scheduler, config)
        if query_encoder is not None:
            model.set_query_encoder(query_encoder)

    def _outputs(self, batch: Dict[str, Any]) -> Dict[str, torch.Tensor]:
        conditions = self.model.conditions_from_batch(batch.get("conditions"))
        if self.model.condition_kind in ("label", "prompt"):
            batch["condition_ids"] = conditions
        return self.model.training_outputs(batch["mixture"], conditions)

    def recompute_batchnorm(self, batches: Iterable[Dict[str, Any]]) -> None:
        """Set every BatchNorm layer's running statistics to their average over ``batches``
        (training batches, run in training mode with the weights as they are now): "precise
        BatchNorm". The running averages kept during training trail weights that changed at
        every step; these are the statistics of the weights that are kept.

        Args:
            batches: Training batches (dicts, see :mod:`asteroid_lass.data.batch`).
        """
        device = next(self.model.parameters()).device
        with torch.no_grad():
            # update_bn leaves its module in the mode it found: the system's.
            module = _BatchOutputs(self).train(self.training)
            update_bn((move_data_to_device(b, device) for b in batches), module)

    def common_step(self, batch, batch_nb, train=True):
        terms = self.loss_func(self._outputs(batch), batch)
        size = len(batch["mixture"])
        for name, value in terms.items():
            if name != "loss":
                self.log(f"{'train' if train else 'val'}_{name}", value, batch_size=size)
        return terms["loss"]

    def training_step(self, batch, batch_nb):
        loss = self.common_step(batch, batch_nb, train=True)
        # Averaged over the processes of a distributed run (as is val_loss): checkpointing, early
        # stopping and the learning-rate schedule then decide alike on every rank.
        size = len(batch["mixture"])
        self.log("train_loss", loss, on_step=False, on_epoch=True, batch_size=size, sync_dist=True)
        return loss

    def validation_step(self, batch, batch_nb):
        outputs = self._outputs(batch)
        loss = self.loss_func(outputs, batch)["loss"]
        size = len(batch["mixture"])
        self.log("val_loss", loss, on_epoch=True, prog_bar=True, batch_size=size, sync_dist=True)
        estimates, targets = outputs["estimates"], batch["targets"]
        if self.model.condition_kind == "none":
            estimates = match_to_references(estimates, targets)
        elif self.model.condition_kind == "prompt":  # outputs of one prompt are unordered
            estimates = match_within_prompts(estimates, targets, batch["condition_ids"])
        improvement = si_sdr_improvement(batch["mixture"], estimates, targets)
        mask = audible(targets, batch["mixture"])
        if mask.any():
            self.log(
                "val_si_sdri",
                improvement[mask].mean(),
                on_epoch=True,
                prog_bar=True,
                batch_size=size,
            )

    def on_validation_epoch_end(self):
        # Asteroid's version assumes a logger; Trainer(logger=False) has none.
        if self.trainer.logger is not None:
            super().on_validation_epoch_end()

    def on_train_epoch_start(self):
        dataset = getattr(self.train_loader, "dataset", None)
        if hasattr(dataset, "set_epoch"):
            dataset.set_epoch(self.current_epoch)


class _BatchOutputs(torch.nn.Module):
    """A system's training outputs of one batch dict, as a module (for ``update_bn``)."""

    def __init__(self, system: SeparationSystem):
        super().__init__()
        self.system = system

    def forward(self, batch: Dict[str, Any]) -> Dict[str, torch.Tensor]:
        return self.system._outputs(batch)


class EpochLine(pl.Callback):
    """One plain line per epoch, so that progress shows in a log file or a pipe.

    ``epoch 3/24  train_loss -8.41  val_loss -9.02  val_si_sdri 9.13 dB  elapsed 2m05s  left ~14m``
    """

    def __init__(self, stream=None):
        self.stream = stream
        self.start = None

    def on_train_start(self, trainer, pl_module):
        self.start = time.monotonic()
        self.first_epoch = trainer.current_epoch

    def on_train_epoch_end(self, trainer, pl_module):
        # Runs after the epoch's validation, so both losses are there.
        if self.start is None:
            return
        metrics = trainer.callback_metrics
        parts = [f"epoch {trainer.current_epoch + 1}/{trainer.max_epochs}"]
        for name in ("train_loss", "val_loss"):
            if name in metrics:
                parts.append(f"{name} {float(metrics[name]):.3f}")
        if "val_si_sdri" in metrics:
            parts.append(f"val_si_sdri {float(metrics['val_si_sdri']):.2f} dB")
        elapsed = time.monotonic() - self.start
        done = trainer.current_epoch + 1 - self.first_epoch
        left = elapsed / max(done, 1) * max(trainer.max_epochs - trainer.current_epoch - 1, 0)
        parts += [f"elapsed {_duration(elapsed)}", f"left ~{_duration(left)}"]
        print("  ".join(parts), file=self.stream or sys.stdout, flush=True)


class ItemLog(pl.Callback):
    """Records which training items each process trained on, epoch by epoch.

    Appends one JSON line per epoch to ``<directory>/rank<global rank>.jsonl``:
    ``{"epoch": 0, "rank": 1, "world_size": 2, "backend": "gloo", "keys": [...]}`` (backend
    is None outside a distributed run). It shows that the processes of a distributed run see
    disjoint parts of the data. Items must carry a ``key`` field: the index for
    :class:`~asteroid_lass.data.QueryMixtureDataset`, the clip keys for
    :class:`~asteroid_lass.data.shards.ShardedQueryMixtureDataset`. Recipes turn it on with
    ``training.item_log: true`` (written to ``exp_dir/item_log/``).

    Args:
        directory: Where the per-rank files go.
    """

    def __init__(self, directory: str):
        self.directory = directory
        self.keys: list = []

    def on_train_epoch_start(self, trainer, pl_module):
        self.keys = []

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
        if "key" not in batch:
            raise ValueError(
                "training.item_log needs items with a 'key' field; this training set's items "
                f"have {sorted(batch)}."
            )
        self.keys.extend(batch["key"])

    def on_train_epoch_end(self, trainer, pl_module):
        dist = torch.distributed
        backend = dist.get_backend() if dist.is_available() and dist.is_initialized() else None
        line = dict(
            epoch=trainer.current_epoch,
            rank=trainer.global_rank,
            world_size=trainer.world_size,
            backend=backend,
            keys=self.keys,
        )
        os.makedirs(self.directory, exist_ok=True)
        path = os.path.join(self.directory, f"rank{trainer.global_rank}.jsonl")
        with open(path, "a") as out:
            out.write(json.dumps(line) + "\n")


def _duration(seconds: float) -> str:
    seconds = int(math.ceil(seconds))
    if seconds >= 3600:
        return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"
    return f"{seconds // 60}m{seconds % 60:02d}s"
