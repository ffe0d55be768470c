"""The manifest: how any labelled sound collection is described to asteroid_lass.

A CSV with one row per clip:

- ``path``: audio file, relative to the CSV's folder (or absolute);
- ``labels``: AudioSet-style display names separated by ``;`` (e.g. ``Dog;Bark``);
- optional ``caption`` (free text), ``duration`` (seconds), ``sample_rate`` (Hz);
- optional ``category`` (a prompt name such as ``speech`` or ``drums``, used by
  :mod:`asteroid_lass.data.prompt_mixing`), ``song`` (stems of one song share it, so they can
  be mixed time-aligned) and ``speaker`` (clips of one talker share it).
"""

import os
from typing import List

import pandas as pd
import soundfile as sf

from ..utils import atomic_write

REQUIRED_COLUMNS = ("path", "labels")
OPTIONAL_COLUMNS = ("caption", "duration", "sample_rate", "category", "song", "speaker")
# Optional text columns passed through as str ("" where absent).
GROUP_COLUMNS = ("category", "song", "speaker")
LABEL_SEPARATOR = ";"


class ManifestError(ValueError):
    """A manifest with problems; the message lists every bad row."""


def split_labels(labels: str) -> List[str]:
    """``"Dog; Bark"`` -> ``["Dog", "Bark"]`` (empty parts dropped)."""
    return [part.strip() for part in str(labels).split(LABEL_SEPARATOR) if part.strip()]


def load_manifest(csv_path: str, check_audio: bool = True) -> pd.DataFrame:
    """Read and validate a manifest, resolving paths.

    Args:
        csv_path: The manifest CSV.
        check_audio: Open every file's header (catches unreadable files before training).

    Returns:
        pd.DataFrame: Columns ``path`` (absolute), ``labels`` (str), ``label_list`` (list of
        str), ``caption`` (str, may be empty), ``duration`` and ``sample_rate`` (from the file
        header when ``check_audio``, else from the CSV when given), and ``category``,
        ``song``, ``speaker`` (str, empty where absent).

    Raises:
        FileNotFoundError: The CSV does not exist.
        ManifestError: Listing every unknown column, missing or unreadable file and empty
            label, with its row number (1 = first data row).
    """
    if not os.path.isfile(csv_path):
        raise FileNotFoundError(f"Manifest not found: {csv_path}")
    text_columns = ("path", "labels", "caption") + GROUP_COLUMNS
    table = pd.read_csv(csv_path, dtype={column: str for column in text_columns})
    problems = []
    unknown = [c for c in table.columns if c not in REQUIRED_COLUMNS + OPTIONAL_COLUMNS]
    missing_columns = [c for c in REQUIRED_COLUMNS if c not in table.columns]
    if unknown:
        problems.append(
            f"unknown columns {unknown} (allowed: {list(REQUIRED_COLUMNS + OPTIONAL_COLUMNS)})"
        )
    if missing_columns:
        problems.append(f"missing required columns {missing_columns}")
    if problems:
        raise ManifestError(f"{csv_path}: " + "; ".join(problems))
    if table.empty:
        raise ManifestError(f"{csv_path}: no rows")

    root = os.path.dirname(os.path.abspath(csv_path))
    paths, label_lists, durations, rates = [], [], [], []
    for row_number, row in enumerate(table.itertuples(index=False), start=1):
        raw_path = "" if pd.isna(row.path) else str(row.path)
        path = raw_path if os.path.isabs(raw_path) else os.path.join(root, raw_path)
        labels = [] if pd.isna(row.labels) else split_labels(row.labels)
        if not labels:
            problems.append(f"row {row_number}: empty labels")
        duration = getattr(row, "duration", float("nan"))
        rate = getattr(row, "sample_rate", float("nan"))
        if not raw_path or not os.path.isfile(path):
            problems.append(f"row {row_number}: missing file {raw_path or '(empty path)'}")
        elif check_audio:
            try:
                info = sf.info(path)
                duration, rate = info.frames / info.samplerate, info.samplerate
                if info.frames == 0:
                    problems.append(f"row {row_number}: empty audio {raw_path}")
            except Exception as err:
                problems.append(f"row {row_number}: unreadable audio {raw_path} ({err})")
        paths.append(path)
        label_lists.append(labels)
        durations.append(duration)
        rates.append(rate)
    if problems:
        raise ManifestError(
            f"{csv_path}: {len(problems)} problem(s):\n" + "\n".join(f"  {p}" for p in problems)
        )

    def text(column: str) -> List[str]:
        values = table[column] if column in table.columns else pd.Series([""] * len(table))
        return values.fillna("").astype(str).tolist()

    return pd.DataFrame(
        {
            "path": paths,
            "labels": [LABEL_SEPARATOR.join(labels) for labels in label_lists],
            "label_list": label_lists,
            "caption": text("caption"),
            "duration": durations,
            "sample_rate": rates,
            **{column: [v.strip() for v in text(column)] for column in GROUP_COLUMNS},
        }
    )


def write_manifest(rows: List[dict], csv_path: str) -> str:
    """Write rows (``path`` relative to the CSV's folder, ``labels``, ...) atomically."""
    with atomic_write(csv_path) as tmp_path:
        pd.DataFrame(rows).to_csv(tmp_path, index=False)
    return csv_path
