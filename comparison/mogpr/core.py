"""Fast local MOGPR: FuseTS' multi-output Gaussian-process regression, batched over pixels in torch.

Method: Pipia et al. (2019), "Fusing optical and SAR time series for LAI gap filling with multioutput Gaussian
processes", Remote Sensing of Environment 235, https://doi.org/10.1016/j.rse.2019.111452, as FuseTS 2.0.1
(``fusets.mogpr.mogpr_1D``) runs it with GPy 1.15: per pixel, each output z-normalised on its own valid values
(``np.std``, ddof 0); ``GPCoregionalizedRegression`` with ``LCM(input_dim=1, num_outputs=O,
kernels_list=[Matern32(1)] * O, W_rank=1)`` — note FuseTS passes the kernel **O times**, so the covariance is a
sum of ``Q = O`` rank-1 ICMs, each with its own Matern-3/2 variance and lengthscale (``n_kernels`` selects another
``Q``); one Gaussian noise per output; zero mean; time in days; hyper-parameters maximising the exact marginal
likelihood with L-BFGS (GPy: scipy L-BFGS-B, ``max_iters=1000``). See :mod:`comparison.mogpr._model` for the
covariance, the parameter layout (GPy's ``param_array`` order) and the exact masking of missing observations.

Differences from FuseTS, on purpose:
- ``std`` is a real predictive standard deviation in data units, ``σ_y · sqrt(var)``. FuseTS returns
  ``var · σ_y`` (a variance scaled once by the data std) under the name "std".
- Restarts: the likelihood is multimodal (four GPy seeds on one FuseTS field gave four optima). Restart 0 starts
  exactly where GPy does after ``np.random.seed(seed)``; more restarts start from data-scaled lengthscales, and the
  restart with the highest likelihood is kept per pixel.
- Pixels with fewer than 2 valid values (or a constant series) in any output are not fitted: NaN, counted in
  ``failed``. FuseTS fits whenever the master output has one value and may divide by a zero std.

Speed, without changing what is computed (float64, exact likelihood and gradient, exact masking, GPy's stopping
rules): every covariance entry of every pixel is a function of an output pair and a date distance, so ``K`` is
gathered from a small table and the gradient needs only the sums of ``K⁻¹ − ααᵀ`` per table entry
(:mod:`comparison.mogpr._binned`); ``K⁻¹`` comes from two half-size Cholesky inverses and a Schur complement; the
L-BFGS runs all (pixel, start) problems in pools that are refilled as fits finish, with a strong-Wolfe line search
like scipy's L-BFGS-B (:mod:`comparison.mogpr._optim`, :mod:`comparison.mogpr._linesearch`), in cache-sized chunks
on two worker threads (:mod:`comparison.mogpr._fit`). Predictions use the same tables
(:mod:`comparison.mogpr._predict`).
"""

from __future__ import annotations

import logging
import warnings
from dataclasses import dataclass
from typing import Callable, Optional, Sequence

import numpy as np
import torch
import xarray as xr

from comparison.errors import BandNotFound, MOGPRInputError

from . import _binned as _b
from . import _model as _m
from . import _predict as _p
from ._fit import MAX_CPU_WORKERS, cpu_workers, fit, predict_all
from ._optim import LBFGSOptions

_log = logging.getLogger(__name__)

__all__ = ["MOGPRResult", "fit_predict", "mogpr_cube", "default_predict_times", "log_likelihood",
           "predict_with_params"]

Progress = Callable[[int, int], None]
"""``progress(done, total)``: pixels finished so far out of all pixels."""


@dataclass
class MOGPRResult:
    """MOGPR output for ``N`` pixels, ``S`` prediction times and ``O`` outputs."""

    mean: np.ndarray
    """Predictive mean ``(N, S, O)`` in data units; NaN for failed pixels."""
    std: np.ndarray
    """Predictive standard deviation ``(N, S, O)`` in data units (noise included unless asked otherwise)."""
    log_likelihood: np.ndarray
    """Log marginal likelihood of the normalised data at the optimum ``(N,)`` (GPy's ``log_likelihood()``)."""
    n_obs: np.ndarray
    """Valid observations per pixel and output ``(N, O)``, int."""
    failed: np.ndarray
    """``(N,)`` bool: pixel not fitted (fewer than 2 values or a constant series in some output, or no PD fit)."""
    params: np.ndarray
    """Optimised hyper-parameters ``(N, P)`` in GPy ``param_array`` order (see ``_mogpr_model``)."""
    predict_times: np.ndarray
    """Prediction times ``(S,)`` in days."""
    n_iter: np.ndarray
    """L-BFGS iterations of the kept restart ``(N,)``."""

    @property
    def n_failed(self) -> int:
        """Number of pixels not fitted."""
        return int(self.failed.sum())


def default_predict_times(times: np.ndarray) -> np.ndarray:
    """FuseTS' output grid: every 5 days from the first date, the last date excluded (``range(min, max, 5)``)."""
    return np.arange(np.floor(np.nanmin(times)), np.floor(np.nanmax(times)), 5.0)


def _check_inputs(times: np.ndarray, values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    times = np.asarray(times, dtype=np.float64)
    values = np.asarray(values, dtype=np.float64)
    if values.ndim != 3:
        raise MOGPRInputError(f"values must be (N, T, O); got shape {values.shape}")
    if times.shape != (values.shape[1],):
        raise MOGPRInputError(f"times must be (T,) = ({values.shape[1]},) days; got shape {times.shape}")
    if not np.isfinite(times).all():
        raise MOGPRInputError(f"times must be finite days; got {int((~np.isfinite(times)).sum())} non-finite")
    return times, values


def _normalise(values: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Z-normalise each pixel's outputs on their valid values; returns (z, mu, sigma, n_obs, ok) per pixel/output."""
    valid = np.isfinite(values)
    values = np.where(valid, values, np.nan)  # ±inf is missing, like NaN
    n_obs = valid.sum(1)
    with warnings.catch_warnings(), np.errstate(invalid="ignore", divide="ignore"):
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN outputs: mean of empty slice
        mu = np.nanmean(values, axis=1)
        sigma = np.sqrt(np.nanmean((values - mu[:, None, :]) ** 2, axis=1))
    ok = ((n_obs >= 2) & (sigma > 0)).all(-1)
    z = (values - mu[:, None, :]) / np.where(sigma > 0, sigma, 1.0)[:, None, :]
    return z, mu, sigma, n_obs, ok


def _pack(times: np.ndarray, z: np.ndarray, device: torch.device) -> _m.Packed:
    """Put each pixel's valid (time, output) pairs first, padded to the most valid of the batch ``(n, M)``."""
    n, t, o = z.shape
    flat = z.reshape(n, t * o)
    valid = np.isfinite(flat)
    m = max(int(valid.sum(1).max()), 1)
    order = np.argsort(~valid, axis=1, kind="stable")[:, :m]
    sel_valid = np.take_along_axis(valid, order, 1)
    y = np.where(sel_valid, np.take_along_axis(flat, order, 1), 0.0)

    def tt(a: np.ndarray, dtype: torch.dtype) -> torch.Tensor:
        return torch.as_tensor(a, dtype=dtype, device=device)

    return _m.Packed(t=tt(times[order // o], torch.float64), out=tt(order % o, torch.long),
                     y=tt(y, torch.float64), valid=tt(sel_valid, torch.bool), date=tt(order // o, torch.long))


def _initial_params(n: int, n_outputs: int, n_kernels: int, n_restarts: int, seed: int) -> np.ndarray:
    """Starting points ``(n_restarts, n, P)``, constrained.

    Restart 0 is GPy's own start after ``np.random.seed(seed)``: variance 1, lengthscale 1 day, ``W = 0.5·randn``
    (drawn ICM by ICM), kappa 0.5, noise 1. Restart ``r ≥ 1`` uses lengthscales spread over 8–120 days, noise 0.1
    and a fresh ``W`` from seed ``seed + r``.
    """
    out = np.empty((n_restarts, n, _m.n_params(n_outputs, n_kernels)))
    for r in range(n_restarts):
        rng = np.random.RandomState(seed + r)
        vec: list[float] = []
        for q in range(n_kernels):
            ls = 1.0 if r == 0 else float(np.exp(np.log(8.0) + (np.log(120.0) - np.log(8.0)) * ((q + r) % 4) / 3))
            vec += [1.0, ls] + list(0.5 * rng.randn(n_outputs, 1)[:, 0]) + [0.5] * n_outputs
        vec += [1.0 if r == 0 else 0.1] * n_outputs
        out[r] = np.asarray(vec)[None, :]
    return out


def _pixel_counter(n: int, n_starts: int, progress: Optional[Progress]) -> Optional[Callable[[np.ndarray], None]]:
    """``on_done(pixels)`` for :func:`comparison.mogpr._fit.fit` that reports pixels whose starts all finished."""
    if progress is None:
        return None
    left = np.full(n, n_starts)
    done = [0]

    def on_done(pixels: np.ndarray) -> None:
        np.subtract.at(left, pixels, 1)
        finished = int((left == 0).sum())
        if finished > done[0]:
            done[0] = finished
            progress(finished, n)

    return on_done


def _fit_predict_ok(
    times: np.ndarray, z: np.ndarray, t_pred: np.ndarray, n_kernels: int, n_restarts: int, seed: int,
    opts: LBFGSOptions, include_noise: bool, dev: torch.device, progress: Optional[Progress],
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Fit and predict pixels that can be fitted, ``z`` ``(n, T, O)`` normalised, ``times`` from 0.

    Returns params ``(n, P)``, nll ``(n,)`` (+inf: no fit), iterations ``(n,)``, the rows ``good`` with a fit and
    their normalised predictive mean and variance ``(len(good), S, O)``.
    """
    n, _, n_out = z.shape
    d = _pack(times, z, dev)
    times_t = torch.as_tensor(times, dtype=torch.float64, device=dev)
    grid = _b.Grid.from_times(times_t, n_out)
    cross = _p.CrossGrid.from_times(torch.as_tensor(t_pred, dtype=torch.float64, device=dev), times_t)
    starts = _initial_params(n, n_out, n_kernels, n_restarts, seed)
    with cpu_workers(min(torch.get_num_threads(), MAX_CPU_WORKERS) if dev.type == "cpu" else 1) as workers:
        p, nll, it = fit(d, grid, starts, n_kernels, opts, workers, _pixel_counter(n, n_restarts, progress))
        good = np.flatnonzero(np.isfinite(nll))
        g = torch.as_tensor(good, device=dev)
        mean, var = predict_all(p[g], d.take(g), grid, cross, n_kernels, include_noise, workers)
    return p.cpu().numpy(), nll, it, good, mean, var


def fit_predict(
    times: np.ndarray,
    values: np.ndarray,
    predict_times: Optional[np.ndarray] = None,
    *,
    n_kernels: Optional[int] = None,
    n_restarts: int = 3,
    seed: int = 0,
    max_iter: int = 1000,
    ftol: float = 2.220446049250313e-09,
    chunk_size: Optional[int] = None,
    include_noise: bool = True,
    device: str | torch.device = "cpu",
    progress: Optional[Progress] = None,
) -> MOGPRResult:
    """Fit MOGPR to every pixel and predict all outputs at ``predict_times``.

    Args:
        times: observation times ``(T,)`` in days (any origin; e.g. proleptic ordinals as FuseTS uses).
        values: observations ``(N, T, O)``, NaN where missing; each output is normalised per pixel.
        predict_times: ``(S,)`` days; default :func:`default_predict_times` (FuseTS' 5-day grid).
        n_kernels: number of ICM terms ``Q``; default ``O`` as in FuseTS.
        n_restarts: starting points per pixel (restart 0 = GPy's start); the best likelihood is kept.
        seed: seed of the random ``W`` starts (restart 0 uses it like ``np.random.seed(seed)`` before GPy).
        max_iter: most L-BFGS iterations per restart.
        ftol: relative decrease of the objective below which a restart stops (scipy L-BFGS-B default, as GPy).
        chunk_size: (pixel, start) problems optimised together in one L-BFGS pool per worker thread (CPU: up to
            two workers, one per torch thread), refilled as fits finish. Default 256 on CPU (the objective is
            evaluated in cache-sized pieces of it), 4096 on a GPU.
        include_noise: predictive std of a new observation (True) or of the latent function (False).
        device: torch device, e.g. ``"cuda"``; computation is float64 throughout. On CPU the fit runs on up to two
            worker threads (one per torch thread) with torch's thread count set to 1 meanwhile, restored after.
        progress: ``progress(done, total)`` called as pixels finish fitting (all their starts), possibly from a
            worker thread (calls are serialised).

    Returns:
        :class:`MOGPRResult`; failed pixels are NaN and counted, never dropped.
    """
    times, values = _check_inputs(times, values)
    n, _, n_out = values.shape
    q = n_out if n_kernels is None else int(n_kernels)
    t_pred = default_predict_times(times) if predict_times is None else np.asarray(predict_times, dtype=np.float64)
    origin = float(times.min())
    dev = torch.device(device)
    z, mu, sigma, n_obs, ok = _normalise(values)
    mean = np.full((n, len(t_pred), n_out), np.nan)
    std, ll = np.full_like(mean, np.nan), np.full(n, np.nan)
    params, n_iter = np.full((n, _m.n_params(n_out, q)), np.nan), np.zeros(n, dtype=np.int64)
    todo = np.flatnonzero(ok)
    if len(todo):
        chunk_size = chunk_size or (256 if dev.type == "cpu" else 4096)
        opts = LBFGSOptions(max_iter=max_iter, ftol=ftol, pool=chunk_size)
        p, nll, it, good, mean_z, var_z = _fit_predict_ok(times - origin, z[todo], t_pred - origin, q, n_restarts,
                                                          seed, opts, include_noise, dev, progress)
        rows = todo[good]
        mean[rows] = mean_z * sigma[rows, None, :] + mu[rows, None, :]
        std[rows] = np.sqrt(var_z) * sigma[rows, None, :]
        ll[rows] = -nll[good]
        params[todo], n_iter[todo] = p, it
    failed = ~np.isfinite(ll)
    if failed.any():
        _log.warning("MOGPR: %d of %d pixels not fitted (fewer than 2 values or constant in an output, or no fit)",
                     int(failed.sum()), n)
    return MOGPRResult(mean=mean, std=std, log_likelihood=ll, n_obs=n_obs, failed=failed, params=params,
                       predict_times=t_pred, n_iter=n_iter)


def log_likelihood(times: np.ndarray, values: np.ndarray, params: np.ndarray, n_kernels: Optional[int] = None,
                   device: str | torch.device = "cpu") -> np.ndarray:
    """Log marginal likelihood ``(N,)`` of given constrained ``params`` ``(N, P)`` on ``values`` ``(N, T, O)``.

    Normalises exactly as :func:`fit_predict`; pixels it would not fit give NaN.
    """
    times, values = _check_inputs(times, values)
    q = values.shape[2] if n_kernels is None else int(n_kernels)
    z, _, _, _, ok = _normalise(values)
    out = np.full(values.shape[0], np.nan)
    if ok.any():
        d = _pack(times - times.min(), z[ok], torch.device(device))
        p = torch.as_tensor(np.asarray(params, dtype=np.float64)[ok], device=d.t.device)
        out[ok] = -_m.neg_log_lik(p, d, values.shape[2], q).cpu().numpy()
    return out


def predict_with_params(
    times: np.ndarray, values: np.ndarray, params: np.ndarray, predict_times: np.ndarray,
    n_kernels: Optional[int] = None, include_noise: bool = True, device: str | torch.device = "cpu",
) -> tuple[np.ndarray, np.ndarray]:
    """Predictive mean and std ``(N, S, O)`` in data units for given constrained ``params`` ``(N, P)`` (no fitting).

    Normalises exactly as :func:`fit_predict`; pixels it would not fit give NaN.
    """
    times, values = _check_inputs(times, values)
    q = values.shape[2] if n_kernels is None else int(n_kernels)
    z, mu, sigma, _, ok = _normalise(values)
    t_pred = np.asarray(predict_times, dtype=np.float64)
    mean = np.full((values.shape[0], len(t_pred), values.shape[2]), np.nan)
    std = np.full_like(mean, np.nan)
    if ok.any():
        dev = torch.device(device)
        d = _pack(times - times.min(), z[ok], dev)
        times_t = torch.as_tensor(times - times.min(), dtype=torch.float64, device=dev)
        grid = _b.Grid.from_times(times_t, values.shape[2])
        cross = _p.CrossGrid.from_times(torch.as_tensor(t_pred - times.min(), dtype=torch.float64, device=dev), times_t)
        p = torch.as_tensor(np.asarray(params, dtype=np.float64)[ok], device=dev)
        m, v = predict_all(p, d, grid, cross, q, include_noise)
        mean[ok] = m * sigma[ok, None, :] + mu[ok, None, :]
        std[ok] = np.sqrt(v) * sigma[ok, None, :]
    return mean, std


def _days(t: xr.DataArray) -> np.ndarray:
    """Datetime labels → days since 1970-01-01 as float64."""
    return (t.values.astype("datetime64[ns]").astype(np.int64) / 86400e9).astype(np.float64)


def mogpr_cube(
    cube: xr.DataArray,
    bands: Sequence[str] = ("RVI", "NDVI"),
    target: str = "NDVI",
    predict_times: Optional[np.ndarray] = None,
    include_std: bool = True,
    **kwargs: object,
) -> xr.DataArray:
    """MOGPR on a cube ``(t, bands, y, x)``; returns ``target`` (and ``<target>_STD``) on the cube's labels.

    Args:
        cube: dims ``t`` (or ``time``), ``bands``, ``y``, ``x``; NaN = missing. RVI must come from linear power.
        bands: the bands fused, in merge order (FuseTS' ``mogpr_s1_s2`` merges ``RVI`` then ``NDVI``).
        target: the band returned.
        predict_times: datetime64 labels to predict at; default the cube's own ``t`` labels.
        include_std: also return ``<target>_STD``, the predictive standard deviation.
        **kwargs: passed to :func:`fit_predict` (``device``, ``n_restarts``, ``progress``, ...).

    Returns:
        DataArray ``(t, bands, y, x)`` float32 with bands ``[target]`` or ``[target, target_STD]``.
    """
    if "time" in cube.dims and "t" not in cube.dims:
        cube = cube.rename(time="t")
    missing_dims = {"t", "bands", "y", "x"} - set(cube.dims)
    if missing_dims:
        raise MOGPRInputError(
            f"cube needs dims ('t', 'bands', 'y', 'x'); missing {sorted(missing_dims)} in {cube.dims}")
    names = [str(b) for b in cube["bands"].values]
    for b in list(bands) + [target]:
        if b not in names or target not in bands:
            raise BandNotFound(f"Band {b!r} (target {target!r}, fused {list(bands)}) not in cube bands {names}")
    sub = cube.sel(bands=list(bands)).transpose("y", "x", "t", "bands")
    ny, nx = sub.sizes["y"], sub.sizes["x"]
    t_out = cube["t"].values if predict_times is None else np.asarray(predict_times, dtype="datetime64[ns]")
    res = fit_predict(_days(cube["t"]), sub.values.reshape(ny * nx, sub.sizes["t"], len(bands)),
                      _days(xr.DataArray(t_out)), **kwargs)  # type: ignore[arg-type]
    k = list(bands).index(target)
    layers = [res.mean[:, :, k]] + ([res.std[:, :, k]] if include_std else [])
    data = np.stack(layers, axis=-1).reshape(ny, nx, len(t_out), len(layers)).transpose(2, 3, 0, 1)
    out_bands = [target] + ([f"{target}_STD"] if include_std else [])
    return xr.DataArray(data.astype(np.float32), dims=("t", "bands", "y", "x"),
                        coords={"t": t_out, "bands": out_bands, "y": cube["y"].values, "x": cube["x"].values},
                        attrs={"mogpr_failed_pixels": res.n_failed})
