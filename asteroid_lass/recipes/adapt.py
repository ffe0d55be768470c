"""Recipe settings that follow the data they are given.

A conf value ``auto`` for ``data.segment_seconds``, ``data.test_segment_seconds``,
``data.items_per_epoch``, ``data.n_valid`` or ``training.epochs`` is derived from the training
manifest (its clip count, classes and clip lengths) by :func:`adapted_settings`; any other value
is kept as the conf states it. On the built-in corpus (12 classes x 40 clips of 3 to 6 s) at
batch size 14 with the recipe's STFT (256-sample hops at 16 kHz) the rule gives the default run:
2.032 s training segments, 2 s validation and test mixtures, 896 mixtures (64 steps) per epoch,
60 epochs, 48 validation mixtures.

- ``segment_seconds`` (training): 128 STFT frames (2.032 s at the recipe's 16 ms hop), or
  less when a tenth of the clips are shorter (the 10th percentile of clip lengths), so that
  segments are rarely padded with silence. A segment is a whole number of 32 frames of the
  conf's STFT (``model.hop_length`` at ``data.sample_rate``), the U-Net's time multiple
  (shorter: 96 or 64 frames, never less), so that the U-Net pads no frame: at a 10 ms hop,
  14 segments of 128 frames cost what 8 of 2 s cost (201 frames, padded to 224) and trained
  better in the same time (the recipe's README has the measurements);
- ``test_segment_seconds`` (the fixed validation and test mixtures): 2 s, or less when a
  tenth of the clips are shorter (their length rounded down to 0.25 s, at least 0.5 s);
- ``items_per_epoch``: one mixture per training clip, rounded up to whole blocks of 64 steps
  (so at least 64 steps between two validations);
- ``epochs``: a fixed amount of training whatever the clip count, segment length, batch size
  and STFT, so about the same training time with the recipe's ``lean`` model (a larger model
  takes longer: ``compact`` 1.45 times as long, ``small`` about twice). It is counted in STFT
  frames of training mixtures, what a step's cost follows (the U-Net's input), not in seconds:
  a 16 ms hop puts 2.03 s of audio in the 128 frames a 10 ms hop fills with 1.27 s, at the same
  cost. On the built-in corpus, a demonstration, 6,881,280 frames (60 x 64 steps x 14 x 128
  frames, 27 to 30 minutes of training on 2 cores of an Intel Xeon); on the user's own data (a
  manifest, AudioSet) twice that, 13,762,560 frames, which took the sampled instruments from
  35 % to 60 % of the oracle (the recipe's README); but at least 4 and at most 128 epochs. The
  epochs spend it on the segments and epoch size in use, ``auto`` or stated in the conf;
- ``n_valid``: 4 validation mixtures per class, between 48 and 512.
"""

import math
from dataclasses import dataclass
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np
import pandas as pd
import soundfile as sf

from ..data.manifest import label_key, load_manifest
from ..errors import LASSInputError
from ..models.resunet import TIME_MULTIPLE

#: The value that asks for a setting derived from the data.
AUTO = "auto"
#: The settings that may be ``auto``: (conf group, key).
ADAPTIVE_KEYS = (
    ("data", "segment_seconds"),
    ("data", "test_segment_seconds"),
    ("data", "items_per_epoch"),
    ("training", "epochs"),
    ("data", "n_valid"),
)
#: The STFT hop training segments are sized for when the conf names none (``LASSResUNet``'s
#: default, AudioSep's 320 samples at 32 kHz).
FRAME_SECONDS = 0.01
#: Training segments are 2 to 4 blocks of the U-Net's time multiple (see the module's docstring).
MIN_SEGMENT_BLOCKS, MAX_SEGMENT_BLOCKS = 2, 4


def stft_frames(seconds: float, frame_seconds: float) -> int:
    """Frames of a centred STFT over ``seconds`` of audio: one more than whole hops. A thousandth
    of a frame is forgiven, as lengths are stated to the microsecond and hops may not be whole
    ones."""
    return math.floor(seconds / frame_seconds + 1e-3) + 1


def blocks_to_seconds(blocks: int, frame_seconds: float = FRAME_SECONDS) -> float:
    """Length of a segment of ``blocks`` x 32 frames of a centred STFT (one frame more than
    hops), rounded to the microsecond (exact for hops of whole samples at usual rates)."""
    return round((blocks * TIME_MULTIPLE - 1) * frame_seconds, 6)


#: Longest validation and test mixture, and the short-clip rounding of its length.
MAX_TEST_SEGMENT_SECONDS = 2.0
MIN_TEST_SEGMENT_SECONDS = 0.5
TEST_SEGMENT_STEP_SECONDS = 0.25
#: The share of clips allowed to be shorter than a segment.
SHORT_CLIP_QUANTILE = 0.1
#: Steps between two validations, at least; an epoch is a whole number of such blocks.
STEP_BLOCK = 64
#: STFT frames of training mixtures a run on the built-in corpus sees: the default run's 60 epochs
#: of 64 steps of 14 segments (the recipe's ``training.batch_size``) of 128 frames, whatever the
#: batch size, segment length and hop used. 60 epochs of ``lean`` take about 0.92 of the time 45
#: of ``compact`` took (the budget until ``lean`` became the recipe's model, each step costing 0.69
#: of ``compact``'s).
BUILT_IN_RUN_EPOCHS = 60
BUILT_IN_RUN_BATCH_SIZE = 14
BUILT_IN_TRAINING_FRAMES = (
    BUILT_IN_RUN_EPOCHS * STEP_BLOCK * BUILT_IN_RUN_BATCH_SIZE * MAX_SEGMENT_BLOCKS * TIME_MULTIPLE
)
#: The user's own data is what the user cares about: twice the demonstration's training.
USER_DATA_TRAINING_FRAMES = 2 * BUILT_IN_TRAINING_FRAMES
EPOCH_RANGE = (4, 128)
VALID_PER_CLASS = 4
VALID_RANGE = (48, 512)


@dataclass
class ManifestSummary:
    """What the rule reads from a training manifest.

    Attributes:
        n_clips: Rows of the manifest.
        n_classes: Distinct labels (a multi-label clip counts for each of its labels).
        durations: Every clip's length in seconds.
    """

    n_clips: int
    n_classes: int
    durations: np.ndarray

    def describe(self) -> str:
        """``480 clips, 12 classes, 36 min, clips 3.0-6.0 s``."""
        total = float(self.durations.sum())
        amount = f"{total / 3600:.1f} h" if total >= 3600 else f"{total / 60:.0f} min"
        return (
            f"{self.n_clips} clips, {self.n_classes} classes, {amount}, clips "
            f"{self.durations.min():.1f}-{self.durations.max():.1f} s"
        )


def summarize_manifest(csv_path: str) -> ManifestSummary:
    """Clip count, class count and clip lengths of a manifest.

    Lengths come from the ``duration`` column; a clip without one is measured from its
    file's header.

    Args:
        csv_path: A manifest CSV (see :mod:`asteroid_lass.data.manifest`).
    """
    table = load_manifest(csv_path, check_audio=False)
    durations = np.array(pd.to_numeric(table["duration"], errors="coerce"), dtype=float)
    for row in np.flatnonzero(~np.isfinite(durations)):
        info = sf.info(table["path"].iat[row])
        durations[row] = info.frames / info.samplerate
    classes = {label_key(label) for labels in table["label_list"] for label in labels}
    return ManifestSummary(n_clips=len(table), n_classes=len(classes), durations=durations)


def training_frames(built_in_corpus: bool) -> int:
    """STFT frames of training mixtures of an ``auto`` run (see the module's docstring)."""
    return BUILT_IN_TRAINING_FRAMES if built_in_corpus else USER_DATA_TRAINING_FRAMES


def _clamp(value, low, high):
    return max(low, min(high, value))


def budget_epochs(
    items_per_epoch: int,
    segment_seconds: float,
    frame_seconds: float = FRAME_SECONDS,
    built_in_corpus: bool = False,
) -> int:
    """Epochs of this size and segment length that spend the training budget (module docstring).

    A segment counts for the frames the U-Net computes on: its centred STFT's frames, padded to
    the U-Net's time multiple (a 1 s segment at a 10 ms hop, 101 frames, costs 128).

    Args:
        items_per_epoch: Training mixtures per epoch.
        segment_seconds: Length of a training mixture.
        frame_seconds: The model's STFT hop in seconds.
        built_in_corpus: The demonstration's budget rather than the user's own data's.

    Returns:
        int: the epochs, between :data:`EPOCH_RANGE`'s bounds.
    """
    padded = math.ceil(stft_frames(segment_seconds, frame_seconds) / TIME_MULTIPLE) * TIME_MULTIPLE
    frames_per_epoch = int(items_per_epoch) * padded
    return _clamp(-(-training_frames(built_in_corpus) // frames_per_epoch), *EPOCH_RANGE)


def adapted_settings(
    n_clips: int,
    n_classes: int,
    durations: Sequence[float],
    batch_size: int,
    frame_seconds: float = FRAME_SECONDS,
    built_in_corpus: bool = False,
) -> Dict[str, float]:
    """The rule of this module's docstring.

    Args:
        n_clips: Training clips.
        n_classes: Distinct training labels.
        durations: Training clip lengths in seconds.
        batch_size: Mixtures per training step.
        frame_seconds: The model's STFT hop in seconds.
        built_in_corpus: The clips are the recipe's built-in corpus (the demonstration's
            budget) rather than the user's own data (twice that).

    Returns:
        dict: ``segment_seconds`` and ``test_segment_seconds`` (float), ``items_per_epoch``,
        ``epochs`` and ``n_valid`` (int).
    """
    if n_clips < 1 or n_classes < 1 or len(durations) == 0:
        raise ValueError(
            f"the training manifest must have clips and labels, got {n_clips} clips, "
            f"{n_classes} classes, {len(durations)} durations."
        )
    if int(batch_size) < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}.")
    if not 0 < frame_seconds < math.inf:
        raise ValueError(f"frame_seconds must be a positive number, got {frame_seconds}.")
    short_clip = float(np.quantile(np.asarray(durations, dtype=float), SHORT_CLIP_QUANTILE))
    frames = stft_frames(short_clip, frame_seconds)
    blocks = _clamp(frames // TIME_MULTIPLE, MIN_SEGMENT_BLOCKS, MAX_SEGMENT_BLOCKS)
    segment = blocks_to_seconds(blocks, frame_seconds)
    steps = math.floor(short_clip / TEST_SEGMENT_STEP_SECONDS + 1e-9)
    test_segment = max(MIN_TEST_SEGMENT_SECONDS, steps * TEST_SEGMENT_STEP_SECONDS)
    block = int(batch_size) * STEP_BLOCK
    items = block * math.ceil(n_clips / block)
    epochs = budget_epochs(items, segment, frame_seconds, built_in_corpus)
    n_valid = _clamp(VALID_PER_CLASS * n_classes, *VALID_RANGE)
    return dict(
        segment_seconds=segment,
        test_segment_seconds=min(test_segment, MAX_TEST_SEGMENT_SECONDS),
        items_per_epoch=items,
        epochs=epochs,
        n_valid=n_valid,
    )


def _is_auto(value) -> bool:
    return isinstance(value, str) and value.strip().lower() == AUTO


def auto_settings(conf: dict) -> List[str]:
    """The ``group.key`` names of the settings the conf leaves ``auto``."""
    return [f"{g}.{k}" for g, k in ADAPTIVE_KEYS if _is_auto(conf.get(g, {}).get(k))]


def _explicit(group: str, key: str, value):
    """A conf value that is not ``auto``, checked by its own name (the datasets only know a
    ``segment_seconds``); numbers given on the command line over an ``auto`` default arrive as
    strings."""
    kind = float if key.endswith("segment_seconds") else int
    try:
        number = kind(value)
    except (TypeError, ValueError):
        number = None
    if number is None or not 0 < number < math.inf:
        raise LASSInputError(f"{group}.{key} must be a positive number or {AUTO!r}, got {value!r}.")
    return number


def _frame_seconds(conf: dict) -> float:
    """The conf's STFT hop in seconds; :data:`FRAME_SECONDS` when it names no hop."""
    hop = conf.get("model", {}).get("hop_length")
    sample_rate = conf.get("data", {}).get("sample_rate")
    if hop is None or sample_rate is None:
        return FRAME_SECONDS
    try:
        seconds = float(hop) / float(sample_rate)
    except (TypeError, ValueError, ZeroDivisionError):
        seconds = math.nan
    if not 0 < seconds < math.inf:
        raise LASSInputError(
            f"model.hop_length and data.sample_rate must be positive numbers, got {hop!r} and "
            f"{sample_rate!r}."
        )
    return seconds


def resolve_auto(
    conf: dict, train_manifest: str, built_in_corpus: bool = False
) -> Tuple[dict, str]:
    """The conf with its ``auto`` settings derived from the training manifest.

    Args:
        conf: A recipe configuration (``data``, ``training`` groups; training segments follow
            ``model.hop_length`` at ``data.sample_rate`` when the conf gives both).
        train_manifest: The training manifest CSV the settings are derived from.
        built_in_corpus: The manifest lists the built-in corpus (see :func:`adapted_settings`).

    Returns:
        (conf, line): a copy of the conf with numbers in place of ``auto``, and one line
        stating the settings and where each comes from, e.g. ``data plan (480 clips, 12
        classes, 36 min, clips 3.0-6.0 s): segment_seconds 2.032 (auto), test_segment_seconds
        2.0 (auto), items_per_epoch 896 (auto), epochs 60 (auto, built-in corpus: 6,881,280
        STFT frames), n_valid 48 (auto)``.
    """
    conf = {group: dict(values) for group, values in conf.items()}
    summary: Optional[ManifestSummary] = None
    if any(_is_auto(conf[group].get(key)) for group, key in ADAPTIVE_KEYS):
        summary = summarize_manifest(train_manifest)
        frame_seconds = _frame_seconds(conf)
        derived = adapted_settings(
            summary.n_clips,
            summary.n_classes,
            summary.durations,
            conf["training"]["batch_size"],
            frame_seconds,
            built_in_corpus,
        )
    parts = []
    for group, key in ADAPTIVE_KEYS:
        value = conf[group].get(key)
        if value is None:  # a conf without the key: the code's own default applies
            continue
        if _is_auto(value) and key == "epochs":
            # The budget is spent on the segments and epoch size in use, `auto` or stated.
            conf[group][key] = budget_epochs(
                conf["data"].get("items_per_epoch") or derived["items_per_epoch"],
                conf["data"].get("segment_seconds") or derived["segment_seconds"],
                frame_seconds,
                built_in_corpus,
            )
            budget = "built-in corpus" if built_in_corpus else "own data"
            source = f"{AUTO}, {budget}: {training_frames(built_in_corpus):,} STFT frames"
        elif _is_auto(value):
            conf[group][key] = derived[key]
            source = AUTO
        else:
            conf[group][key] = _explicit(group, key, value)
            source = "conf"
        parts.append(f"{key} {conf[group][key]} ({source})")
    head = f"data plan ({summary.describe()})" if summary is not None else "data plan"
    return conf, f"{head}: " + ", ".join(parts)
