"""The temporal fusion network: per-pixel sequence of S1 + time (+ optional NDVI) features → NDVI mean and spread.

Two architectures share one interface (choose by measurement, see docs/model.md): a bidirectional GRU (``"gru"``) and a
dilated temporal convolution network (``"tcn"``). Both see every step of a pixel's series in both directions, so a
cloud gap is filled from the NDVI before and after it and from S1 inside it. The mean is a correction added to the
linear interpolation of the kept NDVI (``base``, see :mod:`udf.features`): next to kept observations the network
only has to learn how little to change, and without any NDVI it predicts from S1 alone.
"""

import copy
from dataclasses import asdict, dataclass, field, replace

import torch
from torch import nn

from udf.features import feature_names

__all__ = ["FusionNet", "ModelConfig"]


@dataclass(frozen=True)
class ModelConfig:
    """Architecture hyper-parameters (stored in the checkpoint metadata)."""

    n_features: int = 16
    """Per-step input features (see ``udf.features.FEATURES``)."""
    arch: str = "gru"
    """``"gru"`` (bidirectional GRU) or ``"tcn"`` (dilated residual 1-D convolutions)."""
    hidden: int = 16
    """Width of the recurrent state / convolution channels (16: ≥ 1 M pixel-steps/s on 2 CPU threads)."""
    layers: int = 1
    """GRU layers (``"gru"`` only)."""
    dilations: tuple[int, ...] = field(default=(1, 2, 4, 8))
    """Dilations of the kernel-3 convolutions (``"tcn"`` only)."""
    calendar: bool = False
    """The model also reads the day of year (``udf.features.CALENDAR_FEATURES``): only models adapted to one site."""

    def to_dict(self) -> dict:
        """JSON-friendly dict."""
        return {**asdict(self), "dilations": list(self.dilations)}

    @classmethod
    def with_calendar(cls, **kwargs: object) -> "ModelConfig":
        """A configuration that also reads the day of year (a model trained on one site only)."""
        return cls(**{**kwargs, "calendar": True, "n_features": len(feature_names(True))})  # type: ignore[arg-type]

    @classmethod
    def from_dict(cls, data: dict) -> "ModelConfig":
        """Inverse of :meth:`to_dict`."""
        return cls(**{**data, "dilations": tuple(data.get("dilations", (1, 2, 4, 8)))})


class _TemporalConv(nn.Module):
    """Residual stack of non-causal dilated convolutions over ``(batch, channels, time)``."""

    def __init__(self, hidden: int, dilations: tuple[int, ...]) -> None:
        super().__init__()
        self.convs = nn.ModuleList(
            nn.Conv1d(hidden, hidden, kernel_size=3, dilation=d, padding=d, padding_mode="replicate")
            for d in dilations
        )

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        for conv in self.convs:
            h = h + torch.nn.functional.gelu(conv(h))
        return h


class FusionNet(nn.Module):
    """Per-pixel temporal network.

    Input ``(batch_size, seq_len, n_features)`` features (normalised inside with the stored statistics) and the
    ``(batch_size, seq_len)`` interpolation base; output a tuple of ``(batch_size, seq_len)`` NDVI mean (base plus
    the predicted correction) and log of the Laplace scale ``b`` (std = √2·b).
    """

    feature_mean: torch.Tensor
    feature_std: torch.Tensor

    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        if config.arch not in ("gru", "tcn"):
            raise ValueError(f"Unknown architecture {config.arch!r}; expected 'gru' or 'tcn'.")
        expected = len(feature_names(config.calendar))
        if config.n_features != expected:
            raise ValueError(f"ModelConfig(calendar={config.calendar}) reads {expected} features, not "
                             f"n_features={config.n_features}.")
        self.config = config
        h = config.hidden
        self.register_buffer("feature_mean", torch.zeros(config.n_features))
        self.register_buffer("feature_std", torch.ones(config.n_features))
        if config.arch == "gru":
            self.embed: nn.Module = nn.Identity()
            self.temporal: nn.Module = nn.GRU(config.n_features, h, num_layers=config.layers, batch_first=True,
                                              bidirectional=True)
            out_width = 2 * h
        else:
            self.embed = nn.Sequential(nn.Linear(config.n_features, h), nn.GELU())
            self.temporal = _TemporalConv(h, config.dilations)
            out_width = h
        self.head = nn.Sequential(nn.Linear(out_width, h), nn.ReLU(), nn.Linear(h, 2))

    def forward(self, x: torch.Tensor, base: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Predict NDVI mean and log-scale for every step of ``x`` ``(batch_size, seq_len, n_features)``."""
        e = self.embed((x - self.feature_mean) / self.feature_std)
        if self.config.arch == "gru":
            h, _ = self.temporal(e)
        else:
            h = self.temporal(e.transpose(1, 2)).transpose(1, 2)
        out = self.head(h)
        return base + out[..., 0], out[..., 1].clamp(-7.0, 2.0)

    def with_calendar(self) -> "FusionNet":
        """A copy that also reads the day of year, with zero weights on it: it starts as this model's exact twin.

        ``s1ndvi adapt`` uses it, so that fine-tuning on one site may learn that site's crop calendar.
        """
        if self.config.calendar:
            return copy.deepcopy(self)
        extra = 2
        twin = FusionNet(replace(self.config, calendar=True, n_features=self.config.n_features + extra))
        state = {k: v.clone() for k, v in self.state_dict().items()}
        for key in [k for k in state if k.startswith("temporal.weight_ih_l0") or k == "embed.0.weight"]:
            state[key] = torch.cat([state[key], torch.zeros(state[key].shape[0], extra)], dim=1)
        state["feature_mean"] = torch.cat([state["feature_mean"], torch.zeros(extra)])
        state["feature_std"] = torch.cat([state["feature_std"], torch.ones(extra)])
        twin.load_state_dict(state)
        return twin.to(self.feature_mean.device)

    def flops_per_step(self) -> int:
        """Floating-point operations (2 per multiply-add) per pixel-time-step of the matrix products."""
        c, h = self.config, self.config.hidden
        macs = h * 2
        if c.arch == "gru":
            macs += 2 * h * h  # head: 2h -> h
            for layer in range(c.layers):
                width_in = c.n_features if layer == 0 else 2 * h
                macs += 2 * 3 * (width_in * h + h * h)  # two directions, three gates
        else:
            macs += c.n_features * h + h * h + len(c.dilations) * 3 * h * h
        return 2 * macs
