"""Small helpers used across the package."""

import contextlib
import numbers
import os
from typing import Any, Iterator, Tuple

import torch


def is_number(value: Any) -> bool:
    """Whether ``value`` is a real number (Python or NumPy int or float, NaN and infinities
    included) and not a bool: YAML and argparse give ``true`` where a user meant a switch,
    and a bool passing as 1 or 0 would hide that."""
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


@contextlib.contextmanager
def atomic_write(path: str) -> Iterator[str]:
    """Yield a temporary path beside ``path``; rename it to ``path`` only if the block succeeds.

    An interrupted or failed write never leaves a truncated file under the final name, and
    never replaces what was there.
    """
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    base, extension = os.path.splitext(os.path.basename(path))
    tmp_path = os.path.join(directory, f".{base}.{os.getpid()}.tmp{extension}")
    try:
        yield tmp_path
        os.replace(tmp_path, path)
    finally:
        if os.path.exists(tmp_path):
            os.remove(tmp_path)


class evaluation_mode:
    """Run a model in eval mode without gradients, then restore its training flags.

    Every separation entry point uses it, so that a model loaded or trained by the caller is
    left exactly as it was.
    """

    def __init__(self, model: torch.nn.Module):
        self.model = model

    def __enter__(self):
        self.modes = {module: module.training for module in self.model.modules()}
        self.grad = torch.is_grad_enabled()
        self.model.eval()
        torch.set_grad_enabled(False)
        return self.model

    def __exit__(self, *exc):
        torch.set_grad_enabled(self.grad)
        for module, training in self.modes.items():
            module.training = training
        return False


def process_rank() -> Tuple[int, int]:
    """``(rank, world_size)`` of this process in a distributed (DDP) run, ``(0, 1)`` outside one.

    Read from ``torch.distributed`` once its process group is up (Lightning starts it before
    any data is loaded). DataLoader workers forked from a rank see their parent's group.
    """
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        return torch.distributed.get_rank(), torch.distributed.get_world_size()
    return 0, 1
