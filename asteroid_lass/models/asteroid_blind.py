"""Asteroid's own blind separators (ConvTasNet, DPRNNTasNet, ...) under the package's contract."""

from typing import Optional

import torch
from asteroid.models import BaseModel
from asteroid.models import get as get_asteroid_model

from .base import Separator


class AsteroidSeparator(Separator):
    """Wraps any model of Asteroid's registry as a blind (``none``) separator.

    The wrapped model keeps its own class, arguments and state dict (under ``model.``), so a
    ConvTasNet trained here is an ordinary ConvTasNet inside.

    Args:
        model_name: Name in Asteroid's registry, e.g. ``"ConvTasNet"``.
        model_args: Its arguments (``n_src``, ``sample_rate``, sizes).
        sample_rate: Overrides ``model_args["sample_rate"]`` when given.

    Shape:
        - mixture: (batch, 1, time)
        - output: (batch, n_src, 1, time)
    """

    condition_kind = "none"

    def __init__(
        self,
        model_name: str = "ConvTasNet",
        model_args: Optional[dict] = None,
        sample_rate: Optional[float] = None,
    ):
        model_args = dict(model_args or {})
        if sample_rate is not None:  # Asteroid's loader may pass it beside the model args
            model_args["sample_rate"] = sample_rate
        model_class = get_asteroid_model(model_name)
        inner = model_class(**model_args)
        super().__init__(sample_rate=inner.sample_rate, in_channels=inner.in_channels or 1)
        self.model_name = model_name
        self.model = inner
        self.n_src = int(getattr(inner, "n_src", model_args.get("n_src", 0)))
        if self.n_src <= 0:
            raise ValueError(f"{model_name} does not say how many sources it outputs (n_src).")

    @classmethod
    def wrap(cls, model: BaseModel) -> "AsteroidSeparator":
        """The same network, weights included, as a blind separator."""
        wrapper = cls(type(model).__name__, model.get_model_args())
        wrapper.model.load_state_dict(model.state_dict())
        return wrapper

    def forward(self, mixture: torch.Tensor, conditions: None = None) -> torch.Tensor:
        """(batch, channels, time) -> (batch, n_src, channels, time) at the input's length."""
        batch, n_chan, length = mixture.shape
        # Asteroid's models are mono: channels go through as batch items.
        estimates = self.model(mixture.reshape(batch * n_chan, length))
        estimates = torch.nn.functional.pad(estimates, (0, max(length - estimates.shape[-1], 0)))
        estimates = estimates[..., :length].reshape(batch, n_chan, -1, length)
        return estimates.transpose(1, 2)

    def get_model_args(self) -> dict:
        """Arguments to rebuild the wrapper (plain Python values only)."""
        args = self.model.get_model_args()
        args = {k: (float(v) if k == "sample_rate" else v) for k, v in args.items()}
        return dict(model_name=self.model_name, model_args=args)
