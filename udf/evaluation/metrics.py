"""Accuracy metrics on hidden observations: R², MAE, RMSE, bias, counts, by NDVI range and by gap distance."""

import numpy as np

__all__ = ["by_distance", "by_range", "distance_to_kept", "paired_difference", "score"]

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
    """:func:`score` per distance (days) to the nearest kept observation (:data:`DISTANCE_BINS`).

    The last bin also holds observations of pixels with no kept observation at all (distance inf, e.g. P3).
    """
    def label(lo: float, hi: float) -> str:
        return f"{lo:g}-{hi:g}d" if np.isfinite(hi) else f">={lo:g}d or none kept"

    return {label(lo, hi): score(pred, truth, mask & (dist >= lo) & ((dist < hi) | (hi == np.inf)))
            for lo, hi in DISTANCE_BINS}


def paired_difference(pred_a: np.ndarray, pred_b: np.ndarray, truth: np.ndarray, mask: np.ndarray,
                      n_boot: int = 1000, seed: int = 0) -> dict:
    """MAE of ``a`` minus MAE of ``b`` on the observations both predicted, with a pixel bootstrap 95 % interval.

    Observations of one pixel are correlated, so the bootstrap resamples pixels (clusters), not observations.

    Args:
        pred_a: ``(t, y, x)`` predictions of method a.
        pred_b: ``(t, y, x)`` predictions of method b.
        truth: ``(t, y, x)`` observations.
        mask: ``(t, y, x)`` scored observations.
        n_boot: bootstrap replicates.
        seed: seed of the resampling.

    Returns:
        ``n`` (common observations), ``n_pixels``, ``mae_a``, ``mae_b``, ``diff`` (a − b) and ``ci95`` (low, high);
        NaN when fewer than 2 pixels are in common.
    """
    both = mask & np.isfinite(pred_a) & np.isfinite(pred_b) & np.isfinite(truth)
    err_a = np.where(both, np.abs(pred_a - truth), 0.0).reshape(both.shape[0], -1)
    err_b = np.where(both, np.abs(pred_b - truth), 0.0).reshape(both.shape[0], -1)
    cnt = both.reshape(both.shape[0], -1).sum(0)
    keep = cnt > 0
    sa, sb, cnt = err_a.sum(0)[keep], err_b.sum(0)[keep], cnt[keep]
    out: dict = {"n": int(cnt.sum()), "n_pixels": int(keep.sum())}
    if keep.sum() < 2:
        return {**out, "mae_a": float("nan"), "mae_b": float("nan"), "diff": float("nan"),
                "ci95": [float("nan"), float("nan")]}
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, len(cnt), size=(n_boot, len(cnt)))
    boot = (sa[idx].sum(1) - sb[idx].sum(1)) / cnt[idx].sum(1)
    mae_a, mae_b = float(sa.sum() / cnt.sum()), float(sb.sum() / cnt.sum())
    return {**out, "mae_a": mae_a, "mae_b": mae_b, "diff": mae_a - mae_b,
            "ci95": [float(np.percentile(boot, 2.5)), float(np.percentile(boot, 97.5))]}
