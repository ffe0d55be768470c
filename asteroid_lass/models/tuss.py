"""TUSS: Task-aware Unified Source Separation (Saijo et al., ICASSP 2025).

One network for speech enhancement and separation, music, cinematic and universal sound
separation: the caller picks the task by listing one *prompt* per wanted output (e.g.
``["speech", "sfxbg"]`` for enhancement, ``["drums", "bass", "vocals", "other"]`` for music,
``["sfx", "sfx", "sfx"]`` for three sound events) and gets one estimate per prompt, in order.

Signal path, for each mixture (channels are separated one by one, as batch items)::

    waveform / std --STFT--> band-split encoder --> [prompts..., start, frames...]
      --> cross-prompt dual-path Transformer --> frames x refined prompt n (one copy per prompt)
      --> shared target-extraction dual-path Transformer --> band-wise complex mask
      --> masked STFT --iSTFT--> x std, cut to the input length

Every dual-path block attends across bands within each time step, then across time within
each band. Along time, the rotary position embedding numbers the whole sequence
``[prompts..., start, frames...]``: prompt ``n`` sits at position ``n``. That is what lets
repeated prompts (``["speech", "speech"]``) yield *different* outputs (two talkers), and it
also means the model is not exactly permutation-equivariant in its prompts: moving a prompt
to another position changes its output a little, not only its place.

The ``medium`` and ``large`` presets are the released models' layouts; their checkpoints are
converted with :func:`asteroid_lass.converters.tuss.convert_tuss`.
"""

import math
from typing import Dict, List, Optional, Sequence, Tuple

import torch
import torch.nn.functional as F
from torch import nn

from ..errors import LASSInputError
from .base import Separator
from .layers import GatedConvFFN, RMSGroupNorm, RoPESelfAttention

#: The prompts of the released models, in their order.
RELEASED_PROMPTS = ("speech", "sfx", "sfxbg", "drums", "bass", "vocals", "other", "musicbg")

# The released band split (BS-RoFormer's): (low Hz, high Hz, bins per band). The number of
# bands per range counts bins of width nyquist / n_bins and rounds up.
_BAND_TABLE = (
    (0, 1000, 2),
    (1000, 2000, 4),
    (2000, 4000, 12),
    (4000, 8000, 24),
    (8000, 16000, 48),
)
#: Sample rates with a band split, and how the bins above the table are cut.
BAND_SPLIT_RATES = (16000, 44100, 48000)

_STAGE_KEYS = (
    "n_blocks",
    "attention_dim",
    "n_heads",
    "n_groups",
    "ffn_dim",
    "band_kernel",
    "time_kernel",
)

#: Network sizes by preset name (see :class:`TUSS` for the keys).
PRESETS: Dict[str, dict] = {
    # The released medium model (11,132,296 parameters).
    "medium": dict(
        sample_rate=48000,
        n_fft=2048,
        hop_length=512,
        emb_dim=64,
        cross_prompt=dict(
            n_blocks=4,
            attention_dim=128,
            n_heads=4,
            n_groups=8,
            ffn_dim=384,
            band_kernel=4,
            time_kernel=1,
        ),
        extraction=dict(
            n_blocks=2,
            attention_dim=96,
            n_heads=4,
            n_groups=8,
            ffn_dim=256,
            band_kernel=4,
            time_kernel=4,
        ),
    ),
    # The released large model (38,210,056 parameters).
    "large": dict(
        sample_rate=48000,
        n_fft=2048,
        hop_length=512,
        emb_dim=128,
        cross_prompt=dict(
            n_blocks=6,
            attention_dim=256,
            n_heads=8,
            n_groups=8,
            ffn_dim=384,
            band_kernel=4,
            time_kernel=1,
        ),
        extraction=dict(
            n_blocks=3,
            attention_dim=192,
            n_heads=8,
            n_groups=8,
            ffn_dim=256,
            band_kernel=4,
            time_kernel=4,
        ),
    ),
    # CPU training at 16 kHz: speech and sound-event corpora are mostly 16 kHz, a third of
    # the rate divides the STFT work by three, and 512/128 keeps about the released bin width
    # (31 Hz against 23 Hz) and hop (8 ms against 11 ms). Half of medium's embedding (the
    # cost of every layer grows with its square), half its cross-prompt blocks and one
    # extraction block: 1.28 M parameters, 22 GFLOP for 3 s and 3 prompts (medium at 48 kHz:
    # 305 GFLOP).
    "small": dict(
        sample_rate=16000,
        n_fft=512,
        hop_length=128,
        emb_dim=32,
        cross_prompt=dict(
            n_blocks=2,
            attention_dim=32,
            n_heads=2,
            n_groups=4,
            ffn_dim=96,
            band_kernel=4,
            time_kernel=1,
        ),
        extraction=dict(
            n_blocks=1,
            attention_dim=32,
            n_heads=2,
            n_groups=4,
            ffn_dim=96,
            band_kernel=4,
            time_kernel=4,
        ),
    ),
    # Tests and smoke runs: every component once, at the smallest sizes that keep it
    # meaningful (two heads, two groups, a 16 ms window); 0.18 M parameters.
    "tiny": dict(
        sample_rate=16000,
        n_fft=256,
        hop_length=64,
        emb_dim=16,
        cross_prompt=dict(
            n_blocks=1,
            attention_dim=16,
            n_heads=2,
            n_groups=2,
            ffn_dim=32,
            band_kernel=4,
            time_kernel=1,
        ),
        extraction=dict(
            n_blocks=1,
            attention_dim=16,
            n_heads=2,
            n_groups=2,
            ffn_dim=32,
            band_kernel=4,
            time_kernel=4,
        ),
    ),
}


def band_widths(sample_rate: int, n_fft: int) -> List[int]:
    """Number of STFT bins in each band of the band-split encoder and decoder.

    At 48 and 44.1 kHz this is the released split: the table of (range, bins per band) up to
    16 kHz, then the remaining bins in 4 bands (48 kHz, the last one taking the remainder) or 2
    (44.1 kHz). At 16 kHz (this package's CPU presets) the table is used up to 4 kHz and the
    4-8 kHz bins are cut into near-equal bands of about 24 bins (the table's 4-8 kHz width).

    Args:
        sample_rate: 16000, 44100 or 48000.
        n_fft: STFT size.

    Returns:
        list: Band widths in bins, low to high, summing to ``n_fft // 2 + 1``.
    """
    if int(sample_rate) not in BAND_SPLIT_RATES:
        raise ValueError(
            f"sample_rate {sample_rate} has no band split; TUSS supports {BAND_SPLIT_RATES}."
        )
    sample_rate = int(sample_rate)
    n_bins = n_fft // 2 + 1
    # The released rule's bin width: nyquist over the number of bins (not over n_fft / 2).
    hz_per_bin = (sample_rate // 2) / n_bins
    top = 4000 if sample_rate == 16000 else 16000
    widths: List[int] = []
    for low, high, width in _BAND_TABLE:
        if high <= top:
            widths += [width] * math.ceil((high - low) / (width * hz_per_bin))
    rest = n_bins - sum(widths)
    if rest <= 0:
        raise ValueError(
            f"n_fft={n_fft} is too small for the band split at {sample_rate} Hz "
            f"(the fixed bands alone need {sum(widths)} of its {n_bins} bins)."
        )
    if sample_rate == 48000:
        return widths + [rest // 4] * 3 + [rest // 4 + rest % 4]
    # Near-equal parts, the larger ones last.
    n_parts = 2 if sample_rate == 44100 else max(1, round(rest / 24))
    small, n_large = divmod(rest, n_parts)
    return widths + [small] * (n_parts - n_large) + [small + 1] * n_large


# ----------------------------------------------------------------------------- band split
class _BandEncoder(nn.Module):
    def __init__(self, width: int, emb_dim: int):
        super().__init__()
        self.norm = nn.GroupNorm(1, 2 * width)
        self.proj = nn.Conv1d(2 * width, emb_dim, 1)


class BandSplitEncoder(nn.Module):
    """Cuts a spectrogram into bands and embeds each band.

    Each band's real and imaginary parts, flattened bin by bin (``bin0.re, bin0.im, bin1.re,
    ...``), are normalised jointly over features and time (one-group GroupNorm) and projected
    to ``emb_dim``.

    Args:
        widths: Bins per band (see :func:`band_widths`).
        emb_dim: Embedding size.

    Shape:
        - spec: complex (batch, n_bins, frames)
        - output: (batch, frames, n_bands, emb_dim)
    """

    def __init__(self, widths: Sequence[int], emb_dim: int):
        super().__init__()
        self.widths = list(widths)
        self.bands = nn.ModuleList(_BandEncoder(width, emb_dim) for width in self.widths)

    def forward(self, spec: torch.Tensor) -> torch.Tensor:
        batch, _, frames = spec.shape
        parts = torch.view_as_real(spec).split(self.widths, dim=1)  # (batch, width, frames, 2)
        embedded = []
        for band, part in zip(self.bands, parts):
            features = part.transpose(2, 3).reshape(batch, -1, frames)
            embedded.append(band.proj(band.norm(features)))
        return torch.stack(embedded, dim=-1).permute(0, 2, 3, 1)


class _BandDecoder(nn.Module):
    def __init__(self, width: int, emb_dim: int, hidden: int):
        super().__init__()
        self.norm = nn.GroupNorm(1, emb_dim)
        self.fc1 = nn.Conv1d(emb_dim, hidden, 1)
        self.fc2 = nn.Conv1d(hidden, hidden, 1)
        # Twice the mask channels: GLU gates one half with the other.
        self.fc3 = nn.Conv1d(hidden, 4 * width, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = torch.tanh(self.fc1(self.norm(x)))
        h = torch.tanh(self.fc2(h))
        return F.glu(self.fc3(h), dim=1)


class BandMaskDecoder(nn.Module):
    """Predicts a complex mask per band from the band embeddings.

    Each band goes through GroupNorm and a tanh MLP of width ``4 * emb_dim`` with a GLU
    output; the mask channels are ordered real part of every bin, then imaginary part.

    Args:
        widths: Bins per band.
        emb_dim: Embedding size.

    Shape:
        - x: (batch, frames, n_bands, emb_dim)
        - output: complex (batch, n_bins, frames)
    """

    def __init__(self, widths: Sequence[int], emb_dim: int):
        super().__init__()
        self.widths = list(widths)
        self.bands = nn.ModuleList(
            _BandDecoder(width, emb_dim, 4 * emb_dim) for width in self.widths
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        batch, frames = x.shape[:2]
        x = x.permute(2, 0, 3, 1)  # (n_bands, batch, emb_dim, frames)
        masks = [
            band(x[index]).view(batch, 2, width, frames)
            for index, (band, width) in enumerate(zip(self.bands, self.widths))
        ]
        mask = torch.cat(masks, dim=2).float()
        return torch.complex(mask[:, 0], mask[:, 1])


# ----------------------------------------------------------------------------- transformer
class PathTransformer(nn.Module):
    """One pre-norm Transformer layer along one axis, with a feed-forward layer on each side
    of the attention (Macaron style), each sub-layer residual.

    Args:
        dim: Feature size.
        attention_dim: Attention size over all heads.
        n_heads: Attention heads.
        n_groups: Groups of the RMS group norms.
        ffn_dim: Hidden channels of the feed-forward layers.
        kernel_size: Kernel of the feed-forward convolutions along the sequence.
        eps: Of the RMS group norms.

    Shape:
        - x: (batch, seq, dim) -> (batch, seq, dim)
    """

    def __init__(
        self,
        dim: int,
        attention_dim: int,
        n_heads: int,
        n_groups: int,
        ffn_dim: int,
        kernel_size: int,
        eps: float,
    ):
        super().__init__()
        self.ffn_before_norm = RMSGroupNorm(n_groups, dim, eps)
        self.ffn_before = GatedConvFFN(dim, ffn_dim, kernel_size)
        self.attn_norm = RMSGroupNorm(n_groups, dim, eps)
        self.attn = RoPESelfAttention(dim, attention_dim, n_heads)
        self.ffn_after_norm = RMSGroupNorm(n_groups, dim, eps)
        self.ffn_after = GatedConvFFN(dim, ffn_dim, kernel_size)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.ffn_before(self.ffn_before_norm(x))
        x = x + self.attn(self.attn_norm(x))
        return x + self.ffn_after(self.ffn_after_norm(x))


class DualPathBlock(nn.Module):
    """Attention across bands (within each time step), then across time (within each band).

    Args:
        dim: Feature size.
        attention_dim, n_heads, n_groups, ffn_dim: See :class:`PathTransformer`.
        band_kernel: Feed-forward kernel along bands.
        time_kernel: Feed-forward kernel along time.
        eps: Of the RMS group norms.

    Shape:
        - x: (batch, time, bands, dim) -> (batch, time, bands, dim)
    """

    def __init__(
        self,
        dim: int,
        attention_dim: int,
        n_heads: int,
        n_groups: int,
        ffn_dim: int,
        band_kernel: int,
        time_kernel: int,
        eps: float,
    ):
        super().__init__()
        common = dict(
            dim=dim, attention_dim=attention_dim, n_heads=n_heads, n_groups=n_groups, eps=eps
        )
        self.band_path = PathTransformer(ffn_dim=ffn_dim, kernel_size=band_kernel, **common)
        self.time_path = PathTransformer(ffn_dim=ffn_dim, kernel_size=time_kernel, **common)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        batch, time, bands, dim = x.shape
        x = self.band_path(x.reshape(batch * time, bands, dim)).view(batch, time, bands, dim)
        x = x.transpose(1, 2).reshape(batch * bands, time, dim)
        return self.time_path(x).view(batch, bands, time, dim).transpose(1, 2)


def _stage(emb_dim: int, conf: dict, eps: float) -> nn.ModuleList:
    settings = {key: conf[key] for key in _STAGE_KEYS if key != "n_blocks"}
    return nn.ModuleList(
        DualPathBlock(emb_dim, eps=eps, **settings) for _ in range(conf["n_blocks"])
    )


def _stage_conf(name: str, conf: Optional[dict], default: dict) -> dict:
    conf = dict(default if conf is None else conf)
    missing = [key for key in _STAGE_KEYS if key not in conf]
    unknown = [key for key in conf if key not in _STAGE_KEYS]
    if missing or unknown:
        raise ValueError(
            f"{name} must be a dict with exactly the keys {list(_STAGE_KEYS)}; "
            f"missing {missing}, unknown {unknown}."
        )
    for key in _STAGE_KEYS:
        if int(conf[key]) != conf[key] or conf[key] < (0 if key == "n_blocks" else 1):
            raise ValueError(f"{name}[{key!r}] must be a positive int, got {conf[key]!r}.")
        conf[key] = int(conf[key])
    return conf


# ----------------------------------------------------------------------------- model
class TUSS(Separator):
    """Task-aware unified source separation: one output per prompt, in prompt order.

    Args:
        preset: ``"medium"`` or ``"large"`` (the released models, 48 kHz), ``"small"`` (CPU
            training at 16 kHz) or ``"tiny"`` (tests); see :data:`PRESETS`. Every other
            argument left as None takes the preset's value.
        prompts: The prompt vocabulary, one learned vector each (default: the released eight,
            :data:`RELEASED_PROMPTS`).
        sample_rate: 16000, 44100 or 48000 (the rates with a band split).
        in_channels: Channels a mixture is declared to have. The network is mono: each channel
            is separated on its own, as a batch item, with the same prompts.
        n_fft: STFT size (window = n_fft, square-root Hann).
        hop_length: STFT hop.
        emb_dim: Band embedding size.
        cross_prompt: The cross-prompt stage, a dict with ``n_blocks``, ``attention_dim``,
            ``n_heads``, ``n_groups`` (RMS group norm), ``ffn_dim``, ``band_kernel`` and
            ``time_kernel`` (feed-forward kernels along bands and along time).
        extraction: The target-extraction stage, same keys.
        eps: Of the RMS group norms.

    Shape:
        - mixture: (batch, channels, time)
        - conditions: long (batch, n_prompts), indices into ``prompts``
        - output: (batch, n_prompts, channels, time)
    """

    condition_kind = "prompt"

    def __init__(
        self,
        preset: Optional[str] = "medium",
        prompts: Optional[Sequence[str]] = None,
        sample_rate: Optional[int] = None,
        in_channels: int = 1,
        n_fft: Optional[int] = None,
        hop_length: Optional[int] = None,
        emb_dim: Optional[int] = None,
        cross_prompt: Optional[dict] = None,
        extraction: Optional[dict] = None,
        eps: float = 1e-5,
    ):
        if preset is not None and preset not in PRESETS:
            raise ValueError(f"preset must be one of {sorted(PRESETS)} or None, got {preset!r}.")
        base = PRESETS[preset] if preset is not None else {}

        def pick(name, value):
            if value is None:
                if name not in base:
                    raise ValueError(f"{name} is needed when preset is None.")
                return base[name]
            return value

        sample_rate = int(pick("sample_rate", sample_rate))
        prompts = list(RELEASED_PROMPTS if prompts is None else prompts)
        super().__init__(sample_rate=sample_rate, in_channels=in_channels, vocabulary=prompts)
        self.preset = preset
        self.n_fft = int(pick("n_fft", n_fft))
        self.hop_length = int(pick("hop_length", hop_length))
        self.emb_dim = int(pick("emb_dim", emb_dim))
        if not 0 < self.hop_length <= self.n_fft:
            raise ValueError(f"hop_length must be in 1..n_fft, got {self.hop_length}.")
        self.cross_prompt_conf = _stage_conf(
            "cross_prompt", cross_prompt, base.get("cross_prompt", {})
        )
        self.extraction_conf = _stage_conf("extraction", extraction, base.get("extraction", {}))
        self.eps = float(eps)

        widths = band_widths(sample_rate, self.n_fft)
        self.encoder = BandSplitEncoder(widths, self.emb_dim)
        self.prompt_embeddings = nn.Parameter(torch.randn(len(prompts), self.emb_dim))
        self.start_token = nn.Parameter(torch.randn(self.emb_dim))
        self.cross_prompt = _stage(self.emb_dim, self.cross_prompt_conf, self.eps)
        self.extraction = _stage(self.emb_dim, self.extraction_conf, self.eps)
        self.decoder = BandMaskDecoder(widths, self.emb_dim)
        self.register_buffer("window", torch.hann_window(self.n_fft).sqrt(), persistent=False)

    # ------------------------------------------------------------------ forward
    def forward(self, mixture: torch.Tensor, conditions: torch.Tensor) -> torch.Tensor:
        """Separate one source per prompt.

        Args:
            mixture: (batch, channels, time)
            conditions: Long (batch, n_prompts) prompt indices; rows may differ, repeats are
                allowed.

        Returns:
            torch.Tensor: (batch, n_prompts, channels, time), the input's length.
        """
        prompt_ids = self._check_inputs(mixture, conditions)
        batch, channels, length = mixture.shape
        n_prompts = prompt_ids.shape[1]
        # Channels become batch items of a mono network.
        wav = mixture.reshape(batch * channels, length).float()
        prompt_ids = prompt_ids.repeat_interleave(channels, dim=0)

        # A new tensor: the caller's mixture is left untouched.
        std = wav.std(dim=-1, keepdim=True) + 1e-8
        spec = self._stft(wav / std)  # (batch', n_bins, frames)
        masks = self._masks(spec, prompt_ids)  # (batch' * n_prompts, n_bins, frames)
        estimates = self._istft(spec.repeat_interleave(n_prompts, dim=0) * masks, length)
        estimates = estimates.view(batch, channels, n_prompts, length) * std.view(
            batch, channels, 1, 1
        )
        return estimates.transpose(1, 2)

    def _masks(self, spec: torch.Tensor, prompt_ids: torch.Tensor) -> torch.Tensor:
        frames = self.encoder(spec)  # (batch, time, bands, dim)
        refined, frames = self.cross_prompt_module(frames, prompt_ids)
        return self.decoder(self.extract(frames, refined))

    def cross_prompt_module(
        self, frames: torch.Tensor, prompt_ids: torch.Tensor
    ) -> Tuple[torch.Tensor, torch.Tensor]:
        """Let prompts and mixture attend to each other.

        Args:
            frames: (batch, time, bands, dim), the encoded mixture.
            prompt_ids: Long (batch, n_prompts).

        Returns:
            The refined prompt vectors (batch, n_prompts, bands, dim) and the refined mixture
            (batch, time, bands, dim).
        """
        sequence = self.prompt_sequence(frames, prompt_ids)
        for block in self.cross_prompt:
            sequence = block(sequence)
        n_prompts = prompt_ids.shape[1]
        return sequence[:, :n_prompts], sequence[:, n_prompts + 1 :]

    def prompt_sequence(self, frames: torch.Tensor, prompt_ids: torch.Tensor) -> torch.Tensor:
        """``[prompt vectors..., start token, frames...]`` along time, every vector repeated
        over the bands: (batch, n_prompts + 1 + time, bands, dim)."""
        batch, _, bands, dim = frames.shape
        prompts = self.prompt_embeddings[prompt_ids]  # (batch, n_prompts, dim)
        start = self.start_token.expand(batch, 1, dim)
        tokens = torch.cat((prompts, start), dim=1).to(frames.dtype)
        return torch.cat((tokens[:, :, None].expand(-1, -1, bands, -1), frames), dim=1)

    def extract(self, frames: torch.Tensor, refined: torch.Tensor) -> torch.Tensor:
        """Condition the mixture on each refined prompt and refine each copy on its own.

        Args:
            frames: (batch, time, bands, dim)
            refined: (batch, n_prompts, bands, dim)

        Returns:
            torch.Tensor: (batch * n_prompts, time, bands, dim), prompt-major within a mixture.
        """
        conditioned = frames[:, None] * refined[:, :, None]  # (batch, n_prompts, time, ...)
        h = conditioned.flatten(0, 1)
        for block in self.extraction:
            h = block(h)
        return h

    # ------------------------------------------------------------------ STFT
    def _stft(self, wav: torch.Tensor) -> torch.Tensor:
        # Zeros up to a whole number of hops, then centred frames: ceil(len / hop) + 1 frames,
        # the released model's framing.
        wav = F.pad(wav, (0, -wav.shape[-1] % self.hop_length))
        return torch.stft(
            wav,
            self.n_fft,
            self.hop_length,
            window=self.window.to(wav.device),
            center=True,
            pad_mode="constant",
            return_complex=True,
        )

    def _istft(self, spec: torch.Tensor, length: int) -> torch.Tensor:
        return torch.istft(
            spec,
            self.n_fft,
            self.hop_length,
            window=self.window.to(spec.device),
            center=True,
            length=length,
        )

    def _check_inputs(self, mixture: torch.Tensor, conditions: torch.Tensor) -> torch.Tensor:
        if mixture.ndim != 3:
            raise LASSInputError(
                f"mixture must be (batch, channels, time), got shape {tuple(mixture.shape)}."
            )
        if mixture.shape[-1] < 2:
            raise LASSInputError("mixture must have at least 2 samples (its std is taken).")
        if conditions is None:
            raise LASSInputError(
                f"TUSS needs prompts: conditions must be (batch, n_prompts) indices into "
                f"{self.vocabulary}."
            )
        conditions = torch.as_tensor(conditions, device=mixture.device)
        if conditions.ndim == 1:
            conditions = conditions[None].expand(mixture.shape[0], -1)
        if (
            conditions.ndim != 2
            or conditions.shape[0] != mixture.shape[0]
            or conditions.shape[1] < 1
            or conditions.is_floating_point()
        ):
            raise LASSInputError(
                f"conditions must be long (batch={mixture.shape[0]}, n_prompts >= 1) prompt "
                f"indices, got {conditions.dtype} of shape {tuple(conditions.shape)}."
            )
        if conditions.min() < 0 or conditions.max() >= len(self.vocabulary):
            raise LASSInputError(
                f"prompt indices must be in 0..{len(self.vocabulary) - 1} ({self.vocabulary}), "
                f"got {conditions.tolist()}."
            )
        return conditions.long()

    # ------------------------------------------------------------------ serialization
    def get_model_args(self) -> dict:
        """Every setting as plain values (the preset name is kept for information)."""
        return dict(
            preset=self.preset,
            prompts=list(self.vocabulary),
            sample_rate=int(self.sample_rate),
            in_channels=int(self.in_channels),
            n_fft=self.n_fft,
            hop_length=self.hop_length,
            emb_dim=self.emb_dim,
            cross_prompt=dict(self.cross_prompt_conf),
            extraction=dict(self.extraction_conf),
            eps=self.eps,
        )


__all__ = ["BAND_SPLIT_RATES", "PRESETS", "RELEASED_PROMPTS", "TUSS", "band_widths"]
