"""AudioSet preparation: official segment CSVs plus a folder of clips -> manifests.

Clip files may be named in any of the usual ways: ``Y<ytid>.wav``, ``<ytid>.flac``,
``<ytid>_<start>.flac``, ``Y<ytid>_<start>_<end>.wav`` (YouTube ids are 11 characters and may
contain ``-`` and ``_``), in any sub-folder.
"""

import csv
import os
from concurrent.futures import ProcessPoolExecutor
from typing import Dict, List, Optional, Tuple

from .manifest import LABEL_SEPARATOR, write_manifest

AUDIO_EXTENSIONS = (".wav", ".flac", ".ogg", ".mp3", ".m4a", ".opus")
YTID_LENGTH = 11
SPLITS = {
    "balanced_train": "balanced_train_segments.csv",
    "eval": "eval_segments.csv",
    "unbalanced_train": "unbalanced_train_segments.csv",
}


def read_class_labels(path: str) -> Dict[str, str]:
    """``class_labels_indices.csv`` -> {mid: display_name}."""
    if not os.path.isfile(path):
        raise FileNotFoundError(f"AudioSet class list not found: {path}")
    with open(path, newline="") as handle:
        return {row["mid"]: row["display_name"] for row in csv.DictReader(handle)}


def read_segments(path: str) -> List[Tuple[str, float, float, List[str]]]:
    """An AudioSet segments CSV -> [(ytid, start_seconds, end_seconds, [mid, ...])]."""
    rows = []
    with open(path, newline="") as handle:
        for line_number, row in enumerate(csv.reader(handle, skipinitialspace=True), start=1):
            if not row or row[0].startswith("#"):
                continue
            if len(row) != 4:
                raise ValueError(f"{path}:{line_number}: expected 4 fields, got {row}")
            rows.append((row[0], float(row[1]), float(row[2]), row[3].split(",")))
    return rows


def ytid_from_filename(name: str) -> Optional[str]:
    """The YouTube id in a clip's file name, or None."""
    stem = os.path.splitext(os.path.basename(name))[0]
    for start in (1, 0) if stem.startswith("Y") else (0,):
        end = start + YTID_LENGTH
        if len(stem) >= end and (len(stem) == end or stem[end] == "_"):
            return stem[start:end]
    return None


def index_clips(audio_dir: str) -> Dict[str, str]:
    """{ytid: path} for every audio file under ``audio_dir``."""
    if not os.path.isdir(audio_dir):
        raise FileNotFoundError(f"AudioSet clip directory not found: {audio_dir}")
    index = {}
    for folder, _, names in os.walk(audio_dir):
        for name in sorted(names):
            if name.lower().endswith(AUDIO_EXTENSIONS):
                ytid = ytid_from_filename(name)
                if ytid is not None:
                    index.setdefault(ytid, os.path.join(folder, name))
    return index


def _convert(job: Tuple[str, str, int]) -> Tuple[str, Optional[float], str]:
    """Decode, downmix, resample and write one clip; (destination, duration or None, error)."""
    import torch

    from ..audio import read_audio, resample, write_audio_atomic

    torch.set_num_threads(1)
    source, destination, sample_rate = job
    try:
        wav, rate = read_audio(source)
        mono = resample(torch.from_numpy(wav.mean(axis=0)), rate, sample_rate).numpy()
        write_audio_atomic(destination, mono, sample_rate)
        return destination, mono.shape[0] / sample_rate, ""
    except Exception as err:  # one bad clip must not stop the other 2 million
        return destination, None, str(err)


def prepare_audioset(
    audio_dir: str,
    csv_dir: str,
    out_dir: str,
    sample_rate: int = 32000,
    splits: Tuple[str, ...] = ("balanced_train", "eval"),
    workers: int = 4,
    progress: bool = True,
) -> Dict[str, Dict[str, int]]:
    """Write ``<out_dir>/<split>.csv`` manifests of converted clips, one per split.

    Args:
        audio_dir: Folder of downloaded clips (any of the usual names, any sub-folders).
        csv_dir: Folder with ``class_labels_indices.csv`` and the segment CSVs.
        out_dir: Converted clips go to ``<out_dir>/<split>/<ytid>.wav``.
        sample_rate: Target rate (mono).
        splits: Which splits; ``unbalanced_train`` only if its CSV is present.
        workers: Conversion processes.
        progress: Show a progress bar.

    Returns:
        {split: {"listed", "found", "missing", "failed"}}; missing ids are written to
        ``<out_dir>/<split>_missing.txt``.
    """
    from tqdm import tqdm

    names = read_class_labels(os.path.join(csv_dir, "class_labels_indices.csv"))
    clips = index_clips(audio_dir)
    report = {}
    for split in splits:
        if split not in SPLITS:
            raise ValueError(f"Unknown split {split!r}; known: {list(SPLITS)}.")
        segments_path = os.path.join(csv_dir, SPLITS[split])
        if not os.path.isfile(segments_path):
            if split == "unbalanced_train":
                continue
            raise FileNotFoundError(f"AudioSet segments CSV not found: {segments_path}")
        segments = read_segments(segments_path)
        jobs, labels, missing = [], {}, []
        for ytid, _, _, mids in segments:
            if ytid not in clips:
                missing.append(ytid)
                continue
            destination = os.path.join(out_dir, split, f"{ytid}.wav")
            jobs.append((clips[ytid], destination, sample_rate))
            labels[destination] = LABEL_SEPARATOR.join(names.get(mid, mid) for mid in mids)
        rows, failed = [], []
        with ProcessPoolExecutor(max_workers=max(1, workers)) as pool:
            results = pool.map(_convert, jobs, chunksize=16)
            for destination, duration, error in tqdm(
                results, total=len(jobs), desc=f"converting {split}", disable=not progress
            ):
                if duration is None:
                    failed.append(f"{destination}: {error}")
                    continue
                rows.append(
                    dict(
                        path=os.path.relpath(destination, out_dir),
                        labels=labels[destination],
                        duration=round(duration, 4),
                        sample_rate=sample_rate,
                    )
                )
        os.makedirs(out_dir, exist_ok=True)
        write_manifest(rows, os.path.join(out_dir, f"{split}.csv"))
        with open(os.path.join(out_dir, f"{split}_missing.txt"), "w") as handle:
            handle.write("".join(f"{ytid}\n" for ytid in missing + failed))
        report[split] = dict(
            listed=len(segments), found=len(jobs), missing=len(missing), failed=len(failed)
        )
        print(
            f"{split}: {len(segments)} listed, {len(jobs)} found, {len(missing)} missing, "
            f"{len(failed)} failed to convert"
        )
    return report
