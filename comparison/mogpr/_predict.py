"""MOGPR posterior prediction through covariance bins (see :mod:`comparison.mogpr._binned`).

The training covariance is gathered from the bin table as in the likelihood; the cross-covariance between the
prediction times and the training slots depends only on the two outputs and the distance between a prediction time
and a date, so it is gathered from a second small table over the distinct such distances. Values equal the dense
computation of :mod:`comparison.mogpr._model` up to rounding.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from . import _binned as _b
from . import _model as _m


@dataclass
class CrossGrid:
    """Distinct distances between prediction times ``(S,)`` and the dates ``(T,)`` of a time axis."""

    dist: torch.Tensor
    """Sorted distinct distances ``(U',)`` in days."""
    index: torch.Tensor
    """``(S, T)`` int64: position in ``dist`` of ``|s − t|``."""

    @staticmethod
    def from_times(t_new: torch.Tensor, times: torch.Tensor) -> "CrossGrid":
        """Distances between ``t_new`` ``(S,)`` and ``times`` ``(T,)``, both in days from the same origin."""
        dist, index = torch.unique((t_new[:, None] - times[None, :]).abs(), sorted=True, return_inverse=True)
        return CrossGrid(dist=dist, index=index)


def _cross_cov(h: _m.Unpacked, d: _m.Packed, cross: CrossGrid) -> torch.Tensor:
    """Cross-covariances ``(n, O, S, M)`` between every output at the prediction times and the training slots."""
    n, q, o = h.w.shape
    u = cross.dist.shape[0]
    r = (_m.SQRT3 * cross.dist) / h.ls[:, :, None]  # (n, Q, U')
    matern = (1.0 + r) * torch.exp(-r)
    coreg = torch.addcmul(torch.diag_embed(h.kappa), h.w[:, :, :, None], h.w[:, :, None, :]) * h.var[:, :, None, None]
    core = torch.bmm(coreg.reshape(n, q, o * o).transpose(1, 2), matern).view(n, o, o * u)  # Σ_q var_q B_q m_q
    table = torch.cat([core, core.new_zeros(n, o, 1)], dim=2)  # last column: padded slots
    s, m = cross.index.shape[0], d.y.shape[1]
    idx = torch.where(d.valid[:, None, :], d.out[:, None, :] * u + cross.index[:, d.date].permute(1, 0, 2), o * u)
    return torch.gather(table, 2, idx.reshape(n, 1, s * m).expand(n, o, s * m)).view(n, o, s, m)


def predict(
    params: torch.Tensor, d: _m.Packed, grid: _b.Grid, cross: CrossGrid, n_kernels: int, include_noise: bool = True
) -> tuple[torch.Tensor, torch.Tensor]:
    """Posterior predictive mean and variance, in normalised units, at the prediction times of ``cross``.

    Args:
        params: constrained hyper-parameters ``(n, P)``.
        d: packed training data of the same ``n`` pixels (``d.date`` indexes the dates of ``grid`` and ``cross``).
        grid: covariance bins of the time axis.
        cross: distances between the prediction times and the dates.
        n_kernels: ``Q``.
        include_noise: add the output's noise variance (GPy ``predict`` default, ``include_likelihood=True``).

    Returns:
        ``mean`` and ``var``, each ``(n, S, O)``.
    """
    n, m = d.y.shape
    h = _m.unpack(params, grid.n_outputs, n_kernels)
    values = _b.bin_table(h, grid).values
    upper = torch.linalg.cholesky(torch.gather(values, 1, _b.bin_pixels(d, grid).bins).view(n, m, m), upper=True)
    alpha = torch.cholesky_solve(d.y[:, :, None], upper, upper=True)  # K⁻¹ y  (n, M, 1)
    ks = _cross_cov(h, d, cross)  # (n, O, S, M)
    o, s = ks.shape[1], ks.shape[2]
    mean = (ks.reshape(n, o * s, m) @ alpha).view(n, o, s)
    v = torch.linalg.solve_triangular(upper.mT, ks.reshape(n, o * s, m).mT, upper=False)  # U⁻ᵀ Ksᵀ  (n, M, O·S)
    prior = (h.var[:, :, None] * (h.w * h.w + h.kappa)).sum(1)  # k((t, a), (t, a))  (n, O)
    var = (prior[:, :, None] - (v * v).sum(1).view(n, o, s)).clamp(min=0.0)
    if include_noise:
        var = var + h.noise[:, :, None]
    return mean.transpose(1, 2), var.transpose(1, 2)
