"""Training of query-conditioned separators with Asteroid's ``System``."""

from typing import Callable, Dict, Optional

import torch
from asteroid.engine.system import System
from asteroid.losses import singlesrc_neg_sisdr, singlesrc_neg_snr

from .queries import QueryEncoder


def l1_wav(estimate: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """AudioSep's loss: mean absolute error on the waveform."""
    return (estimate - target).abs().mean()


def neg_sisdr(estimate: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    return singlesrc_neg_sisdr(estimate, target).mean()


def neg_snr(estimate: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Negative plain-energy SDR (AudioSep's evaluation metric): sign and scale matter."""
    return singlesrc_neg_snr(estimate, target).mean()


def l1_wav_plus_neg_sisdr(estimate: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    return l1_wav(estimate, target) + neg_sisdr(estimate, target)


# SI-SDR ignores the estimate's gain and sign: trained on it alone (or with a small L1 term),
# a model may output -0.9 x the target. neg_snr and l1_wav do not have that freedom.
LOSSES: Dict[str, Callable[[torch.Tensor, torch.Tensor], torch.Tensor]] = {
    "l1_wav": l1_wav,
    "neg_sisdr": neg_sisdr,
    "neg_snr": neg_snr,
    "l1_wav+neg_sisdr": l1_wav_plus_neg_sisdr,
}


def get_loss(name: str) -> Callable[[torch.Tensor, torch.Tensor], torch.Tensor]:
    """Loss by config name: ``l1_wav``, ``neg_sisdr``, ``neg_snr`` or ``l1_wav+neg_sisdr``."""
    if name not in LOSSES:
        raise ValueError(f"Unknown loss {name!r}; choose one of {sorted(LOSSES)}.")
    return LOSSES[name]


def warmup_factor(step: int, warmup_steps: int) -> float:
    """AudioSep's warm-up: x0.001, x0.01, x0.1 for ``warmup_steps`` each, then x1."""
    if warmup_steps <= 0:
        return 1.0
    return (0.001, 0.01, 0.1, 1.0)[min(step // warmup_steps, 3)]


def make_optimizer_and_scheduler(
    parameters,
    lr: float,
    weight_decay: float,
    warmup_steps: int,
    half_lr_patience: Optional[int] = None,
):
    """AdamW (amsgrad) with AudioSep's step-wise warm-up, in the form ``System`` takes.

    Args:
        half_lr_patience: If set, also halve the learning rate when ``val_loss`` has not
            improved for this many epochs (Asteroid recipes' ``half_lr``).
    """
    optimizer = torch.optim.AdamW(
        parameters, lr=lr, betas=(0.9, 0.999), weight_decay=weight_decay, amsgrad=True
    )
    warmup = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda step: warmup_factor(step, warmup_steps)
    )
    schedulers = [{"scheduler": warmup, "interval": "step"}]
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


def si_sdr_improvement(mixture, estimate, target) -> torch.Tensor:
    """Per-example SI-SDR(estimate) - SI-SDR(mixture), in dB; all (batch, time)."""
    return singlesrc_neg_sisdr(mixture, target) - singlesrc_neg_sisdr(estimate, target)


class TextConditionedSystem(System):
    """A ``System`` whose batches are (mixture, target, query texts).

    The frozen query encoder embeds each distinct text once (its cache persists across steps)
    and is never trained. Validation also logs ``val_si_sdri``.

    Args:
        query_encoder: The frozen encoder; also attached to the model so that its spec is
            saved with it.
        Other args: as :class:`asteroid.engine.System`.
    """

    def __init__(
        self,
        model,
        optimizer,
        loss_func,
        train_loader,
        val_loader=None,
        scheduler=None,
        config: Optional[dict] = None,
        query_encoder: Optional[QueryEncoder] = None,
    ):
        super().__init__(model, optimizer, loss_func, train_loader, val_loader, scheduler, config)
        if query_encoder is not None:
            model.set_query_encoder(query_encoder)

    def embed(self, queries) -> torch.Tensor:
        return self.model.query_encoder.embed_text(list(queries)).to(self.device)

    def common_step(self, batch, batch_nb, train=True):
        mixture, target, queries = batch
        estimate = self.model(mixture, self.embed(queries))[:, 0]
        return self.loss_func(estimate, target)

    def validation_step(self, batch, batch_nb):
        mixture, target, queries = batch
        estimate = self.model(mixture, self.embed(queries))[:, 0]
        self.log("val_loss", self.loss_func(estimate, target), on_epoch=True, prog_bar=True)
        improvement = si_sdr_improvement(mixture, estimate, target).mean()
        self.log("val_si_sdri", improvement, on_epoch=True, prog_bar=True)

    def on_validation_epoch_end(self):
        # Asteroid's version assumes a logger; Trainer(logger=False) has none.
        if self.trainer.logger is not None:
            super().on_validation_epoch_end()

    def on_train_epoch_start(self):
        dataset = getattr(self.train_loader, "dataset", None)
        if hasattr(dataset, "set_epoch"):
            dataset.set_epoch(self.current_epoch)
