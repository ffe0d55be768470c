"""Training any separator of the package from a recipe's configuration.

The conf groups read here: ``training`` (epochs, batch_size, precision, early_stop,
early_stop_patience, monitor, seed, devices, num_nodes, gradient_clip, and optionally
accelerator, item_log and bn_recompute_batches), ``optim`` (lr, weight_decay, warmup_steps,
half_lr_patience, and optionally lr_decay: ``cosine`` or null), ``objective`` (see
:func:`asteroid_lass.losses.build_objective`) and ``data`` (num_workers).
"""

import itertools
import json
import logging
import os
import sys
import time
import warnings
from typing import Callable, Hashable, Iterator, List, Optional, Sequence

import pytorch_lightning as pl
import torch
from pytorch_lightning.callbacks import EarlyStopping, ModelCheckpoint
from torch.utils.data import DataLoader, Dataset, Sampler

from ..data.batch import collate_separation
from ..errors import LASSInputError
from ..losses import build_objective
from ..models.base import Separator, save_model_file
from ..system import (
    EpochLine,
    ItemLog,
    SeparationSystem,
    make_optimizer_and_scheduler,
    training_precision,
)
from ..utils import process_rank
from .config import save_conf

#: Lightning warnings that say nothing a recipe's user can act on.
QUIET_WARNINGS = (
    ".*does not have many workers.*",
    ".*The number of training batches.*is smaller than the logging interval.*",
    ".*GPU available but not used.*",
    ".*LeafSpec.*",
    ".*treespec.*",
    ".*isinstance.*treespec.*",
    ".*Checkpoint directory .* exists and is not empty.*",
    ".*`training_step` returned `None`.*",
    ".*sync_dist=True.*",
)

#: Logged metrics where higher is better (``training.monitor`` may name one).
MAXIMISED_METRICS = ("val_si_sdri",)


class EpochTagged(Dataset):
    """A dataset whose items depend on its epoch, addressed by ``(epoch, index)`` pairs.

    ``set_epoch`` in the main process does not reach a DataLoader's worker processes (they
    hold copies of the dataset, kept for the whole run with ``persistent_workers``), and a
    batch sampler that reads the epoch (e.g. to group items by source count) may draw its
    batches before Lightning's ``on_train_epoch_start`` sets it (the first epoch of a resumed
    run). Tagging every index with the epoch the sampler saw makes each item come from that
    epoch, in whichever process renders it.

    Args:
        dataset: A map-style dataset with ``set_epoch(epoch)`` and an ``epoch`` attribute.
    """

    def __init__(self, dataset: Dataset):
        self.dataset = dataset

    @property
    def epoch(self) -> int:
        return int(getattr(self.dataset, "epoch", 0))

    def set_epoch(self, epoch: int) -> None:
        self.dataset.set_epoch(epoch)

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, tagged):
        epoch, index = tagged
        if getattr(self.dataset, "epoch", None) != epoch:
            self.dataset.set_epoch(epoch)
        return self.dataset[index]


class _EpochTaggedSampler(Sampler):
    """Yields ``(epoch, index)`` (or lists of them, for a batch sampler) from ``sampler``, with
    the epoch the dataset had when iteration started.

    It has no length on purpose: a batch sampler's count may change from epoch to epoch (e.g.
    incomplete batches dropped per source count), and Lightning, given a length, validates
    after that many batches (measured once), which a shorter epoch never reaches. Without a
    length it validates at every epoch's real end.
    """

    def __init__(self, sampler, dataset: EpochTagged):
        self.sampler = sampler
        self.dataset = dataset

    def __iter__(self):
        epoch = self.dataset.epoch
        for element in self.sampler:
            if isinstance(element, (list, tuple)):
                yield [(epoch, int(index)) for index in element]
            else:
                yield (epoch, int(element))


class RankBatches(Sampler):
    """This process's share of a batch sampler's batches in a distributed run.

    Lightning shards a map-style loader by injecting a ``DistributedSampler``, which it cannot
    do into a custom batch sampler. ``batch_sampler`` must give the same batches in every
    process (the package's are deterministic per seed and epoch); rank ``r`` of ``W`` takes
    batches ``r, r + W, ...``, every rank as many (the last ``len % W`` batches of an epoch
    are left out). Outside a distributed run it yields every batch.

    Args:
        batch_sampler: Yields lists of indices.
        rank, world_size: This process's place; by default read from ``torch.distributed``
            when batches are drawn (see :func:`asteroid_lass.utils.process_rank`).
    """

    def __init__(
        self, batch_sampler: Sampler, rank: Optional[int] = None, world_size: Optional[int] = None
    ):
        if (rank is None) != (world_size is None):
            raise ValueError("Give both rank and world_size, or neither.")
        self.batch_sampler = batch_sampler
        self.place = None if rank is None else (int(rank), int(world_size))

    def _place(self):
        return self.place or process_rank()

    def __iter__(self) -> Iterator[list]:
        rank, world_size = self._place()
        batches = list(self.batch_sampler)
        return iter(batches[rank : len(batches) // world_size * world_size : world_size])

    def __len__(self) -> int:
        # A TypeError from a batch sampler without a length tells Lightning there is none.
        return len(self.batch_sampler) // self._place()[1]


class GroupBatchSampler(Sampler):
    """Batches of consecutive indices that never mix groups, in a fixed order.

    For fixed sets whose items cannot be stacked across groups, e.g. test mixtures of tasks
    with different numbers of sources.

    Args:
        groups: The group of every index (any hashable values).
        batch_size: Largest batch.
    """

    def __init__(self, groups: Sequence[Hashable], batch_size: int):
        if int(batch_size) < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}.")
        groups = list(groups)
        self.batches: List[List[int]] = []
        for index, group in enumerate(groups):
            last = self.batches[-1] if self.batches else None
            if last and groups[last[-1]] == group and len(last) < int(batch_size):
                last.append(index)
            else:
                self.batches.append([index])

    def __iter__(self) -> Iterator[List[int]]:
        return iter([list(batch) for batch in self.batches])

    def __len__(self) -> int:
        return len(self.batches)


def make_loaders(
    conf: dict,
    train_set: Dataset,
    valid_set: Optional[Dataset],
    train_batch_sampler: Optional[Sampler] = None,
    valid_batch_sampler: Optional[Sampler] = None,
    collate_fn: Optional[Callable] = None,
):
    """Training and validation loaders with the package's collate function.

    Args:
        conf: The recipe configuration (``training.batch_size``, ``data.num_workers``).
        train_set, valid_set: Datasets of separation items.
        train_batch_sampler, valid_batch_sampler: Batch samplers for datasets whose items
            cannot be batched freely (e.g. :class:`~asteroid_lass.data.PromptBatchSampler`
            for mixtures with different numbers of sources); they replace ``batch_size``,
            shuffling and ``drop_last``. In a distributed run each process takes its share of
            their batches (:class:`RankBatches`).
        collate_fn: Replaces :func:`~asteroid_lass.data.batch.collate_separation`.
    """
    workers = int(conf["data"].get("num_workers", 0))
    batch_size = conf["training"]["batch_size"]
    collate = collate_fn or collate_separation
    if train_batch_sampler is not None:
        train_batch_sampler = RankBatches(train_batch_sampler)
        # Epoch-tagged indices reach every worker: persistent workers stay correct.
        if hasattr(train_set, "set_epoch"):
            train_set = EpochTagged(train_set)
            train_batch_sampler = _EpochTaggedSampler(train_batch_sampler, train_set)
        train_loader = DataLoader(
            train_set,
            batch_sampler=train_batch_sampler,
            num_workers=workers,
            persistent_workers=workers > 0,
            collate_fn=collate,
        )
    else:
        shuffle = not isinstance(train_set, torch.utils.data.IterableDataset)
        train_loader = DataLoader(
            train_set,
            batch_size=batch_size,
            shuffle=shuffle,
            drop_last=True,
            num_workers=workers,
            # Workers started anew each epoch copy the dataset with its current epoch;
            # persistent ones would keep drawing the first epoch's mixtures.
            persistent_workers=workers > 0 and not hasattr(train_set, "set_epoch"),
            collate_fn=collate,
        )
    common = dict(num_workers=workers, persistent_workers=workers > 0, collate_fn=collate)
    if valid_set is None:
        valid_loader = None
    elif valid_batch_sampler is not None:
        valid_loader = DataLoader(
            valid_set, batch_sampler=RankBatches(valid_batch_sampler), **common
        )
    else:
        valid_loader = DataLoader(valid_set, batch_size=batch_size, shuffle=False, **common)
    return train_loader, valid_loader


def train(
    conf: dict,
    model: Separator,
    train_set: Dataset,
    valid_set: Optional[Dataset],
    exp_dir: str,
    max_steps: Optional[int] = None,
    train_batch_sampler: Optional[Sampler] = None,
    valid_batch_sampler: Optional[Sampler] = None,
    collate_fn: Optional[Callable] = None,
) -> str:
    """Train ``model`` and save its best validation checkpoint as ``exp_dir/best_model.pth``
    (with ``training.bn_recompute_batches: n``, its BatchNorm statistics recomputed over ``n``
    training batches, see :meth:`~asteroid_lass.system.SeparationSystem.recompute_batchnorm`).

    Writes ``exp_dir/conf.yml``, ``checkpoints/`` (``last.ckpt`` is resumed when present) and
    ``best_k_models.json``. Prints one line per epoch (see :class:`EpochLine`); the progress bar
    shows only on a terminal.

    Args:
        conf: The recipe configuration.
        model: The separator to train.
        train_set, valid_set: Datasets of separation items (see
            :mod:`asteroid_lass.data.batch`).
        exp_dir: The experiment folder.
        max_steps: Stop after this many optimiser steps (tests, budget-matched baselines),
            validating (and checkpointing) at that step even in the middle of an epoch.
        train_batch_sampler, valid_batch_sampler, collate_fn: See :func:`make_loaders`.

    Returns:
        str: The path of ``best_model.pth``.

    Raises:
        LASSInputError: ``training.early_stop`` together with a decaying ``optim.lr_decay``, or
            a ``training.bn_recompute_batches`` that is not a whole number >= 0.
    """
    training, optim = conf["training"], conf["optim"]
    if training.get("early_stop") and optim.get("lr_decay") not in (None, "none"):
        # A cosine run gains most in its last, low-rate epochs, and a stop on a noisy validation
        # score can come before them (measured in egs/audioset/lass/README.md).
        raise LASSInputError(
            f"training.early_stop: true cannot be combined with optim.lr_decay: "
            f"{optim['lr_decay']} (the schedule plans the run's length, and stopping early skips "
            "its low learning rates); set one of them off (false, null)."
        )
    n_bn_batches = training.get("bn_recompute_batches", 0)
    if isinstance(n_bn_batches, bool) or not isinstance(n_bn_batches, int) or n_bn_batches < 0:
        raise LASSInputError(
            f"training.bn_recompute_batches: expected a whole number, 0 (off) or more, got "
            f"{n_bn_batches!r}"
        )
    devices, num_nodes = int(training["devices"]), int(training["num_nodes"])
    distributed = devices > 1 or num_nodes > 1
    if distributed and train_batch_sampler is None and valid_batch_sampler is not None:
        # Lightning would shard the training loader but cannot shard the validation one.
        raise ValueError(
            "A distributed run with a valid_batch_sampler needs a train_batch_sampler too "
            "(or neither)."
        )
    pl.seed_everything(training["seed"], workers=True, verbose=False)
    os.makedirs(exp_dir, exist_ok=True)
    save_conf(conf, os.path.join(exp_dir, "conf.yml"))
    train_loader, valid_loader = make_loaders(
        conf, train_set, valid_set, train_batch_sampler, valid_batch_sampler, collate_fn
    )
    optimizer, scheduler = make_optimizer_and_scheduler(
        model.parameters(),
        lr=optim["lr"],
        weight_decay=optim["weight_decay"],
        warmup_steps=optim["warmup_steps"],
        half_lr_patience=optim.get("half_lr_patience"),
        decay_steps=_decay_steps(optim.get("lr_decay"), training, train_loader, max_steps),
    )
    system = SeparationSystem(
        model=model,
        optimizer=optimizer,
        loss_func=build_objective(conf["objective"]),
        train_loader=train_loader,
        val_loader=valid_loader,
        scheduler=scheduler,
        config=conf,
    )
    checkpoint_dir = os.path.join(exp_dir, "checkpoints")
    # The best checkpoint (kept as best_model.pth) and early stopping follow one metric.
    monitor = training.get("monitor", "val_loss") if valid_loader is not None else "train_loss"
    mode = "max" if monitor in MAXIMISED_METRICS else "min"
    checkpoint = ModelCheckpoint(checkpoint_dir, monitor=monitor, mode=mode, save_top_k=3)
    # last.ckpt, rewritten after every validation (resuming, and the step count that a
    # budget-matched baseline reads through trained_steps). Not ModelCheckpoint's save_last:
    # in Lightning 2.6.6 it rewrites the file only when a top-k checkpoint is saved.
    latest = ModelCheckpoint(
        checkpoint_dir, filename="last", monitor=None, save_top_k=1, enable_version_counter=False
    )
    last = os.path.join(checkpoint_dir, "last.ckpt")
    callbacks = [checkpoint, latest, EpochLine()]
    if max_steps is not None:
        callbacks.append(_StopAfterSteps(max_steps))
    if training.get("item_log"):
        callbacks.append(ItemLog(os.path.join(exp_dir, "item_log")))
    if training.get("early_stop"):
        patience = int(training.get("early_stop_patience", 10))
        callbacks.append(EarlyStopping(monitor=monitor, mode=mode, patience=patience))
    accelerator = training.get("accelerator", "auto")
    # torch's SyncBatchNorm runs on GPUs only; CPU processes keep per-process batch statistics
    # (DDP still broadcasts rank 0's running statistics).
    on_gpu = accelerator in ("gpu", "cuda") or (accelerator == "auto" and torch.cuda.is_available())
    interactive = sys.stdout.isatty() and sys.stderr.isatty()
    with _quiet_lightning_info():
        trainer = pl.Trainer(
            max_epochs=training["epochs"],
            callbacks=callbacks,
            default_root_dir=exp_dir,
            # "cpu" runs DDP over CPU processes (gloo), e.g. to try a distributed set-up.
            accelerator=accelerator,
            devices=devices,
            num_nodes=num_nodes,
            strategy="ddp" if distributed else "auto",
            sync_batchnorm=distributed and on_gpu,
            # Custom batch samplers are sharded by RankBatches (Lightning cannot inject a
            # DistributedSampler into them); plain map-style loaders by Lightning.
            use_distributed_sampler=train_batch_sampler is None,
            precision=training_precision(training["precision"]),
            gradient_clip_val=float(training.get("gradient_clip", 5.0)),
            log_every_n_steps=10,
            enable_model_summary=False,
            enable_progress_bar=interactive,
            logger=pl.loggers.CSVLogger(exp_dir, name="logs"),
        )
    print(
        f"training {type(model).__name__} ({sum(p.numel() for p in model.parameters()):,} "
        f"parameters), precision {trainer.precision}, {training['epochs']} epochs",
        flush=True,
    )
    with warnings.catch_warnings(), _quiet_lightning_info():
        for pattern in QUIET_WARNINGS:
            warnings.filterwarnings("ignore", message=pattern)
        # Resume an interrupted run; Lightning restores model, optimizer, scheduler and epoch.
        trainer.fit(system, ckpt_path=last if os.path.isfile(last) else None)
    if trainer.global_rank != 0:
        return os.path.join(exp_dir, "best_model.pth")
    best_k = {k: float(v) for k, v in checkpoint.best_k_models.items()}
    with open(os.path.join(exp_dir, "best_k_models.json"), "w") as out:
        json.dump(best_k, out, indent=0)
    best_path = checkpoint.best_model_path or last
    state = torch.load(best_path, map_location="cpu", weights_only=False)  # our own checkpoint
    system.load_state_dict(state["state_dict"])
    if n_bn_batches:
        started = time.monotonic()
        system.recompute_batchnorm(itertools.islice(train_loader, n_bn_batches))
        print(
            f"BatchNorm statistics of {os.path.basename(best_path)} recomputed over "
            f"{n_bn_batches} training batches ({time.monotonic() - started:.0f} s)",
            flush=True,
        )
    model_path = os.path.join(exp_dir, "best_model.pth")
    save_model_file(system.model.cpu(), model_path)
    return model_path


def _decay_steps(
    lr_decay: Optional[str], training: dict, train_loader: DataLoader, max_steps: Optional[int]
) -> Optional[int]:
    """Optimiser steps the learning rate decays over: the whole planned run (``max_steps`` if
    set, else every epoch's share of this process), or None without ``lr_decay``."""
    if lr_decay in (None, "none"):
        return None
    if lr_decay != "cosine":
        raise ValueError(f"optim.lr_decay: expected 'cosine' or null, got {lr_decay!r}")
    if max_steps is not None:
        return int(max_steps)
    try:
        batches = len(train_loader)
    except TypeError:
        raise ValueError(
            "optim.lr_decay: cosine needs a training set with a length (steps per epoch); "
            "set optim.lr_decay to null for this dataset"
        ) from None
    world = int(training["devices"]) * int(training["num_nodes"])
    return max(1, int(training["epochs"]) * -(-batches // world))


def trained_steps(exp_dir: str) -> int:
    """Optimiser steps of a finished run, from its last checkpoint: the budget of a baseline
    trained for as many steps (``train(..., max_steps=trained_steps(exp_dir))``)."""
    checkpoint = os.path.join(exp_dir, "checkpoints", "last.ckpt")
    state = torch.load(checkpoint, map_location="cpu", weights_only=False)  # our own file
    return int(state["global_step"])


class _StopAfterSteps(pl.Callback):
    """Stop after ``steps`` optimiser steps. Unlike ``Trainer(max_steps=...)``, which ends a
    run mid-epoch without validating, a stop requested here is validated first, so the last
    steps count for the best checkpoint."""

    def __init__(self, steps: int):
        self.steps = int(steps)

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
        if trainer.global_step >= self.steps:
            trainer.should_stop = True


class _quiet_lightning_info:
    """Lightning's start-up notes (devices found, tips) are info, not something to act on."""

    def __enter__(self):
        self.logger = logging.getLogger("pytorch_lightning")
        self.level = self.logger.level
        self.logger.setLevel(logging.WARNING)

    def __exit__(self, *exc):
        self.logger.setLevel(self.level)
        return False
