"""Separation of real recordings with any model of the package: any length and rate.

Audio is cut into overlapping windows (default 5 s, 10 % overlap; never longer than the
model's declared longest input, ``max_input_seconds``). Neighbouring windows are
blended with complementary raised-cosine fades, so the overlap-add weights sum to one, and
windows go through the model in batches. Files are read and written in blocks, so memory does
not grow with the file's length. Conditions (query embeddings, label or prompt indices) are
computed once per call. A blind model's outputs have no fixed order, so each window's outputs
are put in the order of the tracks so far (:mod:`asteroid_lass.alignment`) before they are
blended.
"""

import contextlib
import math
import os
import shutil
import tempfile
from dataclasses import dataclass
from typing import Callable, Iterator, List, Optional, Sequence

import numpy as np
import soundfile as sf
import torch

from .alignment import SourceTracker, aligned_order, interchangeable_outputs
from .audio import as_float_samples, raise_non_finite
from .audio import resample as resample_wav
from .errors import AudioFileError, LASSInputError, OutputExistsError, one_line, SeparationError
from .ranking import OutputPicker
from .utils import atomic_write, evaluation_mode, is_number

# Samples of context (at the file's rate) read around each window when resampling, so that
# the resampler's edge effects fall outside the part that is kept.
RESAMPLE_CONTEXT_SECONDS = 0.05


#: Default window length in seconds. Activation memory grows with the window: with 5 s the
#: command line stays under 1.5 GB with the ``base`` LASSResUNet at any file length
#: (``benchmarks/cli_memory.py``), at close to the speed of 10 s windows (the overlap is a
#: fraction of the window).
DEFAULT_WINDOW_SECONDS = 5.0

#: Default overlap between windows, as a fraction of the window. Every overlapping sample is
#: computed twice: 10 % costs 11 % more compute, 25 % costs 33 %. With the crossfade, the
#: default LASS model's output over 40 s matches a single full pass to 30-45 dB SNR and the
#: same SI-SDR (to 0.01 dB) with 10 % as with 25 %.
DEFAULT_OVERLAP = 0.1

#: Numeric precisions of inference (``precision=``, CLI ``--precision``).
PRECISIONS = ("fp32", "bf16")


@dataclass
class WindowPlan:
    """Where windows start and how they blend.

    Args:
        length: Signal length in samples.
        window: Window length in samples.
        overlap: Overlapping samples between neighbours (at most half a window).
    """

    length: int
    window: int
    overlap: int

    @classmethod
    def from_seconds(
        cls,
        length: int,
        sample_rate: int,
        window_seconds: float,
        overlap: float,
        max_window: Optional[int] = None,
    ) -> "WindowPlan":
        """Windows of ``window_seconds``, at most ``max_window`` samples if given."""
        check_window(window_seconds, overlap)
        window = max(1, int(round(window_seconds * sample_rate)))
        if max_window is not None:
            window = max(1, min(window, int(max_window)))
        if length <= window:
            return cls(length=length, window=length, overlap=0)
        return cls(length=length, window=window, overlap=int(round(overlap * window)))

    @property
    def hop(self) -> int:
        return self.window - self.overlap

    @property
    def n_windows(self) -> int:
        if self.length <= self.window:
            return 1
        return math.ceil((self.length - self.overlap) / self.hop)

    def bounds(self, index: int):
        start = index * self.hop
        return start, min(start + self.window, self.length)

    def fade(self) -> np.ndarray:
        """Fade-in ramp of ``overlap`` samples; its mirror is the fade-out, and they sum to one."""
        t = (np.arange(self.overlap) + 0.5) / max(self.overlap, 1)
        return np.sin(0.5 * np.pi * t) ** 2


def check_window(window, overlap) -> None:
    """Refuse a window that is not a positive finite number of seconds, or an overlap outside
    [0, 0.5], naming the argument."""
    if not is_number(window) or not (0 < window < math.inf):
        raise LASSInputError(
            f"window must be a positive, finite number of seconds, got {window!r}."
        )
    if not is_number(overlap) or not (0 <= overlap <= 0.5):
        raise LASSInputError(f"overlap must be a fraction in [0, 0.5], got {overlap!r}.")


def check_batch_size(batch_size) -> None:
    """Refuse a batch size that is not a whole number >= 1, naming the argument."""
    whole = is_number(batch_size) and math.isfinite(batch_size) and int(batch_size) == batch_size
    if not whole or batch_size < 1:
        raise LASSInputError(f"batch_size must be a whole number >= 1, got {batch_size!r}.")


class ChunkedSeparator:
    """Runs any separator of the package over long signals with bounded memory.

    Args:
        model: A :class:`~asteroid_lass.models.base.Separator`.
        query: What to separate, as :meth:`~asteroid_lass.models.base.Separator.separate`
            takes it (None for a blind model).
        negative: Embedding models only: texts of sounds to keep out of every estimate; each
            query embedding becomes normalize(e_query - 0.25 * sum(e_negative)) (see
            :func:`combine_negative` and the README for the measurement behind this choice).
        residual: Also return "everything else" (mixture minus the sum of the estimates).
        window: Window length in seconds, capped at the model's longest input
            (``model.max_input_seconds``, including the resampling context).
        overlap: Fraction of a window shared with the next one (0 to 0.5).
        batch_size: Windows per forward pass (default: 1 on the CPU, where batching windows
            gains nothing and doubles activation memory; 4 on a GPU).
        align: Match interchangeable outputs between windows (default). False only serves
            to measure what the alignment does (``benchmarks/audioslots_alignment.py``).
        precision: ``"fp32"`` (default) or ``"bf16"``: the model's forward pass under bf16
            autocast (outputs in float32). Opt-in, with its measured cost in the README
            (``benchmarks/precision.py``): faster where the hardware computes bf16 natively.
    """

    def __init__(
        self,
        model,
        query=None,
        negative: Sequence[str] = (),
        residual: bool = False,
        window: float = DEFAULT_WINDOW_SECONDS,
        overlap: float = DEFAULT_OVERLAP,
        batch_size: Optional[int] = None,
        align: bool = True,
        precision: str = "fp32",
    ):
        if batch_size is None:
            batch_size = 4 if model._device.type == "cuda" else 1
        check_batch_size(batch_size)
        check_window(window, overlap)
        if precision not in PRECISIONS:
            raise LASSInputError(f"precision must be one of {PRECISIONS}, got {precision!r}.")
        self.autocast_bf16 = precision == "bf16"
        self.model = model
        self.window = float(window)
        self.overlap = float(overlap)
        self.batch_size = int(batch_size)
        self.residual = bool(residual)
        conditions = model.conditions_for(query, batch_size=1)
        self.interchangeable = interchangeable_outputs(model, conditions) if align else []
        if negative:
            if model.condition_kind != "embedding":
                raise LASSInputError(
                    f"negative queries need a model queried by embeddings; "
                    f"{type(model).__name__} is a {model.condition_kind} model."
                )
            negatives = model.embed_query(list(negative))
            conditions = combine_negative(conditions[0], negatives)[None]
        self.conditions = conditions  # computed once per call
        self.name = "audio"  # what messages call the signal being separated
        self.window_start = 0

    def _separate_chunks(self, chunks: torch.Tensor) -> torch.Tensor:
        """(batch, channels, time) at the model's rate -> (batch, n_outputs, channels, time)."""
        batch, n_chan, n_samples = chunks.shape
        model_chan = self.model.in_channels
        # A mono model separates each channel of a multi-channel file independently.
        per_item = chunks.reshape(batch * n_chan // model_chan, model_chan, n_samples)
        # Windows shorter than the model needs (e.g. one STFT frame) are zero-padded.
        shortfall = max(self.model.min_input_samples - n_samples, 0)
        per_item = torch.nn.functional.pad(per_item, (0, shortfall))
        conditions = self.conditions
        if conditions is not None:
            conditions = conditions.expand(per_item.shape[0], *conditions.shape[1:])
        device = self.model._device
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=self.autocast_bf16):
            estimates = self.model(per_item.to(device), conditions).float()
        estimates = estimates[..., :n_samples]
        if not torch.isfinite(estimates).all():
            raise SeparationError(
                f"{self.name}: the model produced NaN or infinite values in the window starting "
                f"at sample {self.window_start} (a diverged or corrupt model, or an input far "
                "outside the levels it was trained on)."
            )
        estimates = estimates.reshape(batch, n_chan // model_chan, -1, model_chan, n_samples)
        estimates = estimates.transpose(1, 2).reshape(batch, -1, n_chan, n_samples).cpu()
        if self.interchangeable and n_chan > model_chan:
            estimates = torch.stack(
                [_align_channels(e, model_chan, self.interchangeable) for e in estimates]
            )
        return estimates

    def run(
        self,
        read: Callable[[int, int], np.ndarray],
        length: int,
        sample_rate: int,
        write: Callable[[np.ndarray], None],
        progress: Optional[Callable[[int], None]] = None,
        name: str = "audio",
    ) -> None:
        """Separate a signal given by a reader, passing finished blocks to a writer.

        Args:
            read: ``read(start, stop)`` returns the samples in [start, stop) as
                (channels, stop - start) float32.
            length: Signal length in samples.
            sample_rate: Its sample rate; windows are resampled to the model's rate.
            write: Receives consecutive finished blocks, (n_queries [+ 1 residual], channels,
                block).
            progress: Called with the number of samples finished after each block.
            name: What error messages call the signal (e.g. its path).
        """
        if length <= 0:
            raise LASSInputError(f"{name} is empty (0 samples).")
        self.name = name
        model_rate = int(self.model.sample_rate)
        context = 0 if sample_rate == model_rate else int(RESAMPLE_CONTEXT_SECONDS * sample_rate)
        longest = self.model.max_input_samples
        if longest is not None:
            # The model sees a window and its context resampled to its rate (ceil of the
            # length ratio): at most this many file samples fit.
            fits = longest * sample_rate // model_rate
            context = min(context, fits // 4)
            longest = fits - 2 * context
        plan = WindowPlan.from_seconds(length, sample_rate, self.window, self.overlap, longest)
        fade_in = plan.fade()
        pending = None  # the previous window's fade-out, to add to the next fade-in
        previous_tail = None  # previous window over the overlap, unfaded, to align outputs
        tracker = SourceTracker(self.interchangeable, sample_rate)
        with evaluation_mode(self.model), torch.inference_mode():
            for first in range(0, plan.n_windows, self.batch_size):
                indices = range(first, min(first + self.batch_size, plan.n_windows))
                for group in _same_length_groups(plan, indices):
                    outputs = self._run_group(plan, group, read, sample_rate, model_rate, context)
                    for index, (mixture, estimate) in zip(group, outputs):
                        start, stop = plan.bounds(index)
                        is_first, is_last = index == 0, index == plan.n_windows - 1
                        estimate = estimate[tracker.order(estimate, previous_tail, plan.overlap)]
                        if not is_first:
                            estimate[..., : plan.overlap] *= fade_in
                            estimate[..., : plan.overlap] += pending
                        keep = stop - start if is_last else plan.hop
                        if not is_last:
                            if self.interchangeable and plan.overlap > 0:
                                previous_tail = estimate[..., plan.hop :].copy()
                            pending = estimate[..., plan.hop :] * fade_in[::-1]
                        block = estimate[..., :keep]
                        if self.residual:
                            rest = mixture[None, :, :keep] - block.sum(axis=0, keepdims=True)
                            block = np.concatenate([block, rest])
                        write(block)
                        if progress is not None:
                            progress(keep)

    def _run_group(self, plan, group, read, sample_rate, model_rate, context):
        """Windows of equal length through the model: [(mixture, estimate)] at file rate."""
        mixtures, chunks = [], []
        self.window_start = plan.bounds(group[0])[0]
        for index in group:
            start, stop = plan.bounds(index)
            lo, hi = max(0, start - context), min(plan.length, stop + context)
            chunk = read(lo, hi)
            mixtures.append(chunk[:, start - lo : stop - lo])
            chunks.append(torch.from_numpy(np.ascontiguousarray(chunk, dtype=np.float32)))
        lengths = {c.shape[-1] for c in chunks}
        if len(lengths) == 1:
            batch = resample_wav(torch.stack(chunks), sample_rate, model_rate)
            estimates = list(self._separate_chunks(batch))
        else:  # context clipped at the file's edges: different lengths, one at a time
            estimates = [
                self._separate_chunks(resample_wav(c[None], sample_rate, model_rate))[0]
                for c in chunks
            ]
        results = []
        for index, mixture, estimate, chunk in zip(group, mixtures, estimates, chunks):
            start, stop = plan.bounds(index)
            lo = max(0, start - context)
            estimate = resample_wav(estimate, model_rate, sample_rate)[..., : chunk.shape[-1]]
            estimate = estimate[..., start - lo : stop - lo].numpy()
            results.append((mixture, np.array(estimate, dtype=np.float32)))
        return results


def _same_length_groups(plan: WindowPlan, indices) -> Iterator[List[int]]:
    """Split window indices into runs of equal length (only the last window differs)."""
    group: List[int] = []
    for index in indices:
        if group and _length(plan, index) != _length(plan, group[-1]):
            yield group
            group = []
        group.append(index)
    if group:
        yield group


def _length(plan: WindowPlan, index: int) -> int:
    start, stop = plan.bounds(index)
    return stop - start


def _align_channels(
    estimate: torch.Tensor, model_chan: int, groups: Sequence[np.ndarray]
) -> torch.Tensor:
    """Outputs of channels separated independently, put in the first channel's order."""
    n_out, n_chan, _ = estimate.shape
    channels = estimate.reshape(n_out, n_chan // model_chan, model_chan, -1)
    aligned = [channels[:, 0]]
    for channel in range(1, channels.shape[1]):
        order = aligned_order(channels[:, 0].numpy(), channels[:, channel].numpy(), groups)
        aligned.append(channels[order, channel])
    return torch.stack(aligned, dim=1).reshape(estimate.shape)


#: How far each negative query pushes a query embedding away (measured on the default test set:
#: 0.25 keeps the mean SI-SDRi and improves the median; 1.0 costs 3 dB).
NEGATIVE_WEIGHT = 0.25


def combine_negative(
    queries: torch.Tensor, negatives: torch.Tensor, weight: float = NEGATIVE_WEIGHT
) -> torch.Tensor:
    """Condition on "the query, not the negatives": normalize(e_q - weight * sum(e_neg)).

    Query encoders give unit vectors and the separator was trained on them, so the result is
    renormalised. Measured against separating each negative and subtracting its projection
    from the estimate, this keeps more of the target (the negative estimate leaks some of it).

    Args:
        queries: (n_queries, dim) embeddings.
        negatives: (n_negative, dim) embeddings.

    Returns:
        torch.Tensor: (n_queries, dim)
    """
    combined = queries - weight * negatives.sum(dim=0, keepdim=True)
    return torch.nn.functional.normalize(combined, dim=-1)


def as_float_audio(wav, name: str = "audio") -> np.ndarray:
    """(time,) or (channels, time) audio as float32, integer PCM scaled by its type's range.

    Integer arrays follow WAV's conventions (int16 and int32 are signed, uint8 is offset by
    128). Boolean, complex and object arrays, and non-finite samples, are refused with the
    position of the first bad sample.
    """
    if isinstance(wav, torch.Tensor):
        wav = wav.detach().cpu()
    wav = as_float_samples(wav, name, channels=True)
    if isinstance(wav, torch.Tensor):
        wav = wav.numpy()
    if wav.ndim == 1:
        wav = wav[None]
    if wav.ndim != 2:
        raise LASSInputError(f"{name}: expected (time,) or (channels, time), got {wav.shape}.")
    if wav.shape[1] == 0:
        raise LASSInputError(f"{name} is empty (0 samples).")
    return wav


def separate_waveform(
    model,
    wav,
    sample_rate: int,
    query=None,
    negative: Sequence[str] = (),
    residual: bool = False,
    window: float = DEFAULT_WINDOW_SECONDS,
    overlap: float = DEFAULT_OVERLAP,
    batch_size: Optional[int] = None,
    precision: str = "fp32",
) -> np.ndarray:
    """Separate an in-memory signal of any length.

    Args:
        model: A :class:`~asteroid_lass.models.base.Separator`.
        wav: (time,) or (channels, time) array or tensor (integer PCM is scaled).
        sample_rate: Rate of ``wav``; the output has the same rate.
        query, negative, residual, window, overlap, batch_size, precision: See
            :class:`ChunkedSeparator`.

    Returns:
        np.ndarray: (n_outputs [+ 1 residual], channels, time), float32.
    """
    wav = as_float_audio(wav, "wav")
    rate = _rate(sample_rate)
    picker = OutputPicker.for_query(model, query, residual)  # a blind model picking by query
    query = None if picker else query
    separator = ChunkedSeparator(
        model, query, negative, residual, window, overlap, batch_size, precision=precision
    )
    blocks: List[np.ndarray] = []
    separator.run(lambda a, b: wav[:, a:b], wav.shape[1], rate, blocks.append, name="wav")
    estimates = np.concatenate(blocks, axis=-1)
    return estimates if picker is None else estimates[picker.choose(estimates, rate)]


def separate_in_windows(
    model, mixture: torch.Tensor, query=None, overlap: float = 0.25
) -> torch.Tensor:
    """Separate a batch of tensors at the model's rate through windowed inference.

    What :meth:`~asteroid_lass.models.base.Separator.separate` does for inputs longer than the
    model's ``max_input_seconds``: windows of that length (or the whole input for a model
    without a limit), outputs aligned and cross-faded as for files. No gradients.

    Args:
        model: A :class:`~asteroid_lass.models.base.Separator`.
        mixture: (batch, in_channels, time) at ``model.sample_rate``.
        query: See :class:`ChunkedSeparator`.
        overlap: Fraction of a window shared with the next one (0 to 0.5). More than
            file inference's default: these windows are the model's longest input, often short
            (AudioSlots: 1 s), and the overlap is what aligns their outputs.

    Returns:
        torch.Tensor: (batch, n_outputs, in_channels, time) on ``mixture``'s device.
    """
    rate = _rate(float(model.sample_rate))
    window = model.max_input_seconds or mixture.shape[-1] / rate
    outputs = [
        separate_waveform(model, item, rate, query, window=window, overlap=overlap)
        for item in mixture.detach().cpu()
    ]
    return torch.from_numpy(np.stack(outputs)).to(mixture.device)


def _rate(sample_rate) -> int:
    if not is_number(sample_rate) or not np.isfinite(sample_rate) or sample_rate <= 0:
        raise LASSInputError(f"sample_rate must be a positive number of Hz, got {sample_rate!r}.")
    if int(sample_rate) != sample_rate:
        raise LASSInputError(f"sample_rate must be a whole number of Hz, got {sample_rate!r}.")
    return int(sample_rate)


def output_names(model, query, residual: bool) -> List[str]:
    """Names of the outputs for ``query`` (``residual`` last), refusing collisions."""
    n_outputs = getattr(model, "n_src", None) if query is None else None
    names = model.output_names(query, n_outputs)
    if residual:
        if "residual" in names:
            raise LASSInputError(
                "a query is named 'residual', which --residual also writes; rename the query."
            )
        names.append("residual")
    if len(set(names)) != len(names):
        raise LASSInputError(f"two queries give the same output name: {names}.")
    return names


def output_paths(path: str, model, query, output_dir: Optional[str], residual: bool) -> List[str]:
    """``<output_dir>/<stem>_<output name>.wav`` for every output (``_residual`` last)."""
    stem = os.path.splitext(os.path.basename(path))[0]
    directory = output_dir if output_dir is not None else os.path.dirname(os.path.abspath(path))
    return [
        os.path.join(directory, f"{stem}_{name}.wav")
        for name in output_names(model, query, residual)
    ]


def separate_file(
    model,
    path: str,
    query=None,
    negative: Sequence[str] = (),
    residual: bool = False,
    output_dir: Optional[str] = None,
    force: bool = False,
    resample: bool = True,
    window: float = DEFAULT_WINDOW_SECONDS,
    overlap: float = DEFAULT_OVERLAP,
    batch_size: Optional[int] = None,
    block_seconds: float = 60.0,
    progress: Optional[Callable[[int], None]] = None,
    precision: str = "fp32",
) -> List[str]:
    """Separate an audio file into ``<stem>_<output name>.wav`` files, reading it in blocks.

    Outputs have the input's length, sample rate and channel count. They are written to
    temporary files and renamed when all are complete, so an interrupted run leaves nothing
    half-written; an output never replaces the input.

    Args:
        model: A :class:`~asteroid_lass.models.base.Separator`.
        path: Input audio file (anything soundfile reads).
        query, negative, residual, window, overlap, batch_size, precision: See
            :class:`ChunkedSeparator`.
        output_dir: Where to write (default: beside the input).
        force: Overwrite existing outputs.
        resample: Accept input at another rate than the model's (else raise).
        block_seconds: How much audio is read from the file at once.
        progress: Called with the number of input samples finished.

    Returns:
        list[str]: The written paths, in output order (residual last).

    Raises:
        AudioFileError, LASSInputError, OutputExistsError: With the path and the reason.
    """
    if not os.path.isfile(path):
        raise AudioFileError(f"input audio not found: {path}")
    if output_dir is not None and not str(output_dir).strip():
        raise LASSInputError(
            "output_dir is an empty path; pass a folder (or None: beside the input)."
        )
    if not is_number(block_seconds) or not 0 < block_seconds < math.inf:
        raise LASSInputError(f"block_seconds must be a positive number, got {block_seconds!r}.")
    try:
        info = sf.info(path)
    except Exception as err:
        raise AudioFileError(f"could not read audio file {path}: {one_line(err)}") from err
    if info.frames <= 0:
        raise AudioFileError(f"audio file {path} is empty (0 samples).")
    if not resample and info.samplerate != int(model.sample_rate):
        raise LASSInputError(
            f"{path} is at {info.samplerate} Hz but the model runs at {int(model.sample_rate)} Hz; "
            "pass resample=True to resample it."
        )
    destinations = output_paths(path, model, query, output_dir, residual)
    for destination in destinations:
        if os.path.lexists(destination) and (
            os.path.realpath(destination) == os.path.realpath(path)
            or (os.path.exists(destination) and os.path.samefile(destination, path))
        ):
            raise OutputExistsError(f"output {destination} would replace the input {path}.")
        if os.path.exists(destination) and not force:
            raise OutputExistsError(
                f"output exists: {destination} (pass force=True / --force to overwrite)."
            )
    if query is not None and model.condition_kind == "none":  # rank the blind outputs
        return separate_file_by_query(
            model,
            path,
            query,
            destinations,
            negative=negative,
            residual=residual,
            resample=resample,
            window=window,
            overlap=overlap,
            batch_size=batch_size,
            block_seconds=block_seconds,
            progress=progress,
            precision=precision,
        )
    separator = ChunkedSeparator(
        model, query, negative, residual, window, overlap, batch_size, precision=precision
    )
    # Every output is renamed into place only when all of them are complete (atomic_write);
    # the SoundFiles, entered after, are closed before that.
    with contextlib.ExitStack() as outputs:
        temporaries = [outputs.enter_context(atomic_write(d)) for d in destinations]
        writers = [
            outputs.enter_context(
                sf.SoundFile(t, "w", info.samplerate, info.channels, subtype="FLOAT", format="WAV")
            )
            for t in temporaries
        ]
        with sf.SoundFile(path) as reader:
            blocks = _BlockReader(reader, int(block_seconds * info.samplerate), path)

            def write(block: np.ndarray) -> None:
                for writer, destination, output in zip(writers, destinations, block):
                    try:
                        writer.write(output.T)
                    except (RuntimeError, OSError) as err:  # e.g. disk full
                        raise AudioFileError(
                            f"could not write {destination}: {one_line(err)}"
                        ) from err

            separator.run(blocks.read, info.frames, info.samplerate, write, progress, name=path)
    return destinations


class _BlockReader:
    """Random access to a sound file through a cache of one block, for mostly forward reads."""

    def __init__(self, sound_file: sf.SoundFile, block: int, path: str):
        self.file = sound_file
        self.path = path
        self.block = max(block, 1)
        self.start = 0
        self.data = np.zeros((sound_file.channels, 0), dtype=np.float32)

    def read(self, start: int, stop: int) -> np.ndarray:
        if start < self.start or stop > self.start + self.data.shape[1]:
            n_frames = min(max(stop - start, self.block), self.file.frames - start)
            try:
                self.file.seek(start)
                self.data = self.file.read(n_frames, dtype="float32", always_2d=True).T
            except (RuntimeError, OSError) as err:  # soundfile's errors on corrupt data
                raise AudioFileError(
                    f"could not read {self.path} at sample {start}: {one_line(err)}"
                ) from err
            self.start = start
            if self.data.shape[1] < stop - start:
                raise AudioFileError(
                    f"{self.path} ends at sample {start + self.data.shape[1]} although its header "
                    f"announces {self.file.frames} samples (a truncated file?)."
                )
            bad = ~np.isfinite(self.data)
            if bad.any():
                raise_non_finite(
                    np.argwhere(bad)[0].tolist(),
                    self.path,
                    AudioFileError,
                    offset=start,
                    sample_rate=self.file.samplerate,
                    channels=True,
                )
        return self.data[:, start - self.start : stop - self.start]


def separate_file_by_query(
    model, path: str, query, destinations: Sequence[str], **kwargs
) -> List[str]:
    """A blind model's outputs for ``query``, written to ``destinations`` (one per query).

    Every blind output is first written to a temporary folder beside the destinations, and
    ranked on its whole length; the picked outputs are then renamed into place together
    (through :func:`~asteroid_lass.utils.atomic_write`) and the folder is removed, also when
    the run fails or is interrupted.

    Args:
        model: A blind :class:`~asteroid_lass.models.base.Separator` with a query encoder.
        path: Input audio file.
        query: Texts or an :class:`AudioQuery` (see :class:`~asteroid_lass.ranking.OutputPicker`).
        destinations: Output paths, one per query, already checked by the caller.
        **kwargs: Passed to :func:`separate_file` (window, overlap,
            resample, batch size, progress, ...), except ``query`` and ``output_dir``.

    Returns:
        list[str]: ``destinations``.
    """
    picker = OutputPicker.for_query(model, query, kwargs.pop("residual", False))
    directory = os.path.dirname(os.path.abspath(destinations[0]))
    os.makedirs(directory, exist_ok=True)
    scratch = tempfile.mkdtemp(prefix=".asteroid-lass-", suffix=".tmp", dir=directory)
    try:
        outputs = separate_file(model, path, output_dir=scratch, **kwargs)
        best = picker.choose_in_files(outputs)
        with contextlib.ExitStack() as stack:
            temporaries = [stack.enter_context(atomic_write(d)) for d in destinations]
            for position, (temporary, index) in enumerate(zip(temporaries, best)):
                # An output picked by several queries is copied for all but the last.
                keep = index in best[position + 1 :]
                (shutil.copyfile if keep else os.replace)(outputs[index], temporary)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return list(destinations)
