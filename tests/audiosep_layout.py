"""AudioSep's ResUNet30 checkpoint layout (names and shapes), from the reference notes.

Built independently of asteroid_lass.convert so the converter is checked against the layout,
not against itself.
"""

from typing import Dict

import torch

ENC = [32, 64, 128, 256, 384, 384]
DEC = [384, 384, 256, 128, 64, 32]
DEC_IN = [384, 384, 384, 256, 128, 64]
COND = 512


def _bn(prefix: str, n: int, out: dict) -> None:
    out[prefix + "weight"] = (n,)
    out[prefix + "bias"] = (n,)
    out[prefix + "running_mean"] = (n,)
    out[prefix + "running_var"] = (n,)
    out[prefix + "num_batches_tracked"] = ()


def _unit(prefix: str, film: str, c_in: int, c_out: int, out: dict) -> None:
    _bn(prefix + "bn1.", c_in, out)
    _bn(prefix + "bn2.", c_out, out)
    out[prefix + "conv1.weight"] = (c_out, c_in, 3, 3)
    out[prefix + "conv2.weight"] = (c_out, c_out, 3, 3)
    if c_in != c_out:
        out[prefix + "shortcut.weight"] = (c_out, c_in, 1, 1)
        out[prefix + "shortcut.bias"] = (c_out,)
    for beta, n in (("beta1", c_in), ("beta2", c_out)):
        out[f"film.{film}->{beta}.weight"] = (n, COND)
        out[f"film.{film}->{beta}.bias"] = (n,)


def audiosep_shapes() -> Dict[str, tuple]:
    """Every tensor of ``ss_model`` (keys without the ``ss_model.`` prefix) and its shape."""
    out: Dict[str, tuple] = {
        "base.stft.conv_real.weight": (1025, 1, 2048),
        "base.stft.conv_imag.weight": (1025, 1, 2048),
        "base.istft.ola_window": (2048,),
        "base.istft.conv_real.weight": (2048, 2048, 1),
        "base.istft.conv_imag.weight": (2048, 2048, 1),
        "base.pre_conv.weight": (32, 1, 1, 1),
        "base.pre_conv.bias": (32,),
        "base.after_conv.weight": (3, 32, 1, 1),
        "base.after_conv.bias": (3,),
    }
    _bn("base.bn0.", 1025, out)
    enc_in = [32] + ENC[:-1]
    for i, (c_in, c_out) in enumerate(zip(enc_in, ENC), 1):
        _unit(
            f"base.encoder_block{i}.conv_block1.",
            f"encoder_block{i}->conv_block1",
            c_in,
            c_out,
            out,
        )
    _unit("base.conv_block7a.conv_block1.", "conv_block7a->conv_block1", 384, 384, out)
    for i, (c_in, c_out) in enumerate(zip(DEC_IN, DEC), 1):
        upsample = (1, 2) if i == 1 else (2, 2)
        out[f"base.decoder_block{i}.conv1.weight"] = (c_in, c_out) + upsample
        _bn(f"base.decoder_block{i}.bn1.", c_in, out)
        _bn(f"base.decoder_block{i}.bn2.", c_in, out)  # created, never used
        for beta in ("beta1", "beta2"):  # beta2 created, never used
            out[f"film.decoder_block{i}->{beta}.weight"] = (c_in, COND)
            out[f"film.decoder_block{i}->{beta}.bias"] = (c_in,)
        _unit(
            f"base.decoder_block{i}.conv_block2.",
            f"decoder_block{i}->conv_block2",
            2 * c_out,
            c_out,
            out,
        )
    return out


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
