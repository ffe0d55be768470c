"""Reusable network layers of asteroid_lass models.

Each class is self-contained: rotary position embedding on interleaved feature pairs, a
multi-head self-attention that applies it, a root-mean-square group normalisation and a
gated convolutional feed-forward layer.
"""

import torch
import torch.nn.functional as F
from torch import nn


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
