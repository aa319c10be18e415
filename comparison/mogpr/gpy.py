"""Reference MOGPR with GPy, pixel by pixel, exactly as FuseTS 2.0.1 builds it (optional; slow).

Same model and output as :func:`comparison.mogpr.fit_predict`, computed the FuseTS way (``fusets.mogpr.mogpr_1D``):
per-output z-normalisation with ``np.std``; ``GPCoregionalizedRegression(X, Y, kernel=LCM(input_dim=1,
num_outputs=O, kernels_list=[Matern32(input_dim=1)] * O, W_rank=1).copy())``; ``model.optimize()`` (scipy
L-BFGS-B, GPy defaults); ``model.predict`` with the output index as ``Y_metadata``. ``np.random.seed(seed)`` is
called before each model is built, because GPy draws the initial ``W`` from numpy's global generator. Unlike FuseTS,
``std`` is ``σ · sqrt(predictive variance)`` and a failed fit is counted, not swallowed by a bare ``except``.

Install GPy with the project's optional extra, ``pip install -e ".[mogpr]"`` (GPy 1.15 works with numpy 2.4).
FuseTS 2.0.1 itself pins old releases; to have it too, use a separate environment::

    python3 -m venv /work/gpy-venv && . /work/gpy-venv/bin/activate
    pip install "numpy>=2,<2.4" GPy==1.15.0 openeo xarray netCDF4 cython setuptools wheel
    pip install --no-deps fusets==2.0.1
    pip install --no-build-isolation --no-binary vam.whittaker vam.whittaker==2.0.6
"""

from __future__ import annotations

import logging
import time
from typing import Any, Callable, Optional

import numpy as np

from comparison.errors import OptionalDependencyMissing
from comparison.mogpr import MOGPRResult, default_predict_times

_log = logging.getLogger(__name__)

__all__ = ["GPY_INSTALL", "fit_predict_gpy", "gpy_fit_pixel"]

GPY_INSTALL = 'pip install -e ".[mogpr]" (GPy==1.15.0; FuseTS itself: see comparison/mogpr/gpy.py)'


def import_gpy() -> Any:
    try:
        import GPy
    except ImportError as e:
        raise OptionalDependencyMissing(f"GPy MOGPR reference needs GPy 1.15: {GPY_INSTALL}") from e
    return GPy


def gpy_fit_pixel(times: np.ndarray, series: np.ndarray, predict_times: np.ndarray, seed: int = 0) -> dict[str, Any]:
    """Fit one pixel ``series`` ``(T, O)`` (NaN = missing) with GPy; predictions in normalised units.

    Returns:
        dict with ``params`` ``(P,)`` (GPy ``param_array``), ``log_likelihood``, ``mean`` and ``var`` ``(S, O)``
        (normalised, noise included), ``mu``/``sigma`` ``(O,)`` and ``seconds`` (optimisation wall time).
    """
    gpy = import_gpy()
    xs, ys, mus, sigmas = [], [], [], []
    for o in range(series.shape[1]):
        ok = np.isfinite(series[:, o])
        v = series[ok, o]
        mus.append(np.mean(v))
        sigmas.append(np.std(v))
        xs.append(times[ok, None])
        ys.append(((v - mus[-1]) / sigmas[-1])[:, None])
    np.random.seed(seed)
    kern = gpy.util.multioutput.LCM(input_dim=1, num_outputs=len(ys),
                                    kernels_list=[gpy.kern.Matern32(input_dim=1)] * len(ys), W_rank=1)
    model = gpy.models.GPCoregionalizedRegression(xs, ys, kernel=kern.copy())
    t0 = time.perf_counter()
    model.optimize()
    seconds = time.perf_counter() - t0
    mean, var = [], []
    for o in range(len(ys)):
        new_x = np.hstack([predict_times[:, None], np.full((len(predict_times), 1), o)])
        m, v = model.predict(new_x, Y_metadata={"output_index": new_x[:, 1:].astype(int)})
        mean.append(m[:, 0])
        var.append(v[:, 0])
    return {"params": model.param_array.copy(), "log_likelihood": float(model.log_likelihood()),
            "mean": np.stack(mean, -1), "var": np.stack(var, -1), "mu": np.asarray(mus),
            "sigma": np.asarray(sigmas), "seconds": seconds}


def fit_predict_gpy(
    times: np.ndarray,
    values: np.ndarray,
    predict_times: Optional[np.ndarray] = None,
    *,
    seed: int = 0,
    progress: Optional[Callable[[int, int], None]] = None,
) -> MOGPRResult:
    """GPy MOGPR on ``values`` ``(N, T, O)`` at ``times`` ``(T,)`` days; same result layout as the torch version.

    Pixels with fewer than 2 values or a constant series in some output, and fits GPy raises on, are NaN and
    ``failed``. ``n_iter`` is 0 (GPy does not report it).
    """
    import_gpy()
    times = np.asarray(times, dtype=np.float64)
    values = np.asarray(values, dtype=np.float64)
    t_pred = default_predict_times(times) if predict_times is None else np.asarray(predict_times, dtype=np.float64)
    n, _, n_out = values.shape
    n_obs = np.isfinite(values).sum(1)
    mean = np.full((n, len(t_pred), n_out), np.nan)
    std, ll = np.full_like(mean, np.nan), np.full(n, np.nan)
    params = np.full((n, n_out * (2 + 2 * n_out) + n_out), np.nan)
    for i in range(n):
        if (n_obs[i] >= 2).all() and (np.nanstd(values[i], axis=0) > 0).all():
            try:
                r = gpy_fit_pixel(times, values[i], t_pred, seed)
            except np.linalg.LinAlgError as e:
                _log.warning("GPy MOGPR failed on pixel %d: %s", i, e)
            else:
                mean[i] = r["mean"] * r["sigma"] + r["mu"]
                std[i] = np.sqrt(r["var"]) * r["sigma"]
                ll[i], params[i] = r["log_likelihood"], r["params"]
        if progress is not None:
            progress(i + 1, n)
    return MOGPRResult(mean=mean, std=std, log_likelihood=ll, n_obs=n_obs, failed=~np.isfinite(ll), params=params,
                       predict_times=t_pred, n_iter=np.zeros(n, dtype=np.int64))
