"""AudioSep's query-conditioned ResUNet separator, on ``torch.stft``.

The network follows AudioSep's ``ResUNet30`` layer for layer (see
``shared/reference/audiosep.md`` in the project's steering repo): a BatchNorm over frequency,
a 1x1 pre-convolution, six residual encoder blocks, a residual bottleneck, six decoder blocks
and a 1x1 output convolution giving a bounded magnitude mask and a phase rotation. Every
BatchNorm inside a residual unit or decoder block is followed by a bias-only FiLM offset
computed from the query embedding.
"""

from typing import Dict, List, Optional, Sequence, Tuple, Union

import torch
import torch.nn.functional as F
from torch import nn

from .base import EmbeddingSeparator

BN_MOMENTUM = 0.01
LEAKY_SLOPE = 0.01
# AudioSep floors the *squared* magnitude at this value before taking the phase.
POWER_FLOOR = 1e-10
# torchlibrosa's ``magphase`` floors the mask magnitude at this value.
MASK_FLOOR = 1e-10

#: Encoder channels by preset name. ``base`` is exactly AudioSep's. ``compact`` and ``lean``
#: have few channels where the maps are large (the full-resolution levels take most of a CPU
#: step, in memory traffic more than in arithmetic): a ``compact`` training step costs about
#: half of ``small``'s, a ``lean`` one (the LASS recipe's) about 0.7 of ``compact``'s, so a run
#: of the same minutes takes more steps (``benchmarks/training_step.py``).
SIZE_PRESETS: Dict[str, Tuple[int, ...]] = {
    "base": (32, 64, 128, 256, 384, 384),
    "small": (16, 32, 64, 128, 192, 192),
    "compact": (8, 16, 32, 64, 128, 128),
    "lean": (4, 16, 32, 64, 128, 128),
    "tiny": (8, 16, 32, 64, 64, 64),
}
# Poolings of the six encoder blocks as (time, frequency).
ENCODER_POOLING = ((2, 2), (2, 2), (2, 2), (2, 2), (2, 2), (1, 2))
TIME_MULTIPLE = 32  # product of the time poolings
FREQ_MULTIPLE = 64  # product of the frequency poolings
MASK_COMPONENTS = 3  # magnitude mask logit, phase real, phase imaginary


def _init_layer(layer: nn.Module) -> None:
    nn.init.xavier_uniform_(layer.weight)
    if getattr(layer, "bias", None) is not None:
        nn.init.zeros_(layer.bias)


def _film_linear(condition_dim: int, num_features: int) -> nn.Linear:
    layer = nn.Linear(condition_dim, num_features)
    _init_layer(layer)
    return layer


def _film(layer: nn.Linear, query_embedding: torch.Tensor) -> torch.Tensor:
    """Per-channel FiLM offset, broadcast over time and frequency: (batch, channels, 1, 1)."""
    return layer(query_embedding)[:, :, None, None]


def _norm_film_act(
    bn: nn.BatchNorm2d, offset: torch.Tensor, x: torch.Tensor, overwrite: bool
) -> torch.Tensor:
    """``leaky_relu(bn(x) + offset)``.

    In evaluation without gradients the BatchNorm's running statistics and the FiLM offset
    make one per-channel multiply-add, so the full-resolution maps are read and written once
    instead of three times (a quarter of the CPU time of ``base`` went to these passes), and
    no temporary of their size is made. Otherwise (training, or gradients wanted) the layers
    run one by one, as in AudioSep's code.

    Args:
        bn: The BatchNorm layer.
        offset: FiLM offset, (batch, channels, 1, 1).
        x: (batch, channels, time, freq).
        overwrite: The caller does not need ``x`` any more: in evaluation mode without
            gradients, write the result into it.
    """
    if bn.training or torch.is_grad_enabled():
        return F.leaky_relu_(bn(x) + offset, LEAKY_SLOPE)
    scale = bn.weight * torch.rsqrt(bn.running_var + bn.eps)
    shift = (bn.bias - bn.running_mean * scale)[:, None, None] + offset
    scale = scale[:, None, None]
    if overwrite and x.dtype == shift.dtype:
        return F.leaky_relu_(torch.addcmul(shift, x, scale, out=x), LEAKY_SLOPE)
    return F.leaky_relu_(torch.addcmul(shift, x, scale), LEAKY_SLOPE)


class ResidualUnit(nn.Module):
    """Pre-activation residual unit with a FiLM offset after each BatchNorm.

    BN -> +beta1 -> LeakyReLU -> conv3x3 -> BN -> +beta2 -> LeakyReLU -> conv3x3, plus the input
    (or a 1x1 projection of it when the channel count changes).

    Args:
        in_channels: Input feature maps.
        out_channels: Output feature maps.
        condition_dim: Size of the query embedding.
    """

    def __init__(
        self, in_channels: int, out_channels: int, condition_dim: int, momentum: float = BN_MOMENTUM
    ):
        super().__init__()
        self.bn1 = nn.BatchNorm2d(in_channels, momentum=momentum)
        self.film1 = _film_linear(condition_dim, in_channels)
        self.conv1 = nn.Conv2d(in_channels, out_channels, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(out_channels, momentum=momentum)
        self.film2 = _film_linear(condition_dim, out_channels)
        self.conv2 = nn.Conv2d(out_channels, out_channels, 3, padding=1, bias=False)
        _init_layer(self.conv1)
        _init_layer(self.conv2)
        self.shortcut: Optional[nn.Conv2d] = None
        if in_channels != out_channels:
            self.shortcut = nn.Conv2d(in_channels, out_channels, 1)
            _init_layer(self.shortcut)

    def forward(self, inputs: List[torch.Tensor], query_embedding: torch.Tensor) -> torch.Tensor:
        """Args:
            inputs: Feature maps joined along channels into the unit's input (one map, or a
                decoder's upsampled maps and its skip), each (batch, channels, time, freq).
                The list is emptied and the maps may be overwritten: in evaluation without
                gradients each map is freed or reused as soon as it has been used, which takes
                about 40 % off the peak memory of a long window.
            query_embedding: (batch, condition_dim)

        Returns:
            torch.Tensor: (batch, out_channels, time, freq)
        """
        x = inputs[0] if len(inputs) == 1 else torch.cat(inputs, dim=1)
        inputs.clear()
        identity = x if self.shortcut is None else self.shortcut(x)
        overwrite = self.shortcut is not None  # else the input is the identity path
        h = _norm_film_act(self.bn1, _film(self.film1, query_embedding), x, overwrite)
        del x
        h = self.conv1(h)
        h = self.conv2(_norm_film_act(self.bn2, _film(self.film2, query_embedding), h, True))
        if torch.is_grad_enabled() or h.dtype != identity.dtype:
            return identity + h
        return h.add_(identity)


class EncoderBlock(nn.Module):
    """A residual unit followed by average pooling; returns (pooled, skip).

    Its input is passed in a list it empties (see :class:`ResidualUnit`).
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        condition_dim: int,
        pooling: Tuple[int, int],
        momentum: float = BN_MOMENTUM,
    ):
        super().__init__()
        self.unit = ResidualUnit(in_channels, out_channels, condition_dim, momentum)
        self.pooling = pooling

    def forward(
        self, inputs: List[torch.Tensor], query_embedding: torch.Tensor
    ) -> Tuple[torch.Tensor, torch.Tensor]:
        """Args:
        inputs: ``[x]``, emptied (see :class:`ResidualUnit`).
        query_embedding: (batch, condition_dim)
        """
        skip = self.unit(inputs, query_embedding)
        return F.avg_pool2d(skip, kernel_size=self.pooling), skip


class DecoderBlock(nn.Module):
    """BN -> +beta -> LeakyReLU -> transposed conv (upsampling), concat skip, residual unit.

    Its inputs are passed in a list it empties (see :class:`ResidualUnit`).
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        condition_dim: int,
        upsampling: Tuple[int, int],
        momentum: float = BN_MOMENTUM,
    ):
        super().__init__()
        self.bn = nn.BatchNorm2d(in_channels, momentum=momentum)
        self.film = _film_linear(condition_dim, in_channels)
        self.upsample = nn.ConvTranspose2d(
            in_channels, out_channels, kernel_size=upsampling, stride=upsampling, bias=False
        )
        _init_layer(self.upsample)
        self.unit = ResidualUnit(2 * out_channels, out_channels, condition_dim, momentum)

    def forward(self, inputs: List[torch.Tensor], query_embedding: torch.Tensor) -> torch.Tensor:
        """Args:
        inputs: ``[x, skip]``, emptied (see :class:`ResidualUnit`).
        query_embedding: (batch, condition_dim)
        """
        x, skip = inputs
        inputs.clear()
        h = self.upsample(_norm_film_act(self.bn, _film(self.film, query_embedding), x, True))
        parts = [h, skip]
        del x, h, skip
        return self.unit(parts, query_embedding)


class LASSResUNet(EmbeddingSeparator):
    """AudioSep's ResUNet separator, conditioned on a query embedding.

    Args:
        sample_rate: Operating sample rate of the model.
        n_fft: STFT size; ``n_fft // 2`` must be a multiple of 64.
        hop_length: STFT hop.
        channels: Six encoder channel counts, or a preset name from :data:`SIZE_PRESETS`
            (``"base"`` is AudioSep's).
        condition_dim: Size of the query embedding (512 for CLAP, 384 for the sentence encoder).
        in_channels: Audio channels of the mixture (1: mono). A multi-channel model predicts a
            mask per channel.
        query_encoder: Spec of the query encoder that produced the embeddings the model was
            trained on (see :func:`asteroid_lass.queries.build_query_encoder`). ``None`` means the
            model only accepts precomputed embeddings.
        bn_momentum: BatchNorm momentum. AudioSep's 0.01 suits millions of steps; short runs
            want a larger value, or the running statistics lag the weights in eval mode.

    Shape:
        - mixture: (batch, in_channels, time)
        - conditions: (batch, n_queries, condition_dim)
        - output: (batch, n_queries, in_channels, time)
    """

    def __init__(
        self,
        sample_rate: float = 32000,
        n_fft: int = 2048,
        hop_length: int = 320,
        channels: Union[str, Sequence[int]] = "base",
        condition_dim: int = 512,
        in_channels: int = 1,
        query_encoder: Optional[dict] = None,
        bn_momentum: float = BN_MOMENTUM,
    ):
        super().__init__(
            sample_rate=sample_rate,
            in_channels=in_channels,
            condition_dim=condition_dim,
            query_encoder=query_encoder,
        )
        if isinstance(channels, str):
            if channels not in SIZE_PRESETS:
                raise ValueError(
                    f"channels={channels!r} is not a preset; expected one of "
                    f"{sorted(SIZE_PRESETS)} or a list of 6 ints."
                )
            channels = SIZE_PRESETS[channels]
        channels = tuple(int(c) for c in channels)
        if len(channels) != len(ENCODER_POOLING):
            raise ValueError(f"channels must list 6 encoder channel counts, got {channels}.")
        if (n_fft // 2) % FREQ_MULTIPLE != 0:
            raise ValueError(
                f"n_fft={n_fft}: n_fft // 2 must be a multiple of {FREQ_MULTIPLE} "
                "(six frequency poolings), e.g. 512, 1024 or 2048."
            )
        self.n_fft = int(n_fft)
        self.hop_length = int(hop_length)
        self.min_input_samples = self.n_fft  # the STFT's reflect padding needs n_fft // 2 + 1
        self.channels = channels
        # Not persistent: the window follows from n_fft, so model files do not carry it.
        self.register_buffer(
            "window", torch.hann_window(self.n_fft, periodic=True), persistent=False
        )

        self.bn_momentum = float(bn_momentum)
        self.bn0 = nn.BatchNorm2d(self.n_fft // 2 + 1, momentum=self.bn_momentum)
        self.pre_conv = nn.Conv2d(in_channels, channels[0], kernel_size=1)
        _init_layer(self.pre_conv)
        encoder_in = (channels[0],) + channels[:-1]
        self.encoder_blocks = nn.ModuleList(
            EncoderBlock(c_in, c_out, condition_dim, pooling, self.bn_momentum)
            for c_in, c_out, pooling in zip(encoder_in, channels, ENCODER_POOLING)
        )
        self.bottleneck = ResidualUnit(channels[-1], channels[-1], condition_dim, self.bn_momentum)
        decoder_out = channels[::-1]
        decoder_in = (channels[-1],) + decoder_out[:-1]
        self.decoder_blocks = nn.ModuleList(
            DecoderBlock(c_in, c_out, condition_dim, pooling, self.bn_momentum)
            for c_in, c_out, pooling in zip(decoder_in, decoder_out, ENCODER_POOLING[::-1])
        )
        self.after_conv = nn.Conv2d(channels[0], in_channels * MASK_COMPONENTS, kernel_size=1)
        _init_layer(self.after_conv)

    def train(self, mode: bool = True) -> "LASSResUNet":
        """Switch mode, keeping the convolution weights channels-last in both: oneDNN then does
        not reorder every weight at every call, evaluation runs on channels-last activations
        (see :meth:`forward`), and a training step of the ``compact`` model takes
        about a fifth less time than with contiguous weights (the activations follow the
        weights' layout from the first convolution on). Lightning restores a module's mode
        after validation without calling this method, so the recipe trained channels-last
        before this was the rule too."""
        super().train(mode)
        return self.to(memory_format=torch.channels_last)

    def stft(self, wav: torch.Tensor) -> torch.Tensor:
        """Complex STFT of (batch, channels, time) as (batch, channels, frames, freq)."""
        batch, n_chan, n_samples = wav.shape
        spec = torch.stft(
            wav.reshape(batch * n_chan, n_samples),
            n_fft=self.n_fft,
            hop_length=self.hop_length,
            window=self.window,
            center=True,
            pad_mode="reflect",
            return_complex=True,
        )
        return spec.transpose(-1, -2).reshape(batch, n_chan, spec.shape[-1], spec.shape[-2])

    def istft(self, spec: torch.Tensor, length: int) -> torch.Tensor:
        """Inverse of :meth:`stft`: (batch, channels, frames, freq) -> (batch, channels, time)."""
        batch, n_chan, n_frames, n_freq = spec.shape
        wav = torch.istft(
            spec.reshape(batch * n_chan, n_frames, n_freq).transpose(-1, -2),
            n_fft=self.n_fft,
            hop_length=self.hop_length,
            window=self.window,
            center=True,
            length=length,
        )
        return wav.reshape(batch, n_chan, length)

    def forward(self, mixture: torch.Tensor, conditions: torch.Tensor) -> torch.Tensor:
        """Extract one source per query embedding, computing the mixture's STFT once.

        In evaluation without gradients (``torch.no_grad`` or ``torch.inference_mode``) the
        network runs leaner, at float32 rounding distance (about 1e-6 relative) from the
        layer-by-layer path that follows AudioSep's code (used in training and whenever
        gradients are enabled): channels-last activations and weights (oneDNN's NHWC
        kernels), each BatchNorm and FiLM offset fused into one multiply-add, and every map
        freed or reused as soon as it has been used. ``benchmarks/inference_speed.py``
        measures the effect.

        Args:
            mixture: (batch, in_channels, time)
            conditions: Query embeddings, (batch, n_queries, condition_dim).

        Returns:
            torch.Tensor: (batch, n_queries, in_channels, time)
        """
        query_embeddings = conditions
        channels_last = not self.training and not torch.is_grad_enabled()
        batch, n_chan, n_samples = mixture.shape
        if query_embeddings.ndim == 2:
            query_embeddings = query_embeddings.expand(batch, -1, -1)
        n_queries = query_embeddings.shape[1]
        spec = self.stft(mixture)
        power = spec.real.square() + spec.imag.square()
        magnitude = power.clamp_min(POWER_FLOOR).sqrt()
        unit_phase = (spec / magnitude).repeat_interleave(n_queries, dim=0)
        magnitude = magnitude.repeat_interleave(n_queries, dim=0)

        # float32 for the mask and the complex arithmetic, also under bf16/fp16 autocast
        mask_logits = self.estimate_mask(
            magnitude, query_embeddings.reshape(batch * n_queries, -1), channels_last
        ).float()
        mask_magnitude = torch.sigmoid(mask_logits[:, :, 0])
        rotation = torch.complex(torch.tanh(mask_logits[:, :, 1]), torch.tanh(mask_logits[:, :, 2]))
        rotation = rotation / rotation.abs().clamp_min(MASK_FLOOR)
        estimate = torch.relu(magnitude * mask_magnitude) * unit_phase * rotation
        wav = self.istft(estimate, length=n_samples)
        return wav.reshape(batch, n_queries, n_chan, n_samples)

    def estimate_mask(
        self, magnitude: torch.Tensor, query_embedding: torch.Tensor, channels_last: bool = False
    ) -> torch.Tensor:
        """Run the U-Net on a magnitude spectrogram.

        Args:
            magnitude: (batch, in_channels, frames, n_fft // 2 + 1)
            query_embedding: (batch, condition_dim)
            channels_last: Run the convolutions on channels-last activations (see
                :meth:`forward`).

        Returns:
            torch.Tensor: Mask logits, (batch, in_channels, 3, frames, n_fft // 2 + 1): the
            magnitude mask logit, then the real and imaginary parts of the phase rotation.
        """
        batch, n_chan, n_frames, n_freq = magnitude.shape
        x = self.bn0(magnitude.transpose(1, 3)).transpose(1, 3)
        x = F.pad(x, (0, 0, 0, -n_frames % TIME_MULTIPLE))
        x = x[..., : n_freq - 1]  # drop the top bin so frequency divides by 64
        if channels_last:
            # Converted before the 1x1 pre-convolution, where it is cheap (in_channels maps).
            x = x.contiguous(memory_format=torch.channels_last)
        x = self.pre_conv(x)
        # Blocks take their inputs in lists they empty, and nothing here keeps another
        # reference, so that each map is freed as soon as it has been used.
        skips = []
        for block in self.encoder_blocks:
            inputs = [x]
            del x
            x, skip = block(inputs, query_embedding)
            skips.append(skip)
            del skip
        inputs = [x]
        del x
        x = self.bottleneck(inputs, query_embedding)
        for block in self.decoder_blocks:
            inputs = [x, skips.pop()]
            del x
            x = block(inputs, query_embedding)
        x = self.after_conv(x)
        x = F.pad(x, (0, 1))[:, :, :n_frames]
        return x.reshape(batch, n_chan, MASK_COMPONENTS, n_frames, n_freq)

    def get_model_args(self) -> dict:
        """Arguments to rebuild the model (plain Python values only)."""
        return dict(
            sample_rate=float(self.sample_rate),
            n_fft=self.n_fft,
            hop_length=self.hop_length,
            channels=list(self.channels),
            condition_dim=self.condition_dim,
            in_channels=int(self.in_channels),
            query_encoder=self.query_encoder_spec,
            bn_momentum=self.bn_momentum,
        )
