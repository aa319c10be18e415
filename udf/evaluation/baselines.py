"""Cheap baselines: linear interpolation and the Whittaker smoother (λ chosen on training pixels).

Every baseline maps NDVI with gaps ``(t, y, x)`` (NaN missing) and day numbers ``(t,)`` to a full ``(t, y, x)`` series;
a pixel with too few observations gets NaN (counted by the harness, never dropped silently).
"""

import logging

import numpy as np
from scipy.linalg import solveh_banded

from udf.evaluation.metrics import score
from udf.evaluation.protocols import make_protocols

_log = logging.getLogger(__name__)

__all__ = ["WHITTAKER_LAMBDAS", "choose_whittaker_lambda", "linear_interpolation", "whittaker"]

WHITTAKER_LAMBDAS = (0.3, 1.0, 3.0, 10.0, 30.0, 100.0, 300.0, 1000.0, 3000.0)


def linear_interpolation(ndvi: np.ndarray, days: np.ndarray) -> np.ndarray:
    """Linear interpolation in time between kept observations; constant beyond the first/last; NaN with none."""
    nt = ndvi.shape[0]
    flat = ndvi.reshape(nt, -1)
    out = np.full(flat.shape, np.nan, dtype=np.float32)
    for j in range(flat.shape[1]):
        ok = np.isfinite(flat[:, j])
        if ok.any():
            out[:, j] = np.interp(days, days[ok], flat[ok, j])
    return out.reshape(ndvi.shape)


def _second_difference_banded(days: np.ndarray, lam: float) -> np.ndarray:
    """Upper banded form (3 × T) of λ·DᵀD for second differences on possibly irregular steps."""
    nt = days.size
    d = np.zeros((nt - 2, nt))
    ref = 10.0  # λ is expressed per 10-day step: on a regular 10-day grid D is the usual [1, -2, 1]
    for i in range(nt - 2):
        h1, h2 = days[i + 1] - days[i], days[i + 2] - days[i + 1]
        c = 2.0 * ref * ref / (h1 + h2)
        d[i, i], d[i, i + 1], d[i, i + 2] = c / h1, -c * (1.0 / h1 + 1.0 / h2), c / h2
    dtd = lam * d.T @ d
    banded = np.zeros((3, nt))
    for k in range(3):
        banded[2 - k, k:] = np.diagonal(dtd, k)
    return banded


def whittaker(ndvi: np.ndarray, days: np.ndarray, lam: float, min_obs: int = 2) -> np.ndarray:
    """Whittaker smoother (Eilers 2003) with zero weights at gaps: solve ``(W + λDᵀD) z = W y`` per pixel.

    Args:
        ndvi: ``(t, y, x)`` NDVI, NaN missing.
        days: ``(t,)`` day numbers.
        lam: smoothing parameter λ (per 10-day step).
        min_obs: fewest observations for a fit; fewer gives NaN.
    """
    nt = ndvi.shape[0]
    flat = ndvi.reshape(nt, -1).astype(np.float64)
    out = np.full(flat.shape, np.nan, dtype=np.float32)
    if nt < 3:
        return out.reshape(ndvi.shape)
    base = _second_difference_banded(np.asarray(days, dtype=np.float64), lam)
    for j in range(flat.shape[1]):
        w = np.isfinite(flat[:, j])
        if w.sum() < min_obs:
            continue
        ab = base.copy()
        ab[2] += w
        out[:, j] = solveh_banded(ab, np.where(w, flat[:, j], 0.0))
    return np.clip(out, -1, 1).reshape(ndvi.shape)


def choose_whittaker_lambda(ndvi: np.ndarray, days: np.ndarray, train_pixels: np.ndarray, seed: int = 0,
                            lambdas: tuple[float, ...] = WHITTAKER_LAMBDAS) -> tuple[float, dict[float, float]]:
    """Pick λ with the lowest MAE on hidden observations of training pixels (P1 and P2 masks, own seed).

    Returns:
        The chosen λ and the MAE of every candidate.
    """
    prots = make_protocols(ndvi, days, train_pixels, names=("P1", "P2_60", "P2_90"), seed=seed + 1000)
    maes: dict[float, float] = {}
    for lam in lambdas:
        errs = [score(whittaker(p.apply(ndvi), days, lam), ndvi, p.hidden)["mae"] for p in prots.values()]
        maes[lam] = float(np.nanmean(errs))
    best = min(maes, key=lambda k: maes[k])
    _log.info("Whittaker λ=%s chosen on training pixels (MAE by λ: %s)", best, maes)
    return best, maes
