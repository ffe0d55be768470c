"""AudioSlots: blind separation as set prediction (Reddy, Wisdom, Greff, Hershey, Kipf, 2023).

The mixture's log-magnitude spectrogram is encoded by a Transformer; a set of K slot vectors,
started from learned values, reads it by attention (Transformer decoder layers without any
positional information on the slots, or Slot Attention); a *spatial broadcast* decoder copies
each slot to every time-frequency position, appends a Fourier encoding of (time, frequency),
and a shared MLP predicts the source's magnitude there (direct prediction, no mask). Waveforms
come back through the inverse STFT with the mixture's phase.

Nothing after the slots' initialisation depends on their order, so permuting the initial
slots permutes the outputs: training matches slots to references with the Hungarian
algorithm (:func:`asteroid_lass.losses.slots_objective`).

There is no official code. The paper fixes the architecture's kind (Transformer encoder,
spatial broadcast decoder, Hungarian-matched spectrogram loss, mixture phase, short chunks
stitched for long audio) but not its sizes; every size here is an argument whose default is
explained in :class:`AudioSlots`.

The network takes at most ``chunk_seconds`` (its declared ``max_input_seconds``). Longer audio
is stitched by the package's windowed inference (:mod:`asteroid_lass.inference`), as for every
blind model: windows of at most one chunk, each window's outputs put in the order of the
tracks so far (:mod:`asteroid_lass.alignment`), then a sin^2 cross-fade.
"""

import math
from typing import Dict, Optional

import torch
import torch.nn.functional as F
from torch import nn

from .base import Separator
from ..audio import STFT
from .layers import FourierFeatures, SlotAttention

SLOT_UPDATES = ("transformer", "slot_attention")
SLOT_INITS = ("queries", "gaussian")
# Floors of the mixture's RMS (silent input) and of its magnitude before the log.
SCALE_FLOOR = 1e-8
LOG_FLOOR = 1e-3
PHASE_FLOOR = 1e-8


def _sinusoidal_positions(n_positions: int, dim: int, device, dtype) -> torch.Tensor:
    """The Transformer's sinusoidal position table, (n_positions, dim)."""
    position = torch.arange(n_positions, device=device, dtype=torch.float32)[:, None]
    rates = torch.exp(
        torch.arange(0, dim, 2, device=device, dtype=torch.float32) * (-math.log(1e4) / dim)
    )
    table = torch.zeros(n_positions, dim, device=device)
    table[:, 0::2] = torch.sin(position * rates)
    table[:, 1::2] = torch.cos(position * rates[: dim // 2])
    return table.to(dtype)


class SpatialBroadcastDecoder(nn.Module):
    """Decode each slot independently into a non-negative magnitude spectrogram.

    The slot is broadcast to every (frame, bin), concatenated with a Fourier encoding of the
    position, and a shared MLP predicts one magnitude per audio channel. The first layer is
    applied to the slot and to the position separately and summed, which equals a linear
    layer on their concatenation without building the (K x T x F x (D + P)) input.

    Args:
        slot_dim: Width of a slot.
        width: Hidden width of the MLP.
        depth: Hidden layers of the MLP (>= 1).
        n_fourier_bands: Octaves of the positional encoding per coordinate.
        out_channels: Audio channels (one magnitude each).
        max_positions: Without gradients, decode at most this many (slot, frame, bin) rows at
            once, to bound memory; with gradients everything is decoded at once (autograd
            keeps every activation anyway).
        mixture_channels: If > 0, the MLP also sees this many mixture features at each
            (frame, bin) (``mixture`` in :meth:`forward`), projected and summed like the
            position; 0: slot and position only (the paper's decoder).
        frame_channels: If > 0, the MLP also sees this many features of each frame
            (``frames`` in :meth:`forward`, e.g. the encoder's output for that frame), projected
            and broadcast over the bins; 0: none (the paper's decoder).

    Shape:
        - slots: (batch, n_slots, slot_dim)
        - output: (batch, n_slots, out_channels, n_freq, n_frames), before the softplus.
    """

    def __init__(
        self,
        slot_dim: int,
        width: int,
        depth: int,
        n_fourier_bands: int,
        out_channels: int,
        max_positions: int = 2**15,
        mixture_channels: int = 0,
        frame_channels: int = 0,
    ):
        super().__init__()
        if int(depth) < 1:
            raise ValueError(f"decoder_depth must be an int >= 1, got {depth}.")
        self.max_positions = int(max_positions)
        self.fourier = FourierFeatures(2, n_fourier_bands)
        self.slot_in = nn.Linear(slot_dim, width)
        self.position_in = nn.Linear(self.fourier.out_dim, width, bias=False)
        self.mixture_in = (
            nn.Linear(int(mixture_channels), width, bias=False) if mixture_channels else None
        )
        self.frame_in = (
            nn.Linear(int(frame_channels), width, bias=False) if frame_channels else None
        )
        self.hidden = nn.ModuleList(nn.Linear(width, width) for _ in range(int(depth) - 1))
        self.out = nn.Linear(width, out_channels)

    def positions(self, n_frames: int, n_freq: int, frame_span: int, device) -> torch.Tensor:
        """Fourier-encoded (time, frequency) grid, (n_frames, n_freq, P).

        Time is ``2 t / (frame_span - 1) - 1``: a chunk of ``frame_span`` frames spans
        [-1, 1] whatever the input's length, so a shorter input sees the same grid's start.
        Frequency spans [-1, 1] over the bins.
        """
        time = torch.arange(n_frames, device=device, dtype=torch.float32)
        time = 2 * time / max(frame_span - 1, 1) - 1
        freq = torch.linspace(-1, 1, n_freq, device=device)
        grid = torch.stack(torch.meshgrid(time, freq, indexing="ij"), dim=-1)
        return self.fourier(grid)

    def forward(
        self,
        slots: torch.Tensor,
        n_frames: int,
        n_freq: int,
        frame_span: int,
        mixture: Optional[torch.Tensor] = None,
        frames: Optional[torch.Tensor] = None,
    ):
        """Decode; ``mixture``: (batch, n_frames, n_freq, mixture_channels) features and
        ``frames``: (batch, n_frames, frame_channels) features, each needed exactly when the
        decoder was built with those channels."""
        batch, n_slots, _ = slots.shape
        if (self.mixture_in is None) != (mixture is None):
            raise ValueError("mixture features are needed exactly when mixture_channels > 0.")
        if (self.frame_in is None) != (frames is None):
            raise ValueError("frame features are needed exactly when frame_channels > 0.")
        position = self.position_in(self.positions(n_frames, n_freq, frame_span, slots.device))
        if mixture is not None:
            position = position + self.mixture_in(mixture)[:, None]  # (B, 1, T, F, W)
        if frames is not None:
            position = position + self.frame_in(frames)[:, None, :, None, :]
        slot = self.slot_in(slots)[:, :, None, None]  # (B, K, 1, 1, W)
        if torch.is_grad_enabled():
            step = n_frames
        else:
            step = max(1, self.max_positions // max(batch * n_slots * n_freq, 1))
        chunks = []
        for start in range(0, n_frames, step):
            # In place: the broadcast activations are the model's largest tensors.
            h = torch.relu_(slot + position[..., start : start + step, :, :].to(slot.dtype))
            for layer in self.hidden:
                h = torch.relu_(layer(h))
            chunks.append(self.out(h))  # (B, K, t, F, C)
        return torch.cat(chunks, dim=2).permute(0, 1, 4, 3, 2)


class AudioSlots(Separator):
    """AudioSlots: a slot-centric generative model for blind separation.

    Defaults are sized for the CPU and for LibriMix; none of them is stated by the paper.

    Args:
        sample_rate: 8000: Asteroid's LibriMix recipes default to the 8 kHz ``min`` version,
            and the decoder's cost grows with the number of bins; 16 kHz LibriMix works with
            ``n_fft=512, hop_length=128`` (same 32 ms window, 8 ms hop).
        in_channels: Audio channels (LibriMix is mono). Channels share the slots; the decoder
            predicts one magnitude per channel.
        n_slots: 2, the speakers of Libri2Mix. More slots than sources is allowed: the
            objective trains the spare slots towards silence.
        n_fft: 256 (32 ms at 8 kHz), a usual speech-separation window.
        hop_length: 64 (8 ms, 75 % overlap): with the mixture's phase reused, a dense hop
            lets overlap-add smooth the inconsistencies of predicted magnitudes.
        chunk_seconds: 1.0. The paper separates short chunks and stitches them; a slot must
            describe a whole chunk of its source in one vector, so chunks are kept short.
            This is the model's ``max_input_seconds``: train on crops of at most this length;
            longer inputs are separated in windows of at most one chunk by the package's
            inference (see :meth:`forward`).
        chunk_overlap: 0.25: the fraction of a window shared with the next when
            :meth:`forward` is given a longer input without gradients (e.g. validation on
            longer mixtures); at most 0.5. The package's inference (``separate``,
            ``separate_file``, the CLI) takes its own ``overlap`` (default 0.25).
        d_model: 256, width of the tokens and slots.
        n_heads: 4 attention heads.
        encoder_layers: 4 Transformer layers over the mixture's frames.
        slot_layers: 3 Transformer decoder layers (slot self-attention + cross-attention to
            the frames), or 3 Slot Attention iterations.
        slot_update: ``"transformer"`` (the paper's main encoder) or ``"slot_attention"``
            (the alternative it tried).
        slot_init: ``"queries"``: K learned vectors (DETR-style: deterministic, distinct);
            ``"gaussian"``: Slot Attention's shared learned Gaussian, sampled anew in training
            and from a generator seeded with ``eval_seed`` in evaluation, so that inference is
            deterministic and the slots still differ (the mean alone would give K identical
            slots, hence K identical outputs). Only ``gaussian`` lets ``n_slots`` change after
            training (``from_pretrained(path, n_slots=3)``).
        ff_dim: 512, feed-forward width of the Transformer layers (2 x d_model).
        decoder_width: 128, hidden width of the broadcast MLP. The broadcast holds
            K x frames x bins x width activations and dominates the cost: with the defaults
            (4.6 M parameters), 10 s of audio takes about 2 CPU-seconds over two threads.
        decoder_depth: 3 hidden layers.
        n_fourier_bands: 7 octaves per coordinate: the finest period is 1/32 of the chunk
            (about 4 frames at the defaults) and 1/32 of the band (4 bins).
        dropout: 0.0 (dropout would also make training outputs depend on the slots' order
            through the random masks).
        eval_seed: Seed of the evaluation noise for ``slot_init="gaussian"``.
        decoder_max_positions: See :class:`SpatialBroadcastDecoder`: 2**15 rows of
            ``decoder_width`` floats are 16 MB per activation at inference.
        decoder_sees_mixture: False (the paper): each slot alone is decoded into a magnitude
            spectrogram, so one vector must redraw a whole chunk of its source. True (beyond
            the paper): at each (frame, bin) the decoder also sees the mixture there, its
            normalised log-magnitude and the encoder's output for that frame (what the frame
            holds, in the context of the chunk), and predicts a mask in [0, 1] on the
            mixture's magnitude (sigmoid), so a slot only has to say *which* source it is.
            Decoding stays per slot and permutation-equivariant. Measured in the librimix
            recipe's README.

    Shape:
        - mixture: (batch, in_channels, time)
        - output: (batch, n_slots, in_channels, time)
    """

    condition_kind = "none"

    def __init__(
        self,
        sample_rate: float = 8000,
        in_channels: int = 1,
        n_slots: int = 2,
        n_fft: int = 256,
        hop_length: int = 64,
        chunk_seconds: float = 1.0,
        chunk_overlap: float = 0.25,
        d_model: int = 256,
        n_heads: int = 4,
        encoder_layers: int = 4,
        slot_layers: int = 3,
        slot_update: str = "transformer",
        slot_init: str = "queries",
        ff_dim: int = 512,
        decoder_width: int = 128,
        decoder_depth: int = 3,
        n_fourier_bands: int = 7,
        dropout: float = 0.0,
        eval_seed: int = 0,
        decoder_max_positions: int = 2**15,
        decoder_sees_mixture: bool = False,
    ):
        super().__init__(sample_rate=sample_rate, in_channels=in_channels)
        if slot_update not in SLOT_UPDATES:
            raise ValueError(f"slot_update must be one of {SLOT_UPDATES}, got {slot_update!r}.")
        if slot_init not in SLOT_INITS:
            raise ValueError(f"slot_init must be one of {SLOT_INITS}, got {slot_init!r}.")
        if int(n_slots) < 1:
            raise ValueError(f"n_slots must be a positive int, got {n_slots}.")
        if int(d_model) % int(n_heads) != 0:
            raise ValueError(f"d_model={d_model} must be a multiple of n_heads={n_heads}.")
        if not 0 < float(chunk_overlap) <= 0.5:
            raise ValueError(
                f"chunk_overlap must be a fraction in (0, 0.5] (the overlap aligns the outputs "
                f"of consecutive windows), got {chunk_overlap}."
            )
        self.n_slots = int(n_slots)
        self.n_src = self.n_slots  # the contract: how many outputs a blind model writes
        self.n_fft, self.hop_length = int(n_fft), int(hop_length)
        self.chunk_seconds, self.chunk_overlap = float(chunk_seconds), float(chunk_overlap)
        self.chunk_samples = int(round(self.chunk_seconds * float(sample_rate)))
        if self.chunk_samples < self.n_fft:
            raise ValueError(
                f"chunk_seconds={chunk_seconds} gives {self.chunk_samples} samples, fewer than "
                f"n_fft={n_fft}."
            )
        # The contract's longest input: exactly one chunk of samples.
        self.max_input_seconds = self.chunk_samples / float(sample_rate)
        self.d_model, self.n_heads, self.ff_dim = int(d_model), int(n_heads), int(ff_dim)
        self.encoder_layers, self.slot_layers = int(encoder_layers), int(slot_layers)
        self.slot_update, self.slot_init = slot_update, slot_init
        self.decoder_width, self.decoder_depth = int(decoder_width), int(decoder_depth)
        self.n_fourier_bands, self.dropout = int(n_fourier_bands), float(dropout)
        self.eval_seed = int(eval_seed)
        self.decoder_sees_mixture = bool(decoder_sees_mixture)

        self.stft = STFT(self.n_fft, self.hop_length)
        n_freq = self.stft.n_freq
        self.frame_span = self.stft.n_frames(self.chunk_samples)

        self.token_in = nn.Linear(in_channels * n_freq, self.d_model)
        self.encoder = nn.TransformerEncoder(
            nn.TransformerEncoderLayer(
                self.d_model,
                self.n_heads,
                self.ff_dim,
                self.dropout,
                batch_first=True,
                norm_first=True,
            ),
            self.encoder_layers,
            norm=nn.LayerNorm(self.d_model),
            enable_nested_tensor=False,
        )
        if slot_init == "queries":
            self.slot_queries = nn.Parameter(torch.randn(self.n_slots, self.d_model))
        else:
            self.slot_mu = nn.Parameter(torch.randn(self.d_model) * self.d_model**-0.5)
            self.slot_log_sigma = nn.Parameter(torch.zeros(self.d_model))
        if slot_update == "transformer":
            # No positional encoding on the slots: self-attention among them is
            # permutation-equivariant, cross-attention treats each slot alike.
            self.slot_reader = nn.TransformerDecoder(
                nn.TransformerDecoderLayer(
                    self.d_model,
                    self.n_heads,
                    self.ff_dim,
                    self.dropout,
                    batch_first=True,
                    norm_first=True,
                ),
                self.slot_layers,
                norm=nn.LayerNorm(self.d_model),
            )
        else:
            self.slot_reader = SlotAttention(self.d_model, self.slot_layers, self.ff_dim)
        self.decoder = SpatialBroadcastDecoder(
            self.d_model,
            self.decoder_width,
            self.decoder_depth,
            self.n_fourier_bands,
            in_channels,
            decoder_max_positions,
            mixture_channels=in_channels if self.decoder_sees_mixture else 0,
            frame_channels=self.d_model if self.decoder_sees_mixture else 0,
        )

    # ----------------------------------------------------------------- slots
    def initial_slots(
        self, batch_size: int, generator: Optional[torch.Generator] = None
    ) -> torch.Tensor:
        """The slots' starting values, (batch, n_slots, d_model).

        Args:
            batch_size: Number of mixtures.
            generator: For ``slot_init="gaussian"`` in training mode: the noise's generator
                (default: torch's global one). In evaluation the noise comes from a generator
                seeded with ``eval_seed``.
        """
        if self.slot_init == "queries":
            return self.slot_queries[None].expand(batch_size, -1, -1)
        shape = (batch_size, self.n_slots, self.d_model)
        device = self.slot_mu.device
        if self.training:
            noise = torch.randn(shape, generator=generator, device=device)
        else:
            fixed = torch.Generator().manual_seed(self.eval_seed)
            noise = torch.randn(shape[1:], generator=fixed).to(device).expand(shape)
        return self.slot_mu + self.slot_log_sigma.exp() * noise.to(self.slot_mu.dtype)

    def encode_frames(self, magnitude: torch.Tensor) -> torch.Tensor:
        """The Transformer encoder's output per frame of a (level-normalised) magnitude.

        Args:
            magnitude: (batch, in_channels, n_freq, n_frames)

        Returns:
            torch.Tensor: (batch, n_frames, d_model)
        """
        batch, n_chan, n_freq, n_frames = magnitude.shape
        features = torch.log(magnitude + LOG_FLOOR)
        tokens = self.token_in(features.permute(0, 3, 1, 2).reshape(batch, n_frames, -1))
        tokens = tokens + _sinusoidal_positions(n_frames, self.d_model, tokens.device, tokens.dtype)
        return self.encoder(tokens)

    def read_slots(
        self, memory: torch.Tensor, slot_init: Optional[torch.Tensor] = None
    ) -> torch.Tensor:
        """Read K slots from the encoded frames.

        Args:
            memory: (batch, n_frames, d_model), from :meth:`encode_frames`.
            slot_init: (n_slots, d_model) or (batch, n_slots, d_model) starting slots, or
                None for :meth:`initial_slots`. Permuting it permutes every output.

        Returns:
            torch.Tensor: (batch, n_slots, d_model)
        """
        batch = memory.shape[0]
        if slot_init is None:
            slots = self.initial_slots(batch)
        else:
            slots = torch.as_tensor(slot_init, device=memory.device, dtype=memory.dtype)
            if slots.ndim == 2:
                slots = slots[None]
            if (
                slots.ndim != 3
                or slots.shape[-1] != self.d_model
                or slots.shape[0]
                not in (
                    1,
                    batch,
                )
            ):
                raise ValueError(
                    f"slot_init must have shape (n_slots, {self.d_model}) or ({batch}, n_slots, "
                    f"{self.d_model}), got {tuple(slots.shape)}."
                )
            slots = slots.expand(batch, -1, -1)
        return self.slot_reader(slots, memory)

    # ----------------------------------------------------------------- separation
    def separate_chunk(
        self, mixture: torch.Tensor, slot_init: Optional[torch.Tensor] = None
    ) -> Dict[str, torch.Tensor]:
        """Separate mixtures of at most ``chunk_seconds`` in one pass.

        The mixture's magnitude is divided by its level (RMS times the window's L2 norm) before
        encoding and the predicted magnitudes multiplied back, so the network sees one level
        whatever the input's.

        Returns:
            dict: ``estimates`` (batch, K, channels, time); ``magnitudes`` (batch, K,
            channels, n_freq, n_frames), the predicted magnitudes; ``mixture_magnitude``
            (batch, channels, n_freq, n_frames); ``slots`` (batch, K, d_model).
        """
        n_samples = mixture.shape[-1]
        # White noise at the mixture's RMS has this mean squared STFT magnitude: normalised
        # magnitudes are O(1) and the decoder's softplus starts at a sensible level.
        rms = mixture.square().mean(dim=(1, 2), keepdim=True).sqrt()
        scale = (rms * self.stft.window.square().sum().sqrt()).clamp_min(SCALE_FLOOR)
        spec = self.stft(mixture)
        magnitude = (spec.real.square() + spec.imag.square()).sqrt()
        normalised = magnitude / scale[..., None]
        memory = self.encode_frames(normalised)
        slots = self.read_slots(memory, slot_init)
        n_freq, n_frames = spec.shape[-2:]
        if self.decoder_sees_mixture:
            features = torch.log(normalised + LOG_FLOOR).permute(0, 3, 2, 1)  # (B, T, F, C)
            raw = self.decoder(slots, n_frames, n_freq, self.frame_span, features, memory)
            magnitudes = torch.sigmoid(raw.float()) * magnitude[:, None]
        else:
            raw = self.decoder(slots, n_frames, n_freq, self.frame_span)
            magnitudes = F.softplus(raw.float()) * scale[:, None, :, :, None]
        unit_phase = spec / magnitude.clamp_min(PHASE_FLOOR)
        estimates = self.stft.inverse(magnitudes * unit_phase[:, None], n_samples)
        return dict(
            estimates=estimates,
            magnitudes=magnitudes,
            mixture_magnitude=magnitude,
            slots=slots,
            stft=self.stft,
        )

    def forward(
        self,
        mixture: torch.Tensor,
        conditions: Optional[torch.Tensor] = None,
        slot_init: Optional[torch.Tensor] = None,
    ) -> torch.Tensor:
        """Separate every source of the mixture (blind: no conditions).

        Inputs longer than ``chunk_seconds`` need no gradients: they go through the package's
        windowed inference (:func:`asteroid_lass.inference.separate_in_windows`, windows of
        one chunk overlapping by ``chunk_overlap``, outputs aligned from window to window by
        :mod:`asteroid_lass.alignment` and cross-faded). With gradients they are an error: train on crops of at most
        ``chunk_seconds``.

        Args:
            mixture: (batch, in_channels, time)
            conditions: Must be None.
            slot_init: Optional starting slots, see :meth:`read_slots` (inputs of at most
                one chunk only).

        Returns:
            torch.Tensor: (batch, n_slots, in_channels, time), in no particular order.
        """
        if conditions is not None:
            raise ValueError("AudioSlots is blind: conditions must be None.")
        if mixture.ndim != 3 or mixture.shape[1] != self.in_channels:
            raise ValueError(
                f"mixture must have shape (batch, {self.in_channels}, time), got "
                f"{tuple(mixture.shape)}."
            )
        n_samples = mixture.shape[-1]
        if n_samples <= self.chunk_samples:
            return self.separate_chunk(mixture, slot_init)["estimates"]
        if torch.is_grad_enabled():
            raise ValueError(
                f"AudioSlots takes at most chunk_seconds={self.chunk_seconds} "
                f"({self.chunk_samples} samples) with gradients, got {n_samples} samples: train "
                "on crops of at most chunk_seconds (longer inputs are separated in windows "
                "under torch.no_grad, as in validation)."
            )
        if slot_init is not None:
            raise ValueError(
                f"slot_init applies to inputs of at most one chunk ({self.chunk_samples} "
                f"samples), got {n_samples} samples."
            )
        # One stitching mechanism for every blind model: the package's windowed inference
        # (imported here because inference imports the models).
        from ..inference import separate_in_windows

        return separate_in_windows(self, mixture, overlap=self.chunk_overlap)

    def training_outputs(
        self,
        mixture: torch.Tensor,
        conditions: Optional[torch.Tensor] = None,
        slot_init: Optional[torch.Tensor] = None,
    ) -> Dict[str, torch.Tensor]:
        """What :func:`asteroid_lass.losses.slots_objective` needs.

        Crops of at most ``chunk_seconds`` give the predicted magnitudes and the STFT (see
        :meth:`separate_chunk`). A longer input (validation on longer fixed mixtures, without
        gradients) is separated in windows by :meth:`forward` and only its ``estimates`` are
        returned (the objective then takes their STFT).
        """
        if mixture.shape[-1] <= self.chunk_samples:
            if conditions is not None:
                raise ValueError("AudioSlots is blind: conditions must be None.")
            return self.separate_chunk(mixture, slot_init)
        return dict(estimates=self(mixture, conditions, slot_init), stft=self.stft)

    def get_model_args(self) -> dict:
        """Arguments to rebuild the model (plain Python values only)."""
        return dict(
            sample_rate=float(self.sample_rate),
            in_channels=int(self.in_channels),
            n_slots=self.n_slots,
            n_fft=self.n_fft,
            hop_length=self.hop_length,
            chunk_seconds=self.chunk_seconds,
            chunk_overlap=self.chunk_overlap,
            d_model=self.d_model,
            n_heads=self.n_heads,
            encoder_layers=self.encoder_layers,
            slot_layers=self.slot_layers,
            slot_update=self.slot_update,
            slot_init=self.slot_init,
            ff_dim=self.ff_dim,
            decoder_width=self.decoder_width,
            decoder_depth=self.decoder_depth,
            n_fourier_bands=self.n_fourier_bands,
            dropout=self.dropout,
            eval_seed=self.eval_seed,
            decoder_max_positions=self.decoder.max_positions,
            decoder_sees_mixture=self.decoder_sees_mixture,
        )
