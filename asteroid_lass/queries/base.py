"""The query encoder interface: text (and optionally audio) to a fixed-size embedding."""

from dataclasses import dataclass
from typing import Dict, List, Sequence, Union

import numpy as np
import torch

from ..errors import LASSInputError


@dataclass
class AudioQuery:
    """An example recording used as the query ("separate sounds like this").

    Args:
        waveform: (time,) or (channels, time); channels are averaged.
        sample_rate: Sample rate of ``waveform``; the encoder resamples to its own rate.
    """

    waveform: Union[torch.Tensor, np.ndarray]
    sample_rate: int


class QueryEncoder:
    """Frozen encoder from queries to embeddings, with a per-string cache.

    Subclasses set ``name`` and ``dim`` and implement :meth:`_encode_text` (and
    :meth:`embed_audio` if they support audio queries). It is deliberately not an
    ``nn.Module`` attribute of the separator: its weights are not saved with it.
    """

    name: str = ""
    dim: int = 0
    #: Whether :meth:`embed_audio` works (audio queries, ranking a blind model's outputs).
    embeds_audio: bool = False
    max_cache_size: int = 100_000

    def __init__(self):
        self._text_cache: Dict[str, torch.Tensor] = {}

    def spec(self) -> dict:
        """Plain-dict description that :func:`build_query_encoder` turns back into this encoder."""
        return {"name": self.name}

    def embed_text(self, texts: Sequence[str]) -> torch.Tensor:
        """Embed texts, computing each distinct string once.

        Args:
            texts: Queries, e.g. ``["dog barking", "violin"]``.

        Returns:
            torch.Tensor: (len(texts), dim) float32 on the CPU.
        """
        if isinstance(texts, str):
            texts = [texts]
        texts = list(texts)
        if not texts:
            raise ValueError("No query text given (empty list).")
        for text in texts:
            if not isinstance(text, str) or not text.strip():
                raise ValueError(f"Query texts must be non-empty strings, got {text!r}.")
        missing = list(dict.fromkeys(t for t in texts if t not in self._text_cache))
        if missing:
            if len(self._text_cache) + len(missing) > self.max_cache_size:
                self._text_cache.clear()
            with torch.inference_mode():
                embeddings = self._encode_text(missing).detach().float().cpu()
            self._text_cache.update(zip(missing, embeddings))
        return torch.stack([self._text_cache[t] for t in texts])

    def _encode_text(self, texts: List[str]) -> torch.Tensor:
        raise NotImplementedError

    def embed_audio(self, waveform, sample_rate: int) -> torch.Tensor:
        """Embed an audio query; (1, dim). Encoders without an audio branch raise."""
        raise NotImplementedError(
            f"The {self.name!r} query encoder embeds text only; audio queries need the CLAP "
            "encoder (query_encoder={'name': 'clap', 'checkpoint': PATH})."
        )

    def to(self, device: Union[str, torch.device]) -> "QueryEncoder":
        """Move the encoder's network to ``device`` (embeddings are returned on the CPU)."""
        return self


def as_name_list(names: Union[str, Sequence[str]], argument: str) -> List[str]:
    """A single name is one query, never iterated character by character."""
    if isinstance(names, str):
        names = [names]
    if not isinstance(names, (list, tuple)) or not names:
        raise LASSInputError(f"{argument} must be a name or a non-empty list of names.")
    for name in names:
        if not isinstance(name, str) or not name.strip():
            raise LASSInputError(f"{argument} has an empty or non-text entry: {name!r}.")
    return list(names)
