"""Meta-TasNet: label-conditioned multi-stage TasNet whose masking network is generated.

Samuel, Ganeshan & Naradowsky, "Meta-learning Extractors for Music Source Separation",
ICASSP 2020; the layer layout follows the authors' MIT-licensed code
(pfnet-research/meta-tasnet), written anew here with its faults fixed (see
:class:`MetaTasNet`).

Each *stage* is an encoder -> mask -> decoder TasNet at its own sample rate (8, 16 and 32 kHz
by default). Kernel and stride grow with the rate, so all stages have the same frame rate and
a later stage appends the previous stage's masked latents to its own as extra mask input. In
every stage a learned label embedding is turned, per conditioned layer, into that layer's
convolution kernels and group-norm parameters (or, in the ``generated_weights=False`` ablation,
each label has its own ordinary weights).
"""

import math
from typing import Dict, Iterable, List, Optional, Sequence, Tuple

import torch
import torch.nn.functional as F
import torchaudio
from torch import nn

from ..errors import LASSInputError
from .base import Separator
from .layers import (
    LabelGeneratedConv1d,
    LabelGeneratedGroupNorm,
    LabelIndependentConv1d,
    LabelIndependentGroupNorm,
)

MUSDB_LABELS = ("drums", "bass", "other", "vocals")
NORM_GROUPS = 8  # group-norm groups per label in the masking network
NORM_EPS = 1e-8
LOG_FLOOR = 1e-8  # added to the STFT power before log10
STD_FLOOR = 1e-8  # smallest input std divided by (silent inputs)

#: Hyper-parameters by preset. ``paper`` is the official default (45,531,260 trainable
#: parameters with the four MUSDB labels; 34,673,054 with ``generated_weights=False``).
#: Values are those of the first stage; a stage at ``m`` times the first rate has ``m`` times
#: the latent size, encoder/decoder kernel and stride, and STFT size and hop.
PRESETS: Dict[str, dict] = {
    "paper": dict(
        stage_rates=[8000, 16000, 32000],
        n_filters=440,
        kernel_size=20,
        stride=20,
        n_kernels=3,
        spec_chan=256,
        n_fft=1024,
        hop_length=256,
        bn_chan=160,
        hid_chan=160,
        n_blocks=6,
        n_repeats=3,
        conv_kernel_size=3,
        embed_dim=8,
        generator_dim=5,
        residual_bias=False,
    ),
    "small": dict(
        stage_rates=[8000, 16000, 32000],
        n_filters=128,
        kernel_size=20,
        stride=20,
        n_kernels=3,
        spec_chan=64,
        n_fft=512,
        hop_length=128,
        bn_chan=64,
        hid_chan=64,
        n_blocks=4,
        n_repeats=2,
        conv_kernel_size=3,
        embed_dim=8,
        generator_dim=5,
        residual_bias=False,
    ),
    "tiny": dict(
        stage_rates=[8000, 16000],
        n_filters=32,
        kernel_size=20,
        stride=20,
        n_kernels=3,
        spec_chan=16,
        n_fft=256,
        hop_length=64,
        bn_chan=16,
        hid_chan=16,
        n_blocks=2,
        n_repeats=1,
        conv_kernel_size=3,
        embed_dim=8,
        generator_dim=5,
        residual_bias=False,
    ),
}


# ----------------------------------------------------------------------------- per-label layers
def _label_conv(generated, n_labels, embed_dim, generator_dim, *args, **kwargs) -> nn.Module:
    if generated:
        return LabelGeneratedConv1d(embed_dim, generator_dim, *args, **kwargs)
    return LabelIndependentConv1d(n_labels, *args, **kwargs)


def _label_norm(generated, n_labels, embed_dim, generator_dim, num_channels) -> nn.Module:
    if generated:
        return LabelGeneratedGroupNorm(
            embed_dim, generator_dim, NORM_GROUPS, num_channels, eps=NORM_EPS
        )
    return LabelIndependentGroupNorm(n_labels, NORM_GROUPS, num_channels, eps=NORM_EPS)


# ----------------------------------------------------------------------------- encoder/decoder
class SpectrogramBranch(nn.Module):
    """Normalised log-power STFT, then a learned 1x1 convolution, resized to the latent frames.

    The statistics ``mean`` and ``std`` (per frequency) are buffers: they start at 0 and 1 and
    are set from data by :meth:`MetaTasNet.compute_spectrogram_stats` (the official training
    computes them once before training). A learned per-frequency affine follows.

    Args:
        n_fft: STFT size (Hann window, centred with reflection padding).
        hop_length: STFT hop.
        out_chan: Output channels of the 1x1 convolution.

    Shape:
        - signal: (batch, 1, time)
        - output: (batch, out_chan, n_frames)
    """

    def __init__(self, n_fft: int, hop_length: int, out_chan: int):
        super().__init__()
        self.n_fft, self.hop_length = n_fft, hop_length
        n_freq = n_fft // 2 + 1
        self.register_buffer("window", torch.hann_window(n_fft), persistent=False)
        self.register_buffer("mean", torch.zeros(1, n_freq, 1))
        self.register_buffer("std", torch.ones(1, n_freq, 1))
        self.affine_bias = nn.Parameter(torch.zeros(1, n_freq, 1))
        self.affine_scale = nn.Parameter(torch.ones(1, n_freq, 1))
        self.mel_transform = nn.Conv1d(n_freq, out_chan, kernel_size=1)

    def log_power(self, signal: torch.Tensor) -> torch.Tensor:
        """log10 STFT power, (batch, 1, time) -> (batch, n_freq, stft_frames)."""
        spec = torch.stft(
            signal.reshape(-1, signal.shape[-1]),
            n_fft=self.n_fft,
            hop_length=self.hop_length,
            window=self.window,
            center=True,
            pad_mode="reflect",
            normalized=False,
            onesided=True,
            return_complex=True,
        )
        # real^2 + imag^2 rather than abs()^2: abs has no gradient at zero.
        return torch.log10(spec.real.square() + spec.imag.square() + LOG_FLOOR)

    def forward(self, signal: torch.Tensor, n_frames: int) -> torch.Tensor:
        spec = (self.log_power(signal) - self.mean) / self.std
        spec = self.mel_transform(spec * self.affine_scale + self.affine_bias)
        return F.interpolate(spec, size=n_frames, mode="linear", align_corners=True)


class MultiKernelEncoder(nn.Module):
    """Learned 1-D convolutions with kernels ``k, 2k, 4k, ...`` (``n_filters / 4`` channels
    each, one stride) and a spectrogram branch, fused by two 1x1 convolutions.

    Args:
        n_filters: Latent size N.
        kernel_size: Smallest kernel size.
        stride: Stride of every convolution (the hop between latent frames).
        n_kernels: Number of kernel sizes.
        spec_chan: Channels of the spectrogram branch.
        n_fft: STFT size of the spectrogram branch.
        hop_length: STFT hop of the spectrogram branch.

    Shape:
        - signal: (batch, 1, time)
        - output: (batch, n_filters, time // stride)
    """

    def __init__(self, n_filters, kernel_size, stride, n_kernels, spec_chan, n_fft, hop_length):
        super().__init__()
        width = n_filters // 4
        self.filters = nn.ModuleList()
        for index in range(n_kernels):
            kernel = kernel_size * 2**index
            self.filters.append(
                nn.Conv1d(
                    1, width, kernel, stride=stride, padding=(kernel - stride) // 2, bias=False
                )
            )
        self.spectrogram = SpectrogramBranch(n_fft, hop_length, spec_chan)
        self.bottleneck = nn.Sequential(
            nn.Conv1d(width * n_kernels + spec_chan, n_filters, 1, bias=False),
            nn.ReLU(),
            nn.Conv1d(n_filters, n_filters, 1, bias=False),
        )

    def forward(self, signal: torch.Tensor) -> torch.Tensor:
        # Channels interleaved as (filter channel, kernel) like the official code, so the
        # first 1x1 convolution's weights keep their layout.
        learned = torch.stack([conv(signal) for conv in self.filters], dim=2)
        learned = F.relu(learned.flatten(1, 2))
        spec = self.spectrogram(signal, learned.shape[-1])
        return self.bottleneck(torch.cat([learned, spec], dim=1))


class MultiKernelDecoder(nn.Module):
    """A 1x1 transposed convolution and ReLU, split into widths ``N/2, N/4, N/8, ...`` that go
    through transposed convolutions of kernels ``k, 2k, 4k, ...``, summed.

    Shape:
        - latent: (batch, n_filters, frames)
        - output: (batch, 1, frames * stride)
    """

    def __init__(self, n_filters: int, kernel_size: int, stride: int, n_kernels: int):
        super().__init__()
        self.widths = [n_filters // 2 ** (index + 1) for index in range(n_kernels)]
        self.bottleneck = nn.Sequential(
            nn.ConvTranspose1d(n_filters, sum(self.widths), 1, bias=False), nn.ReLU()
        )
        self.filters = nn.ModuleList()
        for index, width in enumerate(self.widths):
            kernel = kernel_size * 2**index
            self.filters.append(
                nn.ConvTranspose1d(
                    width, 1, kernel, stride=stride, padding=(kernel - stride) // 2, bias=False
                )
            )

    def forward(self, latent: torch.Tensor) -> torch.Tensor:
        parts = self.bottleneck(latent).split(self.widths, dim=1)
        return sum(conv(part) for conv, part in zip(self.filters, parts))


# ----------------------------------------------------------------------------- masking TCN
class LabelTCNBlock(nn.Module):
    """Conv-TasNet block run per label: 1x1 conv, PReLU, norm, depthwise dilated conv, PReLU,
    norm, then 1x1 residual and skip outputs (PReLU before norm, as in the official code).

    Shape:
        - labels: (n_labels, embed_dim) or None
        - x: (batch, n_labels, bn_chan, frames)
        - output: residual and skip, both (batch, n_labels, bn_chan, frames)
    """

    def __init__(self, conv, norm, bn_chan, hid_chan, kernel_size, dilation, residual_bias):
        super().__init__()
        self.norm_1 = norm(hid_chan)
        self.prelu_1 = nn.PReLU()
        self.conv1d = conv(bn_chan, hid_chan, 1)
        self.norm_2 = norm(hid_chan)
        self.prelu_2 = nn.PReLU()
        padding = dilation * (kernel_size - 1) // 2
        self.dconv1d = conv(
            hid_chan, hid_chan, kernel_size, dilation=dilation, groups=hid_chan, padding=padding
        )
        self.res_out = conv(hid_chan, bn_chan, 1, bias=residual_bias)
        self.skip_out = conv(hid_chan, bn_chan, 1, bias=residual_bias)

    def forward(self, labels, x):
        x = self.norm_1(labels, self.prelu_1(self.conv1d(labels, x)))
        x = self.norm_2(labels, self.prelu_2(self.dconv1d(labels, x)))
        return self.res_out(labels, x), self.skip_out(labels, x)


class LabelMaskNet(nn.Module):
    """Conv-TasNet masking TCN run for every label at once; masks are a softmax over labels.

    Args:
        generated: Generate the weights from the label embedding (else independent weights).
        n_labels: Vocabulary size.
        embed_dim: Label embedding size (E_1).
        generator_dim: Generator bottleneck size (E_2).
        in_chan: Input channels (the latent, plus the previous stage's latent if any).
        out_chan: Latent size N (mask channels).
        bn_chan, hid_chan: Bottleneck and hidden channels of the TCN.
        n_blocks: Blocks per repeat (dilations 1 .. 2**(n_blocks - 1)).
        n_repeats: Repeats of the dilation cycle.
        conv_kernel_size: Kernel of the depthwise convolutions.
        residual_bias: Biases on the residual and skip convolutions.

    Shape:
        - labels: (n_labels, embed_dim) or None
        - x: (batch, n_labels, in_chan, frames)
        - output: (batch, n_labels, out_chan, frames), summing to one over labels
    """

    def __init__(
        self,
        generated,
        n_labels,
        embed_dim,
        generator_dim,
        in_chan,
        out_chan,
        bn_chan,
        hid_chan,
        n_blocks,
        n_repeats,
        conv_kernel_size,
        residual_bias,
    ):
        super().__init__()
        head = (generated, n_labels, embed_dim, generator_dim)

        def conv(*args, **kwargs):
            return _label_conv(*head, *args, **kwargs)

        def norm(num_channels):
            return _label_norm(*head, num_channels)

        self.norm_1 = norm(in_chan)
        self.prelu_1 = nn.PReLU()
        self.in_conv = conv(in_chan, bn_chan, 1)
        self.norm_2 = norm(bn_chan)
        self.prelu_2 = nn.PReLU()
        self.tcn = nn.ModuleList(
            LabelTCNBlock(conv, norm, bn_chan, hid_chan, conv_kernel_size, 2**block, residual_bias)
            for _ in range(n_repeats)
            for block in range(n_blocks)
        )
        self.norm_3 = norm(bn_chan)
        self.prelu_3 = nn.PReLU()
        self.mask_output = conv(bn_chan, out_chan, 1)
        self.norm_4 = norm(out_chan)
        self.prelu_4 = nn.PReLU()

    def forward(self, labels, x):
        x = self.in_conv(labels, self.norm_1(labels, self.prelu_1(x)))
        x = self.norm_2(labels, self.prelu_2(x))
        skip_sum = 0.0
        for block in self.tcn:
            residual, skip = block(labels, x)
            x = x + residual
            skip_sum = skip_sum + skip
        mask = self.mask_output(labels, self.norm_3(labels, self.prelu_3(skip_sum)))
        mask = self.norm_4(labels, self.prelu_4(mask))
        return torch.softmax(mask, dim=1)


class MetaTasNetStage(nn.Module):
    """One encoder -> per-label mask -> decoder TasNet at one sample rate.

    Shape:
        - signal: (batch, 1, time)
        - previous: (batch, n_labels, previous_n_filters, frames) or None
        - output: ``forward`` returns the mixture latent (batch, n_filters, frames) and the
          masked latents (batch, n_labels, n_filters, frames); decode them with
          ``self.decoder``.
    """

    def __init__(self, generated, n_labels, n_filters, previous_n_filters, hp: dict):
        super().__init__()
        self.n_labels = n_labels
        self.encoder = MultiKernelEncoder(
            n_filters,
            hp["kernel_size"],
            hp["stride"],
            hp["n_kernels"],
            hp["spec_chan"],
            hp["n_fft"],
            hp["hop_length"],
        )
        self.decoder = MultiKernelDecoder(
            n_filters, hp["kernel_size"], hp["stride"], hp["n_kernels"]
        )
        self.mask = LabelMaskNet(
            generated,
            n_labels,
            hp["embed_dim"],
            hp["generator_dim"],
            n_filters + previous_n_filters,
            n_filters,
            hp["bn_chan"],
            hp["hid_chan"],
            hp["n_blocks"],
            hp["n_repeats"],
            hp["conv_kernel_size"],
            hp["residual_bias"],
        )
        self.label_embedding = nn.Embedding(n_labels, hp["embed_dim"]) if generated else None

    def forward(self, signal: torch.Tensor, previous: Optional[torch.Tensor] = None):
        latent = self.encoder(signal)
        mask_input = latent[:, None].expand(-1, self.n_labels, -1, -1)
        if previous is not None:
            if previous.shape[-1] != latent.shape[-1]:
                raise ValueError(
                    f"stage inputs disagree in frames: {previous.shape[-1]} from the previous "
                    f"stage, {latent.shape[-1]} here; a stage at m times the first rate needs "
                    "m times as many samples."
                )
            mask_input = torch.cat([mask_input, previous], dim=2)
        labels = self.label_embedding.weight if self.label_embedding is not None else None
        masks = self.mask(labels, mask_input)
        return latent, latent[:, None] * masks


# ----------------------------------------------------------------------------- the model
class MetaTasNet(Separator):
    """Meta-TasNet (Samuel et al., ICASSP 2020): one network extracts any label of its
    vocabulary, with the masking network's weights generated from a label embedding.

    Multi-stage TasNet (8, 16 and 32 kHz by default, see :data:`PRESETS`). Each stage encodes
    its input with learned 1-D convolutions of three kernel sizes (``n_filters / 4`` channels
    each) and a normalised log-power spectrogram branch, masks the latent per label with a
    Conv-TasNet TCN whose convolution kernels and group-norm scales and shifts are produced,
    per layer, by two linear maps ``embed_dim -> generator_dim -> n_params`` from the stage's
    label embedding, and decodes with transposed convolutions of widths N/2, N/4, N/8. A later
    stage appends the previous stage's masked latents to its latent as mask input.

    The masks are a softmax across ALL labels of the vocabulary: the outputs are coupled, so a
    request for a subset of labels computes every label and returns those asked (in the order
    asked); the result equals the matching rows of a full request. With a single label the
    mask is all ones.

    Differences from the official code (its faults fixed):

    - ``forward`` takes the mixture at ``sample_rate`` (any length) and returns estimates at
      the same rate and exactly the same length: the mixture is resampled to each stage's
      rate (``torchaudio.functional.resample``) and zero-padded to a whole number of frames;
      the last stage's estimate is resampled back and trimmed.
    - Like the official evaluation, each stage's input is divided by its own standard
      deviation (the training data were normalised the same way, so the network expects
      unit-level input); the estimate is multiplied back by the last stage's std so that it
      keeps the mixture's scale. Training is scale-blind (SI-SNR), so an estimate's level is
      only approximately the stem's (the official evaluation fits least-squares gains against
      the mixture afterwards; that needs the whole track and is left to the caller).
      ``normalize_input=False`` turns the division off.
    - No chunking (``n_chunks``), any vocabulary (not four hard-coded instruments), spectrogram
      statistics initialised to mean 0 / std 1 (set them from data with
      :meth:`compute_spectrogram_stats`), ``torch.stft(return_complex=True)``.
    - The training-time dropout on the mask input (official default 0) is not implemented.

    Multichannel input is separated channel by channel by the mono network (each channel a
    batch item); ``in_channels`` (default 1) is only the channel count the model expects.

    Presets (``preset=...``; any hyper-parameter given explicitly overrides the preset):

    - ``"paper"``: the official default; 45,531,260 trainable parameters with four labels, and
      34,673,054 with ``generated_weights=False``.
    - ``"small"``: three stages, N=128, B=H=64, 2 x 4 blocks, 64 spectrogram channels
      (3,961,628 parameters; for CPU experiments).
    - ``"tiny"``: two stages (8 and 16 kHz), N=32, B=H=16, 1 x 2 blocks (80,136 parameters);
      for tests.

    Args:
        labels: The vocabulary, in output-index order (default MUSDB's four stems in the
            official order drums, bass, other, vocals).
        preset: Name of a preset in :data:`PRESETS`.
        sample_rate: Rate of the input and output audio (default 44100, MUSDB's).
        in_channels: Channels of the input (each separated independently).
        generated_weights: Generate the masking network's weights from label embeddings
            (Meta-TasNet). False gives the official ``independent_params`` ablation: separate
            ordinary weights per label and no label embedding.
        normalize_input: Divide each stage's input by its standard deviation (see above).
        stage_rates: Sample rate of every stage; each must be an integer multiple of the first.
        n_filters: Latent size N of the first stage.
        kernel_size: Smallest encoder/decoder kernel (L) of the first stage.
        stride: Encoder/decoder stride (W) of the first stage.
        n_kernels: Number of encoder/decoder kernel sizes (``filters``).
        spec_chan: Output channels of the spectrogram branch (``num_mels``).
        n_fft: STFT size of the first stage's spectrogram branch.
        hop_length: STFT hop of the first stage's spectrogram branch.
        bn_chan: TCN bottleneck channels (B).
        hid_chan: TCN hidden channels (H).
        n_blocks: TCN blocks per repeat (``layers``).
        n_repeats: TCN repeats (``stack``).
        conv_kernel_size: TCN depthwise kernel (``kernel``).
        embed_dim: Label embedding size (E_1).
        generator_dim: Weight-generator bottleneck size (E_2).
        residual_bias: Biases on the TCN residual and skip convolutions.
    """

    condition_kind = "label"

    def __init__(
        self,
        labels: Sequence[str] = MUSDB_LABELS,
        preset: str = "paper",
        sample_rate: float = 44100,
        in_channels: int = 1,
        generated_weights: bool = True,
        normalize_input: bool = True,
        stage_rates: Optional[Sequence[int]] = None,
        n_filters: Optional[int] = None,
        kernel_size: Optional[int] = None,
        stride: Optional[int] = None,
        n_kernels: Optional[int] = None,
        spec_chan: Optional[int] = None,
        n_fft: Optional[int] = None,
        hop_length: Optional[int] = None,
        bn_chan: Optional[int] = None,
        hid_chan: Optional[int] = None,
        n_blocks: Optional[int] = None,
        n_repeats: Optional[int] = None,
        conv_kernel_size: Optional[int] = None,
        embed_dim: Optional[int] = None,
        generator_dim: Optional[int] = None,
        residual_bias: Optional[bool] = None,
    ):
        if preset not in PRESETS:
            raise ValueError(f"preset must be one of {sorted(PRESETS)}, got {preset!r}.")
        if isinstance(labels, str):
            raise ValueError(f"labels must be a list of names, got the string {labels!r}.")
        if int(in_channels) < 1:
            raise ValueError(f"in_channels must be a positive int, got {in_channels}.")
        super().__init__(sample_rate=sample_rate, in_channels=int(in_channels), vocabulary=labels)
        given = dict(
            stage_rates=stage_rates,
            n_filters=n_filters,
            kernel_size=kernel_size,
            stride=stride,
            n_kernels=n_kernels,
            spec_chan=spec_chan,
            n_fft=n_fft,
            hop_length=hop_length,
            bn_chan=bn_chan,
            hid_chan=hid_chan,
            n_blocks=n_blocks,
            n_repeats=n_repeats,
            conv_kernel_size=conv_kernel_size,
            embed_dim=embed_dim,
            generator_dim=generator_dim,
            residual_bias=residual_bias,
        )
        hp = {k: (PRESETS[preset][k] if v is None else v) for k, v in given.items()}
        hp["stage_rates"] = [int(rate) for rate in hp["stage_rates"]]
        hp["residual_bias"] = bool(hp["residual_bias"])
        for key, value in hp.items():
            if key not in ("stage_rates", "residual_bias"):
                hp[key] = int(value)
        _check_hyperparameters(hp)
        self.preset = preset
        self.generated_weights = bool(generated_weights)
        self.normalize_input = bool(normalize_input)
        self.hparams = hp
        self.stage_rates: List[int] = hp["stage_rates"]
        self.multiples = [rate // self.stage_rates[0] for rate in self.stage_rates]
        self.strides = [hp["stride"] * m for m in self.multiples]

        self.stages = nn.ModuleList()
        previous = 0
        for m in self.multiples:
            stage_hp = dict(hp)
            for key in ("kernel_size", "stride", "n_fft", "hop_length"):
                stage_hp[key] = hp[key] * m
            n_filters_m = hp["n_filters"] * m
            self.stages.append(
                MetaTasNetStage(
                    self.generated_weights, len(self.vocabulary), n_filters_m, previous, stage_hp
                )
            )
            previous = n_filters_m

    @property
    def n_labels(self) -> int:
        return len(self.vocabulary)

    # ----------------------------------------------------------------- stage inputs
    def min_frames(self) -> int:
        """Fewest latent frames a forward pass uses: each STFT needs more samples than half
        its size (reflection padding)."""
        first = self.hparams["n_fft"] // 2 + 1
        return max(1, math.ceil(first / self.hparams["stride"]))

    def n_frames_for(self, n_samples: int) -> int:
        """Latent frames used for ``n_samples`` input samples at ``sample_rate``."""
        first_stage = math.ceil(n_samples * self.stage_rates[0] / self.sample_rate)
        return max(math.ceil(first_stage / self.hparams["stride"]), self.min_frames())

    def to_stages(self, audio: torch.Tensor, n_frames: int) -> List[torch.Tensor]:
        """Resample ``audio`` (..., time) at ``sample_rate`` to every stage's rate, zero-padded
        (or trimmed) to ``n_frames`` whole frames: stage ``i`` gets ``n_frames * stride_i``
        samples."""
        out = []
        for rate, stride in zip(self.stage_rates, self.strides):
            resampled = _resample(audio, self.sample_rate, rate)
            out.append(_fit_length(resampled, n_frames * stride))
        return out

    def prepare_stage_inputs(
        self, mixture: torch.Tensor
    ) -> Tuple[List[torch.Tensor], List[torch.Tensor]]:
        """The per-stage network inputs of a mixture, as the official evaluation makes them.

        Args:
            mixture: (batch, channels, time) at ``sample_rate``.

        Returns:
            ``(inputs, scales)``: per stage, the input (batch * channels, 1, time_i) at the
            stage's rate, divided by its scale, and the scale (batch * channels, 1, 1): the
            std of the resampled channel (ones with ``normalize_input=False``).
        """
        flat = mixture.reshape(-1, 1, mixture.shape[-1])
        n_frames = self.n_frames_for(mixture.shape[-1])
        inputs, scales = [], []
        for rate, stride in zip(self.stage_rates, self.strides):
            resampled = _resample(flat, self.sample_rate, rate)
            if self.normalize_input and resampled.shape[-1] > 1:
                scale = resampled.std(dim=-1, keepdim=True).clamp_min(STD_FLOOR)
            else:
                scale = torch.ones_like(resampled[..., :1])
            inputs.append(_fit_length(resampled, n_frames * stride) / scale)
            scales.append(scale)
        return inputs, scales

    # ----------------------------------------------------------------- the network
    def forward_stages(
        self,
        stage_inputs: Sequence[torch.Tensor],
        label_ids: Optional[torch.Tensor] = None,
        decode: str = "all",
    ) -> Dict[str, list]:
        """Run the stages on given per-stage inputs (as the official ``inference`` does).

        Args:
            stage_inputs: Per stage, a (batch, 1, time_i) mono signal at the stage's rate; a
                stage at ``m`` times the first rate must give as many frames, i.e.
                ``time_i // stride_i`` must agree (``m * time_0`` samples do).
            label_ids: (batch, n_out) vocabulary indices to decode; None decodes every label
                in vocabulary order.
            decode: ``"all"`` decodes every stage, ``"last"`` only the last one.

        Returns:
            dict with, per stage (lists): ``"estimates"`` (batch, n_out, 1, frames *
            stride_i) (None for an undecoded stage), ``"masked_latents"`` (batch, n_labels,
            N_i, frames) for every label, and ``"mixture_latents"`` (batch, N_i, frames).
        """
        if len(stage_inputs) != len(self.stages):
            raise LASSInputError(
                f"stage_inputs: expected {len(self.stages)} stages, got {len(stage_inputs)}."
            )
        if decode not in ("all", "last"):
            raise ValueError(f"decode must be 'all' or 'last', got {decode!r}.")
        batch = stage_inputs[0].shape[0]
        for signal in stage_inputs:
            if signal.ndim != 3 or signal.shape[1] != 1 or signal.shape[0] != batch:
                raise LASSInputError(
                    f"stage_inputs: each must be (batch={batch}, 1, time), got "
                    f"{tuple(signal.shape)}."
                )
        if label_ids is not None:
            label_ids = self._check_label_ids(label_ids, batch)
        result = {"estimates": [], "masked_latents": [], "mixture_latents": []}
        previous = None
        for index, (stage, signal) in enumerate(zip(self.stages, stage_inputs)):
            latent, masked = stage(signal, previous)
            previous = masked
            result["mixture_latents"].append(latent)
            result["masked_latents"].append(masked)
            if decode == "last" and index < len(self.stages) - 1:
                result["estimates"].append(None)
                continue
            chosen = masked if label_ids is None else _select(masked, label_ids)
            decoded = stage.decoder(chosen.flatten(0, 1))
            result["estimates"].append(decoded.view(batch, chosen.shape[1], 1, -1))
        return result

    def forward(self, mixture: torch.Tensor, conditions: torch.Tensor) -> torch.Tensor:
        """Extract the labels ``conditions`` from ``mixture``.

        Args:
            mixture: (batch, in_channels, time) at ``sample_rate``.
            conditions: Long (batch, n_out) indices into :attr:`vocabulary`.

        Returns:
            torch.Tensor: (batch, n_out, in_channels, time) at ``sample_rate``.
        """
        return self._separate(mixture, conditions)["estimates"]

    def training_outputs(
        self, mixture: torch.Tensor, conditions: torch.Tensor
    ) -> Dict[str, object]:
        """What the ``"metatasnet"`` objective needs (see :mod:`asteroid_lass.losses`).

        Returns:
            dict with
            ``"estimates"`` (batch, n_out, channels, time) as :meth:`forward`;
            ``"stage_estimates"``: per stage (batch, n_out, channels, time_i) at the stage's
            rate, on the normalised scale of the stage's input;
            ``"stage_mixtures"``: per stage the (normalised) network input (batch, channels,
            time_i);
            ``"stage_reconstructions"``: per stage the decoded unmasked mixture latent
            (batch, channels, time_i);
            ``"stage_references"``: a function ``targets (batch, n, channels, time) -> list``
            that resamples references to every stage exactly as the mixture was (same padding
            and scale);
            ``"encode_stage"``: a function ``(stage index, (items, 1, time_i)) -> (items, N_i,
            frames)``, the stage's encoder, for the latent similarity terms.
        """
        out = self._separate(mixture, conditions, decode="all")
        batch, channels = mixture.shape[:2]
        scales, n_frames = out.pop("scales"), out.pop("n_frames")
        out["stage_estimates"] = [
            e.view(batch, channels, e.shape[1], -1).transpose(1, 2) for e in out["stage_estimates"]
        ]
        out["stage_mixtures"] = [x.view(batch, channels, -1) for x in out["stage_mixtures"]]
        out["stage_reconstructions"] = [
            stage.decoder(latent).view(batch, channels, -1)
            for stage, latent in zip(self.stages, out.pop("mixture_latents"))
        ]

        def stage_references(targets: torch.Tensor) -> List[torch.Tensor]:
            refs = []
            for scale, ref in zip(scales, self.to_stages(targets, n_frames)):
                refs.append(ref / scale.view(batch, 1, channels, 1))
            return refs

        out["stage_references"] = stage_references
        out["encode_stage"] = lambda index, signal: self.stages[index].encoder(signal)
        return out

    def _separate(self, mixture, conditions, decode="last") -> dict:
        if mixture.ndim != 3 or mixture.shape[1] != self.in_channels:
            raise LASSInputError(
                f"mixture must be (batch, {self.in_channels}, time), got {tuple(mixture.shape)}."
            )
        batch, channels, n_samples = mixture.shape
        label_ids = self._check_label_ids(conditions, batch)
        inputs, scales = self.prepare_stage_inputs(mixture)
        flat_ids = label_ids.repeat_interleave(channels, dim=0)
        stages = self.forward_stages(inputs, flat_ids, decode=decode)
        last = stages["estimates"][-1] * scales[-1][:, None]
        last = _fit_length(_resample(last, self.stage_rates[-1], self.sample_rate), n_samples)
        estimates = last.view(batch, channels, label_ids.shape[1], n_samples).transpose(1, 2)
        return {
            "estimates": estimates,
            "stage_estimates": stages["estimates"],
            "stage_mixtures": inputs,
            "mixture_latents": stages["mixture_latents"],
            "scales": scales,
            "n_frames": self.n_frames_for(n_samples),
        }

    def _check_label_ids(self, label_ids, batch: int) -> torch.Tensor:
        if not isinstance(label_ids, torch.Tensor) or label_ids.dtype not in (
            torch.int64,
            torch.int32,
        ):
            raise LASSInputError(
                "conditions must be a long tensor (batch, n_out) of label indices; use "
                "model.conditions_for(names, batch_size)."
            )
        if label_ids.ndim != 2 or label_ids.shape[0] != batch or label_ids.shape[1] == 0:
            raise LASSInputError(
                f"conditions must have shape (batch={batch}, n_out >= 1), got "
                f"{tuple(label_ids.shape)}."
            )
        if label_ids.min() < 0 or label_ids.max() >= self.n_labels:
            raise LASSInputError(
                f"conditions hold label indices outside 0..{self.n_labels - 1} "
                f"(vocabulary {self.vocabulary})."
            )
        return label_ids.long()

    # ----------------------------------------------------------------- statistics
    @torch.no_grad()
    def compute_spectrogram_stats(self, mixtures: Iterable[torch.Tensor]) -> None:
        """Set every stage's spectrogram mean and std (per frequency) from training mixtures,
        as the official training does before its first step.

        Args:
            mixtures: Iterable of (batch, channels, time) mixtures at ``sample_rate``, on the
                model's device, prepared as :meth:`forward` prepares them (resampled and
                normalised).
        """
        per_stage: List[List[torch.Tensor]] = [[] for _ in self.stages]
        for mixture in mixtures:
            inputs, _ = self.prepare_stage_inputs(mixture)
            for index, (stage, signal) in enumerate(zip(self.stages, inputs)):
                spec = stage.encoder.spectrogram.log_power(signal)
                per_stage[index].append(spec.transpose(0, 1).flatten(1))
        if not per_stage[0]:
            raise ValueError("compute_spectrogram_stats: mixtures is empty.")
        for stage, specs in zip(self.stages, per_stage):
            values = torch.cat(specs, dim=1)
            branch = stage.encoder.spectrogram
            branch.mean.copy_(values.mean(dim=1).view_as(branch.mean))
            branch.std.copy_(values.std(dim=1).clamp_min(STD_FLOOR).view_as(branch.std))

    # ----------------------------------------------------------------- (de)serialization
    def get_model_args(self) -> dict:
        return dict(
            labels=list(self.vocabulary),
            preset=self.preset,
            sample_rate=float(self.sample_rate),
            in_channels=int(self.in_channels),
            generated_weights=self.generated_weights,
            normalize_input=self.normalize_input,
            **{k: (list(v) if isinstance(v, list) else v) for k, v in self.hparams.items()},
        )


def _check_hyperparameters(hp: dict) -> None:
    rates = hp["stage_rates"]
    if not rates or any(rate <= 0 for rate in rates):
        raise ValueError(f"stage_rates must be a non-empty list of positive rates, got {rates}.")
    if any(rate % rates[0] for rate in rates):
        raise ValueError(f"stage_rates must be integer multiples of the first, got {rates}.")
    for key in ("n_filters", "kernel_size", "stride", "n_kernels", "spec_chan", "n_fft"):
        if hp[key] < 1:
            raise ValueError(f"{key} must be a positive int, got {hp[key]}.")
    for key in ("hop_length", "bn_chan", "hid_chan", "n_blocks", "n_repeats"):
        if hp[key] < 1:
            raise ValueError(f"{key} must be a positive int, got {hp[key]}.")
    if hp["embed_dim"] < 1 or hp["generator_dim"] < 1:
        raise ValueError("embed_dim and generator_dim must be positive ints.")
    if hp["n_filters"] % 2 ** max(hp["n_kernels"], 2):
        raise ValueError(
            f"n_filters must be divisible by 4 and by 2**n_kernels, got {hp['n_filters']}."
        )
    for key in ("n_filters", "bn_chan", "hid_chan"):
        if hp[key] % NORM_GROUPS:
            raise ValueError(f"{key} must be divisible by {NORM_GROUPS}, got {hp[key]}.")
    if (hp["kernel_size"] - hp["stride"]) % 2 or hp["kernel_size"] < hp["stride"]:
        raise ValueError(
            "kernel_size must be at least stride and differ from it by an even number, got "
            f"kernel_size={hp['kernel_size']}, stride={hp['stride']}."
        )
    if hp["conv_kernel_size"] % 2 == 0:
        raise ValueError(f"conv_kernel_size must be odd, got {hp['conv_kernel_size']}.")


def _resample(audio: torch.Tensor, orig_rate: float, new_rate: float) -> torch.Tensor:
    if orig_rate == new_rate:
        return audio
    if float(orig_rate).is_integer() and float(new_rate).is_integer():
        return torchaudio.functional.resample(audio, int(orig_rate), int(new_rate))
    return torchaudio.functional.resample(audio, orig_rate, new_rate)


def _fit_length(audio: torch.Tensor, length: int) -> torch.Tensor:
    """Zero-pad or trim the last axis to ``length``."""
    if audio.shape[-1] >= length:
        return audio[..., :length]
    return F.pad(audio, (0, length - audio.shape[-1]))


def _select(per_label: torch.Tensor, label_ids: torch.Tensor) -> torch.Tensor:
    """``per_label[b, label_ids[b]]`` for (batch, n_labels, ...) -> (batch, n_out, ...)."""
    index = label_ids.view(*label_ids.shape, *([1] * (per_label.ndim - 2)))
    return torch.gather(per_label, 1, index.expand(-1, -1, *per_label.shape[2:]))
