"""The state-dict layout of the official Meta-TasNet ``MultiTasNet`` (pfnet-research/meta-tasnet,
MIT), written down from reading its code: key name -> shape, for given training args.

Used to build synthetic official checkpoints for the converter tests. No official code is
copied; this is a table of names and shapes.
"""

import argparse
from collections import OrderedDict
from typing import Dict, Tuple

#: The official ``train.py`` defaults of every argument (a checkpoint stores them all).
OFFICIAL_TRAIN_ARGS = dict(
    B=160,
    base_directory=".",
    batch_size=12,
    checkpoint=None,
    clip_gradient=5.0,
    debug=False,
    dissimilarity_loss_weight=3.0,
    dropout=0.0,
    E_1=8,
    E_2=5,
    epochs=250,
    filters=3,
    H=160,
    independent_params=False,
    kernel=3,
    L=20,
    layers=6,
    learning_rate=1e-3,
    N=440,
    num_mels=256,
    reconstruction_loss_weight=0.05,
    residual_bias=False,
    sampling_rate=8000,
    seed=42,
    sgdr_period=200000,
    shuffle_p=0.5,
    similarity_loss_weight=2.0,
    stack=3,
    stages_num=3,
    threads=10,
    time_length=8,
    train_data="data/train",
    validation_data="data/validation",
    W=20,
    weight_decay=0.0005,
)

#: Tensors of the official model that are not trained (``requires_grad=False``).
NON_TRAINABLE_SUFFIXES = (".spectrogram.window", ".spectrogram.mean", ".spectrogram.std")
N_INSTRUMENTS = 4  # hard-coded in the official code


def official_args(**overrides) -> argparse.Namespace:
    args = dict(OFFICIAL_TRAIN_ARGS)
    args.update(overrides)
    args["directory"] = "checkpoints/x"
    return argparse.Namespace(**args)


def official_state_shapes(args: argparse.Namespace) -> Dict[str, Tuple[int, ...]]:
    """Every state-dict key of the official ``MultiTasNet(args)`` with its shape."""
    shapes: Dict[str, Tuple[int, ...]] = OrderedDict()
    generated = not args.independent_params
    e1, e2 = args.E_1, args.E_2

    def conv(prefix, c_in, c_out, kernel, groups=1, bias=False):
        if generated:
            n = c_out * c_in // groups * kernel
            shapes[f"{prefix}.bottleneck.weight"] = (e2, e1)
            shapes[f"{prefix}.bottleneck.bias"] = (e2,)
            shapes[f"{prefix}.kernel.weight"] = (n, e2)
            shapes[f"{prefix}.kernel.bias"] = (n,)
            if bias:
                shapes[f"{prefix}.bias.weight"] = (c_out, e2)
                shapes[f"{prefix}.bias.bias"] = (c_out,)
        else:
            shapes[f"{prefix}.conv.weight"] = (N_INSTRUMENTS * c_out, c_in // groups, kernel)
            if bias:
                shapes[f"{prefix}.conv.bias"] = (N_INSTRUMENTS * c_out,)

    def norm(prefix, channels):
        if generated:
            shapes[f"{prefix}.bottleneck.weight"] = (e2, e1)
            shapes[f"{prefix}.bottleneck.bias"] = (e2,)
            shapes[f"{prefix}.affine.weight"] = (2 * channels, e2)
            shapes[f"{prefix}.affine.bias"] = (2 * channels,)
        else:
            shapes[f"{prefix}.group_norm.weight"] = (N_INSTRUMENTS * channels,)
            shapes[f"{prefix}.group_norm.bias"] = (N_INSTRUMENTS * channels,)

    for stage in range(args.stages_num):
        m = 2**stage
        n, kernel = m * args.N, m * args.L
        rate = m * args.sampling_rate
        n_fft = 1024 * (rate // 8000)
        n_freq = n_fft // 2 + 1
        s = f"stages.{stage}"
        spec = f"{s}.encoder.spectrogram"
        shapes[f"{spec}.window"] = (n_fft,)
        for name in ("mean", "std", "affine_bias", "affine_scale"):
            shapes[f"{spec}.{name}"] = (1, n_freq, 1)
        shapes[f"{spec}.mel_transform.weight"] = (args.num_mels, n_freq, 1)
        shapes[f"{spec}.mel_transform.bias"] = (args.num_mels,)
        for index in range(args.filters):
            shapes[f"{s}.encoder.filters.{index}.weight"] = (n // 4, 1, kernel * 2**index)
        fused = args.num_mels + args.filters * (n // 4)
        shapes[f"{s}.encoder.bottleneck.0.weight"] = (n, fused, 1)
        shapes[f"{s}.encoder.bottleneck.2.weight"] = (n, n, 1)
        widths = [n // 2 ** (index + 1) for index in range(args.filters)]
        shapes[f"{s}.decoder.bottleneck.0.weight"] = (n, sum(widths), 1)
        for index, width in enumerate(widths):
            shapes[f"{s}.decoder.filters.{index}.weight"] = (width, 1, kernel * 2**index)
        mask = f"{s}.mask"
        in_n = n + n // 2 if stage > 0 else n
        norm(f"{mask}.norm_1", in_n)
        shapes[f"{mask}.prelu_1.weight"] = (1,)
        conv(f"{mask}.in_conv", in_n, args.B, 1)
        norm(f"{mask}.norm_2", args.B)
        shapes[f"{mask}.prelu_2.weight"] = (1,)
        for block in range(args.stack * args.layers):
            t = f"{mask}.tcn.{block}"
            norm(f"{t}.norm_1", args.H)
            shapes[f"{t}.prelu_1.weight"] = (1,)
            conv(f"{t}.conv1d", args.B, args.H, 1)
            norm(f"{t}.norm_2", args.H)
            shapes[f"{t}.prelu_2.weight"] = (1,)
            conv(f"{t}.dconv1d", args.H, args.H, args.kernel, groups=args.H)
            conv(f"{t}.res_out", args.H, args.B, 1, bias=args.residual_bias)
            conv(f"{t}.skip_out", args.H, args.B, 1, bias=args.residual_bias)
        norm(f"{mask}.norm_3", args.B)
        shapes[f"{mask}.prelu_3.weight"] = (1,)
        conv(f"{mask}.mask_output", args.B, n, 1)
        norm(f"{mask}.norm_4", n)
        shapes[f"{mask}.prelu_4.weight"] = (1,)
        if generated:
            shapes[f"{s}.instrument_embedding.weight"] = (N_INSTRUMENTS, e1)
    return shapes


def trainable_count(shapes: Dict[str, Tuple[int, ...]]) -> int:
    total = 0
    for key, shape in shapes.items():
        if not key.endswith(NON_TRAINABLE_SUFFIXES):
            count = 1
            for size in shape:
                count *= size
            total += count
    return total
