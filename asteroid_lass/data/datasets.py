"""Query-conditioned mixture datasets: dynamic mixing for training, fixed lists for testing.

Both datasets share one recipe format (which clips, where to crop, which SNR, which query)
and one renderer, so a fixed test set is exactly what the training sampler would have drawn.
"""

import json
import math
import os
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np
import pandas as pd
import torch
from torch.utils.data import Dataset

from ..audio import raise_non_finite, read_audio, resample
from ..errors import AudioFileError
from ..utils import atomic_write, is_number
from .augment import Augmentation
from .batch import separation_item
from .manifest import LABEL_SEPARATOR, label_key, load_manifest, split_labels
from .mixing import mix

DEFAULT_TEMPLATES = (
    "{label}",
    "the sound of {label}",
    "{label} can be heard",
    "a recording of {label}",
)
FIXED_COLUMNS = (
    "mixture_id",
    "target_path",
    "target_offset",
    "interferer_paths",
    "interferer_offsets",
    "snr_db",
    "query",
    "target_labels",
)

BUILTIN_CORPUS_LICENSE = dict(
    title="asteroid-lass built-in corpus",
    title_link="https://github.com/asteroid-team/asteroid",
    author="asteroid-lass contributors",
    author_link="https://github.com/asteroid-team/asteroid",
    license="MIT",
    license_link="https://opensource.org/licenses/MIT",
    non_commercial=False,
)


def _any_disjoint_pair(label_sets: Sequence[set]) -> bool:
    """Whether any two clips share no label, over all rows (compared by distinct label sets)."""
    distinct = list({frozenset(labels) for labels in label_sets})
    return any(
        not first & second for i, first in enumerate(distinct) for second in distinct[i + 1 :]
    )


def random_offset(rng: np.random.Generator, clip_samples: int, segment: int) -> int:
    """Start of a uniformly random ``segment``-long crop of a clip (0 if the clip is shorter)."""
    spare = clip_samples - segment
    return int(rng.integers(0, spare + 1)) if spare > 0 else 0


def crop(clip: np.ndarray, offset: int, length: int) -> np.ndarray:
    """``length`` samples from ``offset``, zero-padded past the clip's end."""
    clip = clip[offset : offset + length]
    if clip.shape[0] < length:
        clip = np.pad(clip, (0, length - clip.shape[0]))
    return clip


def corpus_infos(dataset_name: str) -> dict:
    """Asteroid-style ``get_infos()`` of a dataset built on the built-in corpus."""
    return dict(
        dataset=dataset_name,
        task="text-queried single-source extraction",
        licenses=[BUILTIN_CORPUS_LICENSE],
    )


class ClipStore:
    """Decodes clips once, as mono float32 at one sample rate, and keeps them in memory.

    Args:
        sample_rate: Rate to resample every clip to (the model's rate).
        cache: Keep decoded clips (a worker then reads each file once per run).
    """

    def __init__(self, sample_rate: int, cache: bool = True):
        self.sample_rate = int(sample_rate)
        self.cache = cache
        self._clips: Dict[str, np.ndarray] = {}

    def get(self, path: str) -> np.ndarray:
        clip = self._clips.get(path)
        if clip is None:
            wav, rate = read_audio(path)
            if wav.shape[-1] == 0:
                raise AudioFileError(f"{path} is empty (0 samples).")
            bad = ~np.isfinite(wav)
            if bad.any():  # a manifest loaded with check_audio=False lets such clips through
                raise_non_finite(np.argwhere(bad)[0].tolist(), path, AudioFileError, channels=True)
            mono = torch.from_numpy(wav.mean(axis=0))
            clip = resample(mono, rate, self.sample_rate).numpy().astype(np.float32)
            if self.cache:
                self._clips[path] = clip
        return clip

    def crop(self, path: str, offset: int, length: int) -> np.ndarray:
        """``length`` samples of the clip from ``offset``, zero-padded past its end."""
        return crop(self.get(path), offset, length)


def draw_query(
    rng: np.random.Generator,
    labels: Sequence[str],
    caption: str,
    query_source: str,
    template_probability: float,
    templates: Sequence[str],
) -> str:
    """The query of one item: a caption, or one of the labels, maybe in a template."""
    use_caption = query_source == "caption" or (query_source == "mixed" and rng.random() < 0.5)
    if use_caption and caption.strip():
        return caption
    label = labels[int(rng.integers(len(labels)))]
    if template_probability and rng.random() < template_probability:
        return templates[int(rng.integers(len(templates)))].format(label=label)
    return label


def crop_sources(
    store: ClipStore, recipe: dict, segment: int
) -> Tuple[np.ndarray, List[np.ndarray]]:
    """The (target, interferers) crops a recipe (see :data:`FIXED_COLUMNS`) names."""
    target = store.crop(recipe["target_path"], int(recipe["target_offset"]), segment)
    interferers = [
        store.crop(path, int(offset), segment)
        for path, offset in zip(recipe["interferer_paths"], recipe["interferer_offsets"])
    ]
    return target, interferers


def render(store: ClipStore, recipe: dict, segment: int) -> Tuple[np.ndarray, np.ndarray]:
    """Build (mixture, target) from a recipe (see :data:`FIXED_COLUMNS`), unaugmented."""
    target, interferers = crop_sources(store, recipe, segment)
    return mix(target, interferers, float(recipe["snr_db"]), store.sample_rate)


class MixingSettings:
    """What every query-mixture dataset shares: mixing options, epochs, and its infos."""

    dataset_name = "QueryMixtures"

    def _set_mixing(
        self,
        sample_rate: int,
        segment_seconds: float,
        max_interferers: int,
        snr_range: Sequence[float],
        query_source: str,
        template_probability: float,
        templates: Sequence[str],
        seed: int,
        augmentation: Optional[Augmentation] = None,
    ) -> None:
        if query_source not in ("label", "caption", "mixed"):
            raise ValueError(f"query_source must be label, caption or mixed, got {query_source!r}.")
        if not (is_number(sample_rate) and 0 < sample_rate < math.inf):
            raise ValueError(f"sample_rate must be a positive number of Hz, got {sample_rate!r}.")
        if not (is_number(segment_seconds) and 0 < segment_seconds < math.inf):
            raise ValueError(
                f"segment_seconds must be a positive number of seconds, got {segment_seconds!r}."
            )
        if int(round(segment_seconds * sample_rate)) < 1:
            raise ValueError(
                f"segment_seconds={segment_seconds} is shorter than one sample at {sample_rate} Hz."
            )
        if not all(is_number(v) and math.isfinite(v) for v in snr_range):
            raise ValueError(f"snr_range must be two finite numbers of dB, got {snr_range!r}.")
        if not (is_number(template_probability) and 0 <= template_probability <= 1):
            raise ValueError(
                f"template_probability must be in [0, 1], got {template_probability!r}."
            )
        if max_interferers < 1:
            raise ValueError(f"max_interferers must be >= 1, got {max_interferers}.")
        if snr_range[0] > snr_range[1]:
            raise ValueError(f"snr_range must be (low, high), got {tuple(snr_range)}.")
        self.sample_rate = int(sample_rate)
        self.segment = int(round(segment_seconds * sample_rate))
        self.max_interferers = int(max_interferers)
        self.snr_range = (float(snr_range[0]), float(snr_range[1]))
        self.query_source = query_source
        self.template_probability = float(template_probability)
        self.templates = tuple(templates)
        self.seed = int(seed)
        self.augmentation = augmentation
        # Samples cropped per source: more than a segment when the augmentation transposes.
        self.source_samples = (
            self.segment if augmentation is None else augmentation.source_samples(self.segment)
        )
        self.epoch = 0

    def _mix(
        self,
        rng: np.random.Generator,
        target: np.ndarray,
        interferers: Sequence[np.ndarray],
        snr_db: float,
    ) -> Tuple[np.ndarray, np.ndarray]:
        """:func:`~asteroid_lass.data.mixing.mix`, with the training augmentation if any."""
        augmentation = self.augmentation
        if augmentation is not None:
            target = augmentation.source(rng, target, self.sample_rate, self.segment)
            interferers = [
                augmentation.source(rng, w, self.sample_rate, self.segment) for w in interferers
            ]
        mixture, target = mix(target, interferers, snr_db, self.sample_rate)
        if augmentation is not None:
            mixture, target = augmentation.level(rng, mixture, target)
        return mixture, target

    def set_epoch(self, epoch: int) -> None:
        """Select the epoch's random stream (the training System calls it)."""
        self.epoch = int(epoch)

    @classmethod
    def from_conf(cls, source, data: dict, seed: int = 0, **overrides):
        """The dataset a recipe's ``data`` group describes (sample_rate, segment_seconds,
        max_interferers, snr_low, snr_high, query_source, template_probability,
        items_per_epoch, and the ``augment_*`` keys of :meth:`Augmentation.from_conf`), on
        ``source`` (a manifest, or shards for the sharded dataset)."""
        settings = dict(
            sample_rate=data["sample_rate"],
            segment_seconds=data["segment_seconds"],
            max_interferers=data["max_interferers"],
            snr_range=(data["snr_low"], data["snr_high"]),
            query_source=data.get("query_source", "label"),
            template_probability=data.get("template_probability", 0.0),
            augmentation=Augmentation.from_conf(data),
            seed=seed,
        )
        if data.get("items_per_epoch") is not None:  # else the dataset's own default
            settings["items_per_epoch"] = data["items_per_epoch"]
        settings.update(overrides)
        return cls(source, **settings)

    def get_infos(self) -> dict:
        return corpus_infos(self.dataset_name)


class QueryMixtureDataset(MixingSettings, Dataset):
    """Dynamic mixtures of a target clip and 1..K interferers that share none of its labels.

    Each item is drawn from a generator seeded by (seed, epoch, index): an epoch is
    reproducible, and epochs differ (call :meth:`set_epoch`, done by the training System).

    Args:
        manifest: A manifest CSV path or the table :func:`load_manifest` returns.
        sample_rate: Output sample rate (the model's).
        segment_seconds: Crop length (AudioSep: 5 s).
        max_interferers: K, the largest number of interferers (at least 1 is used).
        snr_range: Target-to-interference ratio range in dB (AudioSep: -10..10).
        query_source: ``"label"``, ``"caption"`` (falls back to the label when a clip has no
            caption) or ``"mixed"`` (either, with equal chance).
        template_probability: Chance of wrapping a label in a random template, e.g.
            "the sound of {label}".
        templates: Template strings with a ``{label}`` field.
        items_per_epoch: Length of an epoch (default: one item per clip).
        augmentation: Random pitch, level, colour and room of each item's sources (default:
            none). A transposing one crops each source longer than ``segment_seconds``.
        seed: Base seed.

    Returns (per item):
        dict: ``mixture`` (1, time), ``targets`` (1, 1, time), ``conditions`` [query text]
        (see :mod:`asteroid_lass.data.batch`), ``key``: the item's index.
    """

    dataset_name = "QueryMixtures"

    def __init__(
        self,
        manifest,
        sample_rate: int,
        segment_seconds: float = 5.0,
        max_interferers: int = 1,
        snr_range: Sequence[float] = (-10.0, 10.0),
        query_source: str = "label",
        template_probability: float = 0.0,
        templates: Sequence[str] = DEFAULT_TEMPLATES,
        items_per_epoch: Optional[int] = None,
        augmentation: Optional[Augmentation] = None,
        seed: int = 0,
    ):
        self._set_mixing(
            sample_rate,
            segment_seconds,
            max_interferers,
            snr_range,
            query_source,
            template_probability,
            templates,
            seed,
            augmentation,
        )
        self.table = load_manifest(manifest) if isinstance(manifest, str) else manifest
        self.items_per_epoch = int(items_per_epoch or len(self.table))
        self.store = ClipStore(self.sample_rate)
        # "Dog" and " dog" are one label: never mix a dog with a dog.
        self._labels = [{label_key(x) for x in labels} for labels in self.table["label_list"]]
        self._durations = self.table["duration"].to_numpy(dtype=float)
        if not _any_disjoint_pair(self._labels):
            raise ValueError("No two clips in the manifest have disjoint labels: nothing to mix.")

    def __len__(self) -> int:
        return self.items_per_epoch

    def _disjoint_candidates(self, index: int) -> np.ndarray:
        labels = self._labels[index]
        return np.array([j for j, other in enumerate(self._labels) if not labels & other])

    def _offset(self, rng: np.random.Generator, index: int) -> int:
        clip_samples = int(self._durations[index] * self.sample_rate)
        return random_offset(rng, clip_samples, self.source_samples)

    def _query(self, rng: np.random.Generator, index: int) -> str:
        return draw_query(
            rng,
            self.table["label_list"].iat[index],
            self.table["caption"].iat[index],
            self.query_source,
            self.template_probability,
            self.templates,
        )

    def _draw_interferers(self, rng: np.random.Generator, target: int, count: int) -> List[int]:
        """``count`` distinct clips sharing no label with ``target`` (fewer if there are not
        enough). Rejection sampling, O(1) per draw on large collections; a full scan only when
        random draws keep hitting shared labels."""
        labels = self._labels[target]
        chosen: List[int] = []
        for _ in range(50 * count):
            candidate = int(rng.integers(len(self._labels)))
            if candidate not in chosen and not labels & self._labels[candidate]:
                chosen.append(candidate)
                if len(chosen) == count:
                    return chosen
        candidates = [j for j in self._disjoint_candidates(target) if j not in chosen]
        extra = rng.choice(
            candidates, size=min(count - len(chosen), len(candidates)), replace=False
        )
        return chosen + [int(j) for j in extra]

    def draw_recipe(self, rng: np.random.Generator) -> dict:
        """Draw one mixture recipe: target, interferers, offsets, SNR, query."""
        for _ in range(100):
            target = int(rng.integers(len(self.table)))
            n_interferers = int(rng.integers(1, self.max_interferers + 1))
            interferers = self._draw_interferers(rng, target, n_interferers)
            if interferers:
                break
        else:
            raise ValueError("Could not find a target with label-disjoint interferers.")
        return dict(
            target_path=self.table["path"].iloc[target],
            target_offset=self._offset(rng, target),
            interferer_paths=[self.table["path"].iloc[j] for j in interferers],
            interferer_offsets=[self._offset(rng, j) for j in interferers],
            snr_db=float(rng.uniform(*self.snr_range)),
            query=self._query(rng, target),
            target_labels=self.table["labels"].iloc[target],
        )

    def __getitem__(self, index: int):
        rng = np.random.default_rng([self.seed, self.epoch, int(index)])
        recipe = self.draw_recipe(rng)
        target, interferers = crop_sources(self.store, recipe, self.source_samples)
        mixture, target = self._mix(rng, target, interferers, float(recipe["snr_db"]))
        return separation_item(mixture, target[None], [recipe["query"]], key=int(index))


def write_fixed_mixtures(
    dataset: QueryMixtureDataset, csv_path: str, n_mixtures: int, seed: int
) -> str:
    """Draw ``n_mixtures`` recipes with ``dataset``'s sampler and write them as a CSV.

    Paths are stored relative to the CSV's folder, so the folder can be moved or shared.
    The same dataset, count and seed always give a byte-identical file.
    """
    root = os.path.dirname(os.path.abspath(csv_path))
    rows = []
    for k in range(n_mixtures):
        recipe = dataset.draw_recipe(np.random.default_rng([seed, k]))
        rows.append(
            dict(
                mixture_id=f"mix{k:05d}",
                target_path=os.path.relpath(recipe["target_path"], root),
                target_offset=recipe["target_offset"],
                interferer_paths=LABEL_SEPARATOR.join(
                    os.path.relpath(p, root) for p in recipe["interferer_paths"]
                ),
                interferer_offsets=LABEL_SEPARATOR.join(map(str, recipe["interferer_offsets"])),
                snr_db=recipe["snr_db"],
                query=recipe["query"],
                target_labels=recipe["target_labels"],
            )
        )
    with atomic_write(csv_path) as tmp_path:
        pd.DataFrame(rows, columns=list(FIXED_COLUMNS)).to_csv(tmp_path, index=False)
    with atomic_write(os.path.splitext(csv_path)[0] + ".json") as tmp_path:
        with open(tmp_path, "w") as meta:
            json.dump(
                dict(sample_rate=dataset.sample_rate, segment=dataset.segment, seed=seed), meta
            )
    return csv_path


class FixedMixtureDataset(Dataset):
    """Mixtures listed in a CSV written by :func:`write_fixed_mixtures`.

    Args:
        csv_path: The mixture list.
        sample_rate: Output rate (default: the one recorded beside the CSV).
        segment_seconds: Mixture length (default: the one recorded beside the CSV).

    Returns (per item):
        dict: ``mixture`` (1, time), ``targets`` (1, 1, time), ``conditions`` [query text]
        (see :mod:`asteroid_lass.data.batch`).
    """

    dataset_name = "FixedQueryMixtures"

    def __init__(
        self,
        csv_path: str,
        sample_rate: Optional[int] = None,
        segment_seconds: Optional[float] = None,
    ):
        if not os.path.isfile(csv_path):
            raise FileNotFoundError(f"Mixture list not found: {csv_path}")
        table = pd.read_csv(csv_path, dtype={"interferer_paths": str, "interferer_offsets": str})
        missing = [c for c in FIXED_COLUMNS if c not in table.columns]
        if missing:
            raise ValueError(f"{csv_path}: missing columns {missing}.")
        meta_path = os.path.splitext(csv_path)[0] + ".json"
        meta = {}
        if os.path.isfile(meta_path):
            with open(meta_path) as meta_file:
                meta = json.load(meta_file)
        self.sample_rate = int(sample_rate or meta.get("sample_rate", 0))
        if not self.sample_rate:
            raise ValueError(f"{csv_path}: no sample_rate given and no {meta_path}.")
        if segment_seconds is not None and not (
            is_number(segment_seconds) and 0 < segment_seconds < math.inf
        ):
            raise ValueError(
                f"segment_seconds must be a positive number of seconds, got {segment_seconds!r}."
            )
        self.segment = (
            int(round(segment_seconds * self.sample_rate))
            if segment_seconds is not None
            else int(meta["segment"])
        )
        root = os.path.dirname(os.path.abspath(csv_path))
        self.recipes: List[dict] = []
        for row in table.itertuples(index=False):
            paths = split_labels(row.interferer_paths)
            self.recipes.append(
                dict(
                    mixture_id=row.mixture_id,
                    target_path=os.path.normpath(os.path.join(root, row.target_path)),
                    target_offset=int(row.target_offset),
                    interferer_paths=[os.path.normpath(os.path.join(root, p)) for p in paths],
                    interferer_offsets=[int(o) for o in split_labels(row.interferer_offsets)],
                    snr_db=float(row.snr_db),
                    query=str(row.query),
                    target_labels=str(row.target_labels),
                )
            )
        self.store = ClipStore(self.sample_rate)

    def __len__(self) -> int:
        return len(self.recipes)

    def __getitem__(self, index: int):
        recipe = self.recipes[index]
        mixture, target = render(self.store, recipe, self.segment)
        return separation_item(mixture, target[None], [recipe["query"]])

    def get_infos(self) -> dict:
        return corpus_infos(self.dataset_name)
