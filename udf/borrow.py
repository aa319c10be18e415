"""Similar-pixel borrowing: NDVI for pixels without any kept NDVI, from clear pixels of the same tile that look alike in S1.

A cube (one ``apply_neighborhood`` tile in openEO) often has clear pixels on a date when others are cloudy, and they
are often a different land cover (ponds beside paddies, villages, dry fields). A single S1→NDVI map fitted on the clear
pixels (:func:`udf.selfcal.self_calibrate`'s S1-only map) then carries their relation over to a land cover it never saw.
Here instead each pixel without kept NDVI is calibrated *locally in S1-signature space*:

- **Signature**: the pixel's whole backscatter series (VV, VH and VH−VV in dB, filled in time between acquisitions,
  averaged over ±:data:`SMOOTH` steps against speckle, standardised over the tile) and its shape around each step
  (the same, over a window of ±:data:`WINDOW` steps); the distance to another pixel at a step mixes both (RMS in tile
  standard deviations).
- **Water**: a step is open water where VV < :data:`WATER_VV_DB` and VH < :data:`WATER_VH_DB`; a pixel that is water on
  at least :data:`PERMANENT_WATER` of its steps is permanent water. Permanent water and land are never analogs of each
  other (their distance gets :data:`WATER_PENALTY`), and permanent water without a clear water analog gets NDVI no
  higher than :data:`WATER_NDVI_MAX`. Flooded weeks of a field (transplanting) enter the local shape, so a flooded
  paddy step borrows from pixels flooded on the same date.
- **Analogs**: up to :data:`PROTOTYPES` clear pixels of the tile (seeded sample of pixels with kept NDVI); for each
  query pixel the :data:`TOP_K` nearest by whole-series distance, then per step a weight ``exp(−d²/2h²)`` (``d`` the
  mixed distance, ``h`` the tile's median distance to the 4th-nearest analog) times ``exp(−Δ/30 d)`` (``Δ`` days from the
  analog's nearest kept observation to that step).
- **Estimates**: the borrowed NDVI ``b`` (weighted mean of the analogs' NDVI at that date), and the model's S1-only
  prior corrected by the analogs' residuals ``r = m + Σw(NDVI_j − m_j)/Σw`` (a local calibration of the model); their
  spread and the weighted distance ``D``.
- **Calibration on the tile itself**: the prototypes are predicted from the other prototypes, both leaving out only
  themselves and leaving out their whole k-means cluster of signatures (2 and 6 clusters: a land cover clouded as a
  whole). Per bin of ``D`` the blend ``m + λ(e − m)`` (``e`` = ``b`` or ``r``, whichever predicted better) is fitted
  on those residuals; beyond the median distance of the farthest bin (the *trusted* distance) ``λ`` shrinks in
  inverse proportion to ``D``.
- **Std** (:func:`fit_variance`): ``std² = a·spread² + b·D² + c·σ² + d·gap²`` (``σ`` the model's own std, ``gap``
  the analogs' disagreement with the prior), non-negative coefficients fitted per tile by Gaussian likelihood on the
  same leave-out residuals, then scaled so that in each leave-out scheme ±1σ covers ≥ 68.3 % and ±2σ ≥
  :data:`COVER2`. Beyond the trusted distance the residuals say nothing, so a share ``1 − (trusted/D)²`` of the
  variance the model's prior earned on the tile's clear pixels, plus ``gap²``, is added: a pixel with no close
  analog keeps the model's prior and gets a std that says how far it is from anything clear.

Everything is per tile and streaming: only the prototypes' series are held; query pixels are processed in the
inference stripes (memory bounded by the batch).
"""

import logging
import math
from dataclasses import dataclass, field

import numpy as np
import torch

from udf.features import interpolate_kept, series_features
from udf.model import FusionNet

__all__ = ["Borrower", "COVER2", "PERMANENT_WATER", "PROTOTYPES", "TOP_K", "WATER_NDVI_MAX", "WATER_PENALTY", "WATER_VH_DB",
           "WATER_VV_DB", "WINDOW", "build_borrower", "fit_variance", "signature_series", "variance_model",
           "water_steps"]

_log = logging.getLogger(__name__)

PROTOTYPES = 384
"""Clear pixels of the tile kept as candidate analogs (seeded sample of those with kept NDVI)."""
TOP_K = 16
"""Analogs per query pixel (nearest prototypes by whole-series signature distance)."""
WINDOW = 2
"""Half-width in steps of the local shape around each step."""
SMOOTH = 1
"""Half-width in steps of the moving average applied to the signatures (speckle)."""
LOCAL_SHARE = 0.5
"""Share of the local-shape distance in the mixed squared distance (the rest: the whole series)."""
WATER_VV_DB, WATER_VH_DB = -16.0, -22.0
"""A step is open water (or a flooded field) below both (dB)."""
PERMANENT_WATER = 0.7
"""Share of a pixel's S1 steps that are water for the pixel to be permanent water."""
WATER_PENALTY = 100.0
"""Squared distance added between permanent water and land (they are never analogs)."""
WATER_NDVI_MAX = 0.1
"""Permanent water without a clear water analog gets NDVI no higher than this."""
_TIME_SCALE_DAYS = 30.0
_MIN_PROTOTYPES = 20
_CLUSTERS = (2, 6)
_BINS = 6
_BANDWIDTH_RANK = 4
_LAMBDAS = np.linspace(0.0, 1.0, 11)
COVER2 = 0.93
"""Share of the tile's leave-out residuals within ±2 std that the variance model is scaled to at least."""


def water_steps(vv_db: torch.Tensor, vh_db: torch.Tensor) -> torch.Tensor:
    """``(B, T)`` bool: the step looks like open water or a flooded field (NaN S1 → False)."""
    return (vv_db < WATER_VV_DB) & (vh_db < WATER_VH_DB)


def signature_series(vv: torch.Tensor, vh: torch.Tensor, days: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``(B, T, 3)`` VV, VH, VH−VV dB filled in time between acquisitions, and ``(B,)`` permanent-water flags.

    Args:
        vv: ``(B, T)`` VV linear power (NaN where missing).
        vh: ``(B, T)`` VH linear power.
        days: ``(T,)`` or ``(B, T)`` days.
    """
    vv_db, vh_db = 10.0 * torch.log10(vv), 10.0 * torch.log10(vh)
    ok = torch.isfinite(vv_db) & torch.isfinite(vh_db)
    nan = torch.full_like(vv_db, float("nan"))
    rel = (days - days[..., :1]).to(vv_db.dtype)
    filled = [interpolate_kept(torch.where(ok, c, nan), rel)[0] for c in (vv_db, vh_db)]
    sig = torch.stack([filled[0], filled[1], filled[1] - filled[0]], dim=-1)
    sig = _box(sig.transpose(1, 2), SMOOTH).transpose(1, 2)  # speckle averaged over ±SMOOTH steps
    wet = (water_steps(vv_db, vh_db) & ok).sum(1) / ok.sum(1).clamp(min=1)
    return sig, wet >= PERMANENT_WATER


def _box(x: torch.Tensor, w: int) -> torch.Tensor:
    """Mean over a window of ±``w`` along the last dim (truncated at the ends)."""
    t = x.shape[-1]
    c = torch.nn.functional.pad(torch.cumsum(x, -1), (1, 0))
    idx = torch.arange(t, device=x.device)
    lo, hi = (idx - w).clamp(min=0), (idx + w + 1).clamp(max=t)
    return (c[..., hi] - c[..., lo]) / (hi - lo).to(x.dtype)


@dataclass
class Borrower:
    """The tile's prototypes and the distance → blend / std tables fitted on them (see the module docstring)."""

    sig: torch.Tensor
    """``(M, T, 3)`` standardised signatures of the prototypes."""
    water: torch.Tensor
    """``(M,)`` permanent-water flags."""
    ndvi: torch.Tensor
    """``(M, T)`` prototypes' kept NDVI interpolated in time."""
    time_w: torch.Tensor
    """``(M, T)`` weight of that value at each step (1 at a kept observation)."""
    prior: torch.Tensor
    """``(M, T)`` the model's S1-only NDVI for the prototypes."""
    centre: torch.Tensor
    scale: torch.Tensor
    bandwidth: float
    estimator: str = "residual"
    """``"borrowed"`` (analogs' NDVI) or ``"residual"`` (model prior + analogs' residuals)."""
    edges: list[float] = field(default_factory=list)
    """Upper edges of the distance bins (the last one: the largest distance seen in the tile's calibration)."""
    lambdas: list[float] = field(default_factory=list)
    var_coef: list[float] = field(default_factory=lambda: [0.0, 0.0, 1.0, 0.0])
    """Coefficients of the variance model ``std² = a·spread² + b·D² + c·σ² + d·gap²`` (see :func:`fit_variance`)."""
    cv_mae: dict[str, float] = field(default_factory=dict)
    cv_coverage: list[float] = field(default_factory=list)
    """±1σ and ±2σ coverage of the variance model on the tile's own leave-out residuals."""
    trusted: float = 1.0
    """Median distance in the farthest bin: beyond it ``λ`` shrinks in inverse proportion to ``D``."""
    prior_scale: float = 1.0
    """Std scale the model's S1-only prior earned on the tile's leave-out residuals (68.3 % within ±1)."""

    def describe(self) -> dict:
        """JSON-ready summary (written into the output's attributes)."""
        return {"prototypes": int(self.sig.shape[0]), "water_prototypes": int(self.water.sum()),
                "bandwidth": round(self.bandwidth, 4), "estimator": self.estimator,
                "distance_edges": [round(e, 3) for e in self.edges], "lambdas": [round(v, 2) for v in self.lambdas],
                "variance_coefficients": [float(f"{v:.4g}") for v in self.var_coef],
                "cv_coverage": [round(v, 3) for v in self.cv_coverage], "trusted_distance": round(self.trusted, 3),
                "prior_std_scale": round(self.prior_scale, 3),
                "cv_mae": {k: round(v, 4) for k, v in self.cv_mae.items()}}

    def standardise(self, sig: torch.Tensor) -> torch.Tensor:
        """Signatures from :func:`signature_series` in the tile's standard units."""
        return (sig - self.centre) / self.scale

    def analogs(self, sig: torch.Tensor, water: torch.Tensor, prior: torch.Tensor,
                exclude: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
        """Borrowed NDVI, residual estimate, spread and distance ``(B, T)`` for standardised signatures ``sig``.

        Args:
            sig: ``(B, T, 3)`` standardised signatures.
            water: ``(B,)`` permanent-water flags.
            prior: ``(B, T)`` the model's S1-only NDVI for these pixels.
            exclude: ``(B, M)`` bool, prototypes not to use for each row (calibration), or None.
        """
        b, t, _ = sig.shape
        flat_q, flat_p = sig.reshape(b, -1), self.sig.reshape(self.sig.shape[0], -1)
        whole = ((flat_q * flat_q).sum(1, keepdim=True) + (flat_p * flat_p).sum(1)[None]
                 - 2.0 * flat_q @ flat_p.T).clamp(min=0) / flat_q.shape[1]
        whole = whole + WATER_PENALTY * (water[:, None] != self.water[None]).to(whole.dtype)
        if exclude is not None:
            whole = whole.masked_fill(exclude, float("inf"))
        k = min(TOP_K, self.sig.shape[0])
        d_whole, idx = torch.topk(whole, k, dim=1, largest=False)  # (B, k)
        psig = self.sig[idx]  # (B, k, T, 3)
        local = _box(((psig - sig[:, None]) ** 2).mean(-1), WINDOW)  # (B, k, T)
        d2 = (1.0 - LOCAL_SHARE) * d_whole[..., None] + LOCAL_SHARE * local
        usable = torch.isfinite(d_whole) & (water[:, None] == self.water[idx])  # (B, k): never across water/land
        d2 = d2.masked_fill(~usable[..., None], float("inf"))
        d2_min = d2.min(1, keepdim=True).values
        rel = torch.where(torch.isfinite(d2), d2 - d2_min, torch.full_like(d2, float("inf")))
        w = torch.exp(-0.5 * rel / self.bandwidth ** 2) * self.time_w[idx]  # relative: distance acts through λ(D)
        total = w.sum(1).clamp(min=1e-12)
        vals = self.ndvi[idx]
        borrowed = (w * vals).sum(1) / total
        residual = prior + (w * (vals - self.prior[idx])).sum(1) / total
        spread = torch.sqrt((w * (vals - borrowed[:, None]) ** 2).sum(1) / total)
        # distance: RMS over the analogs weighted by their time factor only (the similarity weight would hide them)
        tw = self.time_w[idx] * usable[..., None]
        dist = torch.sqrt((tw * d2.masked_fill(~torch.isfinite(d2), 0.0)).sum(1) / tw.sum(1).clamp(min=1e-12))
        dist = torch.minimum(dist, 2.0 * torch.sqrt(d2_min[:, 0]))
        none = w.sum(1) <= 1e-12
        dist = torch.where(none, torch.full_like(dist, float("inf")), dist)
        return {"borrowed": borrowed, "residual": residual, "spread": spread, "distance": dist, "weight": w.sum(1),
                "none": none}

    def apply(self, prior: torch.Tensor, prior_std: torch.Tensor, sig_raw: torch.Tensor,
              water: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """NDVI mean and std ``(B, T)`` for pixels without kept NDVI from their prior and analogs.

        The mean is ``prior + λ(D)·(estimate − prior)``; the std is the tile's variance model (:func:`fit_variance`)
        of the analogs' spread, the distance ``D``, the model's own std and the analog/prior disagreement. A pixel
        with no usable analog keeps the prior, at the distance of three times the farthest calibrated one.

        Args:
            prior: ``(B, T)`` the model's S1-only NDVI.
            prior_std: ``(B, T)`` the model's own std for it (Laplace scale × √2, before any std scale).
            sig_raw: ``(B, T, 3)`` signatures from :func:`signature_series` (not standardised).
            water: ``(B,)`` permanent-water flags.
        """
        out = self.analogs(self.standardise(sig_raw), water, prior)
        est = torch.where(out["none"], prior, out[self.estimator])
        dist = torch.where(out["none"], torch.full_like(out["distance"], 3.0 * self.edges[-1]), out["distance"])
        lam = self._lookup(dist)
        mean = prior + lam * (est - prior)
        var = variance_model(self.var_coef, out["spread"], dist, prior_std, est - prior)
        # beyond the distances the tile's calibration saw, its residuals say nothing: the std moves towards what the
        # model's prior earned on the clear pixels, plus the analogs' disagreement with it
        far = (1.0 - (self.trusted / dist.clamp(min=1e-6)) ** 2).clamp(min=0.0)
        std = (var + far * ((self.prior_scale * prior_std) ** 2 + (est - prior) ** 2)).sqrt()
        no_water_analog = water[:, None] & (out["none"] | (not bool(self.water.any())))
        mean = torch.where(no_water_analog, mean.clamp(max=WATER_NDVI_MAX), mean)
        return mean, std

    def _lookup(self, dist: torch.Tensor) -> torch.Tensor:
        """``λ`` for distances ``D`` (shrinking as ``trusted / D`` beyond the trusted distance)."""
        edges = torch.tensor(self.edges, dtype=dist.dtype, device=dist.device)
        k = torch.bucketize(dist.clamp(max=float(edges[-1])), edges).clamp(max=len(self.edges) - 1)
        lam = torch.tensor(self.lambdas, dtype=dist.dtype, device=dist.device)[k]
        return lam / (dist / max(self.trusted, 1e-6)).clamp(min=1.0)


def variance_model(coef: list[float], spread: torch.Tensor, dist: torch.Tensor, sigma: torch.Tensor,
                   gap: torch.Tensor) -> torch.Tensor:
    """``a·spread² + b·D² + c·σ² + d·gap²`` (floored at 1e-6)."""
    a, b, c, d = coef
    return (a * spread ** 2 + b * dist ** 2 + c * sigma ** 2 + d * gap ** 2).clamp(min=1e-6)


def fit_variance(res: np.ndarray, spread: np.ndarray, dist: np.ndarray, sigma: np.ndarray, gap: np.ndarray,
                 group: np.ndarray | None = None, steps: int = 20) -> tuple[list[float], list[float]]:
    """Non-negative coefficients of :func:`variance_model` for residuals ``res``, then a coverage correction.

    The coefficients maximise the Gaussian likelihood of the residuals (Fisher scoring: iteratively reweighted least
    squares of the squared residuals on the four terms, with weights 1/std⁴, non-negative by an active set).
    The residuals are heavier-tailed than a Gaussian and the leave-out schemes differ (one pixel left out, or its
    whole cluster), so all four are then multiplied by ``k²``, with ``k`` the largest over the schemes (``group``) of
    the 68.3 % quantile of ``|res| / std`` and half its :data:`COVER2` quantile: in every scheme ±1σ covers at least
    68.3 % and ±2σ at least :data:`COVER2` of the residuals it was fitted on.

    Returns:
        The coefficients and the ±1σ / ±2σ coverage they give on all of ``res``.
    """
    x = np.stack([np.asarray(v, np.float64) ** 2 for v in (spread, dist, sigma, gap)], 1)
    r2 = np.asarray(res, np.float64) ** 2
    coef = np.full(4, r2.mean() / 4.0) / np.maximum(x.mean(0), 1e-12)
    for _ in range(steps):  # Fisher scoring of the Gaussian likelihood: weighted least squares of r² on the terms
        w = 1.0 / np.maximum(x @ coef, 1e-6)
        active = np.ones(4, bool)
        while True:  # non-negative: drop the terms whose coefficient comes out negative and refit
            sol = np.zeros(4)
            if active.any():
                sol[active] = np.linalg.lstsq(x[:, active] * w[:, None], r2 * w, rcond=None)[0]
            if (sol >= 0).all():
                break
            active &= sol > 0
        if np.allclose(sol, coef, rtol=1e-4, atol=1e-9):
            coef = sol
            break
        coef = sol
    z = np.sqrt(r2 / np.maximum(x @ coef, 1e-6))
    group = np.zeros(z.shape, int) if group is None else np.asarray(group)
    k = max(max(float(np.quantile(z[group == g], 0.683)), float(np.quantile(z[group == g], COVER2)) / 2.0)
            for g in np.unique(group))
    coef = [float(c) * k ** 2 for c in coef]
    return coef, [float((z <= k).mean()), float((z <= 2 * k).mean())]


def _kmeans(x: np.ndarray, k: int, rng: np.random.Generator, iters: int = 20) -> np.ndarray:
    centres = x[rng.choice(x.shape[0], size=k, replace=False)]
    for _ in range(iters):
        label = ((x[:, None] - centres[None]) ** 2).sum(-1).argmin(1)
        centres = np.stack([x[label == c].mean(0) if (label == c).any() else centres[c] for c in range(k)])
    return label


def build_borrower(model: FusionNet, vv: torch.Tensor, vh: torch.Tensor, ndvi: torch.Tensor, days: torch.Tensor,
                   std_scale: float, seed: int = 0) -> Borrower | None:
    """Prototypes and calibration tables of a tile, from a seeded sample of its pixels with kept NDVI.

    Args:
        model: the network (eval mode, on the tensors' device).
        vv: ``(M, T)`` VV linear power of the sampled clear pixels.
        vh: ``(M, T)`` VH linear power.
        ndvi: ``(M, T)`` their kept NDVI (NaN missing).
        days: ``(T,)`` days.
        std_scale: the checkpoint's std scale (unused: the borrowed std is calibrated on the tile itself; kept for
            the interface).
        seed: seed of the clustering.

    Returns:
        The borrower, or None with fewer than 20 usable prototypes (then the S1-only path is unchanged).
    """
    sig_raw, water = signature_series(vv, vh, days)
    usable = torch.isfinite(sig_raw).all(-1).all(-1) & torch.isfinite(ndvi).any(1)
    if int(usable.sum()) < _MIN_PROTOTYPES:
        return None
    sig_raw, water, vv, vh, ndvi = sig_raw[usable], water[usable], vv[usable], vh[usable], ndvi[usable]
    flat = sig_raw.reshape(-1, 3)
    centre, scale = flat.mean(0), flat.std(0).clamp(min=1e-3)
    sig = (sig_raw - centre) / scale
    rel = (days - days[..., :1]).to(ndvi.dtype)
    interp, d_prev, d_next = interpolate_kept(ndvi, rel)
    time_w = torch.exp(-torch.minimum(d_prev, d_next) / _TIME_SCALE_DAYS)
    feats = series_features(vv, vh, None, days, model.config.calendar)
    prior, log_b = model(feats.x, feats.base)
    prior, prior_std = prior.float(), math.sqrt(2.0) * torch.exp(log_b.float())
    bor = Borrower(sig=sig, water=water, ndvi=interp, time_w=time_w, prior=prior, centre=centre, scale=scale,
                   bandwidth=1.0)
    m = sig.shape[0]
    flat_s = sig.reshape(m, -1)
    d2 = torch.cdist(flat_s, flat_s) ** 2 / flat_s.shape[1]
    d2 = d2.masked_fill(torch.eye(m, dtype=torch.bool, device=d2.device), float("inf"))
    # the median distance to the 4th-nearest prototype: robust to duplicated pixels (S1 resampled to a finer grid)
    nearest = torch.topk(d2, min(_BANDWIDTH_RANK, m - 1), dim=1, largest=False).values[:, -1]
    bor.bandwidth = max(float(torch.sqrt(nearest).median()), 1e-3)
    excludes = [torch.eye(m, dtype=torch.bool, device=sig.device)]
    for n_clusters in _CLUSTERS:
        labels = torch.from_numpy(_kmeans(flat_s.cpu().numpy(), min(n_clusters, m // 4), np.random.default_rng(seed)))
        labels = labels.to(sig.device)
        excludes.append(labels[:, None] == labels[None])
    truth = ndvi.cpu().numpy()
    ok = np.isfinite(truth)
    rows: dict[str, list[np.ndarray]] = {k: [] for k in ("prior", "borrowed", "residual", "distance", "spread", "std",
                                                         "truth", "group")}
    for exclude in excludes:
        out = bor.analogs(sig, water, prior, exclude)
        for key, val in (("prior", prior), ("borrowed", out["borrowed"]), ("residual", out["residual"]),
                         ("distance", out["distance"]), ("spread", out["spread"]), ("std", prior_std)):
            rows[key].append(val.cpu().numpy()[ok])
        rows["truth"].append(truth[ok])
        rows["group"].append(np.full(int(ok.sum()), len(rows["group"])))
    cv = {k: np.concatenate(v).astype(np.float64) for k, v in rows.items()}
    finite = np.isfinite(cv["distance"])
    if finite.sum() < 2 * _BINS * 10:
        return None
    cv = {k: v[finite] for k, v in cv.items()}
    edges = list(np.quantile(cv["distance"], np.linspace(0, 1, _BINS + 1)[1:]))
    bin_of = np.minimum(np.searchsorted(edges, cv["distance"]), _BINS - 1)
    best: dict[str, tuple[float, list[float]]] = {}
    for est in ("borrowed", "residual"):
        lams, err = [], np.empty_like(cv["truth"])
        for k in range(_BINS):
            sel = bin_of == k
            maes = [np.abs(cv["prior"][sel] + lam * (cv[est][sel] - cv["prior"][sel]) - cv["truth"][sel]).mean()
                    for lam in _LAMBDAS]
            lam = float(_LAMBDAS[int(np.argmin(maes))])
            lams.append(lam)
            err[sel] = cv["prior"][sel] + lam * (cv[est][sel] - cv["prior"][sel]) - cv["truth"][sel]
        best[est] = (float(np.abs(err).mean()), lams)
    bor.cv_mae = {"prior": float(np.abs(cv["prior"] - cv["truth"]).mean()), **{k: v[0] for k, v in best.items()}}
    bor.estimator = min(best, key=lambda e: best[e][0])
    bor.lambdas = best[bor.estimator][1]
    bor.edges = [float(e) for e in edges]
    bor.trusted = float(np.median(cv["distance"][bin_of == _BINS - 1]))
    bor.prior_scale = float(np.quantile(np.abs(cv["prior"] - cv["truth"]) / cv["std"], 0.683))
    lam = bor._lookup(torch.from_numpy(cv["distance"])).numpy()
    gap = cv[bor.estimator] - cv["prior"]
    bor.var_coef, bor.cv_coverage = fit_variance(cv["prior"] + lam * gap - cv["truth"], cv["spread"], cv["distance"],
                                                 cv["std"], gap, cv["group"])
    _log.info("Borrowing: %s", bor.describe())
    return bor
