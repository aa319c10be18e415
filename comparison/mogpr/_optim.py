"""Batched L-BFGS: many independent smooth minimisations at once, each with its own history and line search.

Each problem (one pixel's hyper-parameters from one start) is a row of a *pool*. Directions come from the compact
L-BFGS form (Byrd, Nocedal & Schnabel 1994) for all rows at once; each row runs its own strong-Wolfe line search
(:mod:`comparison.mogpr._linesearch`), and a curvature pair is kept only where ``sᵀy > 0``. Every round evaluates
one trial point per row in a single batched objective call; rows that finish leave the pool and waiting problems
take their place, so the objective always works on a well-filled batch rather than a shrinking tail. Stopping
rules are scipy L-BFGS-B's (GPy's optimiser): relative decrease ``ftol``, largest gradient entry ``gtol``,
``max_iter`` iterations; a line search that fails restarts once from steepest descent.

The optimiser's state is a few numbers per row, kept in NumPy arrays on the host: a round costs about a hundred
small array operations, several times cheaper in NumPy than as torch dispatches. The objective (torch, any device)
receives and returns NumPy arrays.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, fields
from typing import Any, Callable, Optional, Protocol

import numpy as np

from ._linesearch import Search, advance, where_rows

_log = logging.getLogger(__name__)


class Problems(Protocol):
    """``N`` independent problems, evaluated a pool at a time."""

    def bind(self, ids: np.ndarray) -> None:
        """Make the problems ``ids`` ``(C,)`` the pool: row ``k`` of later evaluations is problem ``ids[k]``."""

    def keep(self, rows: np.ndarray) -> None:
        """Shrink the pool to its ``rows`` ``(C',)`` (ascending)."""

    def evaluate(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Objective ``(C,)`` and gradient ``(C, P)`` of every pool problem at ``x`` ``(C, P)``, float64."""


@dataclass(frozen=True)
class LBFGSOptions:
    """Stopping rules, memory and pool size of the batched L-BFGS."""

    max_iter: int = 1000
    """Most iterations per problem (GPy passes ``max_iters=1000`` to scipy's L-BFGS-B)."""
    history: int = 10
    """Number of curvature pairs kept (scipy's ``m``)."""
    ftol: float = 1e7 * 2.220446049250313e-16
    """Stop when the relative decrease of f is below this (scipy ``factr=1e7`` times machine epsilon)."""
    gtol: float = 1e-5
    """Stop when the largest gradient component is below this (scipy ``pgtol``)."""
    max_trials: int = 20
    """Trial steps of one line search before it fails (scipy L-BFGS-B: 20)."""
    pool: int = 64
    """Problems optimised together; refilled once a quarter of them have finished."""


@dataclass
class LBFGSResult:
    """Outcome per problem."""

    x: np.ndarray
    """Minimisers ``(N, P)``."""
    f: np.ndarray
    """Objective at ``x`` ``(N,)``; +inf where the start was not finite."""
    n_iter: np.ndarray
    """Iterations used ``(N,)``, int64."""
    n_eval: np.ndarray
    """Objective evaluations ``(N,)``, int64."""


@dataclass
class _Pool:
    """Optimiser state of the problems in the pool, one row each; every row is still being optimised.

    A row is in one of three phases: ``start`` (its starting point is evaluated next), ``fresh`` (it needs a new
    direction and line search) or searching (``search.step`` along ``d`` is evaluated next).
    """

    ids: np.ndarray
    x: np.ndarray
    """Current point ``(C, P)``."""
    f: np.ndarray
    g: np.ndarray
    s: np.ndarray
    """Steps ``(C, m, P)``, oldest first; zero rows are empty slots."""
    y: np.ndarray
    """Gradient changes ``(C, m, P)``."""
    gamma: np.ndarray
    """Initial inverse-Hessian scale ``(C,)``."""
    d: np.ndarray
    """Search direction ``(C, P)``."""
    search: Search
    start: np.ndarray
    """``(C,)`` bool: the starting point is evaluated next."""
    fresh: np.ndarray
    """``(C,)`` bool: needs a new direction."""
    it: np.ndarray
    """Iterations so far ``(C,)``."""
    ev: np.ndarray
    """Objective evaluations so far ``(C,)``."""

    def select(self, rows: np.ndarray) -> "_Pool":
        """The rows ``rows`` only."""
        out: dict[str, Any] = {f.name: getattr(self, f.name)[rows] for f in fields(self) if f.name != "search"}
        return _Pool(search=self.search.select(rows), **out)

    def cat(self, other: "_Pool") -> "_Pool":
        """Rows of ``self`` then of ``other``."""
        out: dict[str, Any] = {f.name: np.concatenate([getattr(self, f.name), getattr(other, f.name)])
                               for f in fields(self) if f.name != "search"}
        return _Pool(search=self.search.cat(other.search), **out)

    @staticmethod
    def new(ids: np.ndarray, x0: np.ndarray, m: int) -> "_Pool":
        """Rows for problems ``ids`` starting at ``x0`` ``(n, P)``."""
        n, p = x0.shape
        f, g, count = np.zeros(n), np.zeros((n, p)), np.zeros(n, dtype=np.int64)
        return _Pool(ids=ids, x=x0.copy(), f=f, g=g, s=np.zeros((n, m, p)), y=np.zeros((n, m, p)), gamma=np.zeros(n),
                     d=np.zeros((n, p)), search=Search.begin(f, g, g, np.zeros(n)), start=np.ones(n, dtype=bool),
                     fresh=np.zeros(n, dtype=bool), it=count, ev=count.copy())


def _direction(g: np.ndarray, s: np.ndarray, y: np.ndarray, gamma: np.ndarray) -> np.ndarray:
    """``−H g`` for the L-BFGS inverse-Hessian estimate ``H`` of each row, in compact form.

    ``H = γI + [S γY] [[R⁻ᵀ(D + γYᵀY)R⁻¹, −R⁻ᵀ], [−R⁻¹, 0]] [S γY]ᵀ`` with ``R`` the upper triangle of ``SᵀY`` and
    ``D`` its diagonal (Byrd, Nocedal & Schnabel 1994, eq. 3.1; Nocedal & Wright 2006, eq. 7.24): the same
    ``H g`` as the two-loop recursion, in a few batched products. Empty slots (``s = y = 0``) get ``R_ii = 1`` and
    drop out exactly. ``g`` ``(n, P)``; history ``(n, m, P)``.
    """
    sty = s @ y.transpose(0, 2, 1)  # (n, m, m): s_iᵀ y_j
    d = np.diagonal(sty, axis1=1, axis2=2)
    r = np.triu(sty)
    r[:, np.arange(r.shape[1]), np.arange(r.shape[1])] += d == 0
    a, b = s @ g[:, :, None], y @ g[:, :, None]  # (n, m, 1)
    p = np.linalg.solve(r, a)
    rhs = d[:, :, None] * p + gamma[:, None, None] * (y @ (y.transpose(0, 2, 1) @ p) - b)
    top = np.linalg.solve(r.transpose(0, 2, 1), rhs)
    return -(gamma[:, None] * (g - (y.transpose(0, 2, 1) @ p)[:, :, 0]) + (s.transpose(0, 2, 1) @ top)[:, :, 0])


def _new_directions(pool: _Pool) -> None:
    """New direction and line search for the ``fresh`` rows; a first or non-descent direction is steepest descent.

    Without history the first trial moves a unit distance (scipy L-BFGS-B's first step ``1/‖d‖``); otherwise step 1.
    """
    fresh = pool.fresh
    d = _direction(pool.g, pool.s, pool.y, pool.gamma)
    bad = fresh & ~((pool.g * d).sum(-1) < 0)
    if bad.any():
        pool.s[bad], pool.y[bad] = 0.0, 0.0
        d[bad] = -pool.g[bad]
    empty = ~(pool.s != 0).any((1, 2))
    with np.errstate(divide="ignore"):  # d = 0 only in rows that are not fresh
        step = np.where(empty, 1.0 / np.linalg.norm(d, axis=-1), 1.0)
    search = Search.begin(pool.f, pool.g, d, step)
    if fresh.all():
        pool.d, pool.search = d, search
    else:
        pool.d, pool.search = where_rows(fresh, d, pool.d), pool.search.merge(search, fresh)
    pool.fresh = np.zeros_like(fresh)


def _ended_at(pool: _Pool, xt: np.ndarray, ft: np.ndarray, gt: np.ndarray, opts: LBFGSOptions
              ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Advance the line searches with the trial ``ft``, ``gt`` at ``xt``.

    Returns rows whose search ended (``accept``), rows that failed, rows whose start was finite, and the point
    where each ended search ended (x, f, g): the trial, or the best step of a narrow bracket or of a search out of
    trials.
    """
    start = pool.start
    ended, at_lo = advance(pool.search, ft, gt, pool.d)
    if not (start.any() or at_lo.any() or not ended.all()):
        return ended, np.zeros_like(ended), start, xt, ft, gt
    lo = pool.search.lo
    out_of_trials = ~ended & (pool.search.trials >= opts.max_trials)
    at_lo = (at_lo | (out_of_trials & (lo[:, 0] > 0))) & ~start
    started = start & np.isfinite(ft) & np.isfinite(gt).all(-1)
    x_new = where_rows(at_lo, pool.x + lo[:, :1] * pool.d, xt)
    f_new, g_new = np.where(at_lo, lo[:, 1], ft), where_rows(at_lo, pool.search.lo_g, gt)
    return (ended | at_lo) & ~start, out_of_trials & ~at_lo & ~start, started, x_new, f_new, g_new


def _update(pool: _Pool, xt: np.ndarray, ft: np.ndarray, gt: np.ndarray, opts: LBFGSOptions) -> np.ndarray:
    """Take the evaluation ``ft``, ``gt`` at the trial points ``xt`` into the pool; returns the finished rows."""
    start = pool.start
    accept, failed, started, x_new, f_new, g_new = _ended_at(pool, xt, ft, gt, opts)
    moved = accept | started
    s, yv = x_new - pool.x, g_new - pool.g
    sy = (s * yv).sum(-1)
    keep = accept & (sy > 1e-10 * np.linalg.norm(s, axis=-1) * np.linalg.norm(yv, axis=-1))
    had_history = (pool.s != 0).any((1, 2))
    rolled_s = np.concatenate([pool.s[:, 1:], (s * keep[:, None])[:, None]], 1)
    rolled_y = np.concatenate([pool.y[:, 1:], (yv * keep[:, None])[:, None]], 1)
    pool.s, pool.y = where_rows(accept, rolled_s, pool.s), where_rows(accept, rolled_y, pool.y)
    with np.errstate(invalid="ignore", divide="ignore"):
        pool.gamma = np.where(keep, sy / np.maximum((yv * yv).sum(-1), 1e-300), pool.gamma)
        pool.gamma = np.where(started, 1.0 / np.maximum(np.abs(gt).sum(-1), 1.0), pool.gamma)
        rel = (pool.f - f_new) / np.maximum(np.maximum(np.abs(pool.f), np.abs(f_new)), 1.0)
    pool.x, pool.g = where_rows(moved, x_new, pool.x), where_rows(moved, g_new, pool.g)
    pool.f = np.where(moved, f_new, np.where(start, np.inf, pool.f))
    pool.ev += 1
    pool.it += accept | failed
    retry = failed & had_history  # a failed search with history gets one retry from steepest descent
    pool.s[retry], pool.y[retry] = 0.0, 0.0
    pool.fresh = moved | retry
    pool.start = np.zeros_like(start)
    return ((start & ~started) | (failed & ~had_history) | (accept & (rel <= opts.ftol))
            | (moved & (np.abs(pool.g).max(-1) <= opts.gtol)) | (pool.it >= opts.max_iter))


def _record(out: LBFGSResult, rows: _Pool, on_done: Optional[Callable[[np.ndarray], None]]) -> None:
    out.x[rows.ids], out.f[rows.ids], out.n_iter[rows.ids], out.n_eval[rows.ids] = rows.x, rows.f, rows.it, rows.ev
    if on_done is not None and len(rows.ids):
        on_done(rows.ids)


def minimize(
    problems: Problems, x0: np.ndarray, opts: LBFGSOptions = LBFGSOptions(),
    on_done: Optional[Callable[[np.ndarray], None]] = None,
) -> LBFGSResult:
    """Minimise ``N`` independent problems with L-BFGS, ``opts.pool`` at a time, in the order of their ids.

    Every row of the pool evaluates exactly one trial point per round (its start, step 1 along a new direction, or
    a shorter step of its ongoing line search), so each round is one batched objective call.

    Args:
        problems: the objective; see :class:`Problems`.
        x0: starting points ``(N, P)``.
        opts: stopping rules, history length and pool size.
        on_done: called with the ids of problems as they finish.

    Returns:
        Minimisers, objective values, iteration and evaluation counts per problem.
    """
    n = len(x0)
    out = LBFGSResult(x=x0.copy(), f=np.full(n, np.inf), n_iter=np.zeros(n, dtype=np.int64),
                      n_eval=np.zeros(n, dtype=np.int64))
    pool = _Pool.new(np.zeros(0, dtype=np.int64), x0[:0], opts.history)
    next_id = 0
    while next_id < n or len(pool.ids):
        if next_id < n and 4 * len(pool.ids) <= 3 * opts.pool:
            ids = np.arange(next_id, min(n, next_id + opts.pool - len(pool.ids)))
            pool = pool.cat(_Pool.new(ids, x0[ids], opts.history))
            problems.bind(pool.ids)
            next_id += len(ids)
        if pool.fresh.any():
            _new_directions(pool)
        xt = pool.x + pool.search.step[:, None] * pool.d
        ft, gt = problems.evaluate(xt)
        done = _update(pool, xt, ft, gt, opts)
        if done.any():
            _record(out, pool.select(done), on_done)
            live = np.flatnonzero(~done)
            pool = pool.select(live)
            problems.keep(live)
    _log.debug("L-BFGS: %d problems, mean %.1f iterations, %.1f evaluations", n, out.n_iter.mean() if n else 0.0,
               out.n_eval.mean() if n else 0.0)
    return out
