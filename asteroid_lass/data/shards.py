"""WebDataset tar shards: the scale path for collections too large to read as loose files.

A shard holds, per clip, ``<key>.flac`` (mono, at the model's sample rate) and ``<key>.json``
(``{"labels": [...], "caption": "..."}``). :class:`ShardedQueryMixtureDataset` streams them and
mixes clips from a pool, with the same mixing rules as :class:`QueryMixtureDataset`.

In a distributed (DDP) run the shards are split by rank, then by DataLoader worker, so every
process and worker reads its own shards: ``shards[rank::world_size][worker::num_workers]``.
"""

import io
import json
import os
from typing import Iterator, List, Optional, Sequence, Tuple

import numpy as np
import soundfile as sf
from torch.utils.data import IterableDataset, get_worker_info

from .datasets import (
    DEFAULT_TEMPLATES,
    ClipStore,
    MixingSettings,
    crop,
    draw_query,
    random_offset,
)
from .manifest import label_key, load_manifest
from ..utils import process_rank
from .batch import separation_item
from .augment import Augmentation


def write_shards(
    manifest, out_dir: str, sample_rate: int, clips_per_shard: int = 1000
) -> List[str]:
    """Write a manifest's clips into ``out_dir/shard-%06d.tar``.

    Args:
        manifest: Manifest CSV path or the table :func:`load_manifest` returns.
        out_dir: Destination folder.
        sample_rate: Clips are stored mono at this rate (the model's), as 24-bit FLAC.
        clips_per_shard: Clips per tar file.

    Returns:
        list[str]: The shard paths, in order.
    """
    import webdataset as wds

    table = load_manifest(manifest) if isinstance(manifest, str) else manifest
    os.makedirs(out_dir, exist_ok=True)
    store = ClipStore(sample_rate, cache=False)
    pattern = os.path.join(out_dir, "shard-%06d.tar")
    with wds.ShardWriter(pattern, maxcount=clips_per_shard, verbose=0) as writer:
        for index, row in enumerate(table.itertuples(index=False)):
            buffer = io.BytesIO()
            sf.write(buffer, store.get(row.path), sample_rate, format="FLAC", subtype="PCM_24")
            meta = {"labels": list(row.label_list), "caption": row.caption}
            writer.write(
                {
                    "__key__": f"{index:09d}",
                    "flac": buffer.getvalue(),
                    "json": json.dumps(meta).encode(),
                }
            )
    return sorted(os.path.join(out_dir, n) for n in os.listdir(out_dir) if n.startswith("shard-"))


def iterate_shard_clips(
    shards: Sequence[str], split: bool = True
) -> Iterator[Tuple[np.ndarray, int, dict]]:
    """Yield (waveform, sample_rate, {"labels", "caption", "key"}) from shards, in order.

    ``key`` is the clip's key in its shard.

    Args:
        shards: Shard paths (or URLs webdataset understands).
        split: Read only this process's and this DataLoader worker's share of the shards
            (webdataset's node then worker splitting); False reads every shard given.
    """
    import webdataset as wds

    pipeline = wds.WebDataset(
        list(shards),
        shardshuffle=False,
        nodesplitter=wds.split_by_node if split else None,
        workersplitter=wds.split_by_worker if split else None,
    )
    for sample in pipeline:
        wav, rate = sf.read(io.BytesIO(sample["flac"]), dtype="float32")
        meta = json.loads(sample["json"])
        meta["key"] = sample["__key__"]
        yield wav, int(rate), meta


class ShardedQueryMixtureDataset(MixingSettings, IterableDataset):
    """Streams mixtures from shards: a pool of clips, target plus label-disjoint interferers.

    Args:
        shards: Shard paths (or URLs webdataset understands).
        sample_rate: The shards' (and the model's) sample rate.
        segment_seconds, max_interferers, snr_range, query_source, template_probability,
        templates: As :class:`QueryMixtureDataset`.
        pool_size: Clips held in memory to draw from (per worker).
        augmentation: As :class:`QueryMixtureDataset`.
        items_per_epoch: Items yielded per pass, over all workers and processes. In a
            distributed run every process yields ``items_per_epoch // world_size`` (the same
            count on every rank, so that the ranks step together).
        seed: Base seed; each process, worker and epoch gets its own stream.

    Returns (per item):
        dict: as :class:`QueryMixtureDataset`'s, plus ``key``: the clip keys of the target and
        its interferers, joined by ``+``.
    """

    dataset_name = "QueryMixtures (sharded)"

    def __init__(
        self,
        shards: Sequence[str],
        sample_rate: int,
        segment_seconds: float = 5.0,
        max_interferers: int = 1,
        snr_range: Sequence[float] = (-10.0, 10.0),
        query_source: str = "label",
        template_probability: float = 0.0,
        templates: Sequence[str] = DEFAULT_TEMPLATES,
        pool_size: int = 256,
        items_per_epoch: int = 10_000,
        augmentation: Optional[Augmentation] = None,
        seed: int = 0,
    ):
        if not shards:
            raise ValueError("No shards given.")
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
        self.shards = list(shards)
        self.pool_size = int(pool_size)
        self.items_per_epoch = int(items_per_epoch)

    def _crop(self, rng: np.random.Generator, clip: np.ndarray) -> np.ndarray:
        return crop(
            clip, random_offset(rng, clip.shape[0], self.source_samples), self.source_samples
        )

    def stream_shards(self, rank: int, world_size: int, worker: int, n_workers: int) -> List[str]:
        """The shards that ``worker`` of process ``rank`` reads (split by rank, then worker)."""
        streams = world_size * n_workers
        if len(self.shards) < streams:
            raise ValueError(
                f"{len(self.shards)} shards for {world_size} processes x {n_workers} DataLoader "
                "workers: fewer shards than workers; write smaller shards (clips_per_shard) or "
                "use fewer workers."
            )
        return self.shards[rank::world_size][worker::n_workers]

    def _clips(self, shards: Sequence[str]) -> Iterator[Tuple[np.ndarray, dict]]:
        while True:  # cycle through the shards for as many items as an epoch needs
            produced = False
            for wav, rate, meta in iterate_shard_clips(shards, split=False):
                if rate != self.sample_rate:
                    raise ValueError(
                        f"Shard clips are at {rate} Hz, the dataset expects {self.sample_rate} Hz."
                    )
                produced = True
                yield wav, meta
            if not produced:
                return

    def __len__(self) -> int:
        """Items this process yields per pass (all of them before a distributed run starts)."""
        return self.items_per_epoch // process_rank()[1]

    def __iter__(self):
        worker = get_worker_info()
        worker_id, n_workers = (0, 1) if worker is None else (worker.id, worker.num_workers)
        rank, world_size = process_rank()
        clips = self._clips(self.stream_shards(rank, world_size, worker_id, n_workers))
        # One random stream per (rank, worker); a single process keeps its worker's stream.
        rng = np.random.default_rng([self.seed, self.epoch, rank * n_workers + worker_id])
        rank_items = self.items_per_epoch // world_size
        n_items = rank_items // n_workers + (worker_id < rank_items % n_workers)
        pool: List[Tuple[np.ndarray, dict]] = []
        for clip in clips:
            pool.append(clip)
            if len(pool) >= self.pool_size:
                break
        produced, misses = 0, 0
        while produced < n_items:
            item = self._draw(rng, pool)
            if item is not None:
                produced, misses = produced + 1, 0
                yield item
            else:
                misses += 1
                if misses > 10 * len(pool):
                    raise ValueError(
                        "No two clips in the pool have disjoint labels: nothing to mix "
                        f"(pool of {len(pool)} clips; raise pool_size or shuffle the shards)."
                    )
            replacement = next(clips, None)  # refresh the pool as the stream goes on
            if replacement is not None:
                pool[int(rng.integers(len(pool)))] = replacement

    def _draw(self, rng, pool) -> Optional[tuple]:
        target_index = int(rng.integers(len(pool)))
        target_wav, target_meta = pool[target_index]
        # Compared as the manifest compares them: trimmed, case-folded.
        target_labels = {label_key(label) for label in target_meta["labels"]}
        candidates = [
            i
            for i, (_, meta) in enumerate(pool)
            if not target_labels & {label_key(label) for label in meta["labels"]}
        ]
        if not candidates:
            return None
        count = min(int(rng.integers(1, self.max_interferers + 1)), len(candidates))
        chosen = rng.choice(candidates, size=count, replace=False)
        interferers = [self._crop(rng, pool[int(i)][0]) for i in chosen]
        snr_db = float(rng.uniform(*self.snr_range))
        mixture, target = self._mix(rng, self._crop(rng, target_wav), interferers, snr_db)
        query = draw_query(
            rng,
            target_meta["labels"],
            target_meta.get("caption", ""),
            self.query_source,
            self.template_probability,
            self.templates,
        )
        key = "+".join([target_meta["key"]] + [pool[int(i)][1]["key"] for i in chosen])
        return separation_item(mixture, target[None], [query], key=key)
