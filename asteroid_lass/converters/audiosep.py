"""Convert AudioSep's released Lightning checkpoint into a ``LASSResUNet`` model file.

AudioSep's checkpoint holds the separator under ``ss_model.`` (its ``ResUNet30``: the U-Net
under ``ss_model.base.`` and the FiLM linears under ``ss_model.film.``, named like
``encoder_block3->conv_block1->beta2``) and the CLAP encoder under ``query_encoder.``.
"""

import os
import re
from typing import Dict, Optional

import numpy as np
import torch

from ..models import LASSResUNet
from . import load_weights_only, raise_if_mismatched
from ..models.base import save_model_file
from ..queries.clap import file_sha256

SEPARATOR_PREFIX = "ss_model."

# Tensors that the torch.stft implementation does not need, and the decoder BN/FiLM layers
# that AudioSep creates but never uses in its forward pass.
_DROPPED = (
    re.compile(r"^base\.(stft|istft)\."),
    re.compile(r"^base\.decoder_block\d\.bn2\."),
    re.compile(r"^film\.decoder_block\d->beta2\."),
)
_UNIT = r"(bn1|bn2|conv1|conv2|shortcut)"
_RENAMES = (
    (re.compile(r"^base\.(bn0|pre_conv|after_conv)\.(.+)$"), r"\1.\2"),
    (
        re.compile(rf"^base\.encoder_block(\d)\.conv_block1\.{_UNIT}\.(.+)$"),
        "encoder_blocks.{0}.unit.\\2.\\3",
    ),
    (re.compile(rf"^base\.conv_block7a\.conv_block1\.{_UNIT}\.(.+)$"), r"bottleneck.\1.\2"),
    (re.compile(r"^base\.decoder_block(\d)\.conv1\.(.+)$"), "decoder_blocks.{0}.upsample.\\2"),
    (re.compile(r"^base\.decoder_block(\d)\.bn1\.(.+)$"), "decoder_blocks.{0}.bn.\\2"),
    (
        re.compile(rf"^base\.decoder_block(\d)\.conv_block2\.{_UNIT}\.(.+)$"),
        "decoder_blocks.{0}.unit.\\2.\\3",
    ),
    (
        re.compile(r"^film\.encoder_block(\d)->conv_block1->beta(\d)\.(.+)$"),
        "encoder_blocks.{0}.unit.film\\2.\\3",
    ),
    (re.compile(r"^film\.conv_block7a->conv_block1->beta(\d)\.(.+)$"), r"bottleneck.film\1.\2"),
    (re.compile(r"^film\.decoder_block(\d)->beta1\.(.+)$"), "decoder_blocks.{0}.film.\\2"),
    (
        re.compile(r"^film\.decoder_block(\d)->conv_block2->beta(\d)\.(.+)$"),
        "decoder_blocks.{0}.unit.film\\2.\\3",
    ),
)


def audiosep_key_to_lass(key: str) -> Optional[str]:
    """Name of an AudioSep separator tensor (without ``ss_model.``) in ``LASSResUNet``.

    Returns:
        The ``LASSResUNet`` state-dict key, ``None`` for a tensor that is dropped on purpose.

    Raises:
        KeyError: ``key`` is not a tensor of AudioSep's ResUNet30.
    """
    if any(pattern.match(key) for pattern in _DROPPED):
        return None
    for pattern, template in _RENAMES:
        match = pattern.match(key)
        if match:
            # AudioSep numbers blocks from 1; our ModuleLists from 0.
            block = int(match.group(1)) - 1 if "{0}" in template else None
            return match.expand(template.format(block) if block is not None else template)
    raise KeyError(key)


def map_audiosep_state_dict(separator_state: Dict[str, torch.Tensor], model: LASSResUNet) -> dict:
    """Rename AudioSep separator tensors to ``model``'s names, checking names and shapes.

    Args:
        separator_state: AudioSep's separator tensors, keys without ``ss_model.``.
        model: The target model (its state dict gives the expected names and shapes).

    Returns:
        dict: A complete state dict for ``model``.

    Raises:
        ValueError: Listing every unexpected, missing or misshapen tensor at once.
    """
    expected = model.state_dict()
    mapped, unexpected, misshapen = {}, [], []
    for key, tensor in separator_state.items():
        try:
            target = audiosep_key_to_lass(key)
        except KeyError:
            unexpected.append(SEPARATOR_PREFIX + key)
            continue
        if target is None:
            continue
        if target not in expected:
            unexpected.append(SEPARATOR_PREFIX + key)
        elif tuple(tensor.shape) != tuple(expected[target].shape):
            misshapen.append(
                f"{SEPARATOR_PREFIX}{key}: {tuple(tensor.shape)}, expected "
                f"{tuple(expected[target].shape)} for {target}"
            )
        else:
            mapped[target] = tensor
    missing = [key for key in expected if key not in mapped]
    raise_if_mismatched(
        "The checkpoint is not an AudioSep ResUNet30 base", unexpected, missing, misshapen
    )
    return mapped


def load_lightning_state_dict(path: str) -> Dict[str, torch.Tensor]:
    """Read the ``state_dict`` of a Lightning checkpoint without executing pickled code.

    Only tensors, containers and numpy scalars (which Lightning writes in callback states) may
    be unpickled.
    """
    safe = [np.core.multiarray.scalar, np.dtype, type(np.dtype(np.float64))]
    checkpoint = load_weights_only(path, "AudioSep checkpoint", safe)
    state = checkpoint.get("state_dict", checkpoint) if isinstance(checkpoint, dict) else None
    if not isinstance(state, dict):
        raise ValueError(f"{path} holds no state_dict.")
    return state


def convert_audiosep(
    checkpoint_path: str, clap_checkpoint: str, out_path: Optional[str] = None
) -> LASSResUNet:
    """Build ``LASSResUNet`` ``base`` from AudioSep's checkpoint, configured with its CLAP.

    Args:
        checkpoint_path: AudioSep's Lightning checkpoint (``audiosep_base_4M_steps.ckpt``).
        clap_checkpoint: The LAION-CLAP checkpoint AudioSep was trained with
            (``music_speech_audioset_epoch_15_esc_89.98.pt``); recorded in the model args.
        out_path: If given, write the serialized model there (atomically).

    Returns:
        LASSResUNet: The converted model, in eval mode.
    """
    if not os.path.isfile(clap_checkpoint):
        raise FileNotFoundError(f"CLAP checkpoint not found: {clap_checkpoint}")
    state = load_lightning_state_dict(checkpoint_path)
    separator_state = {
        key[len(SEPARATOR_PREFIX) :]: value
        for key, value in state.items()
        if key.startswith(SEPARATOR_PREFIX)
    }
    if not separator_state:
        raise ValueError(
            f"{checkpoint_path} has no '{SEPARATOR_PREFIX}' tensors: is it an AudioSep checkpoint?"
        )
    model = LASSResUNet(
        sample_rate=32000,
        n_fft=2048,
        hop_length=320,
        channels="base",
        condition_dim=512,
        # The file name and hash, never this machine's path: the model file stays portable.
        query_encoder={
            "name": "clap",
            "checkpoint": os.path.basename(clap_checkpoint),
            "sha256": file_sha256(clap_checkpoint),
            "amodel": "HTSAT-base",
        },
    )
    model.load_state_dict(map_audiosep_state_dict(separator_state, model))
    model.eval()
    if out_path is not None:
        save_model_file(model, out_path)
    return model
