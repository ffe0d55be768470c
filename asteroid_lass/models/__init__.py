"""Separators of asteroid_lass, registered into Asteroid's model registry on import."""

from asteroid.models import register_model
from asteroid.models import get as _get_registered

from .base import BaseQueryModel
from .resunet import SIZE_PRESETS, LASSResUNet


def _register(model_class) -> None:
    # Asteroid raises on a second registration of a name; importing twice must be harmless.
    try:
        existing = _get_registered(model_class.__name__)
    except ValueError:
        existing = None
    if existing is None:
        register_model(model_class)


_register(LASSResUNet)

__all__ = ["BaseQueryModel", "LASSResUNet", "SIZE_PRESETS"]
