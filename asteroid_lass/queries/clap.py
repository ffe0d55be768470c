"""LAION-CLAP text and audio queries, as AudioSep uses them."""

import os
from typing import List, Optional

import torch
import torch.nn.functional as F

from ..audio import resample
from .base import QueryEncoder

CLAP_SAMPLE_RATE = 48000
CLAP_AUDIO_SAMPLES = 480000  # 10 s; shorter queries are repeat-padded by laion-clap
# AudioSep tokenises captions up to 512 tokens (laion-clap's own default is 77).
MAX_TEXT_TOKENS = 512


class ClapQueryEncoder(QueryEncoder):
    """Frozen LAION-CLAP (HTSAT audio tower, RoBERTa text tower, no fusion): 512-d unit vectors.

    Args:
        checkpoint: Path of a LAION-CLAP checkpoint, e.g. AudioSep's
            ``music_speech_audioset_epoch_15_esc_89.98.pt``. Nothing is downloaded.
        amodel: Audio tower architecture (AudioSep: ``HTSAT-base``).
        device: Where to run CLAP (default: CPU).

    Raises:
        FileNotFoundError: ``checkpoint`` does not exist.
    """

    name = "clap"
    dim = 512

    def __init__(self, checkpoint: str, amodel: str = "HTSAT-base", device: Optional[str] = None):
        super().__init__()
        if not checkpoint or not os.path.isfile(checkpoint):
            raise FileNotFoundError(
                f"CLAP checkpoint not found: {checkpoint!r}. Pass the path of a LAION-CLAP .pt "
                "file (AudioSep uses music_speech_audioset_epoch_15_esc_89.98.pt)."
            )
        import laion_clap

        self.checkpoint = os.path.abspath(checkpoint)
        self.amodel = amodel
        self.device = torch.device(device or "cpu")
        self._clap = laion_clap.CLAP_Module(enable_fusion=False, amodel=amodel, device=self.device)
        self._clap.load_ckpt(self.checkpoint, verbose=False)
        self._clap.eval().requires_grad_(False)

    def spec(self) -> dict:
        return {"name": self.name, "checkpoint": self.checkpoint, "amodel": self.amodel}

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
