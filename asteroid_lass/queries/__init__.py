"""Query encoders by name: text (and audio) queries to embeddings for the separators."""

from typing import Callable, Dict

from .base import AudioQuery, QueryEncoder, as_name_list

_ENCODERS: Dict[str, Callable[..., QueryEncoder]] = {}


def register_query_encoder(name: str, factory: Callable[..., QueryEncoder]) -> None:
    """Make ``factory(**spec_without_name)`` buildable as ``{"name": name, ...}``."""
    if name in _ENCODERS and _ENCODERS[name] is not factory:
        raise ValueError(f"A query encoder named {name!r} is already registered.")
    _ENCODERS[name] = factory


def _sentence(**kwargs) -> QueryEncoder:
    from .sentence import SentenceQueryEncoder  # imports sentence-transformers: keep lazy

    return SentenceQueryEncoder(**kwargs)


def _clap(**kwargs) -> QueryEncoder:
    from .clap import ClapQueryEncoder  # imports laion-clap: keep lazy

    return ClapQueryEncoder(**kwargs)


register_query_encoder("sentence", _sentence)
register_query_encoder("clap", _clap)

_BUILT: Dict[tuple, QueryEncoder] = {}


def build_query_encoder(spec: dict) -> QueryEncoder:
    """Build (or reuse) the encoder that ``spec`` describes.

    Identical specs share one instance in a process, so that loading several models, or a model
    and a System, loads CLAP once.

    Args:
        spec: ``{"name": "sentence"}`` or ``{"name": "clap", "checkpoint": PATH}``, plus the
            encoder's keyword arguments.
    """
    if not isinstance(spec, dict) or "name" not in spec:
        raise ValueError(f"A query encoder spec is a dict with a 'name' key, got {spec!r}.")
    name = spec["name"]
    if name not in _ENCODERS:
        raise ValueError(f"Unknown query encoder {name!r}; known: {sorted(_ENCODERS)}.")
    key = _spec_key(spec)
    if key not in _BUILT:
        encoder = _ENCODERS[name](**{k: v for k, v in spec.items() if k != "name"})
        # Also findable by its complete spec (defaults filled in, paths absolute), which is
        # what models record.
        _BUILT[key] = _BUILT[_spec_key(encoder.spec())] = encoder
    return _BUILT[key]


def _spec_key(spec: dict) -> tuple:
    return tuple(sorted((k, repr(v)) for k, v in spec.items()))


__all__ = [
    "AudioQuery",
    "QueryEncoder",
    "as_name_list",
    "build_query_encoder",
    "register_query_encoder",
]
