"""Test-time self-calibration: on the cube's own kept S2, how far to trust the model's corrections and its std.

A model pretrained elsewhere may move NDVI where S1 relates to it differently than on its training sites. Before
predicting, a sample of the cube's pixels that have NDVI gets a pseudo hold-out: 20 % of their kept observations at
random, and every kept observation inside one 60-day window, are hidden from the model, which predicts them; the
linear interpolation of the remaining ones predicts them too. From those residuals (the cube's own data, never
anything the caller hid) come

- a **trust weight** per distance to the nearest kept observation (``≤ 20``, ``20–45``, ``45–90``, ``> 90`` days):
  the output is ``interpolation + w · (model − interpolation)``, with ``w ∈ [0, 1]`` the value that minimises the
  pseudo hold-out MAE (``w = 0`` where the model did not beat the interpolation, so dense S2 is never made worse);
- a **gap map** chosen against the trust weights by two-fold cross-validation over pixels on the same pseudo
  hold-out: a ridge regression of (truth − interpolation) on the model's correction, the S1 deviations since the kept
  dates (:data:`GAP_TERMS`) and their products with the distance to the nearest kept observation. It replaces the
  trust weights away from kept observations only when it predicted the cube's own hidden NDVI better;
- a **std scale** that makes 68.3 % of the pseudo hold-out residuals fall within ±1 predictive std;
- an **S1-only map** for pixels without any kept NDVI: the same sample is predicted from S1 alone, and the cube's
  own kept NDVI chooses, by two-fold cross-validation over pixels, between the model's S1-only output as is, an
  affine correction of it, and a ridge regression on it and the pixel's backscatter (:data:`S1_ONLY_TERMS`). How
  backscatter relates to NDVI differs between sites (crops, σ⁰ vs γ⁰, incidence); the cube's cloud-free pixels say
  how on this one. The S1-only std gets its own scale from the cross-validated residuals.

A bin with too few pseudo hold-out observations takes the pooled weight of all bins; with too little NDVI on the
cube (or none, S1 only) nothing is calibrated and the checkpoint's own std scale applies.
"""

import math
from dataclasses import dataclass, field

import numpy as np
import torch

from udf.features import FEATURES, interpolate_kept, series_features
from udf.masking import hide_random, hide_window
from udf.model import FusionNet

__all__ = ["DIST_BINS", "GAP_TERMS", "S1_ONLY_TERMS", "SelfCalibration", "apply_gap_map", "apply_s1_only",
           "apply_weights", "distance_to_kept", "gap_terms", "self_calibrate"]

DIST_BINS = (0.0, 20.0, 45.0, 90.0, math.inf)
"""Bins (days) of the distance to the nearest kept NDVI observation, each with its own trust weight."""
_WEIGHTS = np.linspace(0.0, 1.0, 11)
_MIN_PER_BIN = 30
_DIST_PREV, _DIST_NEXT = FEATURES.index("dist_prev"), FEATURES.index("dist_next")
S1_ONLY_TERMS = ("model", "vv_db", "vh_db", "ratio_db", "vv_anom", "vh_anom")
"""Terms of the S1-only map (after an intercept): the model's S1-only NDVI and the pixel's backscatter features."""
_S1_COLUMNS = [FEATURES.index(name) for name in S1_ONLY_TERMS[1:]]
_S1_FORMS = {"as is": (), "affine": (0, 1), "linear in S1": tuple(range(len(S1_ONLY_TERMS) + 1))}
_MIN_S1_OBS, _MIN_S1_PIXELS, _RIDGE = 100, 20, 1.0
GAP_TERMS = ("correction", "vv_dev", "vh_dev", "ratio_dev")
"""Terms of the gap map (after an intercept; each also times the distance to the nearest kept NDVI in 90-day units,
plus that distance): the model's correction to the interpolation and how far S1 moved since the kept dates."""
_VV_DEV, _VH_DEV = FEATURES.index("vv_dev"), FEATURES.index("vh_dev")


@dataclass
class SelfCalibration:
    """Result of :func:`self_calibrate` (also written into the UDF's log and the demo report)."""

    weights: list[float] = field(default_factory=lambda: [1.0] * (len(DIST_BINS) - 1))
    """Trust weight per :data:`DIST_BINS` bin."""
    std_scale: float | None = None
    """Calibrated std scale (replaces the checkpoint's), or None when not calibrated."""
    counts: list[int] = field(default_factory=lambda: [0] * (len(DIST_BINS) - 1))
    """Pseudo hold-out observations per bin."""
    pixels: int = 0
    """Pixels sampled."""
    s1_only: list[float] | None = None
    """Coefficients (intercept, then :data:`S1_ONLY_TERMS`) of the S1-only map, or None when not calibrated."""
    s1_only_form: str = "as is"
    """Which S1-only map the cross-validation chose: ``as is``, ``affine`` or ``linear in S1``."""
    s1_only_std_scale: float | None = None
    """Std scale for pixels without any kept NDVI, or None (then the checkpoint's applies)."""
    s1_only_mae: dict[str, float] = field(default_factory=dict)
    """Cross-validated MAE of each S1-only form on the sample's kept NDVI."""
    gap_map: list[float] | None = None
    """Coefficients of the gap map (see :func:`gap_terms`), or None when the trust weights predicted better."""
    gap_bins: list[bool] = field(default_factory=lambda: [False] * (len(DIST_BINS) - 1))
    """Per :data:`DIST_BINS` bin: the gap map replaces the trust weight there (it beat it in cross-validation)."""
    gap_mae: dict[str, list[float | None]] = field(default_factory=dict)
    """Cross-validated MAE per distance bin of the trust weights and of the gap map on the pseudo hold-out."""
    s1_only_range: tuple[float, float] = (-1.0, 1.0)
    """The S1-only map's output is clipped to the 0.1–99.9 % quantiles of the NDVI it was fitted on (a linear map
    must not extrapolate backscatter unlike the cube's cloud-free pixels into NDVI they never showed)."""

    def describe(self) -> dict:
        """JSON-ready summary."""
        return {"weights": [round(w, 2) for w in self.weights], "std_scale": self.std_scale, "counts": self.counts,
                "pixels": self.pixels, "bins_days": [b if math.isfinite(b) else None for b in DIST_BINS],
                "gap_map": None if self.gap_map is None else [round(c, 4) for c in self.gap_map],
                "gap_bins": self.gap_bins,
                "gap_cv_mae": {k: [None if v is None else round(v, 4) for v in vs] for k, vs in self.gap_mae.items()},
                "s1_only": {"form": self.s1_only_form, "std_scale": self.s1_only_std_scale,
                            "coefficients": None if self.s1_only is None else [round(c, 4) for c in self.s1_only],
                            "terms": ["intercept", *S1_ONLY_TERMS],
                            "range": [round(v, 4) for v in self.s1_only_range],
                            "cv_mae": {k: round(v, 4) for k, v in self.s1_only_mae.items()}}}


def distance_to_kept(x: torch.Tensor) -> torch.Tensor:
    """Days to the nearest kept NDVI observation ``(B, T)`` from features ``x`` (capped at 180 days)."""
    return 30.0 * torch.minimum(x[..., _DIST_PREV], x[..., _DIST_NEXT])


def apply_weights(mean: torch.Tensor, base: torch.Tensor, dist: torch.Tensor, has: torch.Tensor,
                  weights: list[float]) -> torch.Tensor:
    """``base + w(dist) · (mean − base)`` where the pixel has kept NDVI (``has``), ``mean`` elsewhere."""
    w = torch.ones_like(mean)
    for k, (lo, hi) in enumerate(zip(DIST_BINS[:-1], DIST_BINS[1:])):
        w = torch.where((dist >= lo) & (dist < hi), torch.full_like(w, weights[k]), w)
    return torch.where(has, base + w * (mean - base), mean)


def gap_terms(mean: torch.Tensor, base: torch.Tensor, x: torch.Tensor, dist: torch.Tensor) -> torch.Tensor:
    """``(B, T, 10)``: intercept, :data:`GAP_TERMS`, each times the distance to kept NDVI (90-day units), the distance.

    ``dist`` is :func:`distance_to_kept` of ``x`` (days).
    """
    d = dist.to(mean.dtype) / 90.0
    vv, vh = x[..., _VV_DEV].to(mean.dtype), x[..., _VH_DEV].to(mean.dtype)
    cols = [mean - base, vv, vh, vh - vv]
    return torch.stack([torch.ones_like(mean), *cols, *(c * d for c in cols), d], dim=-1)


def apply_gap_map(blended: torch.Tensor, mean: torch.Tensor, base: torch.Tensor, x: torch.Tensor, dist: torch.Tensor,
                  has: torch.Tensor, coefficients: list[float], bins: list[bool]) -> torch.Tensor:
    """The gap map where it won: ``base + gap_terms · coefficients``, ``blended`` elsewhere.

    It applies in the distance ``bins`` where it beat the trust weights, on sequences with kept NDVI, never at a kept
    observation itself. ``dist`` is :func:`distance_to_kept` of ``x`` (days).
    """
    coef = torch.tensor(coefficients, dtype=mean.dtype, device=mean.device)
    use = torch.zeros_like(has)
    for on, lo, hi in zip(bins, DIST_BINS[:-1], DIST_BINS[1:]):
        if on:
            use |= (dist >= lo) & (dist < hi)
    return torch.where(has & use & (dist > 0.5), base + gap_terms(mean, base, x, dist) @ coef, blended)


def _s1_terms(mean: torch.Tensor, x: torch.Tensor, days: torch.Tensor) -> torch.Tensor:
    """``(B, T, 1 + len(S1_ONLY_TERMS))``: intercept, the model's S1-only NDVI and the backscatter features.

    Backscatter at steps without an S1 acquisition is interpolated in time from the pixel's acquisitions.
    """
    valid = x[..., FEATURES.index("s1_valid")] > 0
    nan = torch.full_like(mean, float("nan"))
    filled = [interpolate_kept(torch.where(valid, x[..., c].to(mean.dtype), nan), days)[0].to(mean.dtype)
              for c in _S1_COLUMNS]
    return torch.stack([torch.ones_like(mean), mean, *filled], dim=-1)


def apply_s1_only(mean: torch.Tensor, x: torch.Tensor, days: torch.Tensor, has: torch.Tensor,
                  coefficients: list[float], bounds: tuple[float, float] = (-1.0, 1.0)) -> torch.Tensor:
    """The S1-only map, clipped to ``bounds``, on the sequences without any kept NDVI (``has`` ``(B, T)`` false).

    Sequences with kept NDVI are returned as they are.
    """
    rows = ~has.any(1)
    if not bool(rows.any()):
        return mean
    coef = torch.tensor(coefficients, dtype=mean.dtype, device=mean.device)
    out = mean.clone()
    mapped = _s1_terms(mean[rows], x[rows], days if days.dim() == 1 else days[rows]) @ coef
    out[rows] = mapped.clamp(bounds[0], bounds[1])
    return out


def _fit(terms: np.ndarray, truth: np.ndarray, cols: tuple[int, ...]) -> np.ndarray:
    """Coefficients over all terms (zeros outside ``cols``; the identity map when ``cols`` is empty)."""
    coef = np.zeros(terms.shape[1])
    if not cols:
        coef[1] = 1.0
        return coef
    a = terms[:, cols]
    penalty = _RIDGE * np.eye(len(cols))
    penalty[0, 0] = 0.0  # the intercept is not shrunk
    coef[list(cols)] = np.linalg.solve(a.T @ a + penalty, a.T @ truth)
    return coef


def _s1_only_map(model: FusionNet, vv: torch.Tensor, vh: torch.Tensor, ndvi: torch.Tensor, days: torch.Tensor,
                 cal: SelfCalibration, rng: np.random.Generator) -> None:
    """Choose and fit the S1-only map on the sample's kept NDVI predicted from S1 alone (fills ``cal``)."""
    feats = series_features(vv, vh, None, days, model.config.calendar)
    mean, log_b = model(feats.x, feats.base)
    kept = ndvi.cpu().numpy()
    ok = np.isfinite(kept) & feats.s1_any.cpu().numpy()[:, None]
    if ok.sum() < _MIN_S1_OBS or ok.any(1).sum() < _MIN_S1_PIXELS:
        return
    terms = _s1_terms(mean.float(), feats.x.float(), days).cpu().numpy().astype(np.float64)[ok]
    truth = kept[ok].astype(np.float64)
    spread = math.sqrt(2.0) * np.exp(log_b.float().cpu().numpy()[ok])
    fold = (rng.permutation(kept.shape[0]) % 2)[:, None].repeat(kept.shape[1], 1)[ok]
    cv = {}
    for form, cols in _S1_FORMS.items():
        pred = np.empty_like(truth)
        for k in (0, 1):
            lo, hi = np.quantile(truth[fold != k], [0.001, 0.999])
            pred[fold == k] = np.clip(terms[fold == k] @ _fit(terms[fold != k], truth[fold != k], cols), lo, hi)
        cv[form] = (float(np.abs(pred - truth).mean()), pred)
    form = min(cv, key=lambda f: cv[f][0])
    cal.s1_only_mae = {f: v[0] for f, v in cv.items()}
    cal.s1_only_form = form
    cal.s1_only = [float(c) for c in _fit(terms, truth, _S1_FORMS[form])]
    cal.s1_only_range = (float(np.quantile(truth, 0.001)), float(np.quantile(truth, 0.999)))
    cal.s1_only_std_scale = float(np.quantile(np.abs(cv[form][1] - truth) / spread, 0.683))


def _pseudo_holdout(model: FusionNet, vv: torch.Tensor, vh: torch.Tensor, ndvi: torch.Tensor, days: torch.Tensor,
                    rng: np.random.Generator) -> list[tuple[np.ndarray, ...]]:
    kept = ndvi.cpu().numpy()
    valid = np.isfinite(kept)
    day_np = np.broadcast_to(days.cpu().numpy(), kept.shape)
    out: list[tuple[np.ndarray, ...]] = []
    for hidden in (hide_random(valid, 0.2, rng), hide_window(valid, day_np, 60.0, rng)):
        k2 = torch.from_numpy(np.where(hidden, np.float32(np.nan), kept)).to(ndvi.device)
        feats = series_features(vv, vh, k2, days, model.config.calendar)
        mean, log_b = model(feats.x, feats.base)
        has = (feats.x[..., FEATURES.index("has_ndvi")] > 0).cpu().numpy()
        keep = hidden & feats.s1_any.cpu().numpy()[:, None] & np.isfinite(kept) & has
        dist = distance_to_kept(feats.x)
        terms = gap_terms(mean.float(), feats.base, feats.x, dist).cpu().numpy().astype(np.float64)
        out.append((mean.float().cpu().numpy()[keep], feats.base.cpu().numpy()[keep], kept[keep],
                    dist.cpu().numpy()[keep], np.exp(log_b.float().cpu().numpy()[keep]),
                    terms[keep], np.nonzero(keep)[0]))
    return out


def self_calibrate(model: FusionNet, vv: torch.Tensor, vh: torch.Tensor, ndvi: torch.Tensor | None,
                   days: torch.Tensor, seed: int = 0) -> SelfCalibration:
    """Trust weights and std scale from a pseudo hold-out of the kept NDVI of the sampled sequences.

    Args:
        model: the network (eval mode, on the tensors' device).
        vv: ``(B, T)`` VV linear power of the sampled pixels.
        vh: ``(B, T)`` VH linear power.
        ndvi: ``(B, T)`` kept NDVI (NaN missing), or None.
        days: ``(T,)`` or ``(B, T)`` days.
        seed: seed of the pseudo hold-out.
    """
    cal = SelfCalibration(pixels=int(vv.shape[0]))
    if ndvi is None or int(torch.isfinite(ndvi).sum()) < 2 * _MIN_PER_BIN:
        return cal
    with torch.inference_mode():
        _s1_only_map(model, vv, vh, ndvi, days, cal, np.random.default_rng([seed, 1]))
        parts = _pseudo_holdout(model, vv, vh, ndvi, days, np.random.default_rng(seed))
    mean, base, truth, dist, b, terms, rows = (np.concatenate([p[k] for p in parts]) for k in range(7))
    if truth.size < 2 * _MIN_PER_BIN:
        return cal
    bins = [(dist >= lo) & (dist < hi) for lo, hi in zip(DIST_BINS[:-1], DIST_BINS[1:])]

    def trust_weights(sel: np.ndarray) -> tuple[list[float], list[int]]:
        def best(s: np.ndarray) -> float:
            errs = [float(np.abs(base[s] + w * (mean[s] - base[s]) - truth[s]).mean()) for w in _WEIGHTS]
            return float(_WEIGHTS[int(np.argmin(errs))])
        pooled = best(sel)
        counts = [int((sel & in_bin).sum()) for in_bin in bins]
        return [best(sel & in_bin) if n >= _MIN_PER_BIN else pooled for in_bin, n in zip(bins, counts)], counts

    def weighted(weights: list[float]) -> np.ndarray:
        return base + np.select(bins, weights) * (mean - base)

    def gap_fit(sel: np.ndarray) -> np.ndarray:
        a = terms[sel]
        penalty = _RIDGE * np.eye(a.shape[1])
        penalty[0, 0] = 0.0
        return np.linalg.solve(a.T @ a + penalty, a.T @ (truth[sel] - base[sel]))

    cal.weights, cal.counts = trust_weights(np.ones(truth.size, dtype=bool))
    blended = weighted(cal.weights)
    fold = np.random.default_rng([seed, 2]).permutation(int(vv.shape[0]))[rows] % 2 == 0
    away = dist > 0.5
    if min(fold.sum(), (~fold).sum()) >= 2 * _MIN_PER_BIN:
        cv_w, cv_g = np.empty_like(truth), np.empty_like(truth)
        for test in (fold, ~fold):
            cv_w[test] = weighted(trust_weights(~test)[0])[test]
            cv_g[test] = np.where(away, base + terms @ gap_fit(~test), cv_w)[test]
        def bin_mae(pred: np.ndarray) -> list[float | None]:
            return [float(np.abs(pred - truth)[m].mean()) if m.sum() >= _MIN_PER_BIN else None for m in bins]
        cal.gap_mae = {"trust weights": bin_mae(cv_w), "gap map": bin_mae(cv_g)}
        cal.gap_bins = [g is not None and w is not None and g < w
                        for w, g in zip(cal.gap_mae["trust weights"], cal.gap_mae["gap map"])]
        if any(cal.gap_bins):
            coef = gap_fit(np.ones(truth.size, dtype=bool))
            cal.gap_map = [float(c) for c in coef]
            use = away & np.select(bins, cal.gap_bins).astype(bool)
            blended = np.where(use, base + terms @ coef, blended)
    z = np.abs(blended - truth) / (math.sqrt(2.0) * b)
    cal.std_scale = float(np.quantile(z[np.isfinite(z)], 0.683))
    return cal
