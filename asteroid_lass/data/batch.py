"""The item and batch format every dataset of the package follows.

An item is a dict: ``mixture`` (channels, time), ``targets`` (n_outputs, channels, time) and
``conditions``, the list of names or texts that ask for each target (None for blind sets).
Datasets may add keys (ids, labels) that the System passes through untouched.
"""

from typing import Any, Dict, List, Optional, Sequence

import torch
from torch.utils.data import Dataset


def separation_item(
    mixture, targets, conditions: Optional[Sequence[str]] = None, **extra: Any
) -> Dict[str, Any]:
    """Build an item from (channels, time) or (time,) mixture and (n, [channels,] time) targets."""
    mixture = torch.as_tensor(mixture, dtype=torch.float32)
    targets = torch.as_tensor(targets, dtype=torch.float32)
    if mixture.ndim == 1:
        mixture = mixture[None]
    if targets.ndim == 2:
        targets = targets[:, None]
    item = dict(mixture=mixture, targets=targets, conditions=None)
    if conditions is not None:
        item["conditions"] = [str(c) for c in conditions]
    item.update(extra)
    return item


def collate_separation(items: List[Dict[str, Any]]) -> Dict[str, Any]:
    """Stack tensors along a new batch axis; keep conditions as one list per item."""
    batch: Dict[str, Any] = {}
    for key in items[0]:
        values = [item[key] for item in items]
        if isinstance(values[0], torch.Tensor):
            batch[key] = torch.stack(values)
        elif key == "conditions":
            batch[key] = None if values[0] is None else [list(v) for v in values]
        else:
            batch[key] = values
    return batch


class BlindTargets(Dataset):
    """A query dataset seen by a blind model: targets are the queried sources plus "everything
    else" (the mixture minus their sum), and there are no conditions.

    Used to train and evaluate Asteroid's blind baselines (ConvTasNet with PIT) on exactly the
    mixtures a query model sees.

    Args:
        dataset: A dataset of separation items.
        rest: Append the "everything else" target. False for sets whose targets already add
            up to the mixture (e.g. two talkers asked as ``speech speech``): the blind view
            then only drops the conditions.
    """

    def __init__(self, dataset: Dataset, rest: bool = True):
        self.dataset = dataset
        self.rest = bool(rest)

    def __len__(self) -> int:
        return len(self.dataset)

    def set_epoch(self, epoch: int) -> None:
        if hasattr(self.dataset, "set_epoch"):
            self.dataset.set_epoch(epoch)

    def __getitem__(self, index: int) -> Dict[str, Any]:
        item = dict(self.dataset[index])
        if self.rest:
            rest = item["mixture"] - item["targets"].sum(dim=0)
            item["targets"] = torch.cat([item["targets"], rest[None]])
        item["conditions"] = None
        return item
