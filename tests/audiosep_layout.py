"""AudioSep's ResUNet30 checkpoint layout (names and shapes), from the reference notes.

Built independently of asteroid_lass.converters so the converter is checked against the
layout, not against itself, and the model's parameter count against the reference's.
"""

import math
from typing import Dict, Sequence

import torch

ENC = [32, 64, 128, 256, 384, 384]
COND = 512
#: Trainable parameters of AudioSep's ResUNet30, STFT convolutions excluded (reference notes).
AUDIOSEP_TRAINABLE = 26_447_941
#: Of those, the ones in decoder BN/FiLM layers that AudioSep creates but never uses.
AUDIOSEP_UNUSED = 824_000
_BUFFERS = ("running_mean", "running_var", "num_batches_tracked")


def _bn(prefix: str, n: int, out: dict) -> None:
    out[prefix + "weight"] = (n,)
    out[prefix + "bias"] = (n,)
    out[prefix + "running_mean"] = (n,)
    out[prefix + "running_var"] = (n,)
    out[prefix + "num_batches_tracked"] = ()


def _unit(prefix: str, film: str, c_in: int, c_out: int, cond: int, out: dict) -> None:
    _bn(prefix + "bn1.", c_in, out)
    _bn(prefix + "bn2.", c_out, out)
    out[prefix + "conv1.weight"] = (c_out, c_in, 3, 3)
    out[prefix + "conv2.weight"] = (c_out, c_out, 3, 3)
    if c_in != c_out:
        out[prefix + "shortcut.weight"] = (c_out, c_in, 1, 1)
        out[prefix + "shortcut.bias"] = (c_out,)
    for beta, n in (("beta1", c_in), ("beta2", c_out)):
        out[f"film.{film}->{beta}.weight"] = (n, cond)
        out[f"film.{film}->{beta}.bias"] = (n,)


def audiosep_shapes(
    enc: Sequence[int] = ENC, cond: int = COND, n_fft: int = 2048, in_channels: int = 1
) -> Dict[str, tuple]:
    """Every tensor of ``ss_model`` (keys without the ``ss_model.`` prefix) and its shape.

    The defaults are AudioSep's; other encoder widths, embedding sizes, FFT sizes and channel
    counts give the same layout scaled (decoder widths mirror the encoder's).
    """
    dec = list(enc[::-1])
    dec_in = [enc[-1]] + dec[:-1]
    bins = n_fft // 2 + 1
    out: Dict[str, tuple] = {
        "base.stft.conv_real.weight": (bins, 1, n_fft),
        "base.stft.conv_imag.weight": (bins, 1, n_fft),
        "base.istft.ola_window": (n_fft,),
        "base.istft.conv_real.weight": (n_fft, n_fft, 1),
        "base.istft.conv_imag.weight": (n_fft, n_fft, 1),
        "base.pre_conv.weight": (enc[0], in_channels, 1, 1),
        "base.pre_conv.bias": (enc[0],),
        "base.after_conv.weight": (3 * in_channels, enc[0], 1, 1),
        "base.after_conv.bias": (3 * in_channels,),
    }
    _bn("base.bn0.", bins, out)
    enc_in = [enc[0]] + list(enc[:-1])
    for i, (c_in, c_out) in enumerate(zip(enc_in, enc), 1):
        _unit(
            f"base.encoder_block{i}.conv_block1.",
            f"encoder_block{i}->conv_block1",
            c_in,
            c_out,
            cond,
            out,
        )
    _unit(
        "base.conv_block7a.conv_block1.", "conv_block7a->conv_block1", enc[-1], enc[-1], cond, out
    )
    for i, (c_in, c_out) in enumerate(zip(dec_in, dec), 1):
        upsample = (1, 2) if i == 1 else (2, 2)
        out[f"base.decoder_block{i}.conv1.weight"] = (c_in, c_out) + upsample
        _bn(f"base.decoder_block{i}.bn1.", c_in, out)
        _bn(f"base.decoder_block{i}.bn2.", c_in, out)  # created, never used
        for beta in ("beta1", "beta2"):  # beta2 created, never used
            out[f"film.decoder_block{i}->{beta}.weight"] = (c_in, cond)
            out[f"film.decoder_block{i}->{beta}.bias"] = (c_in,)
        _unit(
            f"base.decoder_block{i}.conv_block2.",
            f"decoder_block{i}->conv_block2",
            2 * c_out,
            c_out,
            cond,
            out,
        )
    return out


def _is_unused(key: str) -> bool:
    """The decoder blocks' second BN and beta2 FiLM (not those of their residual units)."""
    in_decoder_block = key.startswith(("base.decoder_block", "film.decoder_block"))
    return in_decoder_block and "conv_block2" not in key and (".bn2." in key or "->beta2." in key)


def trainable_count(shapes: Dict[str, tuple], used_only: bool) -> int:
    """Trainable parameters of a layout: no BN statistics, no STFT convolutions (AudioSep
    freezes them), and with ``used_only`` none of the layers forward never reaches."""
    return sum(
        math.prod(shape)
        for key, shape in shapes.items()
        if not key.endswith(_BUFFERS)
        and not key.startswith(("base.stft.", "base.istft."))
        and not (used_only and _is_unused(key))
    )


def random_audiosep_state_dict(seed: int = 0) -> Dict[str, torch.Tensor]:
    """Random values in AudioSep's layout; BN variances positive, counters integer."""
    generator = torch.Generator().manual_seed(seed)
    state = {}
    for key, shape in audiosep_shapes().items():
        if key.endswith("num_batches_tracked"):
            state[key] = torch.tensor(1000, dtype=torch.long)
        elif key.endswith("running_var"):
            state[key] = torch.rand(shape, generator=generator) + 0.5
        else:
            state[key] = 0.05 * torch.randn(shape, generator=generator)
    return state
