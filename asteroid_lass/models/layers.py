"""Reusable layers of asteroid_lass models.

Each class here is self-contained (no shared state between them).

Per-label layers (used by ``MetaTasNet``) run one set of weights per label of a vocabulary in
a single grouped call: their input is ``(batch, n_labels, channels, time)``. Their weights are
either *generated* from a label embedding through a small bottleneck (``LabelGeneratedConv1d``,
``LabelGeneratedGroupNorm``) or *independent* ordinary weights per label
(``LabelIndependentConv1d``, ``LabelIndependentGroupNorm``). Both take the label embedding as
their first argument so they are interchangeable; the independent ones ignore it.

Slot layers (used by ``AudioSlots``): NeRF-style Fourier position features and Slot
Attention (the STFT they share with the objective is :class:`asteroid_lass.audio.STFT`).

Sequence layers (used by ``TUSS``): rotary position embedding on interleaved feature pairs, a
multi-head self-attention that applies it, a root-mean-square group normalisation and a gated
convolutional feed-forward layer.
"""

import math
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


class InterleavedRotaryEmbedding(nn.Module):
    """Rotary position embedding that rotates adjacent feature pairs.

    Features ``(2i, 2i + 1)`` of the vector at sequence position ``p`` are read as the complex
    number ``x[2i] + j x[2i + 1]`` and multiplied by ``exp(j p base^(-2i / dim))``, so the dot
    product of two rotated vectors depends on their positions only through their difference.
    Positions are ``0 .. seq - 1`` along the second-to-last axis. The rotation is computed in
    float32 and cast back to the input's dtype.

    Args:
        dim: Size of the rotated vectors (even).
        base: Wavelength base of the rotation frequencies.
    """

    def __init__(self, dim: int, base: float = 10000.0):
        super().__init__()
        if dim <= 0 or dim % 2:
            raise ValueError(f"dim must be a positive even int, got {dim}.")
        self.dim = dim
        exponents = torch.arange(0, dim, 2, dtype=torch.float32) / dim
        # Not saved: the frequencies are a function of dim and base.
        self.register_buffer("inv_freq", 1.0 / base**exponents, persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Rotate ``x``.

        Args:
            x: (..., seq, dim)

        Returns:
            torch.Tensor: ``x`` rotated, same shape and dtype.
        """
        positions = torch.arange(x.shape[-2], device=x.device, dtype=torch.float32)
        angles = positions[:, None] * self.inv_freq.to(x.device)
        cos, sin = angles.cos(), angles.sin()
        pairs = x.float().unflatten(-1, (-1, 2))
        real, imag = pairs[..., 0], pairs[..., 1]
        rotated = torch.stack((real * cos - imag * sin, real * sin + imag * cos), dim=-1)
        return rotated.flatten(-2).to(x.dtype)


class RoPESelfAttention(nn.Module):
    """Multi-head self-attention with rotary positions on queries and keys, without biases.

    The input projection yields queries, keys and values one after the other, each laid out
    head by head; the heads' outputs are concatenated in head order before the output
    projection.

    Args:
        dim: Feature size of the sequence.
        attention_dim: Total size of queries (and keys, values) over all heads.
        n_heads: Number of heads; must divide ``attention_dim`` into even head sizes.
    """

    def __init__(self, dim: int, attention_dim: int, n_heads: int):
        super().__init__()
        if attention_dim % n_heads or (attention_dim // n_heads) % 2:
            raise ValueError(
                f"attention_dim ({attention_dim}) must split into {n_heads} heads of even size."
            )
        self.n_heads = n_heads
        self.qkv = nn.Linear(dim, 3 * attention_dim, bias=False)
        self.out = nn.Linear(attention_dim, dim, bias=False)
        self.rope = InterleavedRotaryEmbedding(attention_dim // n_heads)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Attend.

        Args:
            x: (batch, seq, dim)

        Returns:
            torch.Tensor: (batch, seq, dim)
        """
        batch, seq, _ = x.shape
        # (batch, seq, 3 * attention_dim) -> three (batch, heads, seq, head_dim)
        query, key, value = self.qkv(x).view(batch, seq, 3, self.n_heads, -1).permute(2, 0, 3, 1, 4)
        attended = F.scaled_dot_product_attention(self.rope(query), self.rope(key), value)
        return self.out(attended.transpose(1, 2).reshape(batch, seq, -1))


class RMSGroupNorm(nn.Module):
    """Root-mean-square normalisation of each feature vector, group by group.

    The ``dim`` features of every vector are cut into ``n_groups`` consecutive groups; each
    group is divided by its root mean square plus ``eps`` (outside the root), then every
    feature is scaled by a learned gain. No centring, no bias.

    Args:
        n_groups: Number of groups (divides ``dim``).
        dim: Feature size (last axis).
        eps: Added to the root mean square.
    """

    def __init__(self, n_groups: int, dim: int, eps: float = 1e-5):
        super().__init__()
        if dim % n_groups:
            raise ValueError(f"n_groups ({n_groups}) must divide dim ({dim}).")
        self.n_groups = n_groups
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Normalise.

        Args:
            x: (..., dim)

        Returns:
            torch.Tensor: (..., dim)
        """
        groups = x.float().unflatten(-1, (self.n_groups, -1))
        rms = groups.square().mean(dim=-1, keepdim=True).sqrt()
        normalised = (groups / (rms + self.eps)).flatten(-2)
        return (normalised * self.weight).to(x.dtype)


class GatedConvFFN(nn.Module):
    """Feed-forward layer along a sequence: a convolution to ``2 * hidden`` channels, half of
    them gating the other half through SiLU, and a transposed convolution back.

    Both convolutions have stride 1 and kernel ``k``; the input is zero-padded by ``k - 1`` on
    each side and the output cropped to the input's length, so every output position sees
    ``2k - 1`` input positions centred on it. ``kernel_size=1`` is a position-wise MLP.

    Args:
        dim: Feature size.
        hidden: Channels after gating.
        kernel_size: Kernel of both convolutions.
    """

    def __init__(self, dim: int, hidden: int, kernel_size: int = 4):
        super().__init__()
        if kernel_size < 1:
            raise ValueError(f"kernel_size must be >= 1, got {kernel_size}.")
        self.hidden = hidden
        self.margin = kernel_size - 1
        self.conv = nn.Conv1d(dim, 2 * hidden, kernel_size)
        self.deconv = nn.ConvTranspose1d(hidden, dim, kernel_size)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Apply along the sequence.

        Args:
            x: (batch, seq, dim)

        Returns:
            torch.Tensor: (batch, seq, dim)
        """
        seq = x.shape[1]
        h = F.pad(x.transpose(1, 2), (self.margin, self.margin))
        value, gate = self.conv(h).split(self.hidden, dim=1)
        h = self.deconv(value * F.silu(gate))
        return h[..., self.margin : self.margin + seq].transpose(1, 2)


__all__ = ["GatedConvFFN", "InterleavedRotaryEmbedding", "RMSGroupNorm", "RoPESelfAttention"]


class FourierFeatures(nn.Module):
    """NeRF-style Fourier encoding of coordinates in [-1, 1].

    Each coordinate ``x`` becomes ``[x, sin(2^k pi x), cos(2^k pi x) for k < n_bands]``.

    Args:
        n_coords: Number of coordinates per position.
        n_bands: Octaves per coordinate; the finest has period ``2 / 2^(n_bands - 1)``.

    Shape:
        - input: (..., n_coords)
        - output: (..., n_coords * (1 + 2 * n_bands))
    """

    def __init__(self, n_coords: int, n_bands: int):
        super().__init__()
        if int(n_bands) < 0:
            raise ValueError(f"n_bands must be a non-negative int, got {n_bands}.")
        self.n_coords = int(n_coords)
        self.n_bands = int(n_bands)
        scales = math.pi * 2.0 ** torch.arange(self.n_bands, dtype=torch.float32)
        self.register_buffer("scales", scales, persistent=False)

    @property
    def out_dim(self) -> int:
        return self.n_coords * (1 + 2 * self.n_bands)

    def forward(self, coords: torch.Tensor) -> torch.Tensor:
        angles = (coords[..., None] * self.scales).flatten(-2)
        return torch.cat((coords, angles.sin(), angles.cos()), dim=-1)


class SlotAttention(nn.Module):
    """Slot Attention (Locatello et al., 2020): slots compete for input tokens.

    Attention is normalised over the slots (each token is shared out among them), each slot
    takes the weighted mean of the values it won, and a GRU and a residual MLP update it. No
    operation depends on the slots' order.

    Args:
        dim: Slot and token width.
        n_iters: Refinement iterations.
        hidden_dim: Width of the residual MLP.
        eps: Added to the attention weights before the weighted mean.

    Shape:
        - slots: (batch, n_slots, dim), tokens: (batch, n_tokens, dim)
        - output: (batch, n_slots, dim)
    """

    def __init__(self, dim: int, n_iters: int = 3, hidden_dim: int = 256, eps: float = 1e-8):
        super().__init__()
        self.n_iters = int(n_iters)
        self.eps = float(eps)
        self.scale = dim**-0.5
        self.norm_tokens = nn.LayerNorm(dim)
        self.norm_slots = nn.LayerNorm(dim)
        self.norm_mlp = nn.LayerNorm(dim)
        self.to_q = nn.Linear(dim, dim, bias=False)
        self.to_k = nn.Linear(dim, dim, bias=False)
        self.to_v = nn.Linear(dim, dim, bias=False)
        self.gru = nn.GRUCell(dim, dim)
        self.mlp = nn.Sequential(nn.Linear(dim, hidden_dim), nn.ReLU(), nn.Linear(hidden_dim, dim))

    def forward(self, slots: torch.Tensor, tokens: torch.Tensor) -> torch.Tensor:
        tokens = self.norm_tokens(tokens)
        keys, values = self.to_k(tokens), self.to_v(tokens)
        batch, n_slots, dim = slots.shape
        for _ in range(self.n_iters):
            previous = slots
            queries = self.to_q(self.norm_slots(slots))
            logits = torch.einsum("bkd,bnd->bkn", queries, keys) * self.scale
            attn = logits.softmax(dim=1) + self.eps  # over slots: slots compete
            attn = attn / attn.sum(dim=-1, keepdim=True)
            updates = torch.einsum("bkn,bnd->bkd", attn, values)
            slots = self.gru(updates.reshape(-1, dim), previous.reshape(-1, dim))
            slots = slots.reshape(batch, n_slots, dim)
            slots = slots + self.mlp(self.norm_mlp(slots))
        return slots
