"""Blind speech separation data: LibriMix through Asteroid, and a built-in offline stand-in.

- :class:`LibriMixDataset` is Asteroid's :class:`asteroid.data.LibriMix` (its metadata
  handling: one subset's ``mixture_*_mix_{clean,both}.csv``, rows shorter than the segment
  dropped) with the package's item format, crops reproducible per (seed, epoch, item), and
  one clear error line for a folder, CSV or audio file that cannot be used.
- The built-in set draws two or three *different* formant-synthesised talkers
  (:func:`asteroid_lass.data.speech_synth.make_speech_corpus`) with the prompt-list simulator
  of :mod:`asteroid_lass.data.prompt_mixing` (prompt list ``speech`` x n_src): dynamic
  mixtures for training (:func:`speech_mixtures`), fixed shareable lists for validation and
  test (:func:`write_speech_test_set`, read back with :func:`fixed_speech_mixtures`). Levels
  mirror LibriMix: every talker at a loudness drawn in [-33, -25] LUFS
  (:data:`LIBRIMIX_GAIN_DB`), mixture = sum of the talkers.

Items are blind: ``conditions`` is None, ``targets`` holds the n_src talkers in no
particular order.
"""

import os
import shutil
from typing import Dict, List, Optional, Sequence

import numpy as np
import pandas as pd
import soundfile as sf
from asteroid.data import LibriMix

from ..errors import LASSInputError
from .batch import BlindTargets, separation_item
from .datasets import random_offset
from .manifest import load_manifest
from .prompt_mixing import FixedPromptMixtureDataset, PromptMixtureDataset, write_prompt_test_set

#: Separation tasks of LibriMix and the word that names their metadata CSV
#: (``mixture_<subset>_mix_clean.csv``: speech only; ``..._mix_both.csv``: speech + WHAM! noise).
TASK_CSV_MARKERS: Dict[str, str] = {"sep_clean": "clean", "sep_noisy": "both"}
#: Gain (dB) after the simulator's -23 LUFS normalisation: [-33, -25] LUFS per talker, as
#: LibriMix draws its sources' loudness.
LIBRIMIX_GAIN_DB = (-10.0, -2.0)


def _task_csvs(csv_dir: str, task: str) -> List[str]:
    """The files Asteroid's LibriMix would choose from for ``task`` (any name containing the
    task's word: it takes the first one ``os.listdir`` gives)."""
    return sorted(name for name in os.listdir(csv_dir) if TASK_CSV_MARKERS[task] in name)


class LibriMixDataset(LibriMix):
    """Asteroid's LibriMix, returning the package's items, with reproducible crops.

    Args:
        csv_dir: One subset's metadata folder, holding its ``mixture_<subset>_mix_clean.csv``
            (and/or ``_mix_both.csv``), as Asteroid's LibriMix recipes lay them out (stage 0
            of ``egs/librimix/audioslots`` makes them from a ``LibriXMix/wav8k/min/metadata``
            folder).
        task: ``sep_clean`` or ``sep_noisy`` (the mixture has WHAM! noise; targets are the
            clean talkers).
        sample_rate: The audio's rate (LibriMix's ``wav8k`` or ``wav16k``); files at another
            rate are an error, not resampled.
        n_src: Talkers per mixture (2 for Libri2Mix, 3 for Libri3Mix).
        segment: Crop length in seconds (rows shorter are dropped, as Asteroid does); None
            for whole mixtures.
        fixed: Crops depend on (seed, item) only: a fixed validation set. Otherwise on
            (seed, epoch, item): fresh crops every epoch (see :meth:`set_epoch`).
        seed: Base seed of the crops.

    Returns (per item):
        dict: ``mixture`` (1, T), ``targets`` (n_src, 1, T), ``conditions`` None,
        ``mixture_id``.

    Raises:
        LASSInputError: The folder is missing, holds no (or several) metadata CSVs for the
            task, the CSV lacks a column ``n_src`` needs, no row is long enough for the
            segment, or the first mixture is missing or at another sample rate.
    """

    def __init__(
        self,
        csv_dir: str,
        task: str = "sep_clean",
        sample_rate: int = 8000,
        n_src: int = 2,
        segment: Optional[float] = 3.0,
        fixed: bool = False,
        seed: int = 0,
    ):
        if task not in TASK_CSV_MARKERS:
            raise LASSInputError(f"LibriMix task {task!r}: choose one of {list(TASK_CSV_MARKERS)}.")
        if not os.path.isdir(csv_dir):
            raise LASSInputError(f"LibriMix metadata folder not found: {csv_dir}")
        found = _task_csvs(csv_dir, task)
        expected = f"mixture_<subset>_mix_{TASK_CSV_MARKERS[task]}.csv"
        if len(found) != 1:
            what = "no" if not found else f"{len(found)} ({', '.join(found)}), not one"
            raise LASSInputError(
                f"LibriMix metadata folder {csv_dir}: {what} {expected} for task {task}; point "
                "at one subset's folder (e.g. data/librimix/train made by the recipe's stage 0)."
            )
        if int(n_src) < 1:
            raise LASSInputError(f"n_src must be a positive number of talkers, got {n_src}.")
        # Columns and rate first: Asteroid's class filters rows by length, and an error about
        # too-short rows would hide a wrong rate or a Libri2Mix CSV given for three talkers.
        csv_path = os.path.join(csv_dir, found[0])
        head = pd.read_csv(csv_path, nrows=1)
        columns = ["mixture_ID", "mixture_path", "length"]
        columns += [f"source_{k + 1}_path" for k in range(int(n_src))]
        missing = [c for c in columns if c not in head.columns]
        if missing:
            raise LASSInputError(
                f"{csv_path}: no column(s) {missing}; n_src={n_src} needs {', '.join(columns)} "
                f"(a Libri{n_src}Mix metadata CSV)."
            )
        self.csv_path, self.sample_rate = csv_path, int(sample_rate)
        if len(head):
            self._read(head.iloc[0]["mixture_path"], 0, 1)
        # Asteroid takes the first file naming the task: now the only candidate.
        super().__init__(csv_dir, task, int(sample_rate), int(n_src), segment)
        if self.df.empty:
            why = "lists no mixture"
            if segment is not None:
                why = f"lists no mixture of at least {segment} s ({self.seg_len} samples)"
            raise LASSInputError(f"{self.csv_path} {why}.")
        self.df = self.df.reset_index(drop=True)
        self.fixed, self.seed, self.epoch = bool(fixed), int(seed), 0

    def set_epoch(self, epoch: int) -> None:
        """Select the epoch's crops (training; ignored with ``fixed``)."""
        self.epoch = int(epoch)

    def _read(self, path: str, start: int, stop: Optional[int]) -> np.ndarray:
        try:
            wav, rate = sf.read(path, dtype="float32", start=start, stop=stop)
        except (OSError, RuntimeError) as err:  # soundfile's LibsndfileError is a RuntimeError
            raise LASSInputError(f"{self.csv_path}: cannot read {path} ({err}).") from err
        if rate != self.sample_rate:
            raise LASSInputError(
                f"{path} (listed in {self.csv_path}) is at {rate} Hz, but sample_rate="
                f"{self.sample_rate} was asked: use the wav{self.sample_rate // 1000}k folder's "
                "metadata, or that rate."
            )
        return wav

    def crop_start(self, index: int) -> int:
        """First sample of item ``index``'s crop (0 for whole mixtures)."""
        if self.seg_len is None:
            return 0
        key = [self.seed, int(index)] if self.fixed else [self.seed, self.epoch, int(index)]
        return random_offset(
            np.random.default_rng(key), int(self.df.iloc[index]["length"]), self.seg_len
        )

    def __getitem__(self, index: int) -> dict:
        # Asteroid's own __getitem__ crops with python's global ``random``; the crop here has
        # its own generator so that an epoch's items are the same in any worker and process.
        row = self.df.iloc[index]
        start = self.crop_start(index)
        stop = None if self.seg_len is None else start + self.seg_len
        mixture = self._read(row["mixture_path"], start, stop)
        sources = [self._read(row[f"source_{k + 1}_path"], start, stop) for k in range(self.n_src)]
        return separation_item(mixture, np.stack(sources), mixture_id=str(row["mixture_ID"]))


def copy_librimix_metadata(
    metadata_dir: str, out_dir: str, subsets: Dict[str, str], n_src: Optional[int] = None
) -> Dict[str, str]:
    """Copy subsets of a LibriMix ``metadata`` folder into one folder each (Asteroid's local
    metadata layout), so that :class:`LibriMixDataset` reads one subset per folder.

    Args:
        metadata_dir: E.g. ``Libri2Mix/wav8k/min/metadata`` (``mixture_<subset>_mix_*.csv``).
        out_dir: Where the subset folders go.
        subsets: Folder name -> LibriMix subset, e.g. ``{"train": "train-100", "valid": "dev",
            "test": "test"}``.
        n_src: If given, the CSVs must have ``source_1_path`` .. ``source_<n_src>_path``.

    Returns:
        dict: folder name -> its path.

    Raises:
        LASSInputError: The folder is missing, a subset has no mixture CSV, or the CSVs lack
            the source columns of ``n_src`` talkers.
    """
    if not os.path.isdir(metadata_dir):
        raise LASSInputError(f"--librimix_dir: LibriMix metadata folder not found: {metadata_dir}")
    markers = tuple(f"_mix_{marker}.csv" for marker in TASK_CSV_MARKERS.values())
    names = sorted(os.listdir(metadata_dir))
    folders = {}
    for folder, subset in subsets.items():
        files = [n for n in names if n.startswith(f"mixture_{subset}_") and n.endswith(markers)]
        if not files:
            available = sorted({n.split("_")[1] for n in names if n.startswith("mixture_")})
            raise LASSInputError(
                f"{metadata_dir}: no mixture_{subset}_mix_clean.csv or _mix_both.csv for subset "
                f"{subset!r}; it has subsets {available} (LibriMix: train-100, train-360, dev, "
                "test)."
            )
        target = os.path.join(out_dir, folder)
        os.makedirs(target, exist_ok=True)
        for name in files:
            if n_src is not None:
                columns = pd.read_csv(os.path.join(metadata_dir, name), nrows=0).columns
                needed = [f"source_{k + 1}_path" for k in range(int(n_src))]
                if not set(needed) <= set(columns):
                    raise LASSInputError(
                        f"{os.path.join(metadata_dir, name)}: n_src={n_src} needs columns "
                        f"{needed}; it has {list(columns)} (Libri2Mix for 2 talkers, Libri3Mix "
                        "for 3)."
                    )
            shutil.copyfile(os.path.join(metadata_dir, name), os.path.join(target, name))
        folders[folder] = target
    return folders


def write_librimix_subset(csv_dir: str, out_dir: str, n: Optional[int], seed: int) -> str:
    """A fixed list of ``n`` mixtures of a subset folder (seeded draw, in the CSVs' order),
    written as a subset folder of its own (every ``mixture_*`` CSV, same rows); all rows when
    ``n`` is None or 0.

    Returns:
        str: ``out_dir``.
    """
    files = sorted(
        n for n in os.listdir(csv_dir) if n.startswith("mixture_") and n.endswith(".csv")
    )
    if not files:
        raise LASSInputError(f"LibriMix metadata folder {csv_dir} holds no mixture_*.csv.")
    tables = {name: pd.read_csv(os.path.join(csv_dir, name)) for name in files}
    ids = tables[files[0]]["mixture_ID"]
    if n and int(n) < len(ids):
        # The same mixtures in every CSV of the subset (clean and noisy versions).
        ids = ids.iloc[np.random.default_rng(int(seed)).choice(len(ids), int(n), replace=False)]
    os.makedirs(out_dir, exist_ok=True)
    for name, table in tables.items():
        table[table["mixture_ID"].isin(set(ids))].to_csv(os.path.join(out_dir, name), index=False)
    return out_dir


# ----------------------------------------------------------------------------- built-in set
def _check_talkers(manifest, n_src: int, what: str) -> pd.DataFrame:
    """The manifest's table, once it is known to hold ``n_src`` different talkers.

    The simulator draws a repeated ``speech`` prompt from another talker whenever one is left,
    so enough talkers in the manifest guarantee different talkers in every mixture.
    """
    table = load_manifest(manifest) if isinstance(manifest, str) else manifest
    speech = table[table["category"] == "speech"] if "category" in table.columns else table[:0]
    talkers = set(speech["speaker"]) - {""} if "speaker" in speech.columns else set()
    if len(talkers) < int(n_src):
        raise LASSInputError(
            f"{what}: {len(talkers)} talker(s) in its speech rows (category speech, speaker "
            f"column), fewer than the {n_src} different talkers a mixture needs."
        )
    return table


def speech_mixtures(
    manifest,
    n_src: int,
    sample_rate: int,
    segment_seconds: float,
    items_per_epoch: int,
    seed: int = 0,
    gain_db: Sequence[float] = LIBRIMIX_GAIN_DB,
    min_active_db: Optional[float] = -20.0,
) -> BlindTargets:
    """Dynamic blind mixtures of ``n_src`` different talkers: new ones every epoch.

    Args:
        manifest: Speech clips with ``category`` speech and a ``speaker`` column (path or
            table), e.g. from :func:`~asteroid_lass.data.speech_synth.make_speech_corpus`.
        n_src: Talkers per mixture.
        sample_rate: Output rate.
        segment_seconds: Mixture length.
        items_per_epoch: Mixtures per epoch.
        seed: Item ``i`` of epoch ``e`` comes from a generator seeded by (seed, e, i).
        gain_db: Range of each talker's gain after -23 LUFS normalisation.
        min_active_db: See :class:`~asteroid_lass.data.prompt_mixing.PromptMixtureSimulator`.

    Returns:
        A dataset of blind items (targets: the talkers; conditions None) with ``set_epoch``.
    """
    table = _check_talkers(manifest, n_src, "the training manifest")
    prompts = ["speech"] * int(n_src)
    return BlindTargets(
        PromptMixtureDataset(
            table,
            sample_rate=sample_rate,
            segment_seconds=segment_seconds,
            init_prob={"speech": 1.0},
            transition={"speech": {"speech": 1.0}},
            num_sources=[len(prompts)],
            num_sources_weights=[1.0],
            gain_ranges={"speech": list(gain_db)},
            no_repeat=[],
            min_active_db=min_active_db,
            items_per_epoch=items_per_epoch,
            seed=seed,
        ),
        rest=False,
    )


def write_speech_test_set(
    path: str,
    manifest,
    n_src: int,
    n: int,
    seed: int,
    sample_rate: int,
    segment_seconds: float,
    gain_db: Sequence[float] = LIBRIMIX_GAIN_DB,
    min_active_db: Optional[float] = -20.0,
) -> str:
    """A fixed, shareable list of ``n`` mixtures of ``n_src`` different talkers (clip, offset
    and gain per talker; see :func:`~asteroid_lass.data.prompt_mixing.write_prompt_test_set`).

    Returns:
        str: ``path`` (a ``.csv`` with its ``.json`` of settings beside it).
    """
    table = _check_talkers(manifest, n_src, f"the manifest of {os.path.basename(path)}")
    return write_prompt_test_set(
        path,
        table,
        ["speech"] * int(n_src),
        n=n,
        seed=seed,
        sample_rate=sample_rate,
        segment_seconds=segment_seconds,
        gain_ranges={"speech": list(gain_db)},
        min_active_db=min_active_db,
    )


def fixed_speech_mixtures(
    path: str,
    sample_rate: Optional[int] = None,
    n_src: Optional[int] = None,
    task: str = "sep_clean",
    segment: Optional[float] = None,
):
    """A fixed validation or test set of blind talker mixtures, whichever its kind.

    Args:
        path: A list written by :func:`write_speech_test_set` (``.csv``), or a LibriMix
            subset folder (e.g. from :func:`write_librimix_subset`), read through
            :class:`LibriMixDataset` with crops fixed per item.
        sample_rate: The rate the set must have (None: the list's own; LibriMix: 8000).
        n_src: Talkers per mixture the set must have (None: the list's own; LibriMix: 2).
        task: LibriMix only: ``sep_clean`` or ``sep_noisy``.
        segment: LibriMix only: crop length in seconds (None: whole mixtures).

    Raises:
        LASSInputError: The path is missing, or the list's rate or talker count differ from
            the ones asked.
    """
    if os.path.isdir(path):
        return LibriMixDataset(path, task, sample_rate or 8000, n_src or 2, segment, fixed=True)
    if not os.path.isfile(path):
        raise LASSInputError(f"fixed list not found: {path} (a .csv list or a LibriMix folder).")
    fixed = FixedPromptMixtureDataset(path)
    talkers = len(fixed.recipes[0]["prompts"]) if fixed.recipes else 0
    for name, asked, found in (
        ("sample_rate", sample_rate, fixed.sample_rate),
        ("n_src", n_src, talkers),
    ):
        if asked is not None and int(asked) != found:
            raise LASSInputError(f"{path} has {name} {found}, but {asked} was asked.")
    return BlindTargets(fixed, rest=False)
