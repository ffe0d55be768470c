"""LAION-CLAP text and audio queries, as AudioSep uses them.

A model file never holds a path of the machine that wrote it: the CLAP checkpoint is recorded
by file name and SHA-256, and found again through an explicit path, the
``ASTEROID_LASS_CLAP_CHECKPOINT`` environment variable (a file or a folder), or the Hugging
Face cache.
"""

import contextlib
import glob
import hashlib
import os
import sys
from typing import List, Optional

import torch
import torch.nn.functional as F

from ..audio import resample
from .base import QueryEncoder

CLAP_SAMPLE_RATE = 48000
CLAP_AUDIO_SAMPLES = 480000  # 10 s; shorter queries are repeat-padded by laion-clap
# AudioSep tokenises captions up to 512 tokens (laion-clap's own default is 77).
MAX_TEXT_TOKENS = 512
CHECKPOINT_ENV = "ASTEROID_LASS_CLAP_CHECKPOINT"


def file_sha256(path: str) -> str:
    """Hex SHA-256 of a file, read in 1 MiB blocks."""
    digest = hashlib.sha256()
    with open(path, "rb") as stream:
        for block in iter(lambda: stream.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def find_checkpoint(checkpoint: str, sha256: Optional[str] = None) -> str:
    """Locate a CLAP checkpoint by path, or by file name (and SHA-256 when given).

    Looks, in order, at ``checkpoint`` itself, at ``$ASTEROID_LASS_CLAP_CHECKPOINT`` (a file,
    or a folder holding the file name), and in the Hugging Face cache
    (``$HF_HOME/hub``, default ``~/.cache/huggingface/hub``).

    Raises:
        FileNotFoundError: Nowhere, or only files whose SHA-256 differs; the message lists
            every place it looked.
    """
    if not checkpoint:
        raise FileNotFoundError(
            "no CLAP checkpoint given: pass the path of a LAION-CLAP .pt file (AudioSep uses "
            "music_speech_audioset_epoch_15_esc_89.98.pt)."
        )
    name = os.path.basename(checkpoint)
    hf_home = os.environ.get(
        "HF_HOME", os.path.join(os.path.expanduser("~"), ".cache", "huggingface")
    )
    candidates = [checkpoint]
    from_env = os.environ.get(CHECKPOINT_ENV)
    if from_env:
        candidates.append(os.path.join(from_env, name) if os.path.isdir(from_env) else from_env)
    hub = os.path.join(hf_home, "hub")
    candidates += sorted(glob.glob(os.path.join(glob.escape(hub), "**", name), recursive=True))
    mismatched = []
    for candidate in candidates:
        if os.path.isfile(candidate):
            if sha256 is None or file_sha256(candidate) == sha256:
                return os.path.abspath(candidate)
            mismatched.append(candidate)
    looked = [
        checkpoint,
        f"${CHECKPOINT_ENV}" + (f" ({from_env})" if from_env else " (unset)"),
        hub,
    ]
    detail = f"; found with another SHA-256: {mismatched}" if mismatched else ""
    raise FileNotFoundError(
        f"CLAP checkpoint {name} not found (looked at {', '.join(looked)}){detail}. Pass its path "
        f"(--clap-checkpoint) or set {CHECKPOINT_ENV}."
    )


class ClapQueryEncoder(QueryEncoder):
    """Frozen LAION-CLAP (HTSAT audio tower, RoBERTa text tower, no fusion): 512-d unit vectors.

    Args:
        checkpoint: Path, or file name, of a LAION-CLAP checkpoint, e.g. AudioSep's
            ``music_speech_audioset_epoch_15_esc_89.98.pt`` (see :func:`find_checkpoint`).
            Nothing is downloaded.
        amodel: Audio tower architecture (AudioSep: ``HTSAT-base``).
        device: Where to run CLAP (default: CPU).
        sha256: The checkpoint's SHA-256, as recorded in a model file: a file of the same name
            with other contents is not used.

    Raises:
        FileNotFoundError: The checkpoint is not found (the message says where it looked).
    """

    name = "clap"
    dim = 512
    embeds_audio = True

    def __init__(
        self,
        checkpoint: str,
        amodel: str = "HTSAT-base",
        device: Optional[str] = None,
        sha256: Optional[str] = None,
    ):
        super().__init__()
        path = find_checkpoint(checkpoint, sha256)
        import laion_clap

        self.checkpoint = path
        self.sha256 = sha256 or file_sha256(path)
        self.amodel = amodel
        self.device = torch.device(device or "cpu")
        self._clap = laion_clap.CLAP_Module(enable_fusion=False, amodel=amodel, device=self.device)
        # load_ckpt prints even when not verbose; stdout is the CLI's list of written files.
        with contextlib.redirect_stdout(sys.stderr):
            self._clap.load_ckpt(self.checkpoint, verbose=False)
        self._clap.eval().requires_grad_(False)

    def spec(self) -> dict:
        # File name and hash, never this machine's path: model files stay portable.
        return {
            "name": self.name,
            "checkpoint": os.path.basename(self.checkpoint),
            "sha256": self.sha256,
            "amodel": self.amodel,
        }

    def _tokenize(self, texts: List[str]) -> dict:
        tokens = self._clap.tokenize(
            texts, padding=True, truncation=True, max_length=MAX_TEXT_TOKENS, return_tensors="pt"
        )
        return {key: value.to(self.device) for key, value in tokens.items()}

    def _encode_text(self, texts: List[str]) -> torch.Tensor:
        embedding = self._clap.get_text_embedding(texts, tokenizer=self._tokenize, use_tensor=True)
        return F.normalize(embedding, dim=-1)

    def embed_audio(self, waveform, sample_rate: int) -> torch.Tensor:
        """Embed an example recording; (1, 512).

        Args:
            waveform: (time,) or (channels, time) array or tensor; channels are averaged.
            sample_rate: Its sample rate; resampled to CLAP's 48 kHz.
        """
        wav = torch.as_tensor(waveform, dtype=torch.float32)
        if wav.ndim == 2:
            wav = wav.mean(dim=0)
        if wav.ndim != 1 or wav.numel() == 0:
            raise ValueError(
                f"An audio query must be a non-empty (time,) or (channels, time) waveform, got "
                f"shape {tuple(wav.shape)}."
            )
        if not sample_rate or int(sample_rate) <= 0:
            raise ValueError(f"An audio query needs its sample rate, got {sample_rate!r}.")
        wav = resample(wav, int(sample_rate), CLAP_SAMPLE_RATE)[:CLAP_AUDIO_SAMPLES]
        with torch.inference_mode():
            embedding = self._clap.get_audio_embedding_from_data(
                wav[None].to(self.device), use_tensor=True
            )
        return F.normalize(embedding.float().cpu(), dim=-1)

    def to(self, device) -> "ClapQueryEncoder":
        self.device = torch.device(device)
        self._clap.to(self.device)
        return self
