"""Base class for query-conditioned separators: query handling, serialization, separation."""

import os
import re
from typing import Optional, Sequence, Union

import numpy as np
import torch
from asteroid.models.base_models import BaseModel

from ..queries import AudioQuery, QueryEncoder, build_query_encoder
from ..utils import atomic_write

#: What ``forward_wav``/``separate`` accept as a query.
Query = Union[str, Sequence[str], AudioQuery, torch.Tensor, np.ndarray]


class BaseQueryModel(BaseModel):
    """An Asteroid ``BaseModel`` whose forward pass takes a query embedding.

    The frozen query encoder is not a submodule: its weights never enter the separator's state
    dict. The model args hold the encoder's spec instead, and the encoder is built on first use
    (or attached with :meth:`set_query_encoder` to share one instance).

    Args:
        sample_rate: Operating sample rate of the model.
        in_channels: Audio channels of the mixture.
        condition_dim: Size of the query embedding.
        query_encoder: Spec of the query encoder (see
            :func:`asteroid_lass.queries.build_query_encoder`), or None.
    """

    def __init__(
        self,
        sample_rate: float,
        in_channels: int,
        condition_dim: int,
        query_encoder: Optional[dict] = None,
    ):
        super().__init__(sample_rate=sample_rate, in_channels=in_channels)
        if int(condition_dim) <= 0:
            raise ValueError(f"condition_dim must be a positive int, got {condition_dim}.")
        self.condition_dim = int(condition_dim)
        self.query_encoder_spec = None if query_encoder is None else dict(query_encoder)
        self._query_encoder: Optional[QueryEncoder] = None

    # ----------------------------------------------------------------- query encoder
    @property
    def query_encoder(self) -> QueryEncoder:
        """The query encoder, built from ``query_encoder_spec`` on first access."""
        if self._query_encoder is None:
            if self.query_encoder_spec is None:
                raise RuntimeError(
                    f"{type(self).__name__} has no query encoder configured: pass a "
                    "precomputed query embedding, or build the model with query_encoder=... "
                    "(e.g. {'name': 'sentence'} or {'name': 'clap', 'checkpoint': PATH})."
                )
            self.set_query_encoder(build_query_encoder(self.query_encoder_spec))
        return self._query_encoder

    def set_query_encoder(self, encoder: QueryEncoder) -> None:
        """Attach an encoder (e.g. one shared with a training System) and record its spec."""
        if encoder.dim != self.condition_dim:
            raise ValueError(
                f"Query encoder {encoder.name!r} gives {encoder.dim}-d embeddings but the "
                f"model expects condition_dim={self.condition_dim}."
            )
        self._query_encoder = encoder
        self.query_encoder_spec = encoder.spec()

    def embed_query(self, query: Query, batch_size: Optional[int] = None) -> torch.Tensor:
        """Turn any accepted query into embeddings on the model's device.

        Args:
            query: A text, a list of texts (one per batch item), an :class:`AudioQuery`, or a
                precomputed embedding of shape (condition_dim,) or (batch, condition_dim).
            batch_size: If given, a single query is repeated to this many rows.

        Returns:
            torch.Tensor: (n_queries or batch_size, condition_dim)
        """
        if isinstance(query, str) or (
            isinstance(query, (list, tuple)) and all(isinstance(q, str) for q in query)
        ):
            texts = [query] if isinstance(query, str) else list(query)
            embedding = self.query_encoder.embed_text(texts)
        elif isinstance(query, AudioQuery):
            embedding = self.query_encoder.embed_audio(query.waveform, query.sample_rate)
        elif isinstance(query, (torch.Tensor, np.ndarray)):
            embedding = torch.as_tensor(query, dtype=torch.float32)
            if embedding.ndim == 1:
                embedding = embedding[None]
        else:
            raise TypeError(
                "query must be a str, a list of str, an AudioQuery(waveform, sample_rate) or an "
                f"embedding tensor, got {type(query).__name__}."
            )
        device = next(self.parameters()).device
        embedding = embedding.to(device=device, dtype=torch.float32)
        if batch_size is not None and embedding.shape[0] == 1:
            embedding = embedding.expand(batch_size, -1)
        return self._check_embedding(embedding, batch_size or embedding.shape[0])

    # ----------------------------------------------------------------- checks
    def _check_embedding(self, query_embedding: torch.Tensor, batch_size: int) -> torch.Tensor:
        if query_embedding.ndim != 2 or query_embedding.shape[1] != self.condition_dim:
            raise ValueError(
                f"query_embedding must have shape (batch, {self.condition_dim}), got "
                f"{tuple(query_embedding.shape)}."
            )
        if query_embedding.shape[0] != batch_size:
            raise ValueError(
                f"query_embedding has {query_embedding.shape[0]} rows for a batch of "
                f"{batch_size} mixtures."
            )
        return query_embedding

    def _check_mixture(self, mixture: torch.Tensor) -> torch.Tensor:
        if mixture.ndim == 2:
            mixture = mixture.unsqueeze(1)
        if mixture.ndim != 3 or mixture.shape[1] != self.in_channels:
            raise ValueError(
                f"mixture must have shape (batch, time) or (batch, {self.in_channels}, time), "
                f"got {tuple(mixture.shape)}."
            )
        return mixture

    # ----------------------------------------------------------------- separation
    def forward_wav(
        self, wav: torch.Tensor, query: Query = None, query_embedding: torch.Tensor = None
    ) -> torch.Tensor:
        """Separate the queried source from waveforms.

        Args:
            wav: (time,), (channels, time) or (batch, channels, time).
            query: See :meth:`embed_query`; a single query applies to the whole batch.
            query_embedding: Precomputed embeddings instead of ``query``.

        Returns:
            torch.Tensor: (1, time) for an unbatched input, (batch, 1, time) otherwise (the
            channel axis replaces the source axis for a multi-channel model).
        """
        if (query is None) == (query_embedding is None):
            raise ValueError("Pass exactly one of query=... or query_embedding=....")
        unbatched = wav.ndim < 3
        wav = wav.reshape(1, 1, -1) if wav.ndim == 1 else wav
        wav = wav.unsqueeze(0) if wav.ndim == 2 else wav
        embedding = self.embed_query(
            query if query_embedding is None else query_embedding, batch_size=wav.shape[0]
        )
        estimate = self(wav, embedding)
        return estimate[0] if unbatched else estimate

    @torch.no_grad()
    def separate(
        self,
        wav: Union[torch.Tensor, np.ndarray, str],
        query: Query = None,
        output_dir: Optional[str] = None,
        force_overwrite: bool = False,
        resample: bool = True,
        **kwargs,
    ):
        """Extract the queried source from a tensor, an array or a file.

        Unlike Asteroid's ``separate``, the estimate is not rescaled to the mixture's L1 norm:
        a single extracted target keeps its true level.

        Args:
            wav: (time,), (channels, time) or (batch, channels, time) tensor or array, or the
                path of an audio file.
            query: The query (see :meth:`embed_query`).
            output_dir: For a file: where to write ``<stem>_<query>.wav`` (default: beside it).
            force_overwrite: For a file: overwrite an existing output.
            resample: For a file at another sample rate: resample (else raise).
            **kwargs: For a file, passed to :func:`asteroid_lass.inference.separate_file`.

        Returns:
            The estimate with the input's type (tensor or array), or for a file the list of
            written paths.
        """
        if query is None:
            raise ValueError("No query given: pass query='a dog barking' (or an embedding).")
        if isinstance(wav, (str, os.PathLike)):
            from ..inference import separate_file  # inference imports models

            return separate_file(
                self,
                wav,
                queries=[query],
                output_dir=output_dir,
                force=force_overwrite,
                resample=resample,
                **kwargs,
            )
        was_numpy = isinstance(wav, np.ndarray)
        tensor = torch.as_tensor(wav, dtype=torch.float32)
        was_training = self.training
        self.eval()
        try:
            device = next(self.parameters()).device
            estimate = self.forward_wav(tensor.to(device), query=query).to(tensor.device)
        finally:
            self.train(was_training)
        return estimate.numpy() if was_numpy else estimate

    # ----------------------------------------------------------------- (de)serialization
    def serialize(self) -> dict:
        """Like Asteroid's, but with only plain types, so ``weights_only=True`` loads it."""
        import pytorch_lightning as pl
        import asteroid

        from .. import __version__

        return dict(
            model_name=type(self).__name__,
            state_dict=self.get_state_dict(),
            model_args=self.get_model_args(),
            infos=dict(
                software_versions=dict(
                    torch_version=str(torch.__version__),
                    pytorch_lightning_version=str(pl.__version__),
                    asteroid_version=str(asteroid.__version__),
                    asteroid_lass_version=str(__version__),
                )
            ),
        )

    @classmethod
    def from_pretrained(cls, pretrained_model_conf_or_path, *args, **kwargs):
        """Load a model from a file, a serialized dict or a Hugging Face hub id.

        Files are loaded with ``weights_only=True``. Keyword arguments override the stored model
        args, e.g. ``query_encoder={"name": "clap", "checkpoint": "/path/clap.pt"}``.
        """
        conf = pretrained_model_conf_or_path
        if isinstance(conf, (str, os.PathLike)):
            conf = load_model_file(str(conf))
        return super().from_pretrained(conf, *args, **kwargs)


MODEL_FILE_EXTENSIONS = (".pth", ".pt", ".ckpt", ".bin")
_HUB_ID = re.compile(r"[\w.-]+/[\w.-]+(@[\w./-]+)?")


def load_model_file(path_or_hub_id: str) -> dict:
    """Read a serialized model from a local file or a Hugging Face hub id (``owner/name``,
    optionally ``@revision``), with ``weights_only=True``. Hub ids go through Asteroid's own
    ``cached_download``.

    Raises:
        FileNotFoundError: A local path (not an ``owner/name`` id, or with a model-file
            extension) that does not exist.
    """
    from asteroid.utils.hub_utils import cached_download

    is_hub_id = bool(_HUB_ID.fullmatch(path_or_hub_id)) and not path_or_hub_id.endswith(
        MODEL_FILE_EXTENSIONS
    )
    if os.path.isfile(path_or_hub_id):
        path = path_or_hub_id
    elif is_hub_id or path_or_hub_id.startswith(("http://", "https://")):
        try:
            path = cached_download(path_or_hub_id)
        except Exception as err:
            raise ValueError(
                f"Could not fetch model {path_or_hub_id!r} from the Hugging Face hub "
                f"({_one_line(err)})"
            ) from err
    else:
        raise FileNotFoundError(f"Model file not found: {path_or_hub_id}")
    try:
        conf = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:
        raise ValueError(
            f"Could not load model file {path_or_hub_id} with weights_only=True "
            f"({_one_line(err)})"
        ) from err
    if not isinstance(conf, dict) or "model_args" not in conf or "state_dict" not in conf:
        raise ValueError(
            f"{path_or_hub_id} is not a serialized model (expected a dict with model_name, "
            "model_args and state_dict, as written by model.serialize())."
        )
    return conf


def _one_line(err: Exception) -> str:
    """``Type: first line of the message``: library errors can span pages."""
    lines = str(err).strip().splitlines()
    return f"{type(err).__name__}: {lines[0] if lines else ''}"


def save_model_file(model: BaseModel, out_path: str) -> None:
    """``torch.save(model.serialize())`` through a temp file and a rename, so an interrupted
    save never leaves a truncated model under the final name."""
    with atomic_write(out_path) as tmp_path:
        torch.save(model.serialize(), tmp_path)
