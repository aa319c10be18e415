"""Growing seasons on smoothed NDVI curves (TIMESAT-style thresholds), vectorised over pixels (numpy only).

Every pixel's curve is analysed on its own *usable span* (first to last valid observation) on a continuous time axis
in days. Seasons are the peaks of a hysteresis ("zig-zag") scan: a peak is confirmed once the curve has fallen by
the pixel's threshold below it, a minimum once the curve has risen by the threshold above it, so two crops separated
by a dip at least that deep are two seasons whatever the calendar. The threshold is ``min_amplitude`` or
``min_relative_amplitude`` × the range of the pixel's smoothed curve, whichever is larger (TIMESAT likewise ignores
secondary peaks that are small relative to the main season: a 0.15 winter dip of a 0.2 → 0.95 crop is not a
fallow). Each peak's bases are the minima on
either side (or the span's first/last value), and start/end of season are the times the curve crosses
``base + fraction × amplitude`` on either side (Jönsson & Eklundh 2004, TIMESAT; amplitude = peak − mean of both
bases). Rules that keep dates honest (NaN rather than a guess):

- a base at the edge of the span (the first or last valid value rather than a minimum) is used only where the curve
  stays flat near the edge (the start (end) threshold measured from it is crossed at least :data:`EDGE_DAYS`
  days after the first (before the last) valid observation) or where the series visibly starts (ends) at base
  level (the edge value is within :data:`EDGE_TOLERANCE` × ``sos_fraction`` of the amplitude of the season's other
  base, a true minimum): a season whose rise begins in the first steps keeps its SOS; otherwise the season is cut by
  the edge (NaN date);
- a peak at the edge of the span is not a peak that was seen: that season is not reported;
- a date whose bracketing valid observations are more than ``max_gap_days`` apart is NaN (it would be read off the
  interpolating spline, not off data).
"""

import logging
import warnings
from dataclasses import dataclass

import numpy as np

from udf.whittaker import lambda_for_period, whittaker_smooth

_log = logging.getLogger(__name__)

__all__ = ["EDGE_DAYS", "EDGE_TOLERANCE", "MIN_OBSERVATIONS", "Seasons", "detect_seasons", "normal_cdf",
           "residual_noise"]

EDGE_DAYS = 30.0
"""An edge value serves as a base if the threshold measured from it is crossed at least this far from the edge …"""
EDGE_TOLERANCE = 0.5
"""… or if it lies within this share of the start (end) threshold above the season's other base (a true minimum)."""
MIN_OBSERVATIONS = 4
"""Fewest valid observations a pixel needs; with fewer every output is NaN."""


@dataclass
class Seasons:
    """Seasons of ``N`` pixels, ``S`` slots in time order (NaN where no season); days since 1970-01-01."""

    sos: np.ndarray
    """``(N, S)`` start of season (NaN: cut by the span's start, or in a data gap)."""
    pos: np.ndarray
    """``(N, S)`` peak of season (NaN: peak in a data gap)."""
    eos: np.ndarray
    """``(N, S)`` end of season (NaN: cut by the span's end, or in a data gap)."""
    peak: np.ndarray
    """``(N, S)`` smoothed NDVI at the peak (NaN with ``pos``)."""
    amp: np.ndarray
    """``(N, S)`` amplitude: peak − mean of the usable bases."""
    peak_day: np.ndarray
    """``(N, S)`` day of the smoothed curve's maximum, also where ``pos`` is NaN (assigns seasons to years)."""
    start_day: np.ndarray
    """``(N, S)`` day of the left base (minimum or span start)."""
    end_day: np.ndarray
    """``(N, S)`` day of the right base (minimum or span end)."""
    first_day: np.ndarray
    """``(N,)`` first valid observation (NaN without enough data)."""
    last_day: np.ndarray
    """``(N,)`` last valid observation (NaN without enough data)."""
    smoothed: np.ndarray
    """``(N, T)`` smoothed curve on the usable span, NaN elsewhere."""
    confidence: np.ndarray | None = None
    """``(N, S)`` probability that the season's amplitude and the valleys that delimit it exceed the detection
    threshold given the values' std and the pixel's residual noise (normal errors); NaN where no season."""
    noise: np.ndarray | None = None
    """``(N,)`` robust std of the valid values around the smoothed curve (1.4826 × median absolute residual)."""
    sos_std: np.ndarray | None = None
    """``(N, S)`` spread of SOS over perturbed series (:mod:`udf.season_uncertainty`), None if not computed."""
    pos_std: np.ndarray | None = None
    """``(N, S)`` the same for POS."""
    eos_std: np.ndarray | None = None
    """``(N, S)`` the same for EOS."""

    @property
    def present(self) -> np.ndarray:
        """``(N, S)`` bool: a season in this slot."""
        return np.isfinite(self.amp)


def normal_cdf(x: np.ndarray) -> np.ndarray:
    """Standard normal CDF (Abramowitz & Stegun 7.1.26 for erf, |error| < 1.5e-7; ±inf → 0 / 1)."""
    x = np.asarray(x, dtype=np.float64)
    a = np.abs(np.nan_to_num(x, posinf=40.0, neginf=-40.0)) / np.sqrt(2.0)
    k = 1.0 / (1.0 + 0.3275911 * a)
    poly = k * (0.254829592 + k * (-0.284496736 + k * (1.421413741 + k * (-1.453152027 + k * 1.061405429))))
    erf = 1.0 - poly * np.exp(-a * a)
    return np.where(np.isnan(x), np.nan, 0.5 * (1.0 + np.sign(x) * erf))


def _zigzag(z: np.ndarray, threshold: np.ndarray, sigma: np.ndarray | None = None, k_sigma: float = 0.0
            ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Alternating extrema of each row (NaN skipped): ``(index (N, K), kind (N, K) +1 peak / -1 min, count (N,))``.

    ``threshold`` ``(N,)`` is the rise/fall that confirms an extremum of each row; with ``sigma`` ``(N, T)`` (the
    values' std, 0 where unknown) the rise/fall must also reach ``k_sigma · √(σ_extremum² + σ_now²)``: a dip or a
    bump no larger than the uncertainty allows does not separate or make seasons.

    The last extremum (a peak the curve has not yet left by ``threshold``, or the lowest value after the last peak)
    is added at the end even though it is not confirmed.
    """
    n, nt = z.shape
    rows = np.arange(n)
    ext_idx = np.full((n, nt + 1), -1, dtype=np.int64)
    ext_kind = np.zeros((n, nt + 1), dtype=np.int8)
    count = np.zeros(n, dtype=np.int64)
    state = np.zeros(n, dtype=np.int8)
    hi, lo = np.full(n, -np.inf), np.full(n, np.inf)
    hi_i, lo_i = np.zeros(n, dtype=np.int64), np.zeros(n, dtype=np.int64)

    def push(mask: np.ndarray, where: np.ndarray, kind: int) -> None:
        r = rows[mask]
        ext_idx[r, count[r]] = where[r]
        ext_kind[r, count[r]] = kind
        count[r] += 1

    zt = np.ascontiguousarray(z.T)  # time-major: each step reads a contiguous row
    var = None if sigma is None or k_sigma <= 0 else np.ascontiguousarray((k_sigma * np.nan_to_num(sigma)).T ** 2)
    var_hi, var_lo = np.zeros(n), np.zeros(n)
    for i in range(nt):
        v = zt[i]
        ok = np.isfinite(v)
        up, down = ok & (v > hi), ok & (v < lo)
        hi[up], hi_i[up] = v[up], i
        lo[down], lo_i[down] = v[down], i
        if var is None:
            rise = fall = threshold
        else:
            var_hi[up], var_lo[down] = var[i][up], var[i][down]
            rise, fall = np.maximum(threshold, np.sqrt(var_lo + var[i])), np.maximum(threshold, np.sqrt(var_hi + var[i]))
        valley = ok & (state <= 0) & (v - lo >= rise)
        peak = ok & (state >= 0) & (hi - v >= fall) & ~valley
        push(valley, lo_i, -1)
        push(peak, hi_i, 1)
        state[valley], state[peak] = 1, -1
        hi[valley], hi_i[valley] = v[valley], i
        lo[peak], lo_i[peak] = v[peak], i
        if var is not None:
            var_hi[valley], var_lo[peak] = var[i][valley], var[i][peak]
    push(state == 1, hi_i, 1)
    push(state == -1, lo_i, -1)
    return ext_idx, ext_kind, count


def _masked_argext(z: np.ndarray, lo: np.ndarray, hi: np.ndarray, largest: bool) -> np.ndarray:
    """Per row, index of the min (max) of ``z`` over ``[lo, hi]`` (inclusive)."""
    idx = np.arange(z.shape[1])[None, :]
    inside = (idx >= lo[:, None]) & (idx <= hi[:, None]) & np.isfinite(z)
    if largest:
        return np.argmax(np.where(inside, z, -np.inf), axis=1)
    return np.argmin(np.where(inside, z, np.inf), axis=1)


def _crossing(z: np.ndarray, t: np.ndarray, lo: np.ndarray, hi: np.ndarray, level: np.ndarray,
              rising: bool) -> tuple[np.ndarray, np.ndarray]:
    """Time where ``z`` crosses ``level`` between indices ``lo`` and ``hi``.

    Rising: the crossing nearest ``hi``; falling: the crossing nearest ``lo``. Returns ``(day (N,), left node index
    (N,))``, NaN / -1 where there is none.
    """
    z0, z1 = z[:, :-1], z[:, 1:]
    j = np.arange(z.shape[1] - 1)[None, :]
    lev = level[:, None]
    inside = (j >= lo[:, None]) & (j < hi[:, None])
    if rising:
        hit = inside & (z0 < lev) & (z1 >= lev)
        node = np.where(hit, j, -1).max(axis=1)
    else:
        hit = inside & (z0 >= lev) & (z1 < lev)
        node = np.where(hit, j, z.shape[1]).min(axis=1)
        node = np.where(node == z.shape[1], -1, node)
    rows = np.arange(z.shape[0])
    k = np.clip(node, 0, z.shape[1] - 2)
    a, b = z[rows, k], z[rows, k + 1]
    with np.errstate(invalid="ignore", divide="ignore"):
        frac = np.clip((level - a) / (b - a), 0.0, 1.0)
    day = t[k] + frac * (t[k + 1] - t[k])
    return np.where(node >= 0, day, np.nan), node


def _vertex(z: np.ndarray, t: np.ndarray, p: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Day and value of the parabola through the nodes ``p-1, p, p+1`` (``p`` a local maximum inside the span)."""
    rows = np.arange(z.shape[0])
    t0, t1, t2 = t[p - 1], t[p], t[p + 1]
    z0, z1, z2 = z[rows, p - 1], z[rows, p], z[rows, p + 1]
    d1, d2 = (z1 - z0) / (t1 - t0), (z2 - z1) / (t2 - t1)
    curv = (d2 - d1) / (t2 - t0)  # half the second derivative
    with np.errstate(invalid="ignore", divide="ignore"):
        day = 0.5 * (t0 + t1) - d1 / (2.0 * curv)
    good = np.isfinite(day) & (curv < 0) & (day >= t0) & (day <= t2)
    day = np.where(good, day, t1)
    value = np.where(good, z0 + d1 * (day - t0) + curv * (day - t0) * (day - t1), z1)
    return day, np.maximum(value, z1)


def _gap_ok(prev_obs: np.ndarray, next_obs: np.ndarray, left: np.ndarray, right: np.ndarray,
            max_gap: float) -> np.ndarray:
    """Valid observations around nodes ``left`` … ``right`` are at most ``max_gap`` days apart."""
    rows = np.arange(prev_obs.shape[0])
    ok = (left >= 0) & (right >= 0)
    left, right = np.clip(left, 0, None), np.clip(right, 0, None)
    return ok & (next_obs[rows, right] - prev_obs[rows, left] <= max_gap)


def _edge_ok(z: np.ndarray, t: np.ndarray, base: np.ndarray, peak: np.ndarray, edge: np.ndarray, fraction: float,
             left: bool, other: np.ndarray | None = None) -> np.ndarray:
    """Whether a base is usable: a minimum inside the span, or an edge value that the season visibly rises from.

    An edge value qualifies when the side's threshold (``fraction`` of the side's rise) measured from it is crossed
    at least :data:`EDGE_DAYS` days away from the edge (the curve is flat there), or when it is as low as the
    season's other base (a true minimum, ``other`` ``(N,)``, NaN where there is none) within
    :data:`EDGE_TOLERANCE` × ``fraction`` of the amplitude: the series starts (ends) at base level and shows the
    whole rise (fall), so the date is read off data even if it lies within the first (last) steps.
    """
    ok = base != edge
    r = np.flatnonzero(~ok)
    if r.size:
        zb, zp = z[r, base[r]], z[r, peak[r]]
        lo, hi = (base[r], peak[r]) if left else (peak[r], base[r])
        day, _ = _crossing(z[r], t, lo, hi, zb + fraction * (zp - zb), rising=left)
        with np.errstate(invalid="ignore"):
            flat = (day - t[edge[r]] >= EDGE_DAYS) if left else (t[edge[r]] - day >= EDGE_DAYS)
            if other is not None:
                ref = other[r]
                flat |= np.isfinite(day) & (zb <= ref + EDGE_TOLERANCE * fraction * (zp - ref))
        ok[r] = flat
    return ok


def _one_slot(z: np.ndarray, t: np.ndarray, obs: tuple[np.ndarray, np.ndarray], span: tuple[np.ndarray, np.ndarray],
              ext: tuple[np.ndarray, np.ndarray, np.ndarray], params: dict) -> dict[str, np.ndarray]:
    """Metrics of the season whose peak is extremum number ``k`` (per row) of the zig-zag scan."""
    (prev_obs, next_obs), (first, last), (ext_idx, count, k) = obs, span, ext
    rows, nt = np.arange(z.shape[0]), z.shape[1]
    p = ext_idx[rows, k]
    lb = ext_idx[rows, np.maximum(k - 1, 0)]
    rb = ext_idx[rows, np.minimum(k + 1, ext_idx.shape[1] - 1)]
    lead, trail = np.flatnonzero(k < 1), np.flatnonzero(k + 1 >= count)  # no minimum on that side: search the span
    lb[lead] = _masked_argext(z[lead], first[lead], p[lead], largest=False)
    rb[trail] = _masked_argext(z[trail], p[trail], last[trail], largest=False)
    zp, zl, zr = z[rows, p], z[rows, lb], z[rows, rb]
    left_min, right_min = np.where(lb != first, zl, np.nan), np.where(rb != last, zr, np.nan)
    left_ok = _edge_ok(z, t, lb, p, first, params["sos_fraction"], left=True, other=right_min)
    right_ok = _edge_ok(z, t, rb, p, last, params["eos_fraction"], left=False, other=left_min)
    with np.errstate(invalid="ignore"):
        amp = np.where(left_ok & right_ok, zp - (zl + zr) / 2.0, np.where(left_ok, zp - zl, zp - zr))
        keep = (p > first) & (p < last) & (left_ok | right_ok) & (amp >= params["threshold"])
    sd = params["sigma"]  # (N, T) std of the values (0 where unknown)
    sp, sl, sr = sd[rows, p], sd[rows, lb], sd[rows, rb]
    amp_sd = np.where(left_ok & right_ok, np.sqrt(sp ** 2 + (sl ** 2 + sr ** 2) / 4.0),
                      np.sqrt(sp ** 2 + np.where(left_ok, sl, sr) ** 2))
    keep &= amp >= params["k_sigma"] * amp_sd
    noise = params["noise"][:, None]  # the pixel's residual noise around its smoothed curve
    tot = np.sqrt(np.stack([sp, sl, sr]) ** 2 + noise.T ** 2)
    with np.errstate(invalid="ignore", divide="ignore"):
        margin = np.stack([(amp - params["threshold"]) / np.hypot(tot[0], np.where(left_ok & right_ok,
                                                                                 np.hypot(tot[1], tot[2]) / 2.0,
                                                                                 np.where(left_ok, tot[1], tot[2]))),
                           np.where(lb != first, (zp - zl - params["threshold"]) / np.hypot(tot[0], tot[1]), np.inf),
                           np.where(rb != last, (zp - zr - params["threshold"]) / np.hypot(tot[0], tot[2]), np.inf)])
    margin = np.where(np.isnan(margin), np.inf, margin)  # zero uncertainty: a detected season is certain
    confidence = normal_cdf(margin.min(0))
    sos, sos_node = _crossing(z, t, lb, p, zl + params["sos_fraction"] * amp, rising=True)
    eos, eos_node = _crossing(z, t, p, rb, zr + params["eos_fraction"] * amp, rising=False)
    gap = params["max_gap_days"]
    sos = np.where(left_ok & _gap_ok(prev_obs, next_obs, sos_node, sos_node + 1, gap), sos, np.nan)
    eos = np.where(right_ok & _gap_ok(prev_obs, next_obs, eos_node, eos_node + 1, gap), eos, np.nan)
    pos, peak = _vertex(z, t, np.clip(p, 1, nt - 2))
    seen = _gap_ok(prev_obs, next_obs, p, p, gap)
    with np.errstate(invalid="ignore"):
        keep &= ~(eos - sos < params["min_length_days"])
    nan = np.full(z.shape[0], np.nan)
    return {"sos": np.where(keep, sos, nan), "eos": np.where(keep, eos, nan),
            "pos": np.where(keep & seen, pos, nan), "peak": np.where(keep & seen, peak, nan),
            "amp": np.where(keep, amp, nan), "peak_day": np.where(keep, pos, nan),
            "start_day": np.where(keep, t[lb], nan), "end_day": np.where(keep, t[rb], nan),
            "confidence": np.where(keep, confidence, nan)}


def _usable_span(values: np.ndarray, days: np.ndarray, weights: np.ndarray | None, smoothing_days: float
                 ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Smoothed curves on each pixel's span: ``(z, valid, first index, last index, enough data)``."""
    valid = np.isfinite(values)
    if weights is not None:
        valid &= np.isfinite(weights) & (weights > 0)
    enough = valid.sum(1) >= MIN_OBSERVATIONS
    valid &= enough[:, None]
    w = np.where(valid, 1.0 if weights is None else weights, 0.0)
    z = whittaker_smooth(values, days, w, lambda_for_period(smoothing_days))
    nt = values.shape[1]
    first = np.argmax(valid, axis=1)
    last = nt - 1 - np.argmax(valid[:, ::-1], axis=1)
    idx = np.arange(nt)[None, :]
    span = enough[:, None] & (idx >= first[:, None]) & (idx <= last[:, None])
    return np.where(span, z, np.nan), valid, first, last, enough


def detect_seasons(values: np.ndarray, days: np.ndarray, weights: np.ndarray | None = None, *,
                   min_amplitude: float = 0.1, min_relative_amplitude: float = 0.25, min_length_days: float = 30.0,
                   sos_fraction: float = 0.2, eos_fraction: float = 0.2, smoothing_days: float = 40.0,
                   max_gap_days: float = 60.0, sigma: np.ndarray | None = None, k_sigma: float = 0.0) -> Seasons:
    """Smooth each pixel's series and find its seasons (see the module docstring for the rules).

    Args:
        values: ``(N, T)`` NDVI, NaN missing.
        days: ``(T,)`` strictly increasing days since 1970-01-01.
        weights: ``(N, T)`` observation weights (e.g. from a predictive std), None for equal weights.
        min_amplitude: rise and fall (NDVI) that separate seasons; smallest amplitude reported.
        min_relative_amplitude: the same as a fraction of the range of each pixel's smoothed curve (the larger of
            the two applies).
        min_length_days: seasons with ``EOS − SOS`` below this are dropped (cut seasons are kept).
        sos_fraction: start of season at ``left base + sos_fraction × amplitude``.
        eos_fraction: end of season at ``right base + eos_fraction × amplitude``.
        smoothing_days: period (days) the Whittaker smoother halves (:func:`udf.whittaker.lambda_for_period`).
        max_gap_days: dates between valid observations further apart than this are NaN.
        sigma: ``(N, T)`` std of the values (e.g. ``NDVI_STD``; NaN: unknown, taken as 0), or None.
        k_sigma: a season's amplitude, and every rise or fall that separates two seasons, must also reach
            ``k_sigma`` × its std from ``sigma`` (0: off).
    """
    t = np.asarray(days, dtype=np.float64)
    values = np.asarray(values, dtype=np.float64)
    z, valid, first, last, enough = _usable_span(values, t, weights, smoothing_days)
    seen = np.ascontiguousarray(valid.T)  # time-major: accumulate over contiguous rows
    prev_obs = np.maximum.accumulate(np.where(seen, t[:, None], -np.inf), axis=0).T
    next_obs = np.minimum.accumulate(np.where(seen, t[:, None], np.inf)[::-1], axis=0)[::-1].T
    finite = np.isfinite(z)
    with np.errstate(invalid="ignore"):
        spread = np.max(np.where(finite, z, -np.inf), 1) - np.min(np.where(finite, z, np.inf), 1)
    threshold = np.maximum(min_amplitude, min_relative_amplitude * np.where(enough, spread, 0.0))
    sd = np.zeros_like(values) if sigma is None else np.nan_to_num(np.asarray(sigma, dtype=np.float64), nan=0.0)
    ext_idx, ext_kind, count = _zigzag(z, threshold, sd, k_sigma)
    noise = residual_noise(values, z, valid)
    slots = max(int((ext_kind == 1).sum(1).max(initial=0)), 1)
    offset = (ext_kind[:, 0] == -1).astype(np.int64)
    names = ("sos", "pos", "eos", "peak", "amp", "peak_day", "start_day", "end_day", "confidence")
    out = {name: np.full((values.shape[0], slots), np.nan) for name in names}
    params = {"min_length_days": min_length_days, "sos_fraction": sos_fraction, "eos_fraction": eos_fraction,
              "max_gap_days": max_gap_days}
    for s in range(slots):
        k = offset + 2 * s
        r = np.flatnonzero(enough & (k < count))
        if r.size == 0:
            continue
        got = _one_slot(z[r], t, (prev_obs[r], next_obs[r]), (first[r], last[r]), (ext_idx[r], count[r], k[r]),
                        {**params, "threshold": threshold[r], "sigma": sd[r], "k_sigma": k_sigma,
                         "noise": np.nan_to_num(noise[r])})
        for name in names:
            out[name][r, s] = got[name]
    days_first = np.where(enough, t[first], np.nan)
    days_last = np.where(enough, t[last], np.nan)
    return Seasons(**out, first_day=days_first, last_day=days_last, smoothed=z, noise=noise)


def residual_noise(values: np.ndarray, smoothed: np.ndarray, valid: np.ndarray) -> np.ndarray:
    """``(N,)`` robust std of ``values`` around ``smoothed`` over ``valid`` (NaN where fewer than 4 values)."""
    res = np.where(valid, np.abs(values - smoothed), np.nan)
    with np.errstate(invalid="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        mad = np.nanmedian(res, axis=1)
    return np.where(valid.sum(1) >= MIN_OBSERVATIONS, 1.4826 * mad, np.nan)
