"""Temporal compositing onto regular grids: S1 mean of linear power, S2 NDVI of the clearest observation.

Pure numpy rules shared by ``s1ndvi cube`` and the training sampler, so that a model is trained on exactly the
composites it will see.
"""

import numpy as np

__all__ = ["composite_ndvi", "composite_s1", "regular_grid"]


def regular_grid(start: np.datetime64, end: np.datetime64, days: int) -> np.ndarray:
    """Bin edges ``start, start + days, ...`` covering ``[start, end)``; the last bin may be partial."""
    n = int(np.ceil((end - start) / np.timedelta64(days, "D")))
    return (start + np.arange(n + 1) * np.timedelta64(days, "D")).astype("datetime64[ns]")


def _bins(times: np.ndarray, edges: np.ndarray) -> np.ndarray:
    """Index of the bin of each time (``-1`` outside ``[edges[0], edges[-1])``)."""
    idx = np.searchsorted(edges.astype("datetime64[ns]"), times.astype("datetime64[ns]"), side="right") - 1
    idx[(idx < 0) | (idx >= len(edges) - 1)] = -1
    return idx


def composite_s1(values: np.ndarray, times: np.ndarray, edges: np.ndarray) -> np.ndarray:
    """Mean of valid linear-power values per bin.

    Args:
        values: ``(T, B, Y, X)`` linear power, NaN where no data.
        times: ``(T,)`` acquisition times.
        edges: ``(N + 1,)`` bin edges.

    Returns:
        ``(N, B, Y, X)`` float32 means, NaN for bins without a valid value.
    """
    idx = _bins(times, edges)
    n = len(edges) - 1
    total = np.zeros((n,) + values.shape[1:], dtype=np.float64)
    count = np.zeros_like(total)
    valid = np.isfinite(values)
    keep = idx >= 0
    np.add.at(total, idx[keep], np.where(valid, values, 0.0)[keep])
    np.add.at(count, idx[keep], valid[keep])
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(count > 0, total / count, np.nan).astype(np.float32)


def composite_ndvi(ndvi: np.ndarray, times: np.ndarray, edges: np.ndarray, rule: str = "clearest",
                   clear_fraction: np.ndarray | None = None) -> np.ndarray:
    """One NDVI per bin and pixel.

    Args:
        ndvi: ``(T, Y, X)`` NDVI, NaN where cloudy.
        times: ``(T,)`` scene times.
        edges: ``(N + 1,)`` bin edges.
        rule: ``"clearest"``: the valid value of the scene with the largest clear fraction in the bin (ties: the
            earlier scene); ``"max"``: the maximum valid NDVI (maximum-value composite).
        clear_fraction: ``(T,)`` clear fraction of each whole scene, when ``ndvi`` is one spatial block of it
            (default: computed from ``ndvi``).

    Returns:
        ``(N, Y, X)`` float32, NaN where no valid observation falls in the bin.
    """
    if rule not in ("clearest", "max"):
        raise ValueError(f"Unknown S2 composite rule {rule!r}; expected 'clearest' or 'max'.")
    idx = _bins(times, edges)
    out = np.full((len(edges) - 1,) + ndvi.shape[1:], np.nan, dtype=np.float32)
    if clear_fraction is None:
        clear_fraction = np.isfinite(ndvi).mean(axis=(1, 2))
    for b in np.unique(idx[idx >= 0]):
        members = np.flatnonzero(idx == b)
        if rule == "max":
            stack = ndvi[members]
            out[b] = np.where(np.isfinite(stack).any(axis=0), np.nanmax(np.where(np.isfinite(stack), stack, -np.inf),
                                                                         axis=0), np.nan)
            continue
        order = members[np.argsort(-clear_fraction[members], kind="stable")]
        for scene in order:
            fill = np.isnan(out[b]) & np.isfinite(ndvi[scene])
            out[b][fill] = ndvi[scene][fill]
    return out
