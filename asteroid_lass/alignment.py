"""Keeping interchangeable outputs on one source from window to window.

A blind model's outputs (and a prompt model's outputs for a repeated prompt) have no fixed
order: the source on output 0 of one window may come out on output 1 of the next. Windowed
inference (:mod:`asteroid_lass.inference`) puts every window's outputs in the order of the
tracks built so far, with two kinds of evidence:

- the samples a window shares with the previous one (:func:`match_outputs`), compared with a
  level-aware similarity, so that the quiet leakage of an active source into another output is
  not mistaken for the source itself;
- each track's long-term spectral envelope (:class:`SourceTracker`), which carries the tracks
  across overlaps that hold no sound (every source pausing at once), where the shared samples
  say nothing;
- the model's own order, as far as the file has confirmed it (a model whose slots or outputs
  keep one kind of source makes independent mistakes, where a chain of matches carries each
  mistake to the end of the file).
"""

import math
from typing import List, Optional, Sequence

import numpy as np
import torch
import torchaudio

from .losses import hungarian_assignment

#: Mel bands of the spectral envelope that identifies a track.
ENVELOPE_BANDS = 40
#: Length of the envelope's analysis frames (s), rounded up to a power of two of samples.
ENVELOPE_FRAME_SECONDS = 0.032
#: How fast a track's envelope follows new windows (the weight of a window at the track's level).
ENVELOPE_RATE = 0.1
#: How fast a track's level follows new windows.
LEVEL_RATE = 0.1
#: Windows over which the envelopes' weight grows from 1/8 to full: an envelope learnt from a
#: window or two (the talkers still mixed in it) misleads more than it helps (-0.5 dB on the
#: AudioSlots recipe's 3 s test mixtures at full weight from the first window).
ENVELOPE_WARMUP_WINDOWS = 8
#: Weight of the model's own order at full consistency (0.5, 1 and 2 measured: 2 costs a
#: separator whose order is random 3 points of frames on their source's output).
OWN_ORDER_WEIGHT = 0.5


def output_similarity(reference: np.ndarray, estimate: np.ndarray) -> np.ndarray:
    """Level-aware similarity of every pair of outputs over the same samples.

    ``max(0, <r_i, e_j>) / max(|r_i|^2, |e_j|^2)``: 1 for the same signal at the same level,
    smaller for another source, and smaller for the same source at a very different level.
    Plain correlation scores a quiet copy of a source (its leakage into another output while
    the other source pauses) as high as the source itself. Negative values, which the same
    source in two overlapping windows does not give, are no evidence and count as 0.

    Args:
        reference: (n_outputs, ...) signals.
        estimate: (n_outputs, ...) signals over the same samples.

    Returns:
        np.ndarray: (n_outputs, n_outputs), [reference index, estimate index].
    """
    ref = reference.reshape(reference.shape[0], -1).astype(np.float64)
    est = estimate.reshape(estimate.shape[0], -1).astype(np.float64)
    ref_energy = np.square(ref).sum(axis=1)[:, None]
    est_energy = np.square(est).sum(axis=1)[None]
    return np.maximum(ref @ est.T, 0.0) / np.maximum(np.maximum(ref_energy, est_energy), 1e-20)


def best_order(score: np.ndarray) -> np.ndarray:
    """Order of the estimates that maximises ``score[i, order[i]]`` summed over i.

    The current order is kept unless another scores higher beyond float rounding: outputs
    that the evidence cannot tell apart are not shuffled by rounding noise.

    Args:
        score: (n, n), [track index, estimate index].

    Returns:
        np.ndarray: (n,) estimate indices.
    """
    order = hungarian_assignment(torch.from_numpy(-score)[None].transpose(1, 2))[0].numpy()
    kept = np.arange(len(order))
    gain = score[kept, order].sum() - score[kept, kept].sum()
    return order if gain > 1e-9 * len(order) else kept


def match_outputs(reference: np.ndarray, estimate: np.ndarray) -> np.ndarray:
    """Order of ``estimate``'s outputs that best continues ``reference``'s.

    Hungarian assignment on :func:`output_similarity` over the samples the two share.

    Args:
        reference: (n_outputs, channels, overlap) the previous window over the overlap.
        estimate: (n_outputs, channels, overlap) the current window over the same samples.

    Returns:
        np.ndarray: (n_outputs,) indices: ``estimate[order]`` follows ``reference``.
    """
    return best_order(output_similarity(reference, estimate))


def interchangeable_outputs(model, conditions) -> List[np.ndarray]:
    """Groups of output indices that have no fixed order: all outputs of a blind model, the
    outputs of a repeated prompt (two ``speech``). Only those are aligned between windows."""
    if model.condition_kind == "none":
        return [np.arange(model.n_src)]
    if model.condition_kind != "prompt":
        return []
    prompts = np.asarray(conditions[0].cpu())
    groups = [np.flatnonzero(prompts == p) for p in np.unique(prompts)]
    return [group for group in groups if len(group) > 1]


def aligned_order(
    reference: np.ndarray, estimate: np.ndarray, groups: Sequence[np.ndarray]
) -> np.ndarray:
    """Order of ``estimate``'s outputs that best continues ``reference``'s, permuting only
    within each group of interchangeable outputs (see :func:`match_outputs`)."""
    order = np.arange(estimate.shape[0])
    for group in groups:
        order[group] = group[match_outputs(reference[group], estimate[group])]
    return order


def _cosine(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(a, axis=1)[:, None] * np.linalg.norm(b, axis=1)[None]
    return (a @ b.T) / np.maximum(norms, 1e-20)


class SourceTracker:
    """Puts each window's interchangeable outputs in the order of the tracks so far.

    Per group of interchangeable outputs, the order maximises the sum of three scores:

    - :func:`output_similarity` between the previous window (already in track order) and
      this one over the samples they share: decisive whenever the overlap holds sound;
    - the cosine similarity between each track's spectral envelope so far and each output's
      envelope in this window (mean log-mel power, level removed, relative to the group's
      mean envelope), weighted by how little sound the overlap holds and by how many windows
      the envelopes have been learnt from (:data:`ENVELOPE_WARMUP_WINDOWS`): it takes over
      when every output is silent where the windows meet (the sources pausing together),
      where the shared samples carry no evidence and an order chosen on them would be a coin
      toss;
    - the model's own order (the previous window's permutation), weighted by how often the
      shared samples alone have confirmed it so far (:data:`OWN_ORDER_WEIGHT`; nothing for a
      model whose order is random).

    After each window the tracks' envelopes and levels follow their new outputs (an output far
    quieter than its track's level moves the envelope less: leakage and pauses do not blur it).

    Args:
        groups: Groups of interchangeable output indices
            (:func:`interchangeable_outputs`); an empty list keeps every window's order.
        sample_rate: Rate of the windows (Hz).
    """

    def __init__(self, groups: Sequence[np.ndarray], sample_rate: int):
        self.groups = [np.asarray(group) for group in groups]
        # At least 256 samples: fewer frequency bins than that leave some of the bands empty.
        n_fft = 2 ** math.ceil(math.log2(max(ENVELOPE_FRAME_SECONDS * sample_rate, 256)))
        self.mel = torchaudio.transforms.MelSpectrogram(
            sample_rate,
            n_fft=n_fft,
            hop_length=n_fft // 4,
            n_mels=ENVELOPE_BANDS,
            pad_mode="constant",
        )
        self.envelopes: Optional[np.ndarray] = None  # (n_outputs, bands), track order
        self.levels: Optional[np.ndarray] = None  # (n_outputs,) mean square, track order
        self.previous_order: Optional[np.ndarray] = None
        self.windows_seen = 1
        # Per group: window meetings so far, and how many of them the shared samples alone
        # continued in the model's own order (the previous window's order).
        self.meetings = np.zeros(len(self.groups))
        self.continued = np.zeros(len(self.groups))

    def _describe(self, window: np.ndarray):
        """Envelope (n_outputs, bands) and mean square (n_outputs,) of each output."""
        signal = torch.from_numpy(np.ascontiguousarray(window, dtype=np.float32))
        power = self.mel(signal).double().mean(dim=(1, 3)).numpy()  # over channels and frames
        log_power = np.log(power + 1e-12)
        envelopes = log_power - log_power.mean(axis=1, keepdims=True)
        return envelopes, np.square(window.astype(np.float64)).mean(axis=(1, 2))

    def order(
        self, window: np.ndarray, previous_tail: Optional[np.ndarray], overlap: int
    ) -> np.ndarray:
        """The order of ``window``'s outputs that continues the tracks; updates the tracks.

        Args:
            window: (n_outputs, channels, time) the new window's outputs, unfaded.
            previous_tail: (n_outputs, channels, overlap) the previous window over the
                samples it shares with this one, in track order; None for the first window.
            overlap: Number of shared samples (the first ``overlap`` of ``window``).

        Returns:
            np.ndarray: (n_outputs,) indices: ``window[order]`` is in track order.
        """
        order = np.arange(window.shape[0])
        if not self.groups:
            return order
        envelopes, levels = self._describe(window)
        if self.envelopes is None:
            self.envelopes, self.levels, self.previous_order = envelopes, levels, order
            return order
        for index, group in enumerate(self.groups):
            score = np.zeros((len(group), len(group)))
            presence = 0.0
            previous = np.searchsorted(group, self.previous_order[group])
            if previous_tail is not None and overlap > 0:
                tail, head = previous_tail[group], window[group][..., :overlap]
                shared_score = output_similarity(tail, head)
                self.meetings[index] += 1
                self.continued[index] += np.array_equal(best_order(shared_score), previous)
                score += shared_score
                shared = 0.5 * (
                    np.square(tail).mean(axis=(1, 2)) + np.square(head).mean(axis=(1, 2))
                )
                typical = self.levels[group].mean()
                presence = min(1.0, shared.sum() / typical) if typical > 0 else 0.0
            centre = self.envelopes[group].mean(axis=0)
            learnt = min(1.0, self.windows_seen / ENVELOPE_WARMUP_WINDOWS)
            score += (
                learnt
                * (1.0 - presence)
                * _cosine(self.envelopes[group] - centre, envelopes[group] - centre)
            )
            rate = (self.continued[index] + 1) / (self.meetings[index] + 2)
            score[np.arange(len(group)), previous] += OWN_ORDER_WEIGHT * max(0.0, 2 * rate - 1)
            order[group] = group[best_order(score)]
        self.previous_order = order
        self.windows_seen += 1
        envelopes, levels = envelopes[order], levels[order]
        weight = ENVELOPE_RATE * np.minimum(1.0, levels / np.maximum(self.levels, 1e-20))
        self.envelopes += weight[:, None] * (envelopes - self.envelopes)
        self.levels += LEVEL_RATE * (levels - self.levels)
        return order
