"""The manifest: how any labelled sound collection is described to asteroid_lass.

A CSV with one row per clip:

- ``path``: audio file, relative to the CSV's folder (or absolute);
- ``labels``: AudioSet-style display names separated by ``;`` (e.g. ``Dog;Bark``);
- optional ``caption`` (free text), ``duration`` (seconds), ``sample_rate`` (Hz);
- optional ``category`` (a prompt name such as ``speech`` or ``drums``, used by
  :mod:`asteroid_lass.data.prompt_mixing`), ``song`` (stems of one song share it, so they can
  be mixed time-aligned) and ``speaker`` (clips of one talker share it).
"""

import io
import math
import os
from typing import List, Optional, Union

import numpy as np
import pandas as pd
import soundfile as sf

from ..errors import ManifestError
from ..utils import atomic_write

REQUIRED_COLUMNS = ("path", "labels")
OPTIONAL_COLUMNS = ("caption", "duration", "sample_rate", "category", "song", "speaker")
# Optional text columns passed through as str ("" where absent).
GROUP_COLUMNS = ("category", "song", "speaker")
LABEL_SEPARATOR = ";"
# Problems a refusal lists before it only counts the rest: a manifest whose paths all fail to
# resolve would otherwise be refused with thousands of rows, each saying the same.
MAX_LISTED_PROBLEMS = 10
# Frames read at once when scanning a clip for NaN or infinite samples.
SCAN_BLOCK = 1 << 20

__all__ = [
    "ManifestError",
    "check_split_leakage",
    "label_key",
    "load_manifest",
    "split_labels",
    "write_manifest",
]


def split_labels(labels: str) -> List[str]:
    """``"Dog; Bark"`` -> ``["Dog", "Bark"]`` (empty parts dropped)."""
    return [part.strip() for part in str(labels).split(LABEL_SEPARATOR) if part.strip()]


def label_key(label: str) -> str:
    """What two labels are compared by: ``" Dog  bark"`` and ``"dog bark"`` are one label."""
    return " ".join(str(label).split()).casefold()


def _read_csv(csv_path: str) -> pd.DataFrame:
    """The CSV as a table; an empty, non-UTF-8 or malformed file is a ManifestError."""
    with open(csv_path, "rb") as handle:
        raw = handle.read()
    if not raw.strip():
        raise ManifestError(f"{csv_path}: the file is empty (expected a header: path,labels,...)")
    if raw.startswith(b"\xef\xbb\xbf"):  # a spreadsheet's byte-order mark is not a column name
        raw = raw[3:]
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as err:
        line = raw[: err.start].count(b"\n") + 1
        raise ManifestError(
            f"{csv_path}: line {line} is not valid UTF-8 (byte {raw[err.start]:#04x}); save the "
            "manifest as UTF-8"
        ) from err
    try:
        text_columns = ("path", "labels", "caption") + GROUP_COLUMNS
        return pd.read_csv(io.StringIO(text), dtype={column: str for column in text_columns})
    except (pd.errors.ParserError, ValueError) as err:
        reason = " ".join(str(err).split())
        raise ManifestError(f"{csv_path}: not a valid CSV ({reason})") from err


def _first_non_finite(path: str) -> Optional[int]:
    """Index of the first NaN or infinite sample of a float audio file (PCM has none)."""
    info = sf.info(path)
    if info.subtype not in ("FLOAT", "DOUBLE"):
        return None
    start = 0
    for block in sf.blocks(path, blocksize=SCAN_BLOCK, dtype="float32", always_2d=True):
        bad = ~np.isfinite(block)
        if bad.any():
            return start + int(np.argwhere(bad)[0][0])
        start += block.shape[0]
    return None


def _positive_or_missing(value) -> bool:
    """An optional numeric cell: empty, or a positive finite number."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return True
    try:
        number = float(value)
    except (TypeError, ValueError):
        return False
    return math.isfinite(number) and number > 0


def load_manifest(csv_path: str, check_audio: bool = True) -> pd.DataFrame:
    """Read and validate a manifest, resolving paths.

    Args:
        csv_path: The manifest CSV (UTF-8, a byte-order mark is allowed).
        check_audio: Open every file's header (catches unreadable files before training) and
            scan float-encoded files for NaN or infinite samples.

    Returns:
        pd.DataFrame: Columns ``path`` (absolute), ``labels`` (str), ``label_list`` (list of
        str), ``caption`` (str, may be empty), ``duration`` and ``sample_rate`` (from the file
        header when ``check_audio``, else from the CSV when given), and ``category``,
        ``song``, ``speaker`` (str, empty where absent).

    Raises:
        FileNotFoundError: The CSV does not exist.
        ManifestError: For an empty, non-UTF-8 (with the line) or malformed CSV; else naming
            every unknown column and counting every missing, unreadable or non-finite file,
            file listed twice, empty label and non-positive duration or sample rate, listing
            the first :data:`MAX_LISTED_PROBLEMS` with their row numbers (1 = first data row).
    """
    if not os.path.isfile(csv_path):
        raise FileNotFoundError(f"Manifest not found: {csv_path}")
    table = _read_csv(csv_path)
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
    first_row = {}  # resolved path -> first row listing it
    any_missing = False
    for row_number, row in enumerate(table.itertuples(index=False), start=1):
        raw_path = "" if pd.isna(row.path) else str(row.path)
        path = raw_path if os.path.isabs(raw_path) else os.path.join(root, raw_path)
        path = os.path.normpath(path)
        labels = [] if pd.isna(row.labels) else split_labels(row.labels)
        if not labels:
            problems.append(f"row {row_number}: empty labels")
        duration = getattr(row, "duration", float("nan"))
        rate = getattr(row, "sample_rate", float("nan"))
        for column, value in (("duration", duration), ("sample_rate", rate)):
            if not _positive_or_missing(value):
                problems.append(f"row {row_number}: {column} {value} is not a positive number")
        if raw_path and path in first_row:
            problems.append(
                f"row {row_number}: {raw_path} is listed more than once (rows "
                f"{first_row[path]} and {row_number})"
            )
        first_row.setdefault(path, row_number)
        if not raw_path or not os.path.isfile(path):
            any_missing = True
            problems.append(f"row {row_number}: missing file {raw_path or '(empty path)'}")
        elif check_audio:
            try:
                info = sf.info(path)
                duration, rate = info.frames / info.samplerate, info.samplerate
                if info.frames == 0:
                    problems.append(f"row {row_number}: empty audio {raw_path}")
                bad = _first_non_finite(path)
                if bad is not None:
                    problems.append(
                        f"row {row_number}: NaN or infinite value at sample {bad} of {raw_path}"
                    )
            except Exception as err:
                reason = " ".join(str(err).split())
                problems.append(f"row {row_number}: unreadable audio {raw_path} ({reason})")
        paths.append(path)
        label_lists.append(labels)
        durations.append(duration)
        rates.append(rate)
    if problems:
        listed = [f"  {p}" for p in problems[:MAX_LISTED_PROBLEMS]]
        if len(problems) > MAX_LISTED_PROBLEMS:
            listed.append(f"  and {len(problems) - MAX_LISTED_PROBLEMS} more")
        if any_missing:
            listed.append(f"  (relative paths are read from the manifest's folder, {root})")
        raise ManifestError(f"{csv_path}: {len(problems)} problem(s):\n" + "\n".join(listed))

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


def check_split_leakage(
    train: Union[str, pd.DataFrame], test: Union[str, pd.DataFrame], check_audio: bool = False
) -> None:
    """Refuse a clip that is in both the training and the test manifest.

    Clips are compared by their resolved file (symbolic links followed), so the same file
    listed through two relative paths is found.

    Args:
        train: The training manifest's CSV, or the table :func:`load_manifest` returned.
        test: The test manifest, likewise.
        check_audio: Passed to :func:`load_manifest` for CSV paths.

    Raises:
        ManifestError: Naming both manifests, how many clips they share and the first few.
    """
    tables = [
        load_manifest(item, check_audio=check_audio) if isinstance(item, str) else item
        for item in (train, test)
    ]
    names = [
        item if isinstance(item, str) else f"the {role} manifest"
        for item, role in zip((train, test), ("training", "test"))
    ]
    train_files = {os.path.realpath(p) for p in tables[0]["path"]}
    shared = [p for p in tables[1]["path"] if os.path.realpath(p) in train_files]
    if shared:
        shown = ", ".join(shared[:5]) + (", ..." if len(shared) > 5 else "")
        raise ManifestError(f"{len(shared)} clip(s) of {names[1]} are also in {names[0]}: {shown}")


def write_manifest(rows: List[dict], csv_path: str) -> str:
    """Write rows (``path`` relative to the CSV's folder, ``labels``, ...) atomically."""
    with atomic_write(csv_path) as tmp_path:
        pd.DataFrame(rows).to_csv(tmp_path, index=False)
    return csv_path
