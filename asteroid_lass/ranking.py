"""Queries on blind models: keep the output that best matches a text (or an audio example).

A blind separator (``condition_kind == "none"``: AudioSlots, a wrapped ConvTasNet, any other)
returns all its sources in no fixed order. Once it has an audio-text query encoder
(``model.set_query_encoder(build_query_encoder({"name": "clap", "checkpoint": PATH}))``, or
``--clap-checkpoint`` on the command line), ``separate(..., query="dog barking")`` runs the
blind separation, embeds every output with the encoder's audio branch and the query with its
text branch (an :class:`~asteroid_lass.queries.AudioQuery` with its audio branch), and returns
the output of highest cosine similarity, one per query.

Each query is answered on its own: two queries may pick the same output (``"dog"`` and ``"dog
barking"`` name one source), and adding a query never changes what another one gets.

Outputs are ranked on their whole length: they are embedded in consecutive segments of
:data:`SEGMENT_SECONDS` (CLAP's input length; CLAP itself would only see the first ones), and
the segment embeddings are averaged, weighted by duration. Files are separated first into every
blind output (written to a temporary folder beside the outputs, so memory stays bounded), then
ranked by reading those outputs back segment by segment; the picked ones are renamed into place
and the rest deleted.
"""

import contextlib
from typing import Iterable, List, Optional, Sequence

import numpy as np
import soundfile as sf
import torch

from .audio import as_float_samples
from .errors import LASSInputError
from .queries import AudioQuery, QueryEncoder, as_name_list
from .queries.clap import CLAP_AUDIO_SAMPLES, CLAP_SAMPLE_RATE

#: Length of the pieces an output is embedded in: CLAP's input length (10 s).
SEGMENT_SECONDS = CLAP_AUDIO_SAMPLES / CLAP_SAMPLE_RATE


class OutputPicker:
    """Picks, for each query, the blind output whose audio embedding is closest to it.

    Args:
        encoder: An audio-text query encoder (``encoder.embeds_audio``), e.g. CLAP.
        query: A text, a list of texts (one pick each), or an :class:`AudioQuery` (picked by
            audio-audio similarity).
    """

    def __init__(self, encoder: QueryEncoder, query):
        if isinstance(query, AudioQuery):
            waveform = as_float_samples(query.waveform, "audio query")
            embedding = encoder.embed_audio(waveform, query.sample_rate)
        elif isinstance(query, str) or (
            isinstance(query, (list, tuple)) and all(isinstance(q, str) for q in query)
        ):
            embedding = encoder.embed_text(as_name_list(query, "query"))
        else:
            raise LASSInputError(
                "a blind model's query must be a text, a list of texts or an "
                f"AudioQuery(waveform, sample_rate), got {type(query).__name__}."
            )
        self.encoder = encoder
        self.queries = torch.nn.functional.normalize(embedding.float(), dim=-1)

    @classmethod
    def for_query(cls, model, query, residual: bool = False) -> Optional["OutputPicker"]:
        """The picker for ``query`` on a blind ``model``; None when nothing is to be picked
        (no query, or a model that takes its queries as conditions)."""
        if query is None or model.condition_kind != "none":
            return None
        if residual:
            raise LASSInputError(
                "residual: a blind model queried by text keeps only the picked outputs; "
                "separate without a query to get every source (no residual is needed then)."
            )
        return cls(model.query_encoder, query)

    def choose(self, outputs, sample_rate: int) -> List[int]:
        """Index of the best output for each query.

        Args:
            outputs: (n_outputs, channels, time) or (n_outputs, time) array or tensor.
            sample_rate: Their sample rate.

        Returns:
            list[int]: (n_queries,) indices into ``outputs``.
        """
        segment = _segment_samples(sample_rate)
        length = outputs.shape[-1]
        pieces = (outputs[..., start : start + segment] for start in range(0, length, segment))
        return self._best(embed_outputs(self.encoder, pieces, sample_rate))

    def choose_in_files(self, paths: Sequence[str]) -> List[int]:
        """:meth:`choose` for outputs written to files of equal length and rate, read one
        segment at a time."""
        rate = sf.info(paths[0]).samplerate
        segment = _segment_samples(rate)
        with contextlib.ExitStack() as stack:
            readers = [stack.enter_context(sf.SoundFile(path)) for path in paths]
            pieces = (
                np.stack([r.read(segment, dtype="float32", always_2d=True).T for r in readers])
                for _ in range(0, readers[0].frames, segment)
            )
            return self._best(embed_outputs(self.encoder, pieces, rate))

    def _best(self, output_embeddings: torch.Tensor) -> List[int]:
        similarity = self.queries @ output_embeddings.T  # (n_queries, n_outputs) cosines
        return similarity.argmax(dim=1).tolist()


def embed_outputs(
    encoder: QueryEncoder, pieces: Iterable[np.ndarray], sample_rate: int
) -> torch.Tensor:
    """Audio embeddings of signals given in consecutive pieces: the duration-weighted mean of
    the pieces' embeddings, normalised.

    Args:
        encoder: An audio-capable query encoder.
        pieces: (n_signals, [channels,] samples) arrays or tensors, in time order.
        sample_rate: Their sample rate (the encoder resamples).

    Returns:
        torch.Tensor: (n_signals, dim) unit vectors.
    """
    total, duration = None, 0
    for piece in pieces:
        length = piece.shape[-1]
        embedding = torch.cat([encoder.embed_audio(signal, sample_rate) for signal in piece])
        total = embedding * length if total is None else total + embedding * length
        duration += length
    if total is None:
        raise LASSInputError("nothing to rank: the outputs are empty (0 samples).")
    return torch.nn.functional.normalize(total / duration, dim=-1)


def _segment_samples(sample_rate: int) -> int:
    return max(1, int(round(SEGMENT_SECONDS * sample_rate)))
