"""Convert a checkpoint of the official Meta-TasNet ``train.py`` into a ``MetaTasNet`` file.

The official checkpoint (``best_checkpoint`` / ``last_checkpoint``) is a dict ``{epoch,
state_dict, optimizer, steps, args}`` where ``args`` is the training ``argparse.Namespace``.
It is read with ``torch.load(weights_only=True)``, allowing only ``argparse.Namespace`` besides
tensors and containers, so no pickled code runs.

``MetaTasNet`` keeps the official module names, so the mapping is short: the per-stage
``instrument_embedding`` is our ``label_embedding``, and the spectrogram's Hann ``window``
(a constant) is dropped. Everything else keeps its name and shape.
"""

import argparse
import re
from typing import Dict, Optional, Sequence

import torch

from ..models.base import save_model_file
from . import load_weights_only, raise_if_mismatched
from ..models.metatasnet import MUSDB_LABELS, MetaTasNet

#: ``train.py`` arguments that shape the network, and their official defaults (used when an
#: old checkpoint lacks one).
OFFICIAL_DEFAULTS = dict(
    B=160,
    E_1=8,
    E_2=5,
    filters=3,
    H=160,
    independent_params=False,
    kernel=3,
    L=20,
    layers=6,
    N=440,
    num_mels=256,
    residual_bias=False,
    sampling_rate=8000,
    stack=3,
    stages_num=3,
    W=20,
)
_WINDOW = re.compile(r"^stages\.\d+\.encoder\.spectrogram\.window$")
_EMBEDDING = re.compile(r"^(stages\.\d+\.)instrument_embedding\.(weight)$")


def official_key_to_lass(key: str) -> Optional[str]:
    """Name of an official ``MultiTasNet`` tensor in ``MetaTasNet``; None if dropped."""
    if _WINDOW.match(key):
        return None
    return _EMBEDDING.sub(r"\1label_embedding.\2", key)


def model_kwargs_from_args(args) -> dict:
    """``MetaTasNet`` hyper-parameters from the official training arguments.

    Raises:
        ValueError: The arguments describe a network ``MetaTasNet`` cannot reproduce.
    """
    values = dict(OFFICIAL_DEFAULTS)
    values.update({k: v for k, v in vars(args).items() if k in OFFICIAL_DEFAULTS})
    base_rate = int(values["sampling_rate"])
    if base_rate <= 0 or base_rate % 8000:
        # The official STFT size is 1024 * (rate // 8000): proportional to the rate only
        # for multiples of 8 kHz.
        raise ValueError(f"sampling_rate must be a multiple of 8000, got {base_rate}.")
    if values["E_1"] is None:
        raise ValueError("Checkpoints trained with E_1=None (no label embedding) are unsupported.")
    scale = base_rate // 8000
    return dict(
        stage_rates=[base_rate * 2**stage for stage in range(int(values["stages_num"]))],
        n_filters=int(values["N"]),
        kernel_size=int(values["L"]),
        stride=int(values["W"]),
        n_kernels=int(values["filters"]),
        spec_chan=int(values["num_mels"]),
        n_fft=1024 * scale,
        hop_length=256 * scale,
        bn_chan=int(values["B"]),
        hid_chan=int(values["H"]),
        n_blocks=int(values["layers"]),
        n_repeats=int(values["stack"]),
        conv_kernel_size=int(values["kernel"]),
        embed_dim=int(values["E_1"]),
        generator_dim=int(values["E_2"]),
        residual_bias=bool(values["residual_bias"]),
        generated_weights=not bool(values["independent_params"]),
    )


def map_official_state_dict(state: Dict[str, torch.Tensor], model: MetaTasNet) -> dict:
    """Rename official tensors to ``model``'s names, checking names and shapes.

    Returns:
        dict: A complete state dict for ``model``.

    Raises:
        ValueError: Listing every unexpected, missing or misshapen tensor at once.
    """
    if state and all(key.startswith("module.") for key in state):
        state = {key[len("module.") :]: value for key, value in state.items()}
    expected = model.state_dict()
    mapped, unexpected, misshapen = {}, [], []
    for key, tensor in state.items():
        target = official_key_to_lass(key)
        if target is None:
            continue
        if target not in expected or not isinstance(tensor, torch.Tensor):
            unexpected.append(key)
        elif tuple(tensor.shape) != tuple(expected[target].shape):
            misshapen.append(
                f"{key}: {tuple(tensor.shape)}, expected {tuple(expected[target].shape)}"
            )
        else:
            mapped[target] = tensor
    missing = [key for key in expected if key not in mapped]
    raise_if_mismatched(
        "The checkpoint does not match an official Meta-TasNet with its own args",
        unexpected,
        missing,
        misshapen,
    )
    return mapped


def load_official_checkpoint(path: str) -> dict:
    """Read an official ``train.py`` checkpoint without executing pickled code.

    Returns:
        The checkpoint dict, with ``state_dict`` and ``args`` (an ``argparse.Namespace``).
    """
    checkpoint = load_weights_only(path, "Meta-TasNet checkpoint", [argparse.Namespace])
    if not isinstance(checkpoint, dict) or not isinstance(checkpoint.get("state_dict"), dict):
        raise ValueError(
            f"{path} holds no state_dict: is it a checkpoint of the official train.py?"
        )
    if not isinstance(checkpoint.get("args"), argparse.Namespace):
        raise ValueError(
            f"{path} has no training args (an argparse.Namespace under 'args'); the network's "
            "shape cannot be known without them."
        )
    return checkpoint


def convert_metatasnet(
    ckpt_path: str,
    out_path: Optional[str] = None,
    labels: Sequence[str] = MUSDB_LABELS,
    sample_rate: float = 44100,
    in_channels: int = 1,
) -> MetaTasNet:
    """Build a ``MetaTasNet`` from an official ``train.py`` checkpoint.

    Args:
        ckpt_path: The official checkpoint (``best_checkpoint`` or ``last_checkpoint``).
        out_path: If given, write the serialized model there (atomically).
        labels: Names of the official instrument indices 0..3, in order (official:
            drums, bass, other, vocals).
        sample_rate: Input/output rate of the converted model (the official evaluation takes
            MUSDB's 44.1 kHz).
        in_channels: Channels the converted model takes (each separated independently).

    Returns:
        MetaTasNet: The converted model, in eval mode.
    """
    checkpoint = load_official_checkpoint(ckpt_path)
    kwargs = model_kwargs_from_args(checkpoint["args"])
    state = checkpoint["state_dict"]
    embedding = next(
        (v for k, v in state.items() if k.endswith("instrument_embedding.weight")), None
    )
    n_official = 4 if embedding is None else embedding.shape[0]
    if len(labels) != n_official:
        raise ValueError(
            f"labels must name the checkpoint's {n_official} instruments in order, got "
            f"{list(labels)}."
        )
    model = MetaTasNet(
        labels=list(labels),
        preset="paper",
        sample_rate=sample_rate,
        in_channels=in_channels,
        **kwargs,
    )
    model.load_state_dict(map_official_state_dict(state, model))
    model.eval()
    if out_path is not None:
        save_model_file(model, out_path)
    return model


__all__ = [
    "OFFICIAL_DEFAULTS",
    "convert_metatasnet",
    "load_official_checkpoint",
    "map_official_state_dict",
    "model_kwargs_from_args",
    "official_key_to_lass",
]
