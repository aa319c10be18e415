"""The training corpus' unit: a set of per-pixel (or per-point) S1 + NDVI sequences of equal length.

Every source, whatever its encoding, is decoded into :class:`SeriesSet` (S1 as linear power, NDVI as float with NaN
where cloudy or missing, time as days since 1970-01-01 per sequence), so that training and evaluation never see a
file format.
"""

from dataclasses import dataclass, field, replace

import numpy as np

__all__ = ["SeriesSet", "UINT16_NODATA"]

UINT16_NODATA = 65535
"""No-data value of WorldCereal's uint16 encodings (S1 compressed dB and S2 reflectance × 10000)."""


@dataclass
class SeriesSet:
    """``N`` sequences of ``T`` steps from one site and one time grid.

    Missing S1 or NDVI at a step is NaN; steps outside a sequence's own coverage are simply missing.
    """

    site: str
    """Site name (the unit held out in leave-one-site-out evaluation)."""
    source: str
    """File (or files) the sequences were read from."""
    grid: str
    """Time grid: ``acquisition``, ``<n>D`` composites, ``dekad`` or ``month``."""
    days: np.ndarray
    """``(N, T)`` float64 days since 1970-01-01, strictly increasing along T."""
    s1: np.ndarray
    """``(N, T, 2)`` float32 VV, VH linear power (σ⁰ or γ⁰), NaN where no data."""
    ndvi: np.ndarray
    """``(N, T)`` float32 NDVI, NaN where cloudy or missing."""
    group: np.ndarray
    """``(N,)`` int spatial group (a block of a patch, or a point): validation splits never cut a group."""
    attrs: dict = field(default_factory=dict)
    """Free-form description (units, calibration, licence)."""
    xy: np.ndarray | None = None
    """``(N, 2)`` map coordinates (x, y) of gridded sequences (pixel centres), None for points."""

    def __post_init__(self) -> None:
        n, t = self.ndvi.shape
        if self.days.shape != (n, t) or self.s1.shape != (n, t, 2) or self.group.shape != (n,) or (
                self.xy is not None and self.xy.shape != (n, 2)):
            raise ValueError(f"SeriesSet {self.site}/{self.source}: inconsistent shapes days {self.days.shape}, "
                             f"s1 {self.s1.shape}, ndvi {self.ndvi.shape}, group {self.group.shape}.")

    @property
    def n(self) -> int:
        """Number of sequences."""
        return int(self.ndvi.shape[0])

    @property
    def steps(self) -> int:
        """Sequence length."""
        return int(self.ndvi.shape[1])

    def subset(self, index: np.ndarray) -> "SeriesSet":
        """The sequences selected by a boolean mask or an index array."""
        return replace(self, days=self.days[index], s1=self.s1[index], ndvi=self.ndvi[index],
                       group=self.group[index], xy=None if self.xy is None else self.xy[index])

    def describe(self) -> dict:
        """Counts for logs and checkpoint metadata."""
        first, last = (np.datetime64(int(self.days.min()), "D"), np.datetime64(int(self.days.max()), "D"))
        return {"site": self.site, "source": self.source, "grid": self.grid, "sequences": self.n,
                "steps": self.steps, "period": f"{first}..{last}",
                "ndvi_observations": int(np.isfinite(self.ndvi).sum()),
                "s1_observations": int(np.isfinite(self.s1).all(-1).sum())}
