"""Batched L-BFGS: many independent smooth minimisations at once, each with its own history and line search.

Each row of ``x`` is an independent problem (one pixel's hyper-parameters). The two-loop recursion
(Nocedal & Wright 2006, Alg. 7.4) runs on all rows in parallel; the line search is a per-row backtracking
Armijo search, and a curvature pair is kept only where ``sᵀy > 0`` (otherwise that history slot is a no-op).
Rows that converge leave the active set, so the objective is evaluated on the remaining rows only.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Callable, Optional

import torch

_log = logging.getLogger(__name__)

#: ``objective(x, rows) -> (f, g)``: values ``(n,)`` and gradients ``(n, P)`` of problems ``rows`` at ``x (n, P)``.
Objective = Callable[[torch.Tensor, torch.Tensor], "tuple[torch.Tensor, torch.Tensor]"]


@dataclass(frozen=True)
class LBFGSOptions:
    """Stopping rules and memory of the batched L-BFGS."""

    max_iter: int = 1000
    """Most iterations per problem (GPy passes ``max_iters=1000`` to scipy's L-BFGS-B)."""
    history: int = 10
    """Number of curvature pairs kept (scipy's ``m``)."""
    ftol: float = 1e7 * 2.220446049250313e-16
    """Stop when the relative decrease of f is below this (scipy ``factr=1e7`` times machine epsilon)."""
    gtol: float = 1e-5
    """Stop when the largest gradient component is below this (scipy ``pgtol``)."""
    max_backtracks: int = 30
    """Halvings of the step before a row is declared stuck."""


@dataclass
class LBFGSResult:
    """Outcome per problem."""

    x: torch.Tensor
    """Minimisers ``(N, P)``."""
    f: torch.Tensor
    """Objective at ``x`` ``(N,)``."""
    n_iter: torch.Tensor
    """Iterations used ``(N,)``, int64."""


def _two_loop(
    g: torch.Tensor, s: torch.Tensor, y: torch.Tensor, rho: torch.Tensor, gamma: torch.Tensor
) -> torch.Tensor:
    """Apply the L-BFGS inverse-Hessian estimate to ``g`` ``(n, P)``; history ``(n, m, P)`` oldest first."""
    q = g.clone()
    m = s.shape[1]
    alphas = []
    for i in range(m - 1, -1, -1):
        a = rho[:, i] * (s[:, i] * q).sum(-1)
        q = q - a[:, None] * y[:, i]
        alphas.append(a)
    r = gamma[:, None] * q
    for i in range(m):
        b = rho[:, i] * (y[:, i] * r).sum(-1)
        r = r + s[:, i] * (alphas[m - 1 - i] - b)[:, None]
    return r


def _line_search(
    objective: Objective, rows: torch.Tensor, x: torch.Tensor, f: torch.Tensor, g: torch.Tensor, d: torch.Tensor,
    opts: LBFGSOptions,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Backtracking Armijo search along ``d`` for each row; returns new x, f, g and a bool 'found' per row."""
    slope = (g * d).sum(-1)
    step = torch.ones_like(f)
    x_new, f_new, g_new = x.clone(), f.clone(), g.clone()
    found = torch.zeros_like(f, dtype=torch.bool)
    todo = torch.arange(len(f), device=f.device)
    for _ in range(opts.max_backtracks):
        xt = x[todo] + step[todo, None] * d[todo]
        ft, gt = objective(xt, rows[todo])
        ok = torch.isfinite(ft) & (ft <= f[todo] + 1e-4 * step[todo] * slope[todo]) & torch.isfinite(gt).all(-1)
        acc = todo[ok]
        x_new[acc], f_new[acc], g_new[acc] = xt[ok], ft[ok], gt[ok]
        found[acc] = True
        todo = todo[~ok]
        if len(todo) == 0:
            break
        step[todo] *= 0.5
    return x_new, f_new, g_new, found


def minimize(
    objective: Objective, x0: torch.Tensor, opts: LBFGSOptions = LBFGSOptions(),
    progress: Optional[Callable[[int, int], None]] = None,
) -> LBFGSResult:
    """Minimise ``N`` independent problems with L-BFGS.

    Args:
        objective: ``(x (n, P), rows (n,) int64) -> (f (n,), grad (n, P))`` for the subset ``rows`` of problems.
        x0: starting points ``(N, P)``.
        opts: stopping rules and history length.
        progress: called as ``progress(iteration, n_active)`` after each iteration.

    Returns:
        Minimisers, objective values and iteration counts per problem.
    """
    n, p = x0.shape
    dev, dt = x0.device, x0.dtype
    all_rows = torch.arange(n, device=dev)
    x = x0.clone()
    f, g = objective(x, all_rows)
    n_iter = torch.zeros(n, dtype=torch.long, device=dev)
    s_hist = torch.zeros(n, opts.history, p, device=dev, dtype=dt)
    y_hist = torch.zeros_like(s_hist)
    rho = torch.zeros(n, opts.history, device=dev, dtype=dt)
    gamma = 1.0 / g.abs().sum(-1).clamp(min=1.0)
    active = torch.isfinite(f) & (g.abs().amax(-1) > opts.gtol)
    for it in range(opts.max_iter):
        rows = all_rows[active]
        if len(rows) == 0:
            break
        d = -_two_loop(g[rows], s_hist[rows], y_hist[rows], rho[rows], gamma[rows])
        bad = ~((g[rows] * d).sum(-1) < 0)  # not a descent direction: restart from steepest descent
        if bad.any():
            br = rows[bad]
            s_hist[br], y_hist[br], rho[br] = 0.0, 0.0, 0.0
            d[bad] = -g[br] / g[br].abs().sum(-1, keepdim=True).clamp(min=1.0)
        xn, fn, gn, found = _line_search(objective, rows, x[rows], f[rows], g[rows], d, opts)
        s, yv = xn - x[rows], gn - g[rows]
        sy = (s * yv).sum(-1)
        keep = sy > 1e-10 * s.norm(dim=-1) * yv.norm(dim=-1)
        s_hist[rows] = torch.roll(s_hist[rows], -1, dims=1)
        y_hist[rows] = torch.roll(y_hist[rows], -1, dims=1)
        rho[rows] = torch.roll(rho[rows], -1, dims=1)
        s_hist[rows, -1] = torch.where(keep[:, None], s, 0.0)
        y_hist[rows, -1] = torch.where(keep[:, None], yv, 0.0)
        rho[rows, -1] = torch.where(keep, 1.0 / sy.where(keep, torch.ones_like(sy)), 0.0)
        gamma[rows] = torch.where(keep, sy / (yv * yv).sum(-1).clamp(min=1e-300), gamma[rows])
        rel = (f[rows] - fn) / torch.maximum(torch.maximum(f[rows].abs(), fn.abs()), torch.ones_like(fn))
        x[rows], f[rows], g[rows] = xn, fn, gn
        n_iter[rows] += 1
        had_history = (rho[rows] != 0).any(-1) & keep.logical_not()
        stuck = ~found & ~had_history  # a failed search with history gets one retry from steepest descent
        retry = ~found & had_history
        if retry.any():
            rr = rows[retry]
            s_hist[rr], y_hist[rr], rho[rr] = 0.0, 0.0, 0.0
        done = stuck | (found & (rel <= opts.ftol)) | (gn.abs().amax(-1) <= opts.gtol)
        active[rows[done]] = False
        if progress is not None:
            progress(it + 1, int(active.sum()))
    _log.debug("L-BFGS: %d problems, %d still active after %d iterations", n, int(active.sum()), opts.max_iter)
    return LBFGSResult(x=x, f=f, n_iter=n_iter)
