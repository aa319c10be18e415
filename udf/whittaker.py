"""Weighted Whittaker smoother on an irregular time axis, vectorised over pixels (numpy only).

For every pixel, the smoothed series ``z`` minimises

    Σ_i w_i·Δ_i·(y_i − z_i)²  +  λ·Σ_j m_j·(D²z)_j²

where ``Δ_i`` is the time each node stands for (half the distance between its neighbours), ``(D²z)_j`` the second
divided difference at interior node ``j`` (a curvature in NDVI per day²) and ``m_j`` its interval length: a discrete
form of ``∫ w (y − z)² dt + λ ∫ z''² dt`` (Eilers 2003, "A perfect smoother", Anal. Chem. 75, 3631, on an uneven
grid). Because both terms are integrals over time, the result does not depend on the step of the time axis: on a
densely observed series the smoother halves the amplitude of a sinusoid of period ``2π·λ^{1/4}`` days, which is how
:func:`lambda_for_period` turns a cut-off period into λ. Missing values have weight 0 (the curve is a cubic spline
through the gap; beyond the first/last observation it continues linearly).

The normal equations ``(WΔ + λ·D²ᵀMD²) z = WΔ y`` are pentadiagonal and symmetric positive definite when a pixel has
at least two observations; they are solved by a banded LDLᵀ factorisation that loops over time steps and works on
all pixels at once (arrays ``(N,)`` per step), so the cost is ``O(N·T)``.
"""

import logging

import numpy as np

_log = logging.getLogger(__name__)

__all__ = ["lambda_for_period", "node_lengths", "whittaker_smooth"]


def lambda_for_period(period_days: float) -> float:
    """λ (days⁴) at which the smoother halves a sinusoid of ``period_days`` (densely observed series)."""
    return float((period_days / (2.0 * np.pi)) ** 4)


def node_lengths(days: np.ndarray) -> np.ndarray:
    """Time ``(T,)`` each node stands for: half the distance between its neighbours (half a step at the ends)."""
    t = np.asarray(days, dtype=np.float64)
    if t.size == 1:
        return np.ones(1)
    gaps = np.diff(t)
    out = np.empty_like(t)
    out[0], out[-1] = gaps[0] / 2.0, gaps[-1] / 2.0
    out[1:-1] = (gaps[:-1] + gaps[1:]) / 2.0
    return out


def _penalty_bands(days: np.ndarray, lam: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Diagonal ``(T,)``, first ``(T-1,)`` and second ``(T-2,)`` off-diagonals of ``λ·D²ᵀMD²``."""
    t = np.asarray(days, dtype=np.float64)
    nt = t.size
    p0, p1, p2 = np.zeros(nt), np.zeros(max(nt - 1, 0)), np.zeros(max(nt - 2, 0))
    for j in range(1, nt - 1):
        h1, h2 = t[j] - t[j - 1], t[j + 1] - t[j]
        c = 2.0 / (h1 + h2)
        row = (c / h1, -c * (1.0 / h1 + 1.0 / h2), c / h2)  # coefficients on z[j-1], z[j], z[j+1]
        m = lam * (h1 + h2) / 2.0
        for a in range(3):
            p0[j - 1 + a] += m * row[a] * row[a]
            if a < 2:
                p1[j - 1 + a] += m * row[a] * row[a + 1]
        p2[j - 1] += m * row[0] * row[2]
    return p0, p1, p2


def whittaker_smooth(values: np.ndarray, days: np.ndarray, weights: np.ndarray, lam: float) -> np.ndarray:
    """Smooth every pixel's series.

    Args:
        values: ``(N, T)`` observations; entries with weight 0 are ignored (may be NaN).
        days: ``(T,)`` strictly increasing time labels in days.
        weights: ``(N, T)`` non-negative observation weights (0 = missing).
        lam: smoothing parameter in days⁴ (see :func:`lambda_for_period`).

    Returns:
        ``(N, T)`` float64 smoothed series; rows with fewer than two positive weights are NaN.
    """
    t = np.asarray(days, dtype=np.float64)
    n, nt = values.shape
    w = np.ascontiguousarray((np.asarray(weights, dtype=np.float64) * node_lengths(t)[None, :]).T)  # (T, N)
    b = np.where(w > 0, np.nan_to_num(np.asarray(values, dtype=np.float64).T), 0.0) * w
    out = np.full((n, nt), np.nan)
    ok = (w > 0).sum(0) >= 2
    if not ok.any():
        return out
    if nt < 3:
        out[ok] = np.where(w[:, ok] > 0, b[:, ok] / np.where(w[:, ok] > 0, w[:, ok], 1.0), np.nan).T
        return out
    p0, p1, p2 = _penalty_bands(t, lam)
    out[ok] = _solve_pentadiagonal(w[:, ok] + p0[:, None], p1, p2, b[:, ok]).T
    return out


def _solve_pentadiagonal(a0: np.ndarray, a1: np.ndarray, a2: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Solve ``A z = b`` per column for SPD pentadiagonal ``A`` by an LDLᵀ factorisation, in place.

    ``a0`` and ``b`` are ``(T, N)`` (time-major, so that every step works on contiguous rows); ``a1``/``a2`` are the
    off-diagonals shared by all columns.
    """
    nt, n = a0.shape
    d, u = a0, b  # overwritten: d[i] = D[i], u[i] = (L⁻¹b)[i] / D[i]
    e = np.zeros((nt, n))  # L[i+1, i]
    f = np.zeros((nt, n))  # L[i+2, i]
    tmp = np.empty(n)
    lower = ((1, e), (2, f))  # (lag, column of L below the diagonal)
    for i in range(nt):
        for lag, low in lower:
            if i >= lag:
                np.multiply(low[i - lag], low[i - lag], out=tmp)
                tmp *= d[i - lag]
                d[i] -= tmp
                np.multiply(low[i - lag], u[i - lag], out=tmp)
                u[i] -= tmp
        if i + 1 < nt:
            e[i] = a1[i]
            if i >= 1:
                np.multiply(f[i - 1], e[i - 1], out=tmp)
                tmp *= d[i - 1]
                e[i] -= tmp
            e[i] /= d[i]
        if i + 2 < nt:
            np.divide(a2[i], d[i], out=f[i])
    u /= d
    for i in range(nt - 1, -1, -1):  # back substitution in place: u becomes z
        for lag, low in lower:
            if i + lag < nt:
                np.multiply(low[i], u[i + lag], out=tmp)
                u[i] -= tmp
    return u
