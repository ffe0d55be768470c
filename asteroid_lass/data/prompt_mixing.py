"""Prompt-sequence mixtures for task-aware unified separation (TUSS-style training and tests).

A mixture is described by an ordered list of prompts (``speech``, ``sfx``, ``sfxbg``,
``drums``, ``bass``, ``vocals``, ``other``, ``musicbg``), one per source: the model must
return one estimate per prompt, in that order. Training draws the prompt list at random (first
prompt from ``init_prob``, each next one from a ``transition`` table, 2-4 sources), then one
clip per prompt from a manifest whose rows carry a ``category`` column, a crop, and a gain.

Levels: every clip is brought to -23 LUFS as a whole (its loudness is measured once and
cached), cropped, then scaled by a gain drawn from its category's range (dB). Normalising the
whole clip rather than the crop keeps a quiet passage quiet (a vocal stem between verses is
near-silent, not boosted to -23 LUFS). Offsets are redrawn a few times if the crop is much
quieter than its clip (``min_active_db``), so most targets are active.

Constraints:

- Stems (``drums``, ``bass``, ``vocals``, ``other``) come from one song and share one offset
  when the manifest has a ``song`` column, so they form a coherent music mixture; ``musicbg``
  (a song's full mix) then comes from a different song, as it would otherwise contain them.
- A repeated prompt draws a different clip, from a different ``song``/``speaker`` group when
  there is one, and for ``sfx``/``sfxbg`` preferably a clip sharing no label with the others.
- Categories in ``no_repeat`` (stems and ``musicbg`` by default) appear at most once: their
  transition probability is set to zero once used and the row renormalised.

The same recipe format (prompts, paths, offsets, gains) serves dynamic mixing and the fixed,
shareable test sets of :func:`write_prompt_test_set`, rendered by one function.
"""

import json
import os
from typing import Dict, Iterator, List, Mapping, Optional, Sequence, Tuple, Union

import numpy as np
import pandas as pd
import soundfile as sf
import torch
from torch.utils.data import Dataset, Sampler

from ..audio import read_audio, resample
from ..utils import atomic_write
from .datasets import BUILTIN_CORPUS_LICENSE, ClipStore, crop, random_offset
from .manifest import load_manifest, write_manifest
from .mixing import PEAK_LIMIT, loudness_gain

#: The prompt vocabulary of the released TUSS models, in their index order.
PROMPTS: Tuple[str, ...] = (
    "speech",
    "sfx",
    "sfxbg",
    "drums",
    "bass",
    "vocals",
    "other",
    "musicbg",
)
STEMS: Tuple[str, ...] = ("drums", "bass", "vocals", "other")

#: Evaluation tasks: name -> prompt list (one output per prompt, in order).
TASKS: Dict[str, Tuple[str, ...]] = {
    "enhancement": ("speech", "sfxbg"),
    "speech_separation": ("speech", "speech"),
    "music": ("drums", "bass", "vocals", "other"),
    "cinematic": ("speech", "musicbg", "sfxbg"),
    "universal": ("sfx", "sfx", "sfx"),
    "universal_2src": ("sfx", "sfx"),
}

#: Gain ranges in dB applied after loudness normalisation (TUSS: -10..0 stems, -20..0 sfx).
DEFAULT_GAIN_RANGES: Dict[str, Tuple[float, float]] = {
    "speech": (-10.0, 0.0),
    "sfx": (-20.0, 0.0),
    "sfxbg": (-20.0, 0.0),
    "drums": (-10.0, 0.0),
    "bass": (-10.0, 0.0),
    "vocals": (-10.0, 0.0),
    "other": (-10.0, 0.0),
    "musicbg": (-10.0, 0.0),
}

# A plausible default, written for this package (not the official TUSS table): every task of
# TASKS has a path; stems only lead to stems, and musicbg never meets them.
DEFAULT_INIT_PROB: Dict[str, float] = {
    "speech": 0.3,
    "sfx": 0.2,
    "sfxbg": 0.05,
    "drums": 0.1,
    "bass": 0.05,
    "vocals": 0.1,
    "other": 0.05,
    "musicbg": 0.15,
}
DEFAULT_TRANSITION: Dict[str, Dict[str, float]] = {
    "speech": {"speech": 0.3, "sfxbg": 0.3, "musicbg": 0.2, "sfx": 0.2},
    "sfx": {"sfx": 0.6, "sfxbg": 0.1, "speech": 0.2, "musicbg": 0.1},
    "sfxbg": {"speech": 0.5, "sfx": 0.3, "musicbg": 0.2},
    "musicbg": {"speech": 0.4, "sfxbg": 0.4, "sfx": 0.2},
    "drums": {"bass": 0.4, "vocals": 0.3, "other": 0.3},
    "bass": {"drums": 0.3, "vocals": 0.4, "other": 0.3},
    "vocals": {"drums": 0.3, "bass": 0.3, "other": 0.4},
    "other": {"drums": 0.35, "bass": 0.35, "vocals": 0.3},
}
DEFAULT_NO_REPEAT: Tuple[str, ...] = STEMS + ("musicbg",)
DISTINCT_LABEL_CATEGORIES: Tuple[str, ...] = ("sfx", "sfxbg")

FIXED_SET_COLUMNS = ("mixture_id", "source", "prompt", "path", "offset", "gain_db")
_PROBABILITY_TOLERANCE = 1e-6


def _check_distribution(probabilities: Mapping[str, float], name: str) -> Dict[str, float]:
    probabilities = {str(k): float(v) for k, v in probabilities.items()}
    negative = {k: v for k, v in probabilities.items() if v < 0}
    total = sum(probabilities.values())
    if negative or abs(total - 1.0) > _PROBABILITY_TOLERANCE:
        raise ValueError(
            f"{name} must hold non-negative probabilities summing to 1, got {probabilities} "
            f"(sum {total:.6g})."
        )
    return probabilities


# ----------------------------------------------------------------------------- prompts
class PromptSequenceSampler:
    """Draws prompt lists: a count, a first prompt, then a Markov chain over prompts.

    Args:
        init_prob: Category -> probability of being the first prompt.
        transition: Category -> (category -> probability of coming next).
        num_sources: Possible list lengths.
        num_sources_weights: Their probabilities (same length, sum 1).
        no_repeat: Categories used at most once per list (their probability is zeroed once
            drawn and the row renormalised).

    Raises:
        ValueError: Bad probabilities, or a list that can reach a prompt with no allowed
            continuation before the largest count (the message gives the prefix).
    """

    def __init__(
        self,
        init_prob: Mapping[str, float] = DEFAULT_INIT_PROB,
        transition: Mapping[str, Mapping[str, float]] = DEFAULT_TRANSITION,
        num_sources: Sequence[int] = (2, 3, 4),
        num_sources_weights: Sequence[float] = (1 / 3, 1 / 3, 1 / 3),
        no_repeat: Sequence[str] = DEFAULT_NO_REPEAT,
    ):
        self.init_prob = _check_distribution(init_prob, "init_prob")
        self.transition = {
            str(k): _check_distribution(row, f"transition[{k!r}]") for k, row in transition.items()
        }
        self.num_sources = [int(n) for n in num_sources]
        if not self.num_sources or min(self.num_sources) < 1:
            raise ValueError(f"num_sources must be positive counts, got {list(num_sources)}.")
        if len(num_sources_weights) != len(self.num_sources):
            raise ValueError(
                f"num_sources_weights needs {len(self.num_sources)} values (one per count in "
                f"num_sources), got {len(num_sources_weights)}."
            )
        weights = _check_distribution(
            {str(n): w for n, w in zip(self.num_sources, num_sources_weights)},
            "num_sources_weights",
        )
        self.num_sources_weights = np.array(list(weights.values()))
        self.no_repeat = frozenset(no_repeat)
        self.categories = self._check_reachable()

    def _allowed(self, prefix: Sequence[str]) -> Dict[str, float]:
        """Next-prompt distribution after ``prefix`` (no_repeat applied, renormalised)."""
        row = self.init_prob if not prefix else self.transition.get(prefix[-1], {})
        used = set(prefix)
        row = {k: p for k, p in row.items() if p > 0 and not (k in self.no_repeat and k in used)}
        total = sum(row.values())
        return {k: p / total for k, p in row.items()}

    def _check_reachable(self) -> List[str]:
        """Every prefix reachable with non-zero probability must be extendable up to the
        largest count with non-zero weight; returns the categories that can occur."""
        longest = max(n for n, w in zip(self.num_sources, self.num_sources_weights) if w > 0)
        # What can follow depends only on the last prompt and the no_repeat ones used, so
        # one example prefix per such state keeps the search small for any length.
        seen, frontier = set(), {None: ()}
        for length in range(longest):
            next_frontier: Dict[tuple, tuple] = {}
            for prefix in frontier.values():
                allowed = self._allowed(prefix)
                if not allowed:
                    where = "init_prob" if not prefix else f"transition[{prefix[-1]!r}]"
                    raise ValueError(
                        f"The prompt list {list(prefix)} cannot continue ({where} has no allowed "
                        f"category left) but lists of {longest} are drawn."
                    )
                for category in sorted(allowed):
                    seen.add(category)
                    extended = tuple(prefix) + (category,)
                    state = (category, frozenset(self.no_repeat & set(extended)))
                    next_frontier.setdefault(state, extended)
            frontier = next_frontier
        return sorted(seen)

    def draw_count(self, rng: np.random.Generator) -> int:
        """The number of sources (the first draw of an item's generator)."""
        return self.num_sources[int(rng.choice(len(self.num_sources), p=self.num_sources_weights))]

    def draw(self, rng: np.random.Generator, count: Optional[int] = None) -> List[str]:
        """A prompt list of ``count`` prompts (drawn first when None)."""
        count = self.draw_count(rng) if count is None else int(count)
        prompts: List[str] = []
        for _ in range(count):
            allowed = self._allowed(prompts)
            names = list(allowed)
            prompts.append(names[int(rng.choice(len(names), p=list(allowed.values())))])
        return prompts


# ----------------------------------------------------------------------------- audio
class MultiChannelClipStore(ClipStore):
    """A :class:`ClipStore` whose clips are ``(channels, time)``, that caches clip loudness
    and reads long files (songs) piecewise instead of keeping them in memory.

    Mono files are repeated on every channel; with ``channels=1`` multichannel files are
    averaged, as :class:`ClipStore` does. Files longer than ``max_cached_seconds`` are never
    cached: a crop reads just its samples (and, when the file's rate differs, resamples that
    piece alone, which differs from resampling the whole file only within a few samples of
    the piece's edges); their loudness and power are measured once and kept.

    Args:
        sample_rate: Rate every clip is resampled to.
        channels: Output channels.
        cache: Keep decoded clips in memory.
        max_cached_seconds: Longest file kept in memory.
    """

    def __init__(
        self,
        sample_rate: int,
        channels: int = 1,
        cache: bool = True,
        max_cached_seconds: float = 60.0,
    ):
        super().__init__(sample_rate, cache)
        if channels < 1:
            raise ValueError(f"channels must be >= 1, got {channels}.")
        self.channels = int(channels)
        self.max_cached_seconds = float(max_cached_seconds)
        self._infos: Dict[str, Tuple[int, int]] = {}
        self._gains: Dict[str, float] = {}
        self._powers: Dict[str, float] = {}

    def _decode(self, wav: np.ndarray, rate: int, path: str) -> np.ndarray:
        """(file channels, time) at ``rate`` -> (channels, time) float32 at our rate."""
        if self.channels == 1:
            wav = wav.mean(axis=0, keepdims=True)
        elif wav.shape[0] not in (1, self.channels):
            raise ValueError(f"{path} has {wav.shape[0]} channels; expected 1 or {self.channels}.")
        wav = resample(torch.from_numpy(np.ascontiguousarray(wav)), rate, self.sample_rate)
        wav = wav.numpy()
        return np.ascontiguousarray(np.broadcast_to(wav, (self.channels, wav.shape[1]))).astype(
            np.float32
        )

    def _is_long(self, path: str) -> bool:
        if path not in self._infos:
            info = sf.info(path)
            self._infos[path] = (int(info.frames), int(info.samplerate))
        frames, rate = self._infos[path]
        return frames / rate > self.max_cached_seconds

    def get(self, path: str) -> np.ndarray:
        """The whole clip, (channels, time) float32."""
        clip = self._clips.get(path)
        if clip is None:
            clip = self._decode(*read_audio(path), path)
            if self.cache and not self._is_long(path):
                self._clips[path] = clip
        return clip

    def crop(self, path: str, offset: int, length: int) -> np.ndarray:
        """(channels, length) from ``offset``, zero-padded past the clip's end."""
        if path in self._clips or not self._is_long(path):
            return np.stack([crop(channel, offset, length) for channel in self.get(path)])
        rate = self._infos[path][1]
        start = int(np.floor(offset * rate / self.sample_rate))
        skip = offset - int(round(start * self.sample_rate / rate))  # sub-frame remainder
        frames = int(np.ceil((length + skip) * rate / self.sample_rate)) + 1
        wav, _ = sf.read(path, start=start, frames=frames, dtype="float32", always_2d=True)
        piece = self._decode(wav.T, rate, path)
        return np.stack([crop(channel, skip, length) for channel in piece])

    def _measure(self, path: str) -> None:
        clip = self.get(path)
        self._gains[path] = loudness_gain(clip.T, self.sample_rate)
        self._powers[path] = float(np.mean(clip.astype(np.float64) ** 2))

    def gain(self, path: str) -> float:
        """Linear factor bringing the whole clip to -23 LUFS (cached)."""
        if path not in self._gains:
            self._measure(path)
        return self._gains[path]

    def power(self, path: str) -> float:
        """Mean power of the whole clip (cached)."""
        if path not in self._powers:
            self._measure(path)
        return self._powers[path]


def render_prompt_mixture(
    store: MultiChannelClipStore,
    recipe: Mapping,
    segment: int,
    peak_limit: Optional[float] = PEAK_LIMIT,
) -> Tuple[np.ndarray, np.ndarray]:
    """Build (mixture, targets) from a recipe (``paths``, ``offsets``, ``gains_db``).

    Each target is its clip brought to -23 LUFS as a whole, cropped, times its gain; the
    mixture is their sum. If the mixture's peak exceeds ``peak_limit``, all are scaled together.

    Returns:
        (mixture, targets): float32 arrays.

    Shape:
        mixture (channels, segment), targets (n_sources, channels, segment)
    """
    targets = np.stack(
        [
            store.crop(path, int(offset), segment)
            * np.float32(store.gain(path) * 10.0 ** (float(gain_db) / 20.0))
            for path, offset, gain_db in zip(recipe["paths"], recipe["offsets"], recipe["gains_db"])
        ]
    ).astype(np.float32)
    mixture = targets.sum(axis=0)
    peak = float(np.max(np.abs(mixture))) if mixture.size else 0.0
    if peak_limit is not None and peak > peak_limit:
        scale = np.float32(peak_limit / peak)
        targets = targets * scale
        mixture = targets.sum(axis=0)
    return mixture.astype(np.float32), targets.astype(np.float32)


# ----------------------------------------------------------------------------- clips
class PromptMixtureSimulator:
    """Picks clips, offsets and gains for a prompt list, and renders the result.

    Args:
        manifest: Manifest CSV path or the table :func:`load_manifest` returns; rows need a
            ``category``; optional ``song`` and ``speaker`` group clips.
        sample_rate: Output rate.
        segment_seconds: Mixture length.
        gain_ranges: Category -> (low, high) dB (default :data:`DEFAULT_GAIN_RANGES`).
        channels: Output channels (mono clips are repeated, see :class:`MultiChannelClipStore`).
        peak_limit: Scale mixture and targets together when the peak exceeds it (None: never).
        min_active_db: Redraw an offset (up to 10 times) while the crop's power is more than
            this many dB below its clip's mean power (None: never).
    """

    def __init__(
        self,
        manifest: Union[str, pd.DataFrame],
        sample_rate: int,
        segment_seconds: float = 6.0,
        gain_ranges: Optional[Mapping[str, Sequence[float]]] = None,
        channels: int = 1,
        peak_limit: Optional[float] = PEAK_LIMIT,
        min_active_db: Optional[float] = -20.0,
    ):
        if segment_seconds <= 0:
            raise ValueError(f"segment_seconds must be > 0, got {segment_seconds}.")
        self.table = load_manifest(manifest) if isinstance(manifest, str) else manifest
        if "category" not in self.table.columns:
            raise ValueError("The manifest has no category column: rows need a prompt name.")
        self.sample_rate = int(sample_rate)
        self.segment = int(round(segment_seconds * sample_rate))
        self.channels = int(channels)
        self.peak_limit = peak_limit
        self.min_active_db = min_active_db
        gain_ranges = dict(DEFAULT_GAIN_RANGES if gain_ranges is None else gain_ranges)
        for category, bounds in gain_ranges.items():
            if len(bounds) != 2 or bounds[0] > bounds[1]:
                raise ValueError(
                    f"gain_ranges[{category!r}] must be (low, high) in dB, got {bounds}."
                )
        self.gain_ranges = {k: (float(lo), float(hi)) for k, (lo, hi) in gain_ranges.items()}
        self.store = MultiChannelClipStore(self.sample_rate, self.channels)

        self._paths = [os.path.normpath(path) for path in self.table["path"]]
        self._labels = [set(labels) for labels in self.table["label_list"]]
        self._samples = (self.table["duration"].to_numpy(float) * self.sample_rate).astype(int)
        songs = self.table["song"] if "song" in self.table.columns else [""] * len(self.table)
        speakers = (
            self.table["speaker"] if "speaker" in self.table.columns else [""] * len(self.table)
        )
        self._songs = [str(s) for s in songs]
        # A repeated prompt avoids the groups of its earlier picks; "" is no group.
        self._groups = [
            f"song:{song}" if song else (f"speaker:{spk}" if spk else "")
            for song, spk in zip(self._songs, speakers)
        ]
        self.pools: Dict[str, np.ndarray] = {
            category: np.flatnonzero(self.table["category"].to_numpy() == category)
            for category in sorted(set(self.table["category"]))
            if category
        }
        self._song_rows: Dict[Tuple[str, str], List[int]] = {}
        for row, (song, category) in enumerate(zip(self._songs, self.table["category"])):
            if song:
                self._song_rows.setdefault((song, category), []).append(row)

    def check_categories(self, categories: Sequence[str], what: str) -> None:
        """Raise a ValueError naming the categories without clips or without a gain range."""
        missing = sorted({c for c in categories if c not in self.pools})
        if missing:
            raise ValueError(
                f"The manifest has no clips of categories {missing} (needed by {what}); "
                f"it has {sorted(self.pools)}."
            )
        no_gain = sorted({c for c in categories if c not in self.gain_ranges})
        if no_gain:
            raise ValueError(f"gain_ranges has no entry for {no_gain} (needed by {what}).")

    def _pick(
        self,
        rng: np.random.Generator,
        category: str,
        used_rows: set,
        avoid_groups: set,
        avoid_labels: set,
    ) -> int:
        """A clip of ``category`` not in ``used_rows``; preferably outside ``avoid_groups``
        and, for distinct-label categories, sharing no label with ``avoid_labels``.
        Random draws first (O(1) on large pools); a scan only when they keep failing."""
        pool = self.pools[category]
        check_labels = category in DISTINCT_LABEL_CATEGORIES and bool(avoid_labels)
        tests = [
            lambda j: not (self._groups[j] and self._groups[j] in avoid_groups)
            and not (check_labels and self._labels[j] & avoid_labels),
            lambda j: not (self._groups[j] and self._groups[j] in avoid_groups),
            lambda j: True,
        ]
        for test in tests:
            for _ in range(32):
                row = int(pool[rng.integers(len(pool))])
                if row not in used_rows and test(row):
                    return row
            candidates = [int(j) for j in pool if j not in used_rows and test(j)]
            if candidates:
                return candidates[int(rng.integers(len(candidates)))]
        raise ValueError(
            f"Category {category!r} has {len(pool)} clip(s): not enough for "
            f"{len(used_rows) + 1} different clips in one mixture."
        )

    def _offset(self, rng: np.random.Generator, row: int) -> int:
        """A random crop start, redrawn while the crop is much quieter than the clip."""
        offset = random_offset(rng, int(self._samples[row]), self.segment)
        if self.min_active_db is None or self._samples[row] <= self.segment:
            return offset
        path = self._paths[row]
        floor = self.store.power(path) * 10.0 ** (self.min_active_db / 10.0)
        for _ in range(10):
            piece = self.store.crop(path, offset, self.segment).astype(np.float64)
            if np.mean(piece**2) >= floor:
                break
            offset = random_offset(rng, int(self._samples[row]), self.segment)
        return offset

    def draw_recipe(self, rng: np.random.Generator, prompts: Sequence[str]) -> dict:
        """Clips, offsets and gains for ``prompts``.

        Returns:
            dict: ``prompts``, ``paths`` (absolute), ``offsets`` (samples at
            ``sample_rate``), ``gains_db``, ``rows`` (manifest row indices).
        """
        self.check_categories(prompts, "the prompt list")
        rows: List[int] = []
        offsets: List[int] = []
        groups_by_category: Dict[str, set] = {}
        labels_by_category: Dict[str, set] = {}
        stem_songs: set = set()
        musicbg_songs: set = set()
        anchor: Optional[Tuple[str, int]] = None  # (song, offset) the stems share
        for prompt in prompts:
            used = set(rows)
            avoid_groups = set(groups_by_category.get(prompt, set()))
            row = None
            if prompt in STEMS and anchor is not None and prompt not in groups_by_category:
                choices = [j for j in self._song_rows.get((anchor[0], prompt), []) if j not in used]
                if choices:
                    row = choices[int(rng.integers(len(choices)))]
                    offset = anchor[1]
            if row is None:
                if prompt in STEMS:
                    avoid_groups |= {f"song:{s}" for s in musicbg_songs}
                    if anchor is not None:  # a repeated stem, or one the song lacks
                        avoid_groups.add(f"song:{anchor[0]}")
                elif prompt == "musicbg":
                    avoid_groups |= {f"song:{s}" for s in stem_songs}
                row = self._pick(
                    rng, prompt, used, avoid_groups, labels_by_category.get(prompt, set())
                )
                offset = self._offset(rng, row)
                song = self._songs[row]
                if prompt in STEMS and song and anchor is None:
                    anchor = (song, offset)
            song = self._songs[row]
            if song and prompt in STEMS:
                stem_songs.add(song)
            elif song and prompt == "musicbg":
                musicbg_songs.add(song)
            groups_by_category.setdefault(prompt, set()).add(self._groups[row])
            labels_by_category.setdefault(prompt, set()).update(self._labels[row])
            rows.append(row)
            offsets.append(int(offset))
        gains = [float(rng.uniform(*self.gain_ranges[prompt])) for prompt in prompts]
        return dict(
            prompts=list(prompts),
            paths=[self._paths[j] for j in rows],
            offsets=offsets,
            gains_db=gains,
            rows=rows,
        )

    def render(self, recipe: Mapping) -> Tuple[np.ndarray, np.ndarray]:
        """(mixture (C, T), targets (N, C, T)) of a recipe, see :func:`render_prompt_mixture`."""
        return render_prompt_mixture(self.store, recipe, self.segment, self.peak_limit)


def _item(mixture: np.ndarray, targets: np.ndarray, prompts: Sequence[str]) -> dict:
    return dict(
        mixture=torch.from_numpy(mixture),
        targets=torch.from_numpy(targets),
        conditions=list(prompts),
    )


def _infos(dataset_name: str) -> dict:
    return dict(
        dataset=dataset_name,
        task="prompt-driven multi-source separation",
        licenses=[BUILTIN_CORPUS_LICENSE],
    )


# ----------------------------------------------------------------------------- datasets
class PromptMixtureDataset(Dataset):
    """Dynamic prompt-list mixtures (TUSS training data).

    Each item is drawn from a generator seeded by (seed, epoch, index): its first draw is
    the number of sources, then the prompts, then clips, offsets and gains. An epoch is
    reproducible and epochs differ (:meth:`set_epoch`, called by the training System).
    Items of one batch must have the same number of sources: use
    :class:`PromptBatchSampler` and :func:`collate_prompt_mixtures`.

    Args:
        manifest: Manifest CSV path or loaded table, with a ``category`` column.
        sample_rate: Output rate.
        segment_seconds: Mixture length (TUSS: 6 s).
        init_prob: First-prompt distribution (default :data:`DEFAULT_INIT_PROB`).
        transition: Next-prompt table (default :data:`DEFAULT_TRANSITION`).
        num_sources: Possible source counts.
        num_sources_weights: Their probabilities.
        gain_ranges: Category -> (low, high) dB (default :data:`DEFAULT_GAIN_RANGES`).
        no_repeat: Categories used at most once per mixture.
        channels: Output channels.
        peak_limit: Joint rescaling threshold of mixture and targets (None: off).
        min_active_db: See :class:`PromptMixtureSimulator`.
        items_per_epoch: Epoch length (default: one item per clip).
        seed: Base seed.

    Returns (per item):
        dict: ``mixture`` (C, T) float32, ``targets`` (N, C, T) float32, ``conditions`` the
        N prompt names in the targets' order.
    """

    dataset_name = "PromptMixtures"

    def __init__(
        self,
        manifest: Union[str, pd.DataFrame],
        sample_rate: int,
        segment_seconds: float = 6.0,
        init_prob: Optional[Mapping[str, float]] = None,
        transition: Optional[Mapping[str, Mapping[str, float]]] = None,
        num_sources: Sequence[int] = (2, 3, 4),
        num_sources_weights: Sequence[float] = (1 / 3, 1 / 3, 1 / 3),
        gain_ranges: Optional[Mapping[str, Sequence[float]]] = None,
        no_repeat: Sequence[str] = DEFAULT_NO_REPEAT,
        channels: int = 1,
        peak_limit: Optional[float] = PEAK_LIMIT,
        min_active_db: Optional[float] = -20.0,
        items_per_epoch: Optional[int] = None,
        seed: int = 0,
    ):
        self.prompt_sampler = PromptSequenceSampler(
            DEFAULT_INIT_PROB if init_prob is None else init_prob,
            DEFAULT_TRANSITION if transition is None else transition,
            num_sources,
            num_sources_weights,
            no_repeat,
        )
        self.simulator = PromptMixtureSimulator(
            manifest, sample_rate, segment_seconds, gain_ranges, channels, peak_limit, min_active_db
        )
        self.simulator.check_categories(self.prompt_sampler.categories, "init_prob/transition")
        self.sample_rate = self.simulator.sample_rate
        self.segment = self.simulator.segment
        self.items_per_epoch = int(items_per_epoch or len(self.simulator.table))
        self.seed = int(seed)
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        """Select the epoch's random stream."""
        self.epoch = int(epoch)

    def __len__(self) -> int:
        return self.items_per_epoch

    def _rng(self, index: int) -> np.random.Generator:
        return np.random.default_rng([self.seed, self.epoch, int(index)])

    def num_sources(self, index: int) -> int:
        """The item's source count, without drawing the rest (for batching)."""
        return self.prompt_sampler.draw_count(self._rng(index))

    def recipe(self, index: int) -> dict:
        """What item ``index`` of the current epoch is made of (see
        :meth:`PromptMixtureSimulator.draw_recipe`)."""
        rng = self._rng(index)
        prompts = self.prompt_sampler.draw(rng)
        return self.simulator.draw_recipe(rng, prompts)

    def __getitem__(self, index: int) -> dict:
        recipe = self.recipe(index)
        mixture, targets = self.simulator.render(recipe)
        return _item(mixture, targets, recipe["prompts"])

    def get_infos(self) -> dict:
        return _infos(self.dataset_name)


class PromptBatchSampler(Sampler):
    """Batches of indices whose items have the same number of sources.

    Per epoch (the dataset's :attr:`epoch`), indices are grouped by source count, shuffled
    within groups, cut into batches, and the batches shuffled; deterministic per
    (seed, epoch).

    Args:
        dataset: A :class:`PromptMixtureDataset`.
        batch_size: Items per batch.
        shuffle: Shuffle indices and batches (else ascending order within each count).
        drop_last: Drop each group's incomplete last batch.
        seed: Seed of the shuffling.
    """

    def __init__(
        self,
        dataset: PromptMixtureDataset,
        batch_size: int,
        shuffle: bool = True,
        drop_last: bool = False,
        seed: int = 0,
    ):
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}.")
        self.dataset = dataset
        self.batch_size = int(batch_size)
        self.shuffle = shuffle
        self.drop_last = drop_last
        self.seed = int(seed)

    def _batches(self) -> List[List[int]]:
        rng = np.random.default_rng([self.seed, self.dataset.epoch])
        groups: Dict[int, List[int]] = {}
        for index in range(len(self.dataset)):
            groups.setdefault(self.dataset.num_sources(index), []).append(index)
        batches = []
        for count in sorted(groups):
            indices = np.array(groups[count])
            if self.shuffle:
                indices = rng.permutation(indices)
            for start in range(0, len(indices), self.batch_size):
                batch = [int(i) for i in indices[start : start + self.batch_size]]
                if len(batch) == self.batch_size or not self.drop_last:
                    batches.append(batch)
        if self.shuffle:
            batches = [batches[i] for i in rng.permutation(len(batches))]
        return batches

    def __iter__(self) -> Iterator[List[int]]:
        return iter(self._batches())

    def __len__(self) -> int:
        return len(self._batches())


def collate_prompt_mixtures(items: Sequence[dict]) -> dict:
    """Stack items of equal source count into a batch.

    Returns:
        dict: ``mixture`` (B, C, T), ``targets`` (B, N, C, T), ``conditions`` (B lists of N
        names).

    Raises:
        ValueError: Items with different numbers of sources (batch with
            :class:`PromptBatchSampler`).
    """
    counts = sorted({len(item["conditions"]) for item in items})
    if len(counts) > 1:
        raise ValueError(
            f"Items with different numbers of sources {counts} in one batch; "
            "use PromptBatchSampler to batch by source count."
        )
    return dict(
        mixture=torch.stack([item["mixture"] for item in items]),
        targets=torch.stack([item["targets"] for item in items]),
        conditions=[list(item["conditions"]) for item in items],
    )


# ----------------------------------------------------------------------------- test sets
def _task_prompts(task: Union[str, Sequence[str]]) -> Tuple[str, Tuple[str, ...]]:
    if isinstance(task, str):
        if task not in TASKS:
            raise ValueError(f"Unknown task {task!r}; choose one of {sorted(TASKS)}.")
        return task, TASKS[task]
    prompts = tuple(str(p) for p in task)
    if not prompts:
        raise ValueError("task must be a task name or a non-empty prompt list.")
    return "custom", prompts


def _meta_path(path: str) -> str:
    return os.path.splitext(path)[0] + ".json"


def write_prompt_test_set(
    path: str,
    manifest: Union[str, pd.DataFrame],
    task: Union[str, Sequence[str]],
    n: int,
    seed: int,
    sample_rate: int,
    segment_seconds: float = 6.0,
    gain_ranges: Optional[Mapping[str, Sequence[float]]] = None,
    channels: int = 1,
    peak_limit: Optional[float] = PEAK_LIMIT,
    min_active_db: Optional[float] = -20.0,
) -> str:
    """Draw ``n`` mixtures of one task and write them as a shareable list.

    Every source is stored with its clip path (relative to the list's folder, so the folder
    can be moved with its audio), offset (samples at ``sample_rate``), gain (dB, 4 decimals,
    the value rendered) and prompt. The same arguments always give a byte-identical file.

    Formats, by extension:

    - ``.csv``: one row per source (:data:`FIXED_SET_COLUMNS`), settings in a ``.json``
      beside it (same name);
    - ``.json``: one document with the settings and ``mixtures``, each a list of sources.

    Args:
        path: Output file (``.csv`` or ``.json``).
        manifest: Held-out clips (path or loaded table) with a ``category`` column.
        task: A name of :data:`TASKS` or a prompt list.
        n: Number of mixtures.
        seed: Mixture ``k`` is drawn from a generator seeded by (seed, k).
        sample_rate: Rate of the rendered set.
        segment_seconds: Mixture length.
        gain_ranges: Category -> (low, high) dB (default :data:`DEFAULT_GAIN_RANGES`).
        channels: Rendered channels.
        peak_limit: Stored and applied by :class:`FixedPromptMixtureDataset`.
        min_active_db: See :class:`PromptMixtureSimulator`.

    Returns:
        str: ``path``.
    """
    extension = os.path.splitext(path)[1].lower()
    if extension not in (".csv", ".json"):
        raise ValueError(f"path must end in .csv or .json, got {path!r}.")
    if n < 1:
        raise ValueError(f"n must be >= 1, got {n}.")
    task_name, prompts = _task_prompts(task)
    simulator = PromptMixtureSimulator(
        manifest, sample_rate, segment_seconds, gain_ranges, channels, peak_limit, min_active_db
    )
    simulator.check_categories(prompts, f"task {task_name!r}")
    root = os.path.dirname(os.path.abspath(path))
    mixtures = []
    for k in range(n):
        recipe = simulator.draw_recipe(np.random.default_rng([seed, k]), prompts)
        mixtures.append(
            [
                dict(
                    prompt=prompt,
                    path=os.path.relpath(clip, root).replace(os.sep, "/"),
                    offset=int(offset),
                    gain_db=round(gain, 4),
                )
                for prompt, clip, offset, gain in zip(
                    recipe["prompts"], recipe["paths"], recipe["offsets"], recipe["gains_db"]
                )
            ]
        )
    settings = dict(
        task=task_name,
        prompts=list(prompts),
        sample_rate=simulator.sample_rate,
        segment=simulator.segment,
        channels=simulator.channels,
        peak_limit=peak_limit,
        seed=int(seed),
    )
    if extension == ".json":
        document = dict(
            settings,
            mixtures=[dict(mixture_id=f"mix{k:05d}", sources=s) for k, s in enumerate(mixtures)],
        )
        with atomic_write(path) as tmp_path:
            with open(tmp_path, "w") as out:
                json.dump(document, out, indent=1)
                out.write("\n")
        return path
    rows = [
        dict(mixture_id=f"mix{k:05d}", source=i, **source)
        for k, sources in enumerate(mixtures)
        for i, source in enumerate(sources)
    ]
    with atomic_write(path) as tmp_path:
        pd.DataFrame(rows, columns=list(FIXED_SET_COLUMNS)).to_csv(tmp_path, index=False)
    with atomic_write(_meta_path(path)) as tmp_path:
        with open(tmp_path, "w") as out:
            json.dump(settings, out, indent=1)
            out.write("\n")
    return path


def read_prompt_test_set(path: str) -> Tuple[dict, List[dict]]:
    """Settings and recipes (absolute paths) of a list written by
    :func:`write_prompt_test_set`."""
    if not os.path.isfile(path):
        raise FileNotFoundError(f"Prompt test set not found: {path}")
    root = os.path.dirname(os.path.abspath(path))
    if path.lower().endswith(".json"):
        with open(path) as handle:
            document = json.load(handle)
        mixtures = [(m["mixture_id"], m["sources"]) for m in document.pop("mixtures")]
        settings = document
    else:
        meta = _meta_path(path)
        if not os.path.isfile(meta):
            raise FileNotFoundError(f"Settings of {path} not found: {meta}")
        with open(meta) as handle:
            settings = json.load(handle)
        table = pd.read_csv(path, dtype={"path": str, "prompt": str, "mixture_id": str})
        missing = [c for c in FIXED_SET_COLUMNS if c not in table.columns]
        if missing:
            raise ValueError(f"{path}: missing columns {missing}.")
        mixtures = [
            (mixture_id, group.sort_values("source").to_dict("records"))
            for mixture_id, group in table.groupby("mixture_id", sort=True)
        ]
    recipes = [
        dict(
            mixture_id=mixture_id,
            prompts=[str(s["prompt"]) for s in sources],
            paths=[os.path.normpath(os.path.join(root, s["path"])) for s in sources],
            offsets=[int(s["offset"]) for s in sources],
            gains_db=[float(s["gain_db"]) for s in sources],
        )
        for mixture_id, sources in mixtures
    ]
    return settings, recipes


class FixedPromptMixtureDataset(Dataset):
    """Renders a list written by :func:`write_prompt_test_set`.

    Args:
        path: The ``.csv`` (with its ``.json`` beside it) or ``.json`` list.

    Returns (per item):
        dict: ``mixture`` (C, T), ``targets`` (N, C, T), ``conditions`` (N prompt names).
    """

    dataset_name = "FixedPromptMixtures"

    def __init__(self, path: str):
        settings, self.recipes = read_prompt_test_set(path)
        self.task = settings.get("task", "custom")
        self.sample_rate = int(settings["sample_rate"])
        self.segment = int(settings["segment"])
        self.peak_limit = settings.get("peak_limit", PEAK_LIMIT)
        self.store = MultiChannelClipStore(self.sample_rate, int(settings.get("channels", 1)))

    def __len__(self) -> int:
        return len(self.recipes)

    def __getitem__(self, index: int) -> dict:
        recipe = self.recipes[index]
        mixture, targets = render_prompt_mixture(self.store, recipe, self.segment, self.peak_limit)
        return _item(mixture, targets, recipe["prompts"])

    def get_infos(self) -> dict:
        return _infos(self.dataset_name)


# ----------------------------------------------------------------------------- corpora
#: Built-in event classes used as stationary backgrounds (``sfxbg``); the others are ``sfx``.
SFXBG_CLASSES: Tuple[str, ...] = ("Rain", "Wind", "Engine")
#: Labels of MUSDB18 stems and mixtures in a unified manifest.
MUSIC_LABELS: Dict[str, str] = {
    "drums": "Drum kit",
    "bass": "Bass guitar",
    "vocals": "Singing",
    "other": "Musical instrument",
    "musicbg": "Music",
}


def music_rows(music_dir: str, split: str, csv_root: str) -> List[dict]:
    """Manifest rows of a MUSDB18-HQ-style folder ``<music_dir>/<split>/<song>/*.wav``.

    ``drums``, ``bass``, ``vocals``, ``other`` become rows of those categories and
    ``mixture`` a ``musicbg`` row; every row carries ``song=<split>/<song>``. Missing stems
    are skipped.

    Raises:
        FileNotFoundError: No ``<music_dir>/<split>`` folder.
        ValueError: It holds no song with any of those files.
    """
    split_dir = os.path.join(music_dir, split)
    if not os.path.isdir(split_dir):
        raise FileNotFoundError(f"No music split folder {split_dir} (MUSDB18-HQ layout).")
    rows = []
    for song in sorted(os.listdir(split_dir)):
        song_dir = os.path.join(split_dir, song)
        if not os.path.isdir(song_dir):
            continue
        for stem, category in [(s, s) for s in STEMS] + [("mixture", "musicbg")]:
            wav_path = os.path.join(song_dir, f"{stem}.wav")
            if not os.path.isfile(wav_path):
                continue
            info = sf.info(wav_path)
            rows.append(
                dict(
                    path=os.path.relpath(os.path.abspath(wav_path), csv_root).replace(os.sep, "/"),
                    labels=MUSIC_LABELS[category],
                    duration=round(info.frames / info.samplerate, 4),
                    sample_rate=info.samplerate,
                    category=category,
                    song=f"{split}/{song}",
                )
            )
    if not rows:
        raise ValueError(f"{split_dir} holds no <song>/{{mixture,{','.join(STEMS)}}}.wav files.")
    return rows


def make_unified_manifest(
    csv_path: str,
    speech_manifest: Optional[str] = None,
    event_manifest: Optional[str] = None,
    music_dir: Optional[str] = None,
    music_split: str = "train",
    sfxbg_classes: Sequence[str] = SFXBG_CLASSES,
) -> str:
    """Write one manifest with a ``category`` for every row, from separate collections.

    Args:
        csv_path: Output manifest; paths in it are relative to its folder.
        speech_manifest: Speech clips (category ``speech`` unless the rows have one).
        event_manifest: Sound events: ``sfxbg`` if a label is in ``sfxbg_classes``, else
            ``sfx`` (unless the rows have a category).
        music_dir: A MUSDB18-HQ-style folder (see :func:`music_rows`).
        music_split: Its split subfolder (``train`` or ``test``).
        sfxbg_classes: Event labels treated as backgrounds.

    Returns:
        str: ``csv_path``.
    """
    if not (speech_manifest or event_manifest or music_dir):
        raise ValueError("Give at least one of speech_manifest, event_manifest, music_dir.")
    root = os.path.dirname(os.path.abspath(csv_path))
    backgrounds = set(sfxbg_classes)
    rows: List[dict] = []
    for source, default in ((speech_manifest, "speech"), (event_manifest, None)):
        if not source:
            continue
        for row in load_manifest(source).itertuples(index=False):
            category = row.category or default
            if category is None:
                category = "sfxbg" if backgrounds & set(row.label_list) else "sfx"
            rows.append(
                dict(
                    path=os.path.relpath(row.path, root).replace(os.sep, "/"),
                    labels=row.labels,
                    caption=row.caption,
                    duration=round(float(row.duration), 4),
                    sample_rate=int(row.sample_rate),
                    category=category,
                    song=row.song,
                    speaker=row.speaker,
                )
            )
    if music_dir:
        rows.extend(music_rows(music_dir, music_split, root))
    columns = ["path", "labels", "caption", "duration", "sample_rate", "category", "song"]
    columns.append("speaker")
    table = pd.DataFrame(rows).reindex(columns=columns).fillna("")
    return write_manifest(table.to_dict("records"), csv_path)


def make_unified_corpus(
    out_dir: str,
    n_speakers: int = 20,
    utterances_per_speaker: int = 6,
    clips_per_class: int = 40,
    sample_rate: int = 16000,
    seconds_range: Sequence[float] = (3.0, 6.0),
    seed: int = 0,
    music_dir: Optional[str] = None,
    test_fraction: float = 0.25,
    event_classes: Optional[Sequence[str]] = None,
) -> Dict[str, str]:
    """The offline default data for prompt-driven separation: ``<out_dir>/{train,test}.csv``.

    Writes formant-synthesised speech (:mod:`asteroid_lass.data.speech_synth`, disjoint
    talkers per split) under ``speech/`` and built-in sound events
    (:mod:`asteroid_lass.data.synth`) under ``events/``; with ``music_dir`` (MUSDB18-HQ
    layout, e.g. from ``music_synth.make_music_corpus``) its ``train``/``test`` songs are
    added as stems and ``musicbg``.

    Args:
        out_dir: Output folder.
        n_speakers: Training talkers (the test split gets ``test_fraction`` of it, >= 2).
        utterances_per_speaker: Clips per talker.
        clips_per_class: Training clips per event class (test: ``test_fraction``, >= 2).
        sample_rate: Clip rate.
        seconds_range: Clip durations.
        seed: Base seed.
        music_dir: Optional MUSDB18-HQ-style folder.
        test_fraction: Size of the test split relative to the training split.
        event_classes: Subset of the built-in classes (default: all).

    Returns:
        dict: split name -> manifest path.
    """
    from .speech_synth import make_speech_corpus
    from .synth import make_corpus

    manifests = {}
    for split in ("train", "test"):
        scale = 1.0 if split == "train" else test_fraction
        speech = make_speech_corpus(
            os.path.join(out_dir, "speech"),
            n_speakers=max(int(round(n_speakers * scale)), 2),
            utterances_per_speaker=utterances_per_speaker,
            sample_rate=sample_rate,
            seconds_range=seconds_range,
            seed=seed,
            split=split,
        )
        events = make_corpus(
            os.path.join(out_dir, "events"),
            clips_per_class=max(int(round(clips_per_class * scale)), 2),
            sample_rate=sample_rate,
            seconds_range=seconds_range,
            seed=seed,
            classes=None if event_classes is None else list(event_classes),
            split=split,
        )
        manifests[split] = make_unified_manifest(
            os.path.join(out_dir, f"{split}.csv"),
            speech_manifest=speech,
            event_manifest=events,
            music_dir=music_dir,
            music_split=split,
        )
    return manifests
