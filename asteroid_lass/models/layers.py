"""Reusable layers of asteroid_lass models.

Each class here is self-contained (no shared state between them).

Per-label layers (used by ``MetaTasNet``) run one set of weights per label of a vocabulary in
a single grouped call: their input is ``(batch, n_labels, channels, time)``. Their weights are
either *generated* from a label embedding through a small bottleneck (``LabelGeneratedConv1d``,
``LabelGeneratedGroupNorm``) or *independent* ordinary weights per label
(``LabelIndependentConv1d``, ``LabelIndependentGroupNorm``). Both take the label embedding as
their first argument so they are interchangeable; the independent ones ignore it.
"""

from typing import Optional

import torch
import torch.nn.functional as F
from torch import nn


class LabelGeneratedConv1d(nn.Module):
    """1-D convolution whose kernel (and bias) are generated from each label's embedding.

    Two learned linear maps per layer: ``embed_dim -> generator_dim`` (``bottleneck``), then
    ``generator_dim -> out_chan * in_chan / groups * kernel_size`` (``kernel``) and, with
    ``bias``, ``generator_dim -> out_chan`` (``bias``).

    Args:
        embed_dim: Size of the label embedding (E_1).
        generator_dim: Size of the generator bottleneck (E_2).
        in_chan: Input channels per label.
        out_chan: Output channels per label.
        kernel_size: Convolution kernel size.
        stride: Convolution stride.
        padding: Zero padding on both sides.
        dilation: Convolution dilation.
        groups: Convolution groups per label (``in_chan`` for a depthwise convolution).
        bias: Whether a bias is generated too.

    Shape:
        - labels: (n_labels, embed_dim)
        - x: (batch, n_labels, in_chan, time)
        - output: (batch, n_labels, out_chan, time')
    """

    def __init__(
        self,
        embed_dim: int,
        generator_dim: int,
        in_chan: int,
        out_chan: int,
        kernel_size: int,
        stride: int = 1,
        padding: int = 0,
        dilation: int = 1,
        groups: int = 1,
        bias: bool = False,
    ):
        super().__init__()
        self.in_chan, self.out_chan, self.kernel_size = in_chan, out_chan, kernel_size
        self.stride, self.padding, self.dilation, self.groups = stride, padding, dilation, groups
        self.bottleneck = nn.Linear(embed_dim, generator_dim)
        self.kernel = nn.Linear(generator_dim, out_chan * (in_chan // groups) * kernel_size)
        self.bias = nn.Linear(generator_dim, out_chan) if bias else None

    def forward(self, labels: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        batch, n_labels = x.shape[:2]
        code = self.bottleneck(labels)
        kernel = self.kernel(code).view(
            n_labels * self.out_chan, self.in_chan // self.groups, self.kernel_size
        )
        bias = self.bias(code).reshape(-1) if self.bias is not None else None
        if _is_pointwise(self):
            return _pointwise(x, kernel, bias)
        # One grouped convolution runs every label's own kernel on its own copy of the input.
        out = F.conv1d(
            x.reshape(batch, n_labels * self.in_chan, -1),
            kernel,
            bias,
            stride=self.stride,
            padding=self.padding,
            dilation=self.dilation,
            groups=n_labels * self.groups,
        )
        return out.view(batch, n_labels, self.out_chan, -1)


class LabelIndependentConv1d(nn.Module):
    """1-D convolution with independent ordinary weights for each of ``n_labels`` labels.

    Args:
        n_labels: Vocabulary size.
        in_chan, out_chan, kernel_size, stride, padding, dilation, groups, bias: As in
            :class:`LabelGeneratedConv1d`.

    Shape:
        - labels: ignored (any value, for interchangeability with the generated layer)
        - x: (batch, n_labels, in_chan, time)
        - output: (batch, n_labels, out_chan, time')
    """

    def __init__(
        self,
        n_labels: int,
        in_chan: int,
        out_chan: int,
        kernel_size: int,
        stride: int = 1,
        padding: int = 0,
        dilation: int = 1,
        groups: int = 1,
        bias: bool = False,
    ):
        super().__init__()
        self.in_chan, self.out_chan = in_chan, out_chan
        self.conv = nn.Conv1d(
            n_labels * in_chan,
            n_labels * out_chan,
            kernel_size,
            stride,
            padding,
            dilation,
            groups=n_labels * groups,
            bias=bias,
        )

    def forward(self, labels: Optional[torch.Tensor], x: torch.Tensor) -> torch.Tensor:
        batch, n_labels = x.shape[:2]
        conv = self.conv
        if conv.kernel_size == (1,) and conv.stride == (1,) and conv.padding == (0,):
            if conv.groups == n_labels:
                return _pointwise(x, conv.weight, conv.bias)
        out = self.conv(x.reshape(batch, n_labels * self.in_chan, -1))
        return out.view(batch, n_labels, self.out_chan, -1)


def _is_pointwise(layer: LabelGeneratedConv1d) -> bool:
    return (layer.kernel_size, layer.stride, layer.padding, layer.groups) == (1, 1, 0, 1)


def _pointwise(x: torch.Tensor, kernel: torch.Tensor, bias: Optional[torch.Tensor]) -> torch.Tensor:
    """A per-label 1x1 convolution as a batched matrix product (about twice as fast on CPU
    as the equivalent grouped convolution).

    Args:
        x: (batch, n_labels, in_chan, time)
        kernel: (n_labels * out_chan, in_chan, 1)
        bias: (n_labels * out_chan,) or None
    """
    n_labels = x.shape[1]
    out = torch.matmul(kernel.view(n_labels, -1, kernel.shape[1]), x)
    if bias is not None:
        out = out + bias.view(n_labels, -1, 1)
    return out


class LabelGeneratedGroupNorm(nn.Module):
    """Group normalisation per label whose scale and shift are generated from its embedding.

    ``bottleneck``: ``embed_dim -> generator_dim``; ``affine``: ``generator_dim -> 2 *
    num_channels`` (the scales, then the shifts).

    Args:
        embed_dim: Size of the label embedding.
        generator_dim: Size of the generator bottleneck.
        num_groups: Groups per label.
        num_channels: Channels per label.
        eps: Added to the variance.

    Shape:
        - labels: (n_labels, embed_dim)
        - x: (batch, n_labels, num_channels, time)
        - output: same as x
    """

    def __init__(
        self,
        embed_dim: int,
        generator_dim: int,
        num_groups: int,
        num_channels: int,
        eps: float = 1e-8,
    ):
        super().__init__()
        self.num_groups, self.num_channels, self.eps = num_groups, num_channels, eps
        self.bottleneck = nn.Linear(embed_dim, generator_dim)
        self.affine = nn.Linear(generator_dim, 2 * num_channels)

    def forward(self, labels: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        batch, n_labels = x.shape[:2]
        affine = self.affine(self.bottleneck(labels))
        scale = affine[:, : self.num_channels].reshape(-1)
        shift = affine[:, self.num_channels :].reshape(-1)
        out = F.group_norm(
            x.reshape(batch, n_labels * self.num_channels, -1),
            n_labels * self.num_groups,
            scale,
            shift,
            self.eps,
        )
        return out.view(batch, n_labels, self.num_channels, -1)


class LabelIndependentGroupNorm(nn.Module):
    """Group normalisation per label with independent learned scale and shift per label.

    Args:
        n_labels: Vocabulary size.
        num_groups: Groups per label.
        num_channels: Channels per label.
        eps: Added to the variance.

    Shape:
        - labels: ignored
        - x: (batch, n_labels, num_channels, time)
        - output: same as x
    """

    def __init__(self, n_labels: int, num_groups: int, num_channels: int, eps: float = 1e-8):
        super().__init__()
        self.num_channels = num_channels
        self.group_norm = nn.GroupNorm(n_labels * num_groups, n_labels * num_channels, eps)

    def forward(self, labels: Optional[torch.Tensor], x: torch.Tensor) -> torch.Tensor:
        batch, n_labels = x.shape[:2]
        out = self.group_norm(x.reshape(batch, n_labels * self.num_channels, -1))
        return out.view(batch, n_labels, self.num_channels, -1)
