"""Converters from the reference systems' released checkpoints to asteroid_lass model files.

Each converter reads a checkpoint without executing pickled code (:func:`load_weights_only`),
maps its key names to the model's, and reports every key that does not fit in one error
(:func:`raise_if_mismatched`).
"""

import os
from typing import Iterable, Sequence

import torch


def load_weights_only(path: str, what: str, allowed_globals: Sequence = ()):
    """``torch.load(path, weights_only=True)``, allowing only ``allowed_globals`` besides
    tensors and containers.

    Args:
        path: The checkpoint file.
        what: What the file should be, for messages (e.g. "AudioSep checkpoint").
        allowed_globals: Classes the checkpoint may hold (e.g. ``argparse.Namespace``).

    Raises:
        FileNotFoundError: No such file.
        ValueError: The file holds something else than tensors, containers and the allowed
            classes.
    """
    if not os.path.isfile(path):
        raise FileNotFoundError(f"{what} not found: {path}")
    try:
        with torch.serialization.safe_globals(list(allowed_globals)):
            return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:
        allowed = ", ".join(getattr(g, "__name__", str(g)) for g in allowed_globals)
        raise ValueError(
            f"Could not read {path} as a {what} (weights_only loading allows tensors, "
            f"containers{' and ' + allowed if allowed else ''} only): {err}"
        ) from err


def raise_if_mismatched(
    title: str,
    unexpected: Iterable[str] = (),
    missing: Iterable[str] = (),
    mismatched: Iterable[str] = (),
) -> None:
    """One ValueError listing every unexpected, missing and mismatched key, if there are any."""
    problems = []
    for name, keys, separator in (
        ("unexpected keys", sorted(unexpected), ", "),
        ("missing keys", sorted(missing), ", "),
        ("mismatches", list(mismatched), "; "),
    ):
        if keys:
            problems.append(f"{name}: " + separator.join(keys))
    if problems:
        raise ValueError(f"{title}: " + " | ".join(problems))
