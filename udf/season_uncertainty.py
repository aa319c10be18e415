"""Per-date uncertainty of seasons (SOS_STD, POS_STD, EOS_STD) by re-detecting them on perturbed series (numpy only).

Each pixel's series is perturbed ``samples`` times within its uncertainty and the seasons are detected again with the
same rules (:func:`udf.seasons.detect_seasons`); a date's std is the spread of the matching season's date over the
samples. The perturbation of value ``i`` is ``σ_i · e_i`` with ``σ_i = √(std_i² + noise²)`` (``std`` the predictive
std, e.g. ``NDVI_STD`` of the fusion UDF, 0 where absent; ``noise`` the pixel's residual noise around its smoothed
curve) and ``e`` a seeded Gaussian AR(1) process along time with correlation ``exp(−Δt / corr_days)``: errors of a
gap-filled series are correlated over weeks (a whole gap filled too high), which independent draws would average away
in the smoothing. A sampled season matches a detected one when its peak is the nearest within ``match_days``; dates
found in fewer than half of the samples get NaN std (the season itself is unstable: see its confidence).

Cost: ``samples`` extra season detections (measured in ``benchmarks/bench_phenology_uncertainty.py``).
"""

import logging

import numpy as np

from udf.seasons import Seasons, detect_seasons

_log = logging.getLogger(__name__)

__all__ = ["MATCH_DAYS", "ar1_noise", "date_spread"]

MATCH_DAYS = 45.0
"""A sampled season is the same season as a detected one when their peaks are at most this many days apart."""


def ar1_noise(rng: np.random.Generator, n: int, days: np.ndarray, corr_days: float) -> np.ndarray:
    """``(n, T)`` unit-variance Gaussian AR(1) draws along ``days`` with correlation ``exp(−Δt / corr_days)``."""
    t = np.asarray(days, dtype=np.float64)
    rho = np.exp(-np.diff(t) / corr_days) if corr_days > 0 else np.zeros(t.size - 1)
    out = np.empty((n, t.size))
    out[:, 0] = rng.standard_normal(n)
    scale = np.sqrt(1.0 - rho ** 2)
    for i in range(1, t.size):
        out[:, i] = rho[i - 1] * out[:, i - 1] + scale[i - 1] * rng.standard_normal(n)
    return out


def _match(base_peak: np.ndarray, got_peak: np.ndarray, max_days: float) -> np.ndarray:
    """``(N, S)`` slot of ``got`` whose peak is nearest each base season's peak (-1: none within ``max_days``)."""
    d = np.abs(base_peak[:, :, None] - got_peak[:, None, :])
    d = np.where(np.isfinite(d), d, np.inf)
    best = np.argmin(d, axis=2) if d.shape[2] else np.zeros(base_peak.shape, dtype=np.int64)
    ok = np.take_along_axis(d, best[:, :, None], 2)[:, :, 0] <= max_days if d.shape[2] else np.zeros_like(best, bool)
    return np.where(ok, best, -1)


def date_spread(values: np.ndarray, days: np.ndarray, base: Seasons, std: np.ndarray | None,
                weights: np.ndarray | None, params: dict, samples: int = 16, seed: int = 0,
                corr_days: float = 30.0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Std of SOS, POS and EOS ``(N, S)`` of ``base`` (seasons of ``values``) over perturbed series.

    Args:
        values: ``(N, T)`` the series the seasons were detected on (NaN missing).
        days: ``(T,)`` days since 1970-01-01.
        base: its seasons (``noise`` filled by :func:`udf.seasons.detect_seasons`).
        std: ``(N, T)`` predictive std of ``values`` or None.
        weights: the smoothing weights used for ``base``.
        params: the other keyword arguments ``base`` was detected with.
        samples: perturbed series per pixel (≥ 2).
        seed: seed of the perturbations (results are reproducible).
        corr_days: correlation time of the perturbations.

    Returns:
        ``(sos_std, pos_std, eos_std)``, NaN where the base date is NaN or the season was found in fewer than half
        of the samples.
    """
    if samples < 2:
        raise ValueError(f"'uncertainty_samples'={samples}; expected at least 2.")
    n, slots = base.amp.shape
    sd = np.zeros_like(values) if std is None else np.nan_to_num(np.asarray(std, dtype=np.float64), nan=0.0)
    sigma = np.sqrt(sd ** 2 + np.nan_to_num(base.noise)[:, None] ** 2)
    rng = np.random.default_rng(seed)
    names = ("sos", "pos", "eos")
    got = {k: np.full((samples, n, slots), np.nan) for k in names}
    for s in range(samples):
        noisy = values + sigma * ar1_noise(rng, n, days, corr_days)
        seasons = detect_seasons(noisy, days, weights, **params)
        idx = _match(base.peak_day, seasons.peak_day, MATCH_DAYS)
        for k in names:
            picked = np.take_along_axis(getattr(seasons, k), np.clip(idx, 0, None), 1) if seasons.amp.shape[1] \
                else np.full((n, slots), np.nan)
            got[k][s] = np.where(idx >= 0, picked, np.nan)
    out = []
    for k in names:
        found = np.isfinite(got[k]).sum(0)
        with np.errstate(invalid="ignore", divide="ignore"):
            mean = np.nansum(got[k], 0) / found
            spread = np.sqrt(np.nansum((got[k] - mean) ** 2, 0) / np.maximum(found - 1, 1))
        out.append(np.where(np.isfinite(getattr(base, k)) & (found >= max(2, samples / 2)), spread, np.nan))
    return out[0], out[1], out[2]
