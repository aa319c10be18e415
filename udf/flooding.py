"""S1-based start of season for paddy rice: the flooding that precedes transplanting (numpy only).

A flooded paddy is open water: specular reflection makes both VV and VH backscatter very low (typically VV below
about −15 dB and VH below about −22 dB; e.g. Bouvet & Le Toan 2011, Remote Sens. Environ. 115, 1090; Nguyen et al.
2016, Remote Sens. 8, 10) for the weeks between land preparation and the time the young rice emerges above the water,
after which VH rises with the biomass and the NDVI rise follows. For each season found on the NDVI series, SOS_FLOOD
is the first day of the last flooded run (consecutive S1 steps with VV ≤ ``vv_max_db`` *and* VH ≤ ``vh_max_db``,
lasting at least ``min_days`` from its first to its last step) that starts within ``search_days`` before the
season's NDVI start and ends before its peak. NaN where the season has no such run (a dryland crop, missing S1, or
flooding not seen), so a non-paddy season never gets a flooding date.
"""

import logging
from dataclasses import dataclass

import numpy as np

_log = logging.getLogger(__name__)

__all__ = ["FloodOptions", "flood_sos", "flooded_steps"]


@dataclass(frozen=True)
class FloodOptions:
    """Thresholds of :func:`flood_sos`."""

    vv_max_db: float = -15.0
    """VV at or below this (dB) is open water."""
    vh_max_db: float = -22.0
    """VH at or below this (dB) is open water."""
    min_days: float = 14.0
    """Shortest flooded run (first to last flooded step)."""
    search_days: float = 75.0
    """A run must start at most this long before the season's NDVI start."""


def flooded_steps(vv_db: np.ndarray, vh_db: np.ndarray, opts: FloodOptions) -> np.ndarray:
    """``(N, T)`` bool: both polarisations below their open-water thresholds (False where S1 is missing)."""
    with np.errstate(invalid="ignore"):
        return (vv_db <= opts.vv_max_db) & (vh_db <= opts.vh_max_db)


def flood_sos(vv_db: np.ndarray, vh_db: np.ndarray, days: np.ndarray, sos: np.ndarray, peak_day: np.ndarray,
              opts: FloodOptions | None = None) -> np.ndarray:
    """SOS_FLOOD ``(N, S)`` in days since 1970-01-01 for the seasons ``(N, S)`` of ``N`` pixels.

    Args:
        vv_db: ``(N, T)`` VV backscatter in dB (NaN missing).
        vh_db: ``(N, T)`` VH backscatter in dB (NaN missing).
        days: ``(T,)`` days since 1970-01-01.
        sos: ``(N, S)`` NDVI start of each season (NaN: the season's left base day is used through ``peak_day``).
        peak_day: ``(N, S)`` day of each season's peak (NaN: no season).
        opts: thresholds.
    """
    opts = opts or FloodOptions()
    t = np.asarray(days, dtype=np.float64)
    wet = flooded_steps(np.asarray(vv_db), np.asarray(vh_db), opts)
    n, nt = wet.shape
    # runs of flooded steps: start index and end index of the run each step belongs to
    run_start = np.zeros((n, nt), dtype=np.int64)
    run_end = np.zeros((n, nt), dtype=np.int64)
    for i in range(nt):
        run_start[:, i] = np.where(wet[:, i] & (i > 0) & wet[:, max(i - 1, 0)], run_start[:, max(i - 1, 0)], i)
    for i in range(nt - 1, -1, -1):
        nxt = min(i + 1, nt - 1)
        run_end[:, i] = np.where(wet[:, i] & (i < nt - 1) & wet[:, nxt], run_end[:, nxt], i)
    long_run = wet & (t[run_end] - t[run_start] >= opts.min_days)
    starts = np.where(long_run & (run_start == np.arange(nt)[None, :]), t[None, :], np.nan)  # (N, T) run first days
    ends = np.where(long_run & (run_start == np.arange(nt)[None, :]), t[run_end], np.nan)
    out = np.full(sos.shape, np.nan)
    for s in range(sos.shape[1]):
        anchor = np.where(np.isfinite(sos[:, s]), sos[:, s], peak_day[:, s])[:, None]
        with np.errstate(invalid="ignore"):
            ok = (starts >= anchor - opts.search_days) & (starts <= anchor) & (ends < peak_day[:, s, None])
        out[:, s] = np.where(ok.any(1), np.nanmax(np.where(ok, starts, -np.inf), axis=1), np.nan)
    return out
