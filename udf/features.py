"""Per-step model inputs, built in torch inside each batch (CPU or GPU), from decoded S1 and the kept NDVI.

Nothing here depends on a site's absolute calibration more than it must: besides the backscatter itself the model
sees each pixel's backscatter *anomaly* (minus the pixel's own temporal mean; σ⁰ vs γ⁰ and orbit-wide offsets
cancel there) and the VH/VV ratio (invariant to a common offset). No day-of-year enters: crop calendars differ
between sites, hemispheres and climates (2–3 rice seasons a year in the tropics), so time enters only as the
spacing of steps and the distance to the nearest kept NDVI.

The kept NDVI enters as the observation itself and as its **linear interpolation** in time (constant beyond the first
and last kept observation): the network predicts a correction to that interpolation where a pixel has any kept NDVI
(:class:`udf.model.FusionNet` adds it), so that next to kept observations it starts from what interpolation says,
and learns how far S1 should move it inside gaps. Without any kept NDVI it predicts NDVI from S1 alone.
"""

from dataclasses import dataclass

import torch

__all__ = ["CALENDAR_FEATURES", "FEATURES", "MAX_DIST_DAYS", "NORMALISED", "SeriesFeatures", "feature_names",
           "interpolate_kept", "series_features"]

FEATURES = ("vv_db", "vh_db", "ratio_db", "vv_anom", "vh_anom", "vv_dev", "vh_dev", "s1_valid", "ndvi", "ndvi_valid",
            "interp", "dist_prev", "dist_next", "has_ndvi", "gap_prev", "gap_next")
"""Per-step model inputs, in order. dB features are 10·log10 of linear power (``*_anom``: minus the pixel's mean over
its valid steps; ``*_dev``: minus what the backscatter was at the kept NDVI dates, interpolated like the NDVI — how
far S1 moved since the evidence the interpolation rests on); distances and gaps are in 30-day units, capped."""
CALENDAR_FEATURES = ("doy_sin", "doy_cos")
"""Day of year, appended only for a model adapted to one site (``ModelConfig.calendar``): a pretrained model must
not assume a crop calendar, a model adapted to the user's cube may learn that site's."""
NORMALISED = ("vv_db", "vh_db", "ratio_db", "vv_anom", "vh_anom", "vv_dev", "vh_dev")
"""Features z-scored with statistics stored in the checkpoint; the others are already of order one."""
MAX_DIST_DAYS = 180.0
"""Distances to the nearest kept NDVI are capped here (a pixel without any kept NDVI gets the cap)."""
_MAX_GAP_DAYS = 120.0


@dataclass
class SeriesFeatures:
    """Model inputs of a batch: ``x`` ``(B, T, F)`` and the interpolation ``base`` ``(B, T)`` the model corrects."""

    x: torch.Tensor
    base: torch.Tensor
    s1_any: torch.Tensor
    """``(B,)`` bool: the sequence has at least one valid S1 step (others get NaN output)."""


def interpolate_kept(ndvi: torch.Tensor, days: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Linear interpolation of the kept NDVI in time, and the distance to the previous/next kept observation.

    Args:
        ndvi: ``(B, T)`` kept NDVI, NaN where missing.
        days: ``(B, T)`` or ``(T,)`` time in days, increasing along T.

    Returns:
        ``interp`` ``(B, T)`` (constant beyond the first/last kept value; 0 for a sequence without any),
        ``dist_prev`` and ``dist_next`` ``(B, T)`` in days (``inf`` where there is no kept value on that side).
    """
    b, t = ndvi.shape
    days = days.expand(b, t)
    valid = torch.isfinite(ndvi)
    idx = torch.arange(t, device=ndvi.device).expand(b, t)
    prev = torch.cummax(torch.where(valid, idx, torch.full_like(idx, -1)), dim=1).values
    nxt = torch.flip(torch.cummin(torch.flip(torch.where(valid, idx, torch.full_like(idx, t)), [1]), dim=1).values,
                     [1])
    has_prev, has_next = prev >= 0, nxt < t
    prev_c, next_c = prev.clamp(min=0), nxt.clamp(max=t - 1)
    filled = torch.where(valid, ndvi, torch.zeros_like(ndvi))
    v_prev, v_next = filled.gather(1, prev_c), filled.gather(1, next_c)
    d_prev = days - days.gather(1, prev_c)
    d_next = days.gather(1, next_c) - days
    both = has_prev & has_next
    w = torch.where(both, d_prev / (d_prev + d_next).clamp(min=1e-6), torch.zeros_like(d_prev))
    interp = torch.where(both, v_prev + w * (v_next - v_prev),
                         torch.where(has_prev, v_prev, torch.where(has_next, v_next, torch.zeros_like(v_prev))))
    inf = torch.full_like(d_prev, float("inf"))
    return interp, torch.where(has_prev, d_prev, inf), torch.where(has_next, d_next, inf)


def _to_db(linear: torch.Tensor) -> torch.Tensor:
    return 10.0 * torch.log10(linear)


def _deviation(db: torch.Tensor, ok: torch.Tensor, nd_ok: torch.Tensor, days: torch.Tensor) -> torch.Tensor:
    """Backscatter minus its value at the kept NDVI dates interpolated in time (0 without kept NDVI).

    S1 is first filled in time (linear between valid acquisitions), so that kept NDVI dates without an S1
    acquisition (per-acquisition cubes: S2 and S1 on different days) still get a reference value.
    """
    filled, _, _ = interpolate_kept(torch.where(ok, db, torch.full_like(db, float("nan"))), days)
    ref, _, _ = interpolate_kept(torch.where(nd_ok, filled, torch.full_like(db, float("nan"))), days)
    usable = nd_ok.any(1, keepdim=True) & ok.any(1, keepdim=True)
    return torch.where(usable & ok, db - ref, torch.zeros_like(db))


def _gaps(days: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    step = torch.diff(days, dim=1).clamp(max=_MAX_GAP_DAYS) / 30.0
    if step.shape[1] == 0:
        zero = torch.zeros_like(days)
        return zero, zero
    return torch.cat([step[:, :1], step], dim=1), torch.cat([step, step[:, -1:]], dim=1)


def feature_names(calendar: bool = False) -> tuple[str, ...]:
    """The feature columns a model reads: :data:`FEATURES`, plus :data:`CALENDAR_FEATURES` for a calendar model."""
    return FEATURES + CALENDAR_FEATURES if calendar else FEATURES


def series_features(vv: torch.Tensor, vh: torch.Tensor, ndvi: torch.Tensor | None,
                    days: torch.Tensor, calendar: bool = False) -> SeriesFeatures:
    """Build :data:`FEATURES` for a batch of sequences.

    Args:
        vv: ``(B, T)`` VV linear power, NaN (or ≤ 0) where no data.
        vh: ``(B, T)`` VH linear power, same.
        ndvi: ``(B, T)`` kept NDVI with NaN where missing, or None (S1 only).
        days: ``(T,)`` or ``(B, T)`` time in days since 1970-01-01 (float64 advised), strictly increasing.
        calendar: append the day of year (sin, cos) for a model adapted to one site.

    Returns:
        Features (float32, missing values 0 with their validity flag 0), the interpolation base and S1 presence.
    """
    b, t = vv.shape
    absolute = days.expand(b, t)
    days = (days - days[..., :1]).to(vv.dtype).expand(b, t)
    vv_db, vh_db = _to_db(vv), _to_db(vh)
    s1_ok = torch.isfinite(vv_db) & torch.isfinite(vh_db)
    zero = torch.zeros_like(vv_db)
    vv_db, vh_db = torch.where(s1_ok, vv_db, zero), torch.where(s1_ok, vh_db, zero)
    count = s1_ok.sum(1, keepdim=True).clamp(min=1)
    vv_anom = torch.where(s1_ok, vv_db - vv_db.sum(1, keepdim=True) / count, zero)
    vh_anom = torch.where(s1_ok, vh_db - vh_db.sum(1, keepdim=True) / count, zero)
    if ndvi is None:
        ndvi = torch.full_like(vv, float("nan"))
    nd_ok = torch.isfinite(ndvi)
    interp, d_prev, d_next = interpolate_kept(ndvi, days)
    has = nd_ok.any(1, keepdim=True).expand(b, t)
    gap_prev, gap_next = _gaps(days)
    vv_dev, vh_dev = _deviation(vv_db, s1_ok, nd_ok, days), _deviation(vh_db, s1_ok, nd_ok, days)
    cols = [vv_db, vh_db, torch.where(s1_ok, vh_db - vv_db, zero), vv_anom, vh_anom, vv_dev, vh_dev,
            s1_ok.to(vv.dtype),
            torch.where(nd_ok, ndvi, zero), nd_ok.to(vv.dtype), interp, d_prev.clamp(max=MAX_DIST_DAYS) / 30.0,
            d_next.clamp(max=MAX_DIST_DAYS) / 30.0, has.to(vv.dtype), gap_prev, gap_next]
    if calendar:
        angle = (2 * torch.pi / 365.25) * torch.remainder(absolute.to(torch.float64), 365.25)
        cols += [torch.sin(angle).to(vv.dtype), torch.cos(angle).to(vv.dtype)]
    x = torch.stack(cols, dim=-1)
    return SeriesFeatures(x=x, base=torch.where(has, interp, zero), s1_any=s1_ok.any(1))
