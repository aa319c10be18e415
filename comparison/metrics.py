"""Accuracy metrics on hidden observations: R², MAE, RMSE, bias, counts, by NDVI range and by gap distance."""

import numpy as np

__all__ = ["by_distance", "by_range", "distance_to_kept", "score"]

RANGES = ((-1.0, 0.3), (0.3, 0.6), (0.6, 1.01))
DISTANCE_BINS = ((0, 15), (15, 30), (30, 60), (60, np.inf))


def score(pred: np.ndarray, truth: np.ndarray, mask: np.ndarray) -> dict:
    """Metrics of ``pred`` against ``truth`` on ``mask`` (all arrays of one shape).

    Returns:
        ``n`` (scored observations), ``n_nan`` (of those, where the method gave NaN: counted, never dropped silently
        from the count), and R², MAE, RMSE, bias (pred − truth) over the ``n - n_nan`` finite predictions.
    """
    m = mask & np.isfinite(truth)
    p, t = pred[m].astype(np.float64), truth[m].astype(np.float64)
    ok = np.isfinite(p)
    out: dict = {"n": int(m.sum()), "n_nan": int((~ok).sum())}
    if ok.sum() < 2:
        return {**out, "r2": float("nan"), "mae": float("nan"), "rmse": float("nan"), "bias": float("nan")}
    p, t = p[ok], t[ok]
    resid = p - t
    ss_tot = float(((t - t.mean()) ** 2).sum())
    out.update(r2=1.0 - float((resid ** 2).sum()) / ss_tot if ss_tot > 0 else float("nan"),
               mae=float(np.abs(resid).mean()), rmse=float(np.sqrt((resid ** 2).mean())), bias=float(resid.mean()))
    return out


def by_range(pred: np.ndarray, truth: np.ndarray, mask: np.ndarray) -> dict[str, dict]:
    """:func:`score` per true-NDVI range (:data:`RANGES`)."""
    return {f"{lo:g}..{min(hi, 1.0):g}": score(pred, truth, mask & (truth >= lo) & (truth < hi)) for lo, hi in RANGES}


def distance_to_kept(days: np.ndarray, kept: np.ndarray) -> np.ndarray:
    """Days from each step to the nearest kept observation of the same pixel.

    Args:
        days: ``(t,)`` days.
        kept: ``(t, y, x)`` observations still given to the methods.

    Returns:
        ``(t, y, x)`` float distances (inf for a pixel without any kept observation).
    """
    d = np.asarray(days, dtype=np.float64)[:, None, None]
    big = np.where(kept, d, np.nan)
    dist = np.full(kept.shape, np.inf)
    for k in range(kept.shape[0]):
        with np.errstate(invalid="ignore"):
            diff = np.abs(big - d[k])
        dist[k] = np.where(np.isfinite(diff).any(axis=0), np.nanmin(np.where(np.isfinite(diff), diff, np.inf),
                                                                       axis=0), np.inf)
    return dist


def by_distance(pred: np.ndarray, truth: np.ndarray, mask: np.ndarray, dist: np.ndarray) -> dict[str, dict]:
    """:func:`score` per distance (days) to the nearest kept observation (:data:`DISTANCE_BINS`)."""
    return {f"{lo:g}-{hi:g}d": score(pred, truth, mask & (dist >= lo) & (dist < hi)) for lo, hi in DISTANCE_BINS}
