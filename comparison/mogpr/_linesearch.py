"""Batched strong-Wolfe line search as a per-row state machine: one trial step per row per call.

Nocedal & Wright (2006), Algorithms 3.5 (bracketing) and 3.6 (zoom), with cubic interpolation of the two ends of
the bracket (eq. 3.59), safeguarded by bisection, and cubic extrapolation kept within ``[1.1, 4]`` times the last
step increase (the limits of Moré & Thuente 1994, as in scipy's L-BFGS-B). Conditions as scipy's L-BFGS-B:
sufficient decrease ``c1 = 1e-3``, curvature ``c2 = 0.9``; a bracket narrower than 10 % of its upper end ends the
search at its best point (``xtol = 0.1``). Every row advances independently, so one batched objective call serves
rows at different stages of their searches. The state is a few numbers per row: NumPy arrays on the host, where
small operations cost a fraction of torch's dispatch.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any

import numpy as np

C1, C2, XTOL = 1e-3, 0.9, 0.1
"""Sufficient decrease, curvature and bracket-width constants (scipy ``dcsrch``'s ``ftol``, ``gtol``, ``xtol``)."""


def where_rows(mask: np.ndarray, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """``a`` where ``mask`` ``(C,)`` is True, else ``b``, broadcasting ``mask`` over trailing dimensions."""
    return np.where(mask.reshape(-1, *[1] * (a.ndim - 1)), a, b)


@dataclass
class Search:
    """Line-search state of ``C`` rows along their directions ``d``; ``lo`` is the best step found so far."""

    step: np.ndarray
    """Next trial step ``(C,)``."""
    f0: np.ndarray
    """Objective at step 0 ``(C,)``."""
    slope0: np.ndarray
    """Directional derivative at step 0 ``(C,)``, negative."""
    lo: np.ndarray
    """``(C, 3)``: step, objective and directional derivative of the best point so far (step 0 at first)."""
    hi: np.ndarray
    """``(C, 3)``: the other end of the bracket once ``zoom`` (step, objective, directional derivative)."""
    lo_g: np.ndarray
    """Gradient at the ``lo`` step ``(C, P)``."""
    zoom: np.ndarray
    """``(C,)`` bool: a bracket ``[lo, hi]`` is known."""
    trials: np.ndarray
    """Trials so far ``(C,)``, int64."""

    @staticmethod
    def begin(f0: np.ndarray, g0: np.ndarray, d: np.ndarray, step: np.ndarray) -> "Search":
        """Searches from objectives ``f0`` ``(C,)`` and gradients ``g0`` ``(C, P)`` along ``d``, first trial ``step``."""
        slope0 = (g0 * d).sum(-1)
        lo = np.stack([np.zeros_like(f0), f0, slope0], -1)
        return Search(step=step, f0=f0, slope0=slope0, lo=lo, hi=np.full_like(lo, np.nan), lo_g=g0,
                      zoom=np.zeros(len(f0), dtype=bool), trials=np.zeros(len(f0), dtype=np.int64))

    def _map(self, fn: Any) -> "Search":
        return Search(**{f.name: fn(f.name, getattr(self, f.name)) for f in fields(self)})

    def merge(self, other: "Search", rows: np.ndarray) -> "Search":
        """``other`` where ``rows`` ``(C,)`` is True, ``self`` elsewhere."""
        return self._map(lambda k, v: where_rows(rows, getattr(other, k), v))

    def select(self, rows: np.ndarray) -> "Search":
        """The rows ``rows`` only."""
        return self._map(lambda k, v: v[rows])

    def cat(self, other: "Search") -> "Search":
        """Rows of ``self`` then of ``other``."""
        return self._map(lambda k, v: np.concatenate([v, getattr(other, k)]))


def _cubic_min(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Minimiser of the cubic through two ``(step, f, f')`` points ``(C, 3)`` (N&W eq. 3.59); NaN if none."""
    with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
        d1 = a[:, 2] + b[:, 2] - 3.0 * (a[:, 1] - b[:, 1]) / (a[:, 0] - b[:, 0])
        d2 = np.sign(b[:, 0] - a[:, 0]) * np.sqrt(d1 * d1 - a[:, 2] * b[:, 2])
        return b[:, 0] - (b[:, 0] - a[:, 0]) * (b[:, 2] + d2 - d1) / (b[:, 2] - a[:, 2] + 2.0 * d2)


def advance(s: Search, ft: np.ndarray, gt: np.ndarray, d: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Take the objective ``ft`` ``(C,)`` and gradient ``gt`` ``(C, P)`` at the trial ``s.step`` along ``d`` into ``s``.

    Returns:
        ``done`` ``(C,)`` bool: the search has ended; ``at_lo`` ``(C,)`` bool: it ended at ``s.lo`` (its step, f
        and ``s.lo_g``) rather than at the trial just evaluated.
    """
    finite = np.isfinite(ft) & np.isfinite(gt).all(-1)
    with np.errstate(invalid="ignore"):
        dphi = (gt * d).sum(-1)
        t = s.step
        high = ~finite | (ft > s.f0 + C1 * t * s.slope0) | ((s.lo[:, 0] > 0) & (ft >= s.lo[:, 1]))
        wolfe = ~high & (np.abs(dphi) <= -C2 * s.slope0)
    s.trials = s.trials + 1
    if wolfe.all():  # the common case: every trial is accepted
        return wolfe, np.zeros_like(wolfe)
    trial = np.stack([t, ft, dphi], -1)
    uphill = ~high & ~wolfe & (np.where(s.zoom, dphi * (s.hi[:, 0] - s.lo[:, 0]), dphi) >= 0)
    lower = ~high & ~wolfe  # the trial becomes lo
    old_lo = s.lo
    s.hi = where_rows(high, trial, where_rows(uphill, s.lo, s.hi))
    s.zoom = s.zoom | high | uphill
    s.lo = where_rows(lower, trial, s.lo)
    s.lo_g = where_rows(lower, gt, s.lo_g)
    lo_t, hi_t = s.lo[:, 0], s.hi[:, 0]
    narrow = s.zoom & (lo_t > 0) & (np.abs(hi_t - lo_t) <= XTOL * np.maximum(lo_t, hi_t))
    s.step = np.where(s.zoom, _zoom_step(s), _extrapolate(old_lo, trial))
    return wolfe | narrow, narrow & ~wolfe


def _zoom_step(s: Search) -> np.ndarray:
    """Cubic step inside the bracket, or its midpoint when the cubic falls near an end or outside."""
    lo_t, hi_t = s.lo[:, 0], s.hi[:, 0]
    width = hi_t - lo_t
    cubic = _cubic_min(s.lo, s.hi)
    with np.errstate(invalid="ignore", divide="ignore"):
        inside = np.isfinite(cubic) & ((cubic - lo_t) / width > 0.1) & ((hi_t - cubic) / width > 0.1)
    return np.where(inside, cubic, lo_t + 0.5 * width)


def _extrapolate(prev: np.ndarray, trial: np.ndarray) -> np.ndarray:
    """Longer step after a trial that still descends steeply: cubic through the last two points, within limits."""
    t, prev_t = trial[:, 0], prev[:, 0]
    cubic = _cubic_min(prev, trial)
    low, high = t + 1.1 * (t - prev_t), t + 4.0 * (t - prev_t)
    return np.where(np.isfinite(cubic), np.clip(cubic, low, high), high)
