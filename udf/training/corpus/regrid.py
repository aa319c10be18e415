"""Re-compositing sequences onto coarser time grids (5- to 16-day periods, months), for training on several grids.

S1 is averaged in linear power; NDVI is the mean of the valid observations of a period (composites of already
cloud-masked values). A period without a valid value stays NaN.
"""

import numpy as np
import pandas as pd

from udf.training.corpus.series import SeriesSet

__all__ = ["composite_days", "month_edges", "regular_edges", "training_variants"]


def regular_edges(first: float, last: float, period: int, offset: int = 0) -> np.ndarray:
    """Edges (days) of ``period``-day bins from ``first - offset`` covering ``last``."""
    start = first - offset
    n = int(np.ceil((last + 1 - start) / period))
    return start + period * np.arange(n + 1, dtype=np.float64)


def month_edges(first: float, last: float) -> np.ndarray:
    """Edges (days) of calendar months covering ``[first, last]``."""
    lo = pd.Timestamp(np.datetime64(int(first), "D")).to_period("M").to_timestamp()
    hi = pd.Timestamp(np.datetime64(int(last), "D")).to_period("M").to_timestamp() + pd.offsets.MonthBegin(1)
    stamps = pd.date_range(lo, hi, freq="MS")
    return np.array([np.datetime64(s.date(), "D").astype(np.int64) for s in stamps], dtype=np.float64)


def _bin(values: np.ndarray, valid: np.ndarray, idx: np.ndarray, n_bins: int) -> np.ndarray:
    """Mean of valid ``values`` ``(N, T[, B])`` per bin ``idx`` ``(T,)`` (−1 = outside), NaN where none."""
    keep = idx >= 0
    onehot = np.zeros((values.shape[1], n_bins))
    onehot[np.flatnonzero(keep), idx[keep]] = 1.0  # (T, bins): which bin each step falls into
    total = np.einsum("nt...,tb->nb...", np.where(valid, values, 0.0), onehot)
    count = np.einsum("nt...,tb->nb...", valid.astype(np.float64), onehot)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(count > 0, total / count, np.nan).astype(np.float32)


def composite_days(ss: SeriesSet, edges: np.ndarray, grid: str) -> SeriesSet:
    """Composite sequences that share one time axis onto the bins ``edges`` (days); labels are the bin starts.

    Raises:
        ValueError: the sequences do not share one time axis.
    """
    days = ss.days[0]
    if not np.array_equal(ss.days, np.broadcast_to(days, ss.days.shape)):
        raise ValueError(f"composite_days needs sequences on one time axis; {ss.source} has several.")
    idx = np.searchsorted(edges, days, side="right") - 1
    idx[(idx < 0) | (idx >= len(edges) - 1)] = -1
    n_bins = len(edges) - 1
    s1 = _bin(ss.s1.astype(np.float64), np.isfinite(ss.s1), idx, n_bins)
    s1[~np.isfinite(s1).all(-1)] = np.nan
    ndvi = _bin(ss.ndvi.astype(np.float64), np.isfinite(ss.ndvi), idx, n_bins)
    used = np.isfinite(s1).any((0, 2)) | np.isfinite(ndvi).any(0)
    keep = np.flatnonzero(used)
    if keep.size:
        keep = np.arange(keep[0], keep[-1] + 1)  # no empty bins at either end; inner empty bins stay (real gaps)
    return SeriesSet(site=ss.site, source=ss.source, grid=grid,
                     days=np.broadcast_to(edges[:-1][keep], (ss.n, keep.size)).copy(), s1=s1[:, keep],
                     ndvi=ndvi[:, keep], group=ss.group, attrs=dict(ss.attrs), xy=ss.xy)


def training_variants(ss: SeriesSet, periods: tuple[int, ...] = (5, 8, 10, 12, 16)) -> list[SeriesSet]:
    """The set itself plus the coarser grids a model should also serve.

    Per-acquisition series are composited onto ``periods``-day grids (two shifted starts each) and calendar months;
    dekadal series onto months; other grids are used as they are.
    """
    shared = bool(np.array_equal(ss.days, np.broadcast_to(ss.days[0], ss.days.shape)))
    if not shared or ss.n == 0:
        return [ss]
    first, last = float(ss.days[0, 0]), float(ss.days[0, -1])
    out = [ss]
    if ss.grid == "acquisition":
        out += [composite_days(ss, regular_edges(first, last, p, off), f"{p}D") for p in periods
                for off in (0, p // 2)]
    if ss.grid in ("acquisition", "dekad") or ss.grid.endswith("D"):
        out.append(composite_days(ss, month_edges(first, last), "month"))
    return [s for s in out if s.steps >= 4]
