"""Layers shared by the separators of asteroid_lass. Each class here is self-contained."""

import math

import torch
from torch import nn


class STFT(nn.Module):
    """A centred, Hann-windowed STFT on ``torch.stft`` and its inverse.

    One object gives a model and its training objective the same transform, so predicted and
    reference spectrograms line up frame for frame.

    Args:
        n_fft: FFT size (and window length).
        hop_length: Hop between frames, at most ``n_fft``.

    Shape:
        - forward: (..., time) -> complex (..., n_fft // 2 + 1, time // hop_length + 1)
        - inverse: complex (..., n_fft // 2 + 1, frames) -> (..., length)
    """

    def __init__(self, n_fft: int, hop_length: int):
        super().__init__()
        if int(n_fft) < 2:
            raise ValueError(f"n_fft must be an int >= 2, got {n_fft}.")
        if not 0 < int(hop_length) <= int(n_fft):
            raise ValueError(f"hop_length must be in [1, n_fft={n_fft}], got {hop_length}.")
        self.n_fft = int(n_fft)
        self.hop_length = int(hop_length)
        # Not persistent: the window follows from n_fft, so model files do not carry it.
        self.register_buffer("window", torch.hann_window(self.n_fft), persistent=False)

    @property
    def n_freq(self) -> int:
        return self.n_fft // 2 + 1

    def n_frames(self, length: int) -> int:
        """Frames of a signal of ``length`` samples (centred frames)."""
        return length // self.hop_length + 1

    def forward(self, wav: torch.Tensor) -> torch.Tensor:
        lead, length = wav.shape[:-1], wav.shape[-1]
        spec = torch.stft(
            wav.reshape(-1, length),
            n_fft=self.n_fft,
            hop_length=self.hop_length,
            window=self.window.to(wav.dtype),
            center=True,
            # "reflect" needs length > n_fft // 2; constant padding takes any length.
            pad_mode="constant",
            return_complex=True,
        )
        return spec.reshape(*lead, *spec.shape[-2:])

    def inverse(self, spec: torch.Tensor, length: int) -> torch.Tensor:
        lead = spec.shape[:-2]
        wav = torch.istft(
            spec.reshape(-1, *spec.shape[-2:]),
            n_fft=self.n_fft,
            hop_length=self.hop_length,
            window=self.window,
            center=True,
            length=length,
        )
        return wav.reshape(*lead, length)

    def magnitude(self, wav: torch.Tensor, floor: float = 1e-12) -> torch.Tensor:
        """``|STFT|`` with a floored square root, so its gradient stays finite at zero."""
        spec = self(wav)
        return (spec.real.square() + spec.imag.square()).clamp_min(floor).sqrt()


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
