"""Separators of asteroid_lass, registered into Asteroid's model registry on import."""

from asteroid.models import get as _get_registered
from asteroid.models import register_model

from .asteroid_blind import AsteroidSeparator
from .audioslots import AudioSlots
from .base import EmbeddingSeparator, Separator
from .metatasnet import MetaTasNet
from .resunet import SIZE_PRESETS, LASSResUNet
from .tuss import TUSS


def register(model_class) -> None:
    """Register a separator class with Asteroid's model registry (harmless if repeated)."""
    # Asteroid raises on a second registration of a name.
    try:
        existing = _get_registered(model_class.__name__)
    except ValueError:
        existing = None
    if existing is None:
        register_model(model_class)


for _model_class in (LASSResUNet, MetaTasNet, TUSS, AudioSlots, AsteroidSeparator):
    register(_model_class)


def as_separator(model) -> Separator:
    """Any loaded model as a :class:`Separator`: ours as they are, Asteroid's wrapped blind."""
    if isinstance(model, Separator):
        return model
    return AsteroidSeparator.wrap(model)


__all__ = [
    "AsteroidSeparator",
    "AudioSlots",
    "EmbeddingSeparator",
    "LASSResUNet",
    "MetaTasNet",
    "SIZE_PRESETS",
    "Separator",
    "TUSS",
    "as_separator",
    "register",
]
