"""Separators of asteroid_lass, registered into Asteroid's model registry on import."""

from asteroid.models import register_model
from asteroid.models import get as _get_registered

from .audioslots import AudioSlots
from .base import EmbeddingSeparator, Separator
from .resunet import SIZE_PRESETS, LASSResUNet


def register(model_class) -> None:
    """Register a separator class with Asteroid's model registry (harmless if repeated)."""
    # Asteroid raises on a second registration of a name.
    try:
        existing = _get_registered(model_class.__name__)
    except ValueError:
        existing = None
    if existing is None:
        register_model(model_class)


register(LASSResUNet)
register(AudioSlots)

__all__ = [
    "AudioSlots",
    "Separator",
    "EmbeddingSeparator",
    "LASSResUNet",
    "SIZE_PRESETS",
    "register",
]
