"""MUSDB18 and MUSDB18-HQ: four-stem music separation data (drums, bass, other, vocals).

Reads the MUSDB18-HQ wav folders directly (``<root>/{train,test}/<song>/<stem>.wav``) and
the MUSDB18 stem files (``<root>/{train,test}/<song>.stem.mp4``) through the ``musdb``
package. Training items are random crops, optionally with stems shuffled across songs;
the fixed mode lists whole tracks or consecutive excerpts in order, for evaluation.
"""

import glob
import importlib.util
import json
import os
import shutil
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np
import soundfile as sf
import torch
import yaml
from torch.utils.data import Dataset

from ..audio import resample
from .datasets import crop, random_offset
from .music_synth import CORPUS_INFO_FILE, MUSIC_CORPUS_LICENSE

STEMS = ("drums", "bass", "other", "vocals")
#: Targets made of several stems, as the ``musdb`` package defines them.
DERIVED_TARGETS = {"accompaniment": ("drums", "bass", "other")}
SPLITS = ("train", "valid", "test")
MUSDB_LICENSE = dict(
    title="MUSDB18 - a corpus for music separation",
    title_link="https://sigsep.github.io/datasets/musdb.html",
    author="Zafar Rafii, Antoine Liutkus, Fabian-Robert Stoter, Stylianos Ioannis Mimilakis, "
    "Rachel Bittner",
    author_link="https://sigsep.github.io/",
    license="Per-track licences listed by SigSep; academic, non-commercial use only",
    license_link="https://sigsep.github.io/datasets/musdb.html",
    non_commercial=True,
)


def musdb_validation_tracks() -> Tuple[str, ...]:
    """The 14 training songs that the ``musdb`` package holds out as its "valid" split
    (empty if the package is not installed).

    The package's config file is read without importing the package: ``import musdb``
    imports stempeg, which refuses to load without ffmpeg, and the WAV version of MUSDB18
    needs no ffmpeg.
    """
    spec = importlib.util.find_spec("musdb")
    if spec is None or not spec.submodule_search_locations:
        return ()
    config = os.path.join(spec.submodule_search_locations[0], "configs", "mus.yaml")
    if not os.path.isfile(config):
        return ()
    with open(config) as handle:
        return tuple(yaml.safe_load(handle).get("validation_tracks", ()))


class _Track:
    """One song: its name, native rate, length (shortest stem) and how to read it."""

    def __init__(self, name: str, rate: int, length: int, source):
        self.name, self.rate, self.length, self.source = name, int(rate), int(length), source


def _wav_tracks(folder: str) -> List[_Track]:
    tracks = []
    for song in sorted(os.listdir(folder)):
        song_dir = os.path.join(folder, song)
        if not os.path.isdir(song_dir):
            continue
        paths = {stem: os.path.join(song_dir, f"{stem}.wav") for stem in STEMS + ("mixture",)}
        missing = [stem for stem in STEMS if not os.path.isfile(paths[stem])]
        if missing:
            raise ValueError(
                f"{song_dir}: missing stem files {[m + '.wav' for m in missing]}; a MUSDB18-HQ "
                f"song folder holds {', '.join(s + '.wav' for s in STEMS + ('mixture',))}."
            )
        infos = {stem: sf.info(path) for stem, path in paths.items() if os.path.isfile(path)}
        rates = {info.samplerate for info in infos.values()}
        if len(rates) != 1:
            raise ValueError(f"{song_dir}: stems have different sample rates {sorted(rates)}.")
        length = min(info.frames for info in infos.values())
        tracks.append(_Track(song, rates.pop(), length, paths))
    return tracks


def _musdb_tracks(root: str, subset: str, is_wav: bool) -> List[_Track]:
    # Before the import: without ffmpeg, importing musdb fails inside stempeg.
    if shutil.which("ffmpeg") is None or shutil.which("ffprobe") is None:
        raise RuntimeError(
            f"{root}: the `musdb` package decodes audio with ffmpeg/ffprobe, which are not on "
            "PATH. Install ffmpeg, or convert the stems to MUSDB18-HQ wav folders."
        )
    try:
        import musdb
    except ImportError as err:
        raise ImportError(
            "Reading MUSDB18 stem files needs the `musdb` package: pip install musdb"
        ) from err
    database = musdb.DB(root=root, subsets=subset, is_wav=is_wav)
    tracks = []
    for track in database.tracks:
        missing = [stem for stem in STEMS if stem not in track.sources]
        if missing:
            raise ValueError(f"{track.path}: missing stems {missing}.")
        tracks.append(_Track(track.name, track.rate, track.samples, track))
    return tracks


def _read_wav(path: str, offset: int, frames: Optional[int]) -> np.ndarray:
    wav, _ = sf.read(
        path, start=offset, frames=-1 if frames is None else frames, dtype="float32", always_2d=True
    )
    return wav.T


def _read_musdb(track, stem: str, offset: int, frames: Optional[int]) -> np.ndarray:
    track.chunk_start = offset / track.rate
    track.chunk_duration = None if frames is None else frames / track.rate
    source = track if stem == "mixture" else track.sources[stem]
    return np.asarray(source.audio, dtype=np.float32).T


class MUSDB18Dataset(Dataset):
    """MUSDB18 / MUSDB18-HQ items: a mixture and the requested stems.

    In training mode (``fixed=False``) item ``i`` is a random ``segment`` crop of song
    ``i // samples_per_track``, drawn from a generator seeded by (seed, epoch, i): an epoch
    is reproducible and epochs differ (call :meth:`set_epoch`). With probability
    ``shuffle_p`` each of the four stems instead comes from a random song at a random
    offset. The mixture is always the sum of the four (possibly gain-scaled) stems, so it
    equals the sum of the targets when all four are requested.

    In fixed mode the items are whole tracks (``segment=None``) or consecutive excerpts of
    ``segment`` seconds every ``excerpt_hop`` seconds (the last one zero-padded), in song
    order: the same list every time, for evaluation.

    Args:
        root: Dataset folder holding ``train/`` and ``test/``.
        split: ``"train"``, ``"valid"`` (the held-out training songs) or ``"test"``.
        targets: Stems to return, in this order: any of drums, bass, other, vocals and
            accompaniment (drums + bass + other).
        segment: Crop length in seconds (None: whole tracks, fixed mode only).
        sample_rate: Output rate (None: the files' rate, 44100 for MUSDB18).
        mono: Average the channels (items then have one channel). Mono files are always
            returned with as many channels as ``mono`` asks (1 or 2).
        shuffle_p: Chance that an item is made of stems from different songs.
        gain_range: (low, high) linear gain drawn for each stem, or None.
        samples_per_track: Training items per song per epoch.
        fixed: Fixed (evaluation) mode instead of random crops.
        excerpt_hop: Seconds between fixed excerpts (default: ``segment``).
        excerpts_per_track: At most this many fixed excerpts per song (None: all).
        mixture_from: ``"stems"`` (their sum) or ``"file"`` (the mixture as distributed;
            fixed mode only: MUSDB18's mixtures differ slightly from the sum of the stems).
        validation_tracks: Training songs held out as "valid" (default: the ``musdb``
            package's 14); pass ``[]`` to train on every training song.
        backend: ``"auto"`` (wav folders read directly, stem files through ``musdb``),
            ``"wav"`` or ``"musdb"`` (the ``musdb`` package for either layout).
        seed: Base seed.

    Returns (per item):
        dict: ``mixture`` (channels, time) float32, ``targets`` (n_targets, channels, time)
        float32, ``conditions`` the target names; in fixed mode also ``track`` (the song
        name) and ``offset`` (start in seconds).
    """

    dataset_name = "MUSDB18"

    def __init__(
        self,
        root: str,
        split: str = "train",
        targets: Sequence[str] = STEMS,
        segment: Optional[float] = 6.0,
        sample_rate: Optional[int] = None,
        mono: bool = False,
        shuffle_p: float = 0.0,
        gain_range: Optional[Sequence[float]] = None,
        samples_per_track: int = 1,
        fixed: bool = False,
        excerpt_hop: Optional[float] = None,
        excerpts_per_track: Optional[int] = None,
        mixture_from: str = "stems",
        validation_tracks: Optional[Sequence[str]] = None,
        backend: str = "auto",
        seed: int = 0,
    ):
        self._check_args(
            split, targets, segment, shuffle_p, gain_range, fixed, mixture_from, backend
        )
        self.root = root
        self.split = split
        self.targets = list(targets)
        self.segment_seconds = segment
        self.mono = bool(mono)
        self.shuffle_p = float(shuffle_p)
        self.gain_range = None if gain_range is None else tuple(map(float, gain_range))
        self.samples_per_track = int(samples_per_track)
        self.fixed = bool(fixed)
        self.mixture_from = mixture_from
        self.seed = int(seed)
        self.epoch = 0
        valid = musdb_validation_tracks() if validation_tracks is None else validation_tracks
        self.backend, self.tracks = self._load_tracks(root, split, set(valid), backend)
        rates = {track.rate for track in self.tracks}
        self.sample_rate = int(sample_rate or max(rates))
        self.excerpts: List[Tuple[int, int]] = []
        if self.fixed:
            self.excerpts = self._fixed_excerpts(excerpt_hop, excerpts_per_track)

    @staticmethod
    def _check_args(split, targets, segment, shuffle_p, gain_range, fixed, mixture_from, backend):
        if split not in SPLITS:
            raise ValueError(f"split must be one of {SPLITS}, got {split!r}.")
        known = STEMS + tuple(DERIVED_TARGETS)
        unknown = [t for t in targets if t not in known]
        if not targets or unknown:
            raise ValueError(f"targets must be a non-empty list of {known}, got {list(targets)}.")
        if len(set(targets)) != len(targets):
            raise ValueError(f"targets has duplicates: {list(targets)}.")
        if segment is None and not fixed:
            raise ValueError("segment=None (whole tracks) needs fixed=True.")
        if segment is not None and segment <= 0:
            raise ValueError(f"segment must be > 0 seconds or None, got {segment}.")
        if not 0.0 <= shuffle_p <= 1.0:
            raise ValueError(f"shuffle_p must be in [0, 1], got {shuffle_p}.")
        if gain_range is not None and (
            len(gain_range) != 2 or not 0 <= gain_range[0] <= gain_range[1]
        ):
            raise ValueError(
                f"gain_range must be (low, high) with 0 <= low <= high, got {gain_range}."
            )
        if fixed and (shuffle_p > 0 or gain_range is not None):
            raise ValueError(
                "shuffle_p and gain_range are training augmentations; fixed=True "
                "lists the songs as they are."
            )
        if mixture_from not in ("stems", "file"):
            raise ValueError(f"mixture_from must be 'stems' or 'file', got {mixture_from!r}.")
        if mixture_from == "file" and not fixed:
            raise ValueError("mixture_from='file' is for fixed=True (random crops sum stems).")
        if backend not in ("auto", "wav", "musdb"):
            raise ValueError(f"backend must be 'auto', 'wav' or 'musdb', got {backend!r}.")

    @staticmethod
    def _load_tracks(root, split, valid, backend) -> Tuple[str, List[_Track]]:
        if not os.path.isdir(root):
            raise FileNotFoundError(f"MUSDB18 folder not found: {root}")
        subset = "test" if split == "test" else "train"
        folder = os.path.join(root, subset)
        if not os.path.isdir(folder):
            raise FileNotFoundError(
                f"{root}: no '{subset}' folder; expected {root}/{{train,test}}/ as in MUSDB18."
            )
        stem_files = sorted(glob.glob(os.path.join(folder, "*.stem.mp4")))
        song_dirs = [
            d for d in sorted(os.listdir(folder)) if os.path.isdir(os.path.join(folder, d))
        ]
        if not stem_files and not song_dirs:
            raise ValueError(
                f"{folder} is empty: expected <song>/{{mixture,drums,bass,other,vocals}}.wav "
                "folders (MUSDB18-HQ) or <song>.stem.mp4 files (MUSDB18)."
            )
        if backend == "wav" or (backend == "auto" and song_dirs):
            if not song_dirs:
                raise ValueError(f"{folder}: backend='wav' but no song folders (only stem files).")
            used, tracks = "wav", _wav_tracks(folder)
        else:
            used, tracks = "musdb", _musdb_tracks(root, subset, is_wav=not stem_files)
        if split == "train":
            tracks = [t for t in tracks if t.name not in valid]
        elif split == "valid":
            tracks = [t for t in tracks if t.name in valid]
        if not tracks:
            raise ValueError(
                f"{folder}: no songs for split {split!r}"
                + (" (none of the validation_tracks is there)" if split == "valid" else "")
                + "."
            )
        return used, tracks

    def _fixed_excerpts(self, hop_seconds, per_track) -> List[Tuple[int, int]]:
        """(track index, offset in the track's samples) of every fixed item."""
        excerpts = []
        for k, track in enumerate(self.tracks):
            if self.segment_seconds is None:
                excerpts.append((k, 0))
                continue
            hop = int(round((hop_seconds or self.segment_seconds) * track.rate))
            if hop <= 0:
                raise ValueError(f"excerpt_hop must be > 0 seconds, got {hop_seconds}.")
            offsets = list(range(0, max(track.length, 1), hop))
            excerpts += [(k, o) for o in offsets[:per_track]]
        return excerpts

    def __len__(self) -> int:
        if self.fixed:
            return len(self.excerpts)
        return len(self.tracks) * self.samples_per_track

    def set_epoch(self, epoch: int) -> None:
        """Select the epoch's random stream (the training System calls it)."""
        self.epoch = int(epoch)

    # ------------------------------------------------------------------ reading
    def _native_frames(self, track: _Track) -> int:
        """Samples to read at the track's rate for one output segment."""
        return int(np.ceil(self.segment_seconds * track.rate))

    def _read(self, track: _Track, stem: str, offset: int, frames: Optional[int]) -> torch.Tensor:
        """(channels, time) at the output rate and channel count."""
        if self.backend == "wav":
            wav = _read_wav(track.source[stem], offset, frames)
        else:
            wav = _read_musdb(track.source, stem, offset, frames)
        if frames is not None:  # past a file's end: zeros
            wav = np.stack([crop(channel, 0, frames) for channel in wav])
        wav = torch.from_numpy(np.ascontiguousarray(wav, dtype=np.float32))
        if self.mono:
            wav = wav.mean(dim=0, keepdim=True)
        elif wav.shape[0] == 1:
            wav = wav.expand(2, -1)
        wav = resample(wav, track.rate, self.sample_rate)
        if self.segment_seconds is not None:
            length = int(round(self.segment_seconds * self.sample_rate))
            wav = torch.nn.functional.pad(wav[:, :length], (0, max(length - wav.shape[1], 0)))
        return wav.contiguous()

    def _item(self, stems: Dict[str, torch.Tensor], mixture: Optional[torch.Tensor]) -> dict:
        if mixture is None:
            mixture = torch.zeros_like(stems[STEMS[0]])
            for name in STEMS:
                mixture = mixture + stems[name]
        targets = []
        for name in self.targets:
            if name in DERIVED_TARGETS:
                parts = [stems[s] for s in DERIVED_TARGETS[name]]
                targets.append(torch.stack(parts).sum(dim=0))
            else:
                targets.append(stems[name])
        return dict(mixture=mixture, targets=torch.stack(targets), conditions=list(self.targets))

    def __getitem__(self, index: int) -> dict:
        if self.fixed:
            return self._fixed_item(index)
        if not 0 <= index < len(self):
            raise IndexError(f"index {index} out of range for {len(self)} items.")
        rng = np.random.default_rng([self.seed, self.epoch, int(index)])
        track_index = index // self.samples_per_track
        if self.shuffle_p > 0 and rng.random() < self.shuffle_p:
            sources = [int(rng.integers(len(self.tracks))) for _ in STEMS]
        else:
            sources = [track_index] * len(STEMS)
        offsets: Dict[int, int] = {}
        stems = {}
        for name, k in zip(STEMS, sources):
            track = self.tracks[k]
            frames = self._native_frames(track)
            # a shuffled item draws an offset per stem; an ordinary one shares its song's
            offset = offsets.get(k) if len(set(sources)) == 1 else None
            if offset is None:
                offset = offsets[k] = random_offset(rng, track.length, frames)
            stems[name] = self._read(track, name, offset, frames)
        if self.gain_range is not None:
            for name in STEMS:
                stems[name] = stems[name] * float(rng.uniform(*self.gain_range))
        return self._item(stems, None)

    def _fixed_item(self, index: int) -> dict:
        track_index, offset = self.excerpts[index]
        track = self.tracks[track_index]
        frames = None if self.segment_seconds is None else self._native_frames(track)
        stems = {name: self._read(track, name, offset, frames) for name in STEMS}
        mixture = None
        if self.mixture_from == "file":
            if self.backend == "wav" and not os.path.isfile(track.source["mixture"]):
                raise FileNotFoundError(
                    f"mixture_from='file' but {track.source['mixture']} is missing."
                )
            mixture = self._read(track, "mixture", offset, frames)
            length = min(mixture.shape[-1], stems[STEMS[0]].shape[-1])
            mixture = mixture[..., :length]
            stems = {name: wav[..., :length] for name, wav in stems.items()}
        item = self._item(stems, mixture)
        item.update(track=track.name, offset=offset / track.rate)
        return item

    def get_infos(self) -> dict:
        """Asteroid-style dataset infos; the built-in synthetic corpus is recognised by the
        ``corpus.json`` that :func:`~asteroid_lass.data.music_synth.make_music_corpus` writes."""
        licenses = [MUSDB_LICENSE]
        meta_path = os.path.join(self.root, CORPUS_INFO_FILE)
        if os.path.isfile(meta_path):
            with open(meta_path) as handle:
                if json.load(handle).get("generator") == "asteroid_lass.data.music_synth":
                    licenses = [MUSIC_CORPUS_LICENSE]
        return dict(dataset=self.dataset_name, task="music source separation", licenses=licenses)
