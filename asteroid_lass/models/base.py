"""The separation contract shared by every model of asteroid_lass.

Every separator maps a mixture ``(batch, channels, time)`` plus its *conditions* to estimates
``(batch, n_outputs, channels, time)``. A model declares what its conditions are through its
``condition_kind``:

``"embedding"``
    Free text or an audio example, turned into a vector by a frozen query encoder (e.g.
    ``LASSResUNet``). Conditions: float ``(batch, n_outputs, condition_dim)``. One output per
    query.
``"label"``
    Names from the model's own learned vocabulary (e.g. ``MetaTasNet``'s instruments).
    Conditions: long ``(batch, n_outputs)`` indices into ``vocabulary``. One output per label
    asked.
``"prompt"``
    An ordered list of names from the model's vocabulary, repeats allowed (e.g. ``TUSS``).
    Conditions: long ``(batch, n_outputs)`` indices. One output per prompt, in order.
``"none"``
    Blind separation (e.g. ``AudioSlots``, ConvTasNet). Conditions: ``None``. The model
    returns all its outputs, unordered.

Besides ``forward(mixture, conditions)`` and ``get_model_args()``, a subclass only sets
``condition_kind`` and, where it applies, ``vocabulary``. This base class turns what a user
passes as ``query`` into conditions (:meth:`Separator.conditions_for`), names the outputs
(:meth:`Separator.output_names`), separates tensors, arrays and files
(:meth:`Separator.separate`) and saves and loads with plain types only.

A model may declare the input lengths its network handles: ``min_input_samples`` (shorter
inputs are zero-padded to it) and ``max_input_seconds`` (None: any length). Longer inputs
never reach ``forward`` from the package's inference: :mod:`asteroid_lass.inference` (hence
``separate`` on tensors, arrays and files, and the CLI) cuts them into windows of at most
that length, matches a blind model's outputs over each overlap and cross-fades them.
"""

import hashlib
import math
import os
import re
import unicodedata
from typing import ClassVar, Dict, List, Optional, Sequence, Union

import numpy as np
import torch
from asteroid.models.base_models import BaseModel

from ..audio import as_float_samples
from ..errors import LASSInputError, ModelFileError, one_line, SeparationError
from ..queries import AudioQuery, QueryEncoder, as_name_list, build_query_encoder
from ..utils import atomic_write, evaluation_mode

CONDITION_KINDS = ("embedding", "label", "prompt", "none")

#: What ``separate`` accepts as ``query``, depending on the model's condition kind.
Query = Union[None, str, Sequence[str], AudioQuery, torch.Tensor, np.ndarray]


class Separator(BaseModel):
    """An Asteroid ``BaseModel`` that follows the separation contract (see the module doc).

    Subclasses set :attr:`condition_kind`, implement :meth:`forward` and
    :meth:`get_model_args`, and for a ``label`` or ``prompt`` model pass ``vocabulary``.

    Args:
        sample_rate: Operating sample rate of the model.
        in_channels: Audio channels the model takes (files with more channels are separated
            channel by channel by a mono model).
        vocabulary: The names a ``label`` or ``prompt`` model knows, in index order.
    """

    condition_kind: ClassVar[str] = "none"
    #: Shortest input the network handles; inference zero-pads shorter windows to it.
    min_input_samples: int = 1
    #: Longest input the network takes, in seconds (None: any length); inference caps its
    #: windows at it, and ``separate`` on a longer tensor goes through windowed inference.
    max_input_seconds: Optional[float] = None

    def __init__(
        self, sample_rate: float, in_channels: int = 1, vocabulary: Optional[Sequence[str]] = None
    ):
        super().__init__(sample_rate=sample_rate, in_channels=in_channels)
        if self.condition_kind not in CONDITION_KINDS:
            raise TypeError(
                f"{type(self).__name__}.condition_kind must be one of {CONDITION_KINDS}, got "
                f"{self.condition_kind!r}."
            )
        needs_vocabulary = self.condition_kind in ("label", "prompt")
        if needs_vocabulary and not vocabulary:
            raise ValueError(f"A {self.condition_kind} model needs a non-empty vocabulary.")
        self.vocabulary: Optional[List[str]] = (
            [str(name) for name in vocabulary] if needs_vocabulary else None
        )
        if self.vocabulary is not None and len(set(self.vocabulary)) != len(self.vocabulary):
            raise ValueError(f"The vocabulary has repeated names: {self.vocabulary}.")
        self._query_encoder: Optional[QueryEncoder] = None  # see set_query_encoder

    # ----------------------------------------------------------------- the network
    def forward(self, mixture: torch.Tensor, conditions: Optional[torch.Tensor] = None):
        """Separate.

        Args:
            mixture: (batch, in_channels, time)
            conditions: See the module doc for each condition kind.

        Returns:
            torch.Tensor: (batch, n_outputs, in_channels, time)
        """
        raise NotImplementedError

    # ----------------------------------------------------------------- queries
    def conditions_for(self, query: Query, batch_size: int) -> Optional[torch.Tensor]:
        """Turn a user's query into the conditions of :meth:`forward`, on the model's device.

        Args:
            query: For a ``label`` or ``prompt`` model, a name or a list of names from
                :attr:`vocabulary`; for a blind model, None. Embedding models also take texts,
                an :class:`AudioQuery` and precomputed embeddings (see
                :class:`EmbeddingSeparator`).
            batch_size: Number of mixtures; the same query applies to each.

        Returns:
            The conditions for a batch of ``batch_size`` mixtures.
        """
        if self.condition_kind == "none":
            if query is not None:
                raise LASSInputError(
                    f"{type(self).__name__} is a blind separator: its network takes no "
                    "conditions (separate(..., query=...) picks among its outputs instead)."
                )
            return None
        indices = torch.as_tensor(self.vocabulary_indices(query), device=self._device)
        return indices[None].expand(batch_size, -1)

    def conditions_from_batch(self, conditions: Optional[Sequence[Sequence[str]]]):
        """Training conditions: one list of names (or texts) per mixture, as datasets give them.

        Returns:
            Long (batch, n) vocabulary indices for a ``label`` or ``prompt`` model, None for a
            blind one (:class:`EmbeddingSeparator` returns embeddings).
        """
        if self.condition_kind == "none":
            return None
        rows = [self.vocabulary_indices(list(item)) for item in conditions]
        return torch.as_tensor(rows, device=self._device)

    def training_outputs(
        self, mixture: torch.Tensor, conditions: Optional[torch.Tensor]
    ) -> Dict[str, torch.Tensor]:
        """What a training objective sees: ``{"estimates": (batch, n, channels, time)}``.

        Models whose objective needs more (intermediate stages, latents, spectrograms) add
        keys here; the System passes the dict to the objective unchanged.
        """
        return {"estimates": self(mixture, conditions)}

    def set_query_encoder(self, encoder: QueryEncoder) -> None:
        """Give a blind model an audio-text encoder (e.g. CLAP) to pick outputs by query.

        Then ``separate(..., query="dog barking")`` returns the output that best matches each
        text (see :mod:`asteroid_lass.ranking`). The encoder is not saved with the model.
        """
        if self.condition_kind != "none":
            raise LASSInputError(
                f"{type(self).__name__} is a {self.condition_kind} model: it is queried by names "
                f"from its vocabulary, not through a query encoder."
            )
        if not encoder.embeds_audio:
            raise LASSInputError(
                f"the {encoder.name!r} query encoder embeds text only; picking a blind model's "
                "outputs by a query needs an audio-text encoder: {'name': 'clap', 'checkpoint': "
                "PATH} (CLI: --clap-checkpoint PATH)."
            )
        self._query_encoder = encoder

    @property
    def query_encoder(self) -> QueryEncoder:
        """The audio-text encoder given by :meth:`set_query_encoder`."""
        if self._query_encoder is None:
            raise LASSInputError(
                f"{type(self).__name__} is a blind separator and returns all its outputs; to "
                "keep the one matching a query it needs an audio-text encoder: "
                "model.set_query_encoder(build_query_encoder({'name': 'clap', 'checkpoint': "
                "PATH})) (CLI: --clap-checkpoint PATH), or call separate without query=."
            )
        return self._query_encoder

    def vocabulary_indices(self, names: Union[str, Sequence[str]]) -> List[int]:
        """Indices of vocabulary names; an unknown name is an error listing the vocabulary."""
        names = as_name_list(names, "query")
        unknown = [name for name in names if name not in self.vocabulary]
        if unknown:
            raise LASSInputError(
                f"query {unknown[0]!r} is not a {self.condition_kind} of {type(self).__name__}; "
                f"expected one of {self.vocabulary}."
            )
        return [self.vocabulary.index(name) for name in names]

    def output_names(self, query: Query, n_outputs: Optional[int] = None) -> List[str]:
        """File-name-safe names of the outputs for ``query``, in output order.

        Texts and vocabulary names give their slug (``"Dog barking!"`` -> ``dog-barking``);
        a repeated prompt gets a counter (``speech``, ``speech-2``); a blind model's outputs are
        ``source1 ... sourceN``; embeddings and audio queries are ``query1 ...``.

        Args:
            query: The query as given to :meth:`separate`.
            n_outputs: Number of outputs of a blind model.
        """
        if query is None:
            if self.condition_kind != "none":
                raise LASSInputError(
                    f"No query given: {type(self).__name__} separates what it is asked for "
                    f"(a {self.condition_kind} query)."
                )
            if n_outputs is None:
                raise ValueError("n_outputs is needed to name a blind model's outputs.")
            return [f"source{i + 1}" for i in range(n_outputs)]
        if isinstance(query, str):
            query = [query]
        if isinstance(query, (list, tuple)) and all(isinstance(q, str) for q in query):
            names, seen, texts = [], {}, {}
            for text in query:
                slug = query_slug(text)
                if texts.setdefault(slug, text) != text:
                    # Two different texts, one file name: which is which would be a guess.
                    raise LASSInputError(
                        f"queries {texts[slug]!r} and {text!r} both give the output name "
                        f"{slug!r}; make them differ by more than case or punctuation."
                    )
                seen[slug] = seen.get(slug, 0) + 1
                names.append(slug if seen[slug] == 1 else f"{slug}-{seen[slug]}")
            if len(set(names)) != len(names):  # a counter met a query's own slug ("a-2")
                raise LASSInputError(f"queries {list(query)} give clashing output names {names}.")
            return names
        count = 1 if isinstance(query, AudioQuery) else len(_embedding_rows(query))
        return [f"query{i + 1}" for i in range(count)]

    # ----------------------------------------------------------------- separation
    def forward_wav(self, wav: torch.Tensor, query: Query = None) -> torch.Tensor:
        """Separate waveforms, following the contract's shapes.

        Args:
            wav: (time,); (batch, time) for a mono model; or (batch, channels, time).
            query: See :meth:`conditions_for`; one query applies to the whole batch. A blind
                model with an audio-text encoder (:meth:`set_query_encoder`) takes texts or an
                :class:`AudioQuery` and returns, per mixture, the output matching each best.

        Inputs longer than :attr:`max_input_seconds` are separated in windows of at most that
        length by :func:`asteroid_lass.inference.separate_in_windows` (without gradients).

        Returns:
            torch.Tensor: (n_outputs, time) for (time,) input, (batch, n_outputs, time) for
            (batch, time) input, else (batch, n_outputs, channels, time).
        """
        mixture = self._as_batch(wav)
        length = mixture.shape[-1]
        if length == 0:
            raise LASSInputError("mixture is empty (0 samples).")
        if self.max_input_samples is not None and length > self.max_input_samples:
            from ..inference import separate_in_windows  # inference imports models

            return _as_input_shape(separate_in_windows(self, mixture, query), wav.ndim)
        from ..ranking import OutputPicker  # ranking imports this module

        picker = OutputPicker.for_query(self, query)  # a blind model picking by query
        conditions = self.conditions_for(None if picker else query, mixture.shape[0])
        # Inputs shorter than the network needs (e.g. one STFT frame) are zero-padded.
        padded = torch.nn.functional.pad(mixture, (0, max(self.min_input_samples - length, 0)))
        estimates = self(padded, conditions)[..., :length]
        check_finite_output(estimates, "mixture")
        if picker is not None:
            rate = int(self.sample_rate)
            estimates = torch.stack([e[picker.choose(e, rate)] for e in estimates])
        return _as_input_shape(estimates, wav.ndim)

    @property
    def max_input_samples(self) -> Optional[int]:
        """:attr:`max_input_seconds` in samples at the model's rate (None: any length)."""
        if self.max_input_seconds is None:
            return None
        # The tolerance keeps a whole number of samples whole despite float rounding.
        return max(1, math.floor(float(self.max_input_seconds) * float(self.sample_rate) + 1e-6))

    def _as_batch(self, wav: torch.Tensor) -> torch.Tensor:
        if wav.ndim == 1:
            wav = wav[None]
        if wav.ndim == 2:
            if self.in_channels != 1:
                raise LASSInputError(
                    f"mixture: a 2-D input means (batch, time) for a mono model; this model "
                    f"takes {self.in_channels} channels: pass (batch, {self.in_channels}, time)."
                )
            wav = wav[:, None]
        if wav.ndim != 3 or wav.shape[1] != self.in_channels:
            raise LASSInputError(
                f"mixture must have shape (time,), (batch, time) or (batch, {self.in_channels}, "
                f"time), got {tuple(wav.shape)}."
            )
        return wav

    @torch.no_grad()
    def separate(
        self,
        wav: Union[torch.Tensor, np.ndarray, str, os.PathLike],
        output_dir: Optional[str] = None,
        force_overwrite: bool = False,
        resample: bool = True,
        *,
        query: Query = None,
        **kwargs,
    ):
        """Separate a tensor, an array or a file.

        Unlike Asteroid's ``separate``, estimates are not rescaled to the mixture's L1 norm: an
        extracted target keeps its true level. The model runs in evaluation mode without
        gradients, and is left in the mode it was in.

        Args:
            wav: A tensor or array (see :meth:`forward_wav` for the shapes), or the path of an
                audio file (any length, rate and channel count).
            output_dir: For a file: where to write ``<stem>_<output name>.wav`` (default:
                beside it).
            force_overwrite: For a file: overwrite existing outputs.
            resample: For a file at another sample rate: resample (else raise).
            query: Keyword-only; what fits the model's condition kind (see
                :meth:`conditions_for`).
            **kwargs: For a file, passed to :func:`asteroid_lass.inference.separate_file`.

        Returns:
            The estimates with the input's type (tensor or array), or for a file the list of
            written paths.
        """
        if isinstance(wav, (str, os.PathLike)):
            from ..inference import separate_file  # inference imports models

            return separate_file(
                self,
                os.fspath(wav),
                query=query,
                output_dir=output_dir,
                force=force_overwrite,
                resample=resample,
                **kwargs,
            )
        was_numpy = not isinstance(wav, torch.Tensor)
        tensor = torch.as_tensor(as_float_samples(wav, "mixture"))
        with evaluation_mode(self):
            estimate = self.forward_wav(tensor.to(self._device), query=query).to(tensor.device)
        return estimate.numpy() if was_numpy else estimate

    @property
    def _device(self) -> torch.device:
        first = next(self.parameters(), None)
        return first.device if first is not None else torch.device("cpu")

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
        args. The model is returned in evaluation mode.
        """
        conf = pretrained_model_conf_or_path
        if isinstance(conf, (str, os.PathLike)):
            conf = load_model_file(os.fspath(conf))
        return super().from_pretrained(conf, *args, **kwargs).eval()


class EmbeddingSeparator(Separator):
    """A separator conditioned on query embeddings from a frozen query encoder.

    The encoder is not a submodule: its weights never enter the separator's state dict. The
    model args hold the encoder's spec instead, and the encoder is built on first use (or
    attached with :meth:`set_query_encoder` to share one instance).

    Args:
        sample_rate: Operating sample rate of the model.
        in_channels: Audio channels of the mixture.
        condition_dim: Size of the query embedding.
        query_encoder: Spec of the query encoder (see
            :func:`asteroid_lass.queries.build_query_encoder`), or None.
    """

    condition_kind = "embedding"

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

    @property
    def query_encoder(self) -> QueryEncoder:
        """The query encoder, built from ``query_encoder_spec`` on first access."""
        if self._query_encoder is None:
            if self.query_encoder_spec is None:
                raise LASSInputError(
                    f"{type(self).__name__} has no query encoder configured: pass a "
                    "precomputed query embedding, or load the model with query_encoder=... "
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

    def embed_query(self, query: Query) -> torch.Tensor:
        """Turn any accepted query into embeddings on the model's device.

        Args:
            query: A text, a list of texts (one output each), an :class:`AudioQuery`, or
                precomputed embeddings of shape (condition_dim,) or (n_queries,
                condition_dim).

        Returns:
            torch.Tensor: (n_queries, condition_dim)
        """
        if query is None:
            raise LASSInputError("No query given: pass query='a dog barking' (or an embedding).")
        if isinstance(query, str) or (
            isinstance(query, (list, tuple)) and all(isinstance(q, str) for q in query)
        ):
            embedding = self.query_encoder.embed_text(as_name_list(query, "query"))
        elif isinstance(query, AudioQuery):
            waveform = as_float_samples(query.waveform, "audio query")
            embedding = self.query_encoder.embed_audio(waveform, query.sample_rate)
        elif isinstance(query, (torch.Tensor, np.ndarray)):
            embedding = _embedding_rows(query)
        else:
            raise LASSInputError(
                "query must be a str, a list of str, an AudioQuery(waveform, sample_rate) or an "
                f"embedding tensor, got {type(query).__name__}."
            )
        embedding = embedding.to(device=self._device, dtype=torch.float32)
        if embedding.shape[-1] != self.condition_dim:
            raise LASSInputError(
                f"query embedding has {embedding.shape[-1]} values; the model expects "
                f"{self.condition_dim}."
            )
        if not torch.isfinite(embedding).all():
            raise LASSInputError("query embedding contains NaN or infinite values.")
        return embedding

    def conditions_for(self, query: Query, batch_size: int) -> torch.Tensor:
        """(batch_size, n_queries, condition_dim) embeddings; see :meth:`embed_query`."""
        return self.embed_query(query)[None].expand(batch_size, -1, -1)

    def conditions_from_batch(self, conditions: Sequence[Sequence[str]]) -> torch.Tensor:
        """Training conditions: one list of texts per mixture -> (batch, n, condition_dim)."""
        counts = {len(item) for item in conditions}
        if len(counts) != 1:
            raise LASSInputError(f"every mixture of a batch needs as many queries, got {counts}.")
        # One call for the whole batch: new texts are encoded together, not one by one.
        flat = self.query_encoder.embed_text([text for item in conditions for text in item])
        return flat.reshape(len(conditions), counts.pop(), -1).to(self._device)


def _as_input_shape(estimates: torch.Tensor, ndim: int) -> torch.Tensor:
    """(batch, n, channels, time) estimates in the shape :meth:`Separator.forward_wav` returns
    for an input of ``ndim`` dimensions."""
    if ndim == 1:
        return estimates[0, :, 0]
    return estimates[:, :, 0] if ndim == 2 else estimates


def _embedding_rows(query) -> torch.Tensor:
    embedding = torch.as_tensor(np.asarray(query) if isinstance(query, np.ndarray) else query)
    if embedding.is_complex() or not embedding.is_floating_point():
        raise LASSInputError(f"query embedding must be real floats, got {embedding.dtype}.")
    if embedding.ndim == 1:
        embedding = embedding[None]
    if embedding.ndim != 2:
        raise LASSInputError(
            f"query embedding must have shape (dim,) or (n_queries, dim), got "
            f"{tuple(embedding.shape)}."
        )
    return embedding.float()


#: Longest output name taken from a query's text.
MAX_SLUG = 60


def query_slug(query: str) -> str:
    """File-name-safe form of a query: ``"Dog barking!"`` -> ``"dog-barking"``.

    Accents are dropped (``"Café"`` -> ``"cafe"``). When letters or digits cannot be spelled in
    ASCII (``"犬の鳴き声"``) or the text is cut to :data:`MAX_SLUG` characters, a short hash of
    the text (ignoring case and punctuation, as the readable part does) is appended, so
    different queries keep different names.
    """
    text = unicodedata.normalize("NFKD", query)
    ascii_text = text.encode("ascii", "ignore").decode("ascii")
    slug = re.sub(r"[^a-z0-9]+", "-", ascii_text.lower()).strip("-")
    lost = any(ord(ch) > 127 and unicodedata.category(ch)[0] in "LNS" for ch in text) or not slug
    if not lost and len(slug) <= MAX_SLUG:
        return slug
    words = "-".join(re.findall(r"[^\W_]+", text.casefold())) or query  # "!!!": the raw text
    digest = hashlib.sha1(words.encode("utf-8")).hexdigest()[:8]
    slug = slug[: MAX_SLUG - len(digest) - 1].strip("-")
    return f"{slug}-{digest}" if slug else f"query-{digest}"


def check_finite_output(estimates: torch.Tensor, what: str) -> None:
    """A model output with NaN or infinite values is an error, never a silent result."""
    if not torch.isfinite(estimates).all():
        raise SeparationError(
            f"the model produced NaN or infinite values for the {what} (a diverged or corrupt "
            "model, or an input far outside the levels it was trained on)."
        )


MODEL_FILE_EXTENSIONS = (".pth", ".pt", ".ckpt", ".bin")
_HUB_ID = re.compile(r"[\w.-]+/[\w.-]+(@[\w./-]+)?")


def load_model_file(path_or_hub_id: str) -> dict:
    """Read a serialized model from a local file or a Hugging Face hub id (``owner/name``,
    optionally ``@revision``), with ``weights_only=True``. Hub ids go through Asteroid's own
    ``cached_download``.

    Raises:
        ModelFileError: The file is missing, unreadable or not a serialized model.
    """
    from asteroid.utils.hub_utils import cached_download

    if not isinstance(path_or_hub_id, str) or not path_or_hub_id.strip():
        raise ModelFileError(f"model: expected a file path or a hub id, got {path_or_hub_id!r}.")
    # "models/mine" beside an existing "models" folder is a local path, not a hub id.
    looks_local = os.path.isdir(path_or_hub_id.split("/")[0])
    is_hub_id = (
        bool(_HUB_ID.fullmatch(path_or_hub_id))
        and not path_or_hub_id.endswith(MODEL_FILE_EXTENSIONS)
        and not looks_local
    )
    if os.path.isdir(path_or_hub_id):
        raise ModelFileError(f"model {path_or_hub_id} is a folder, not a model file.")
    if os.path.isfile(path_or_hub_id):
        path = path_or_hub_id
    elif is_hub_id or path_or_hub_id.startswith(("http://", "https://")):
        try:
            path = cached_download(path_or_hub_id)
        except Exception as err:
            raise ModelFileError(
                f"model {path_or_hub_id}: no such local file, and no such Hugging Face model "
                f"could be found ({_hub_reason(err)})"
            ) from err
    else:
        raise ModelFileError(f"model file not found: {path_or_hub_id}")
    try:
        conf = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:
        raise ModelFileError(
            f"could not load model file {path_or_hub_id} with weights_only=True "
            f"({one_line(err)})"
        ) from err
    state = conf.get("state_dict") if isinstance(conf, dict) else None
    if not isinstance(state, dict) or "model_args" not in conf:
        raise ModelFileError(
            f"{path_or_hub_id} is not a serialized model (expected a dict with model_name, "
            "model_args and state_dict, as written by model.serialize())."
        )
    for key, value in state.items():
        if not isinstance(value, torch.Tensor):
            raise ModelFileError(f"{path_or_hub_id}: state_dict entry {key} is not a tensor.")
        if value.is_floating_point() and not value.isfinite().all():
            raise ModelFileError(f"{path_or_hub_id}: weight {key} has NaN or infinite values.")
    return conf


def _hub_reason(err: BaseException) -> str:
    """Why a hub download failed, without guessing at the user's network."""
    reasons = {
        "LocalEntryNotFoundError": "not in the local Hugging Face cache, and the hub was not "
        "reachable or offline mode is on",
        "RepositoryNotFoundError": "no such repository on the hub",
        "RevisionNotFoundError": "no such revision on the hub",
        "EntryNotFoundError": "the repository has no model file",
        "GatedRepoError": "the repository needs authentication",
    }
    return reasons.get(type(err).__name__, one_line(err))


def save_model_file(model: BaseModel, out_path: str) -> None:
    """``torch.save(model.serialize())`` through a temp file and a rename, so an interrupted
    save never leaves a truncated model under the final name."""
    with atomic_write(out_path) as tmp_path:
        torch.save(model.serialize(), tmp_path)
