"""asteroid_lass: language-queried audio source separation for Asteroid."""

__version__ = "0.1.0"

from .models import LASSResUNet  # noqa: E402  registers the models with Asteroid
from .queries import AudioQuery, build_query_encoder  # noqa: E402

__all__ = ["LASSResUNet", "AudioQuery", "build_query_encoder", "__version__"]
