"""The MOGPR model, batched over pixels: parameter layout, padding and the dense exact masked likelihood.

Model (Pipia et al. 2019, https://doi.org/10.1016/j.rse.2019.111452, as FuseTS builds it with GPy): the sum of
``Q`` intrinsic coregionalisation models,

    k((t, i), (t', j)) = Σ_q  B_q[i, j] · σ²_q · (1 + √3 r_q) · exp(−√3 r_q),    r_q = |t − t'| / ℓ_q,
    B_q = w_q w_qᵀ + diag(κ_q),    w_q ∈ R^O (rank 1),

plus one Gaussian noise variance per output, zero mean, time in days. The parameter vector of one pixel follows
GPy's ``param_array`` order for ``GPCoregionalizedRegression(kernel=LCM(..., kernels_list=[Matern32(1)] * Q))``:
``[σ²_0, ℓ_0, w_0 (O), κ_0 (O), …, σ²_{Q−1}, ℓ_{Q−1}, w_{Q−1} (O), κ_{Q−1} (O), noise (O)]``. Positive entries are
optimised through GPy's ``Logexp`` transform (softplus), ``w`` unconstrained.

Missing observations are handled by padding: every pixel holds ``M`` slots (the most valid observations in its
batch); a padded slot gets a unit diagonal, zero off-diagonal covariance and a zero target, so the padded
covariance is block-diagonal ``diag(K_valid, I)`` and the likelihood, its gradient and the predictions equal those of
the valid observations alone (exactly, not approximately). GPy adds ``1e-8`` to the noise diagonal
(``exact_gaussian_inference``); so do we.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

GPY_JITTER = 1e-8
"""Added to the noise variance on the training diagonal, as GPy's ExactGaussianInference does."""
SQRT3 = math.sqrt(3.0)
LOG_2PI = math.log(2.0 * math.pi)


def n_params(n_outputs: int, n_kernels: int) -> int:
    """Number of hyper-parameters per pixel: ``Q · (2 + 2·O) + O``."""
    return n_kernels * (2 + 2 * n_outputs) + n_outputs


def positive_mask(n_outputs: int, n_kernels: int) -> torch.Tensor:
    """Bool ``(P,)``: which parameters are constrained positive (all but the ``w`` entries)."""
    per_q = [True, True] + [False] * n_outputs + [True] * n_outputs
    return torch.tensor(per_q * n_kernels + [True] * n_outputs)


def to_raw(params: torch.Tensor, n_outputs: int, n_kernels: int) -> torch.Tensor:
    """Constrained parameters ``(N, P)`` → unconstrained (inverse of GPy's Logexp on positive entries)."""
    pos = positive_mask(n_outputs, n_kernels).to(params.device)
    inv = torch.where(params > 30.0, params, torch.log(torch.expm1(params.clamp(min=1e-300))))
    return torch.where(pos, inv, params)


def to_constrained(raw: torch.Tensor, n_outputs: int, n_kernels: int) -> torch.Tensor:
    """Unconstrained ``(N, P)`` → constrained parameters (softplus on positive entries, as GPy's Logexp)."""
    pos = positive_mask(n_outputs, n_kernels).to(raw.device)
    return torch.where(pos, torch.nn.functional.softplus(raw, threshold=30.0), raw)


@dataclass
class Packed:
    """Valid observations of ``n`` pixels, padded to a common length ``M``."""

    t: torch.Tensor
    """Times in days ``(n, M)``, float64; arbitrary at padded slots."""
    out: torch.Tensor
    """Output index of each slot ``(n, M)``, int64."""
    y: torch.Tensor
    """Z-normalised values ``(n, M)``; 0 at padded slots."""
    valid: torch.Tensor
    """``(n, M)`` bool, False at padded slots."""
    date: torch.Tensor
    """Index of each slot's date on the input time axis ``(n, M)``, int64."""

    def take(self, rows: torch.Tensor) -> "Packed":
        """The pixels ``rows`` only."""
        return Packed(self.t[rows], self.out[rows], self.y[rows], self.valid[rows], self.date[rows])

    def trim(self) -> "Packed":
        """Drop the trailing slots that no pixel uses (valid slots come first)."""
        m = max(int(self.valid.sum(-1).max()), 1) if len(self.valid) else 1
        return Packed(self.t[:, :m], self.out[:, :m], self.y[:, :m], self.valid[:, :m], self.date[:, :m])


@dataclass
class Unpacked:
    """Constrained hyper-parameters of ``n`` pixels."""

    var: torch.Tensor
    """Matern-3/2 variances ``(n, Q)``."""
    ls: torch.Tensor
    """Lengthscales in days ``(n, Q)``."""
    w: torch.Tensor
    """Rank-1 coregionalisation vectors ``(n, Q, O)``."""
    kappa: torch.Tensor
    """Coregionalisation diagonals ``(n, Q, O)``."""
    noise: torch.Tensor
    """Gaussian noise variance per output ``(n, O)`` (normalised units)."""


def unpack(params: torch.Tensor, n_outputs: int, n_kernels: int) -> Unpacked:
    """Split constrained parameters ``(n, P)`` into their named parts."""
    n, o = params.shape[0], n_outputs
    per_q = params[:, : n_kernels * (2 + 2 * o)].reshape(n, n_kernels, 2 + 2 * o)
    return Unpacked(
        var=per_q[:, :, 0], ls=per_q[:, :, 1], w=per_q[:, :, 2 : 2 + o], kappa=per_q[:, :, 2 + o :],
        noise=params[:, n_kernels * (2 + 2 * o) :],
    )


def _matern32(dist: torch.Tensor, ls: torch.Tensor) -> torch.Tensor:
    """Unit-variance Matern-3/2 of distances ``(n, A, B)`` with lengthscales ``(n,)``."""
    r = SQRT3 * dist / ls[:, None, None]
    return (1.0 + r) * torch.exp(-r)


def cross_cov(h: Unpacked, t1: torch.Tensor, o1: torch.Tensor, t2: torch.Tensor, o2: torch.Tensor) -> torch.Tensor:
    """Noise-free covariance between inputs ``(t1, o1)`` ``(n, A)`` and ``(t2, o2)`` ``(n, B)`` → ``(n, A, B)``."""
    dist = (t1[:, :, None] - t2[:, None, :]).abs()
    same = (o1[:, :, None] == o2[:, None, :]).to(t1.dtype)
    k = torch.zeros_like(dist)
    for q in range(h.var.shape[1]):
        w1 = torch.gather(h.w[:, q], 1, o1)
        w2 = torch.gather(h.w[:, q], 1, o2)
        k1 = torch.gather(h.kappa[:, q], 1, o1)
        b = w1[:, :, None] * w2[:, None, :] + same * k1[:, :, None]
        k = k + h.var[:, q, None, None] * _matern32(dist, h.ls[:, q]) * b
    return k


def train_cov(h: Unpacked, d: Packed) -> torch.Tensor:
    """Padded training covariance ``(n, M, M)``: ``K + diag(noise + 1e-8)`` on valid slots, identity on padded ones."""
    k = cross_cov(h, d.t, d.out, d.t, d.out)
    both = (d.valid[:, :, None] & d.valid[:, None, :]).to(k.dtype)
    diag = torch.where(d.valid, torch.gather(h.noise, 1, d.out) + GPY_JITTER, torch.ones_like(d.t))
    return k * both + torch.diag_embed(diag)


def neg_log_lik(params: torch.Tensor, d: Packed, n_outputs: int, n_kernels: int) -> torch.Tensor:
    """Exact negative log marginal likelihood ``(n,)`` of constrained ``params`` ``(n, P)``; +inf where not PD."""
    h = unpack(params, n_outputs, n_kernels)
    ky = train_cov(h, d)
    chol, info = torch.linalg.cholesky_ex(ky)
    ok = info == 0
    chol = torch.where(ok[:, None, None], chol, torch.eye(ky.shape[-1], dtype=ky.dtype, device=ky.device))
    alpha = torch.cholesky_solve(d.y[:, :, None], chol)[:, :, 0]
    logdet = torch.log(torch.diagonal(chol, dim1=-2, dim2=-1)).sum(-1)
    n_valid = d.valid.sum(-1).to(ky.dtype)
    nll = 0.5 * (d.y * alpha).sum(-1) + logdet + 0.5 * n_valid * LOG_2PI
    return torch.where(ok, nll, torch.full_like(nll, math.inf))
