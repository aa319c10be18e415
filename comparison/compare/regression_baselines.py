"""What a careful user tries first when S2 is clear elsewhere on the same date (issue 18): two S1-only baselines.

- **DateMean**: the mean of the visible (kept) NDVI of the same date, for every pixel; its std is the standard
  deviation of the visible NDVI of that date (the residual std of that per-date fit).
- **Regression5**: least squares ``NDVI ~ 1 + VV + VH + (VH − VV) + m_t`` with VV, VH in dB and ``m_t`` the
  per-date mean of the visible NDVI, pooled over every visible (pixel, date); its std is the residual std of the
  fit, ``sqrt(SSR / (n − rank))``. VH − VV is an exact linear combination of VV and VH in dB, so the design has
  rank 4 at most; the fit is the minimum-norm least-squares solution (``numpy.linalg.lstsq``), which gives the same
  predictions as the rank-4 fit and keeps the five terms the issue names.

Both are fitted on the visible NDVI of the masked cube only (what every method gets), so they are held out for
every protocol. Where they cannot predict they give NaN and say why in the prediction's note: a date with no
visible NDVI (no ``m_t``), a pixel-date without S1, fewer visible observations than ``MIN_FIT`` for the regression.

The array functions work on ``(T, P)`` arrays (dates × pixels or sequences sharing dates) so that the LOSO
evaluation and the model helper can reuse them; the methods wrap them for ``s1ndvi compare``.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
import xarray as xr

from comparison.compare.methods import Method, Prediction
from udf.preprocess import to_db

_log = logging.getLogger(__name__)

__all__ = ["MIN_FIT", "REGRESSION_BASELINES", "DateMeanFit", "RegressionFit", "date_mean", "date_mean_method",
           "fit_regression5", "regression5", "regression5_method"]

REGRESSION_BASELINES = ("DateMean", "Regression5")
"""Names of the baselines in ``s1ndvi compare`` (run on the S1-only protocols P3, P3S, P3C only)."""

MIN_FIT = 20
"""Fewest visible observations (with S1 and a date mean) the five-term regression is fitted on."""


@dataclass(frozen=True)
class DateMeanFit:
    """Per-date statistics of the visible NDVI."""

    mean: np.ndarray
    """``(T,)`` mean of the visible NDVI per date; NaN on dates with none."""
    std: np.ndarray
    """``(T,)`` standard deviation (ddof 1) of the visible NDVI per date; NaN with fewer than 2."""
    n: np.ndarray
    """``(T,)`` visible observations per date."""


def date_mean(ndvi: np.ndarray) -> DateMeanFit:
    """Per-date mean and std of the visible NDVI of ``ndvi`` ``(T, P)`` (NaN = hidden or missing)."""
    ndvi = np.asarray(ndvi, dtype=np.float64).reshape(ndvi.shape[0], -1)
    ok = np.isfinite(ndvi)
    n = ok.sum(1)
    s = np.where(ok, ndvi, 0.0).sum(1)
    mean = np.where(n > 0, s / np.maximum(n, 1), np.nan)
    dev = np.where(ok, ndvi - mean[:, None], 0.0)
    std = np.where(n > 1, np.sqrt((dev ** 2).sum(1) / np.maximum(n - 1, 1)), np.nan)
    return DateMeanFit(mean=mean, std=std, n=n)


@dataclass(frozen=True)
class RegressionFit:
    """The five-term least-squares fit (see the module docstring)."""

    coef: np.ndarray
    """``(5,)`` coefficients of 1, VV dB, VH dB, VH − VV dB, m_t (NaN when not fitted)."""
    resid_std: float
    """``sqrt(SSR / (n − rank))`` on the fitted observations (NaN when not fitted)."""
    n: int
    """Visible observations fitted on."""
    rank: int
    """Rank of the design matrix (4 at most: VH − VV is collinear with VV and VH)."""
    reason: str = ""
    """Why the fit failed ("" when fitted)."""

    @property
    def fitted(self) -> bool:
        """Whether coefficients exist."""
        return not self.reason


def _design(vv_db: np.ndarray, vh_db: np.ndarray, m_t: np.ndarray) -> np.ndarray:
    """``(..., 5)`` design: 1, VV, VH, VH − VV, m_t broadcast to the S1 arrays ``(T, P)``."""
    m = np.broadcast_to(np.asarray(m_t, dtype=np.float64).reshape(-1, 1), vv_db.shape)
    return np.stack([np.ones_like(vv_db), vv_db, vh_db, vh_db - vv_db, m], axis=-1)


def fit_regression5(vv_db: np.ndarray, vh_db: np.ndarray, ndvi: np.ndarray, min_fit: int = MIN_FIT) -> RegressionFit:
    """Fit ``NDVI ~ 1 + VV + VH + (VH − VV) + m_t`` on the visible observations of ``(T, P)`` arrays (S1 in dB).

    ``m_t`` is :func:`date_mean` of ``ndvi``. Observations without S1 or on dates with no visible NDVI are not used.
    """
    vv_db, vh_db = np.asarray(vv_db, np.float64), np.asarray(vh_db, np.float64)
    ndvi = np.asarray(ndvi, np.float64)
    if not (vv_db.shape == vh_db.shape == ndvi.shape) or ndvi.ndim != 2:
        raise ValueError(f"Regression5 needs VV, VH and NDVI as (T, P) arrays of one shape, got {vv_db.shape}, "
                         f"{vh_db.shape}, {ndvi.shape}.")
    x = _design(vv_db, vh_db, date_mean(ndvi).mean)
    use = np.isfinite(ndvi) & np.isfinite(x).all(-1)
    n = int(use.sum())
    if n < min_fit:
        return RegressionFit(np.full(5, np.nan), float("nan"), n, 0,
                             f"not fitted: {n} visible NDVI observations with S1 and a date mean (≥ {min_fit} needed)")
    a, b = x[use], ndvi[use]
    coef, _, rank, _ = np.linalg.lstsq(a, b, rcond=None)
    rank = int(rank)
    if n <= rank:
        return RegressionFit(np.full(5, np.nan), float("nan"), n, rank,
                             f"not fitted: {n} observations for a rank-{rank} design")
    resid = b - a @ coef
    return RegressionFit(coef, float(np.sqrt((resid ** 2).sum() / (n - rank))), n, rank)


def regression5(vv_db: np.ndarray, vh_db: np.ndarray, ndvi: np.ndarray,
                min_fit: int = MIN_FIT) -> tuple[np.ndarray, np.ndarray, RegressionFit]:
    """Fit on the visible ``ndvi`` ``(T, P)`` and predict every observation: ``(mean, std, fit)``.

    NaN where S1 is missing, on dates with no visible NDVI, and everywhere when the fit failed (``fit.reason``).
    """
    fit = fit_regression5(vv_db, vh_db, ndvi, min_fit)
    shape = np.shape(ndvi)
    if not fit.fitted:
        return np.full(shape, np.nan), np.full(shape, np.nan), fit
    pred = _design(np.asarray(vv_db, np.float64), np.asarray(vh_db, np.float64), date_mean(ndvi).mean) @ fit.coef
    return pred, np.where(np.isfinite(pred), fit.resid_std, np.nan), fit


def _flat(cube: xr.DataArray, band: str) -> np.ndarray:
    v = cube.sel(bands=band).values
    return v.reshape(v.shape[0], -1)


def _no_date_note(fit: DateMeanFit) -> str:
    empty = int((fit.n == 0).sum())
    return f"NaN on {empty} of {len(fit.n)} dates with no visible NDVI (no date mean)" if empty else ""


def date_mean_method() -> Method:
    """DateMean for ``s1ndvi compare``: the per-date mean of the masked cube's visible NDVI at every pixel."""
    def run(cube: xr.DataArray, pixels: np.ndarray) -> Prediction:
        ndvi = _flat(cube, "NDVI")
        fit = date_mean(ndvi)
        shape = (cube.sizes["t"], cube.sizes["y"], cube.sizes["x"])
        mean = np.broadcast_to(fit.mean[:, None, None], shape).astype(np.float32)
        std = np.broadcast_to(fit.std[:, None, None], shape).astype(np.float32)
        return Prediction(mean.copy(), std.copy(), cube.sizes["y"] * cube.sizes["x"], note=_no_date_note(fit))
    return run


def regression5_method(min_fit: int = MIN_FIT) -> Method:
    """Regression5 for ``s1ndvi compare``: fitted on the masked cube's visible NDVI, predicted everywhere."""
    def run(cube: xr.DataArray, pixels: np.ndarray) -> Prediction:
        ndvi = _flat(cube, "NDVI")
        mean, std, fit = regression5(to_db(_flat(cube, "VV")), to_db(_flat(cube, "VH")), ndvi, min_fit)
        shape = (cube.sizes["t"], cube.sizes["y"], cube.sizes["x"])
        note = fit.reason or "; ".join(x for x in (
            f"fitted on {fit.n} visible obs. (rank {fit.rank}), residual std {fit.resid_std:.3f}",
            _no_date_note(date_mean(ndvi))) if x)
        if fit.fitted:
            _log.info("Regression5: coef %s, residual std %.4f on %d obs.", np.round(fit.coef, 4), fit.resid_std,
                      fit.n)
        return Prediction(mean.reshape(shape).astype(np.float32), std.reshape(shape).astype(np.float32),
                          cube.sizes["y"] * cube.sizes["x"], note=note)
    return run
