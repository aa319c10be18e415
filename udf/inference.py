"""Streaming inference over a cube: row stripes of pixels through the network, memory bounded by the batch size.

Each stripe is sliced from the cube in its own dtype, decoded to float32 linear power, moved to the device, turned
into features there (:mod:`udf.features`) and run through the network; nothing is copied to float64 and no array
the size of the cube is made besides the output.
"""

import json
import logging
import math
from typing import Callable

import numpy as np
import torch
import xarray as xr

from udf.band_info import band_attrs
from udf.borrow import PROTOTYPES, Borrower, build_borrower, signature_series
from udf.errors import DeviceNotAvailable
from udf.features import FEATURES, series_features
from udf.model import FusionNet
from udf.preprocess import (
    NDVI_BAND,
    check_cube,
    check_ndvi,
    check_s1_units,
    check_times,
    detect_s1_units,
    s1_to_linear,
    times_to_days,
)
from udf.selfcal import SelfCalibration, apply_gap_map, apply_s1_only, apply_weights, distance_to_kept, self_calibrate

_log = logging.getLogger(__name__)

__all__ = ["calibrate_cube", "predict_cube", "predict_series", "resolve_device"]


def resolve_device(device: str) -> torch.device:
    """``"auto"`` → CUDA when available, else CPU; ``"cuda"`` without CUDA raises."""
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise DeviceNotAvailable(f"device={device!r} requested but CUDA is not available; use 'cpu' or 'auto'.")
    return torch.device(device)


def predict_series(model: FusionNet, vv: torch.Tensor, vh: torch.Tensor, ndvi: torch.Tensor | None,
                   days: torch.Tensor, cal: SelfCalibration | None = None,
                   std_scale: float = 1.0, borrower: Borrower | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """NDVI mean and predictive std ``(B, T)`` of a batch of decoded sequences (NaN where no S1 at all).

    Args:
        model: the network, on the tensors' device.
        vv: ``(B, T)`` VV linear power (NaN no data).
        vh: ``(B, T)`` VH linear power.
        ndvi: ``(B, T)`` kept NDVI (NaN missing) or None.
        days: ``(T,)`` or ``(B, T)`` days.
        cal: the cube's self-calibration (:mod:`udf.selfcal`): trust weights and std scale where a sequence has kept
            NDVI, the S1-only map and its std scale where it has none; None to use the model's output as is.
        std_scale: the std scale wherever ``cal`` has none (the checkpoint's).
        borrower: the tile's similar-pixel borrowing (:mod:`udf.borrow`); where given, sequences without any kept
            NDVI are calibrated locally on their analogs instead of by ``cal``'s S1-only map.
    """
    feats = series_features(vv, vh, ndvi, days, model.config.calendar)
    if vv.device.type == "cuda":
        with torch.autocast("cuda", dtype=torch.bfloat16):
            mean, log_b = model(feats.x, feats.base)
    else:
        mean, log_b = model(feats.x, feats.base)
    mean, log_b = mean.float(), log_b.float()
    prior = mean
    scale = torch.full_like(mean, std_scale)
    if cal is not None:
        has = feats.x[..., FEATURES.index("has_ndvi")] > 0
        if cal.std_scale is not None:
            dist = distance_to_kept(feats.x)
            blended = apply_weights(mean, feats.base, dist, has, cal.weights)
            if cal.gap_map is not None:
                blended = apply_gap_map(blended, mean, feats.base, feats.x, dist, has, cal.gap_map, cal.gap_bins)
            mean = blended
            scale = torch.where(has, torch.full_like(scale, cal.std_scale), scale)
        if cal.s1_only is not None and cal.s1_only_std_scale is not None and borrower is None:
            mean = apply_s1_only(mean, feats.x, days, has, cal.s1_only, cal.s1_only_range)
            scale = torch.where(has, scale, torch.full_like(scale, cal.s1_only_std_scale))
    if borrower is not None:
        rows = ~(feats.x[..., FEATURES.index("has_ndvi")] > 0).any(1) & feats.s1_any
        if bool(rows.any()):
            sig, water = signature_series(vv[rows], vh[rows], days if days.dim() == 1 else days[rows])
            spread = math.sqrt(2.0) * torch.exp(log_b[rows])
            local_mean, local_std = borrower.apply(prior[rows], spread, sig, water)
            mean, scale = mean.clone(), scale.clone()
            mean[rows] = local_mean
            scale[rows] = local_std / spread
    nan = torch.tensor(float("nan"), device=mean.device)
    keep = feats.s1_any[:, None]
    std = math.sqrt(2.0) * scale * torch.exp(log_b)
    return torch.where(keep, mean.clamp(-1.0, 1.0), nan), torch.where(keep, std, nan)


def _stripe(cube: xr.DataArray, band: str, r0: int, r1: int) -> np.ndarray:
    """``(t, rows, x)`` values of one band in the cube's own dtype."""
    return np.asarray(cube.isel(y=slice(r0, r1)).sel(bands=band).values)


def _flat(values: np.ndarray, device: torch.device) -> torch.Tensor:
    """``(t, rows, x)`` float32 → ``(rows·x, t)`` tensor on ``device``."""
    nt = values.shape[0]
    return torch.from_numpy(np.ascontiguousarray(values.reshape(nt, -1).T)).to(device)


def _units(cube: xr.DataArray, s1_units: str) -> str:
    vv, vh = cube.sel(bands="VV").values, cube.sel(bands="VH").values
    if s1_units == "auto":
        return detect_s1_units(vv, vh, dtype=cube.dtype)
    check_s1_units(vv, vh, s1_units)
    return s1_units


def _calibration_sample(cube: xr.DataArray, rows: int, max_pixels: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Row and column indices of up to ``max_pixels`` pixels with kept NDVI (seeded), found stripe by stripe."""
    ny = cube.sizes["y"]
    with_ndvi = np.concatenate([np.isfinite(_stripe(cube, NDVI_BAND, r0, min(ny, r0 + rows))).any(0)
                                for r0 in range(0, ny, rows)])
    yy, xx = np.nonzero(with_ndvi)
    pick = np.sort(np.random.default_rng(seed).permutation(yy.size)[:max_pixels])
    return yy[pick], xx[pick]


def borrower_for_cube(cube: xr.DataArray, model: FusionNet, units: str, days: torch.Tensor, dev: torch.device,
                      rows: int, std_scale: float, seed: int = 0) -> Borrower | None:
    """:func:`udf.borrow.build_borrower` on a seeded sample of the cube's pixels that have kept NDVI."""
    yy, xx = _calibration_sample(cube, rows, PROTOTYPES, seed + 7)
    if yy.size == 0:
        return None
    sample = cube.isel(y=xr.DataArray(yy, dims="p"), x=xr.DataArray(xx, dims="p"))

    def band(name: str) -> torch.Tensor:  # (pixels, t)
        return torch.from_numpy(np.ascontiguousarray(np.asarray(sample.sel(bands=name).transpose("p", "t").values)))

    vv, vh = (torch.from_numpy(s1_to_linear(band(b).numpy(), units, check=False)).to(dev) for b in ("VV", "VH"))
    nd = torch.from_numpy(check_ndvi(band(NDVI_BAND).numpy())).to(dev)
    return build_borrower(model, vv, vh, nd, days, std_scale, seed=seed)


def calibrate_cube(cube: xr.DataArray, model: FusionNet, units: str, days: torch.Tensor, dev: torch.device,
                   rows: int, max_pixels: int = 1000, seed: int = 0) -> SelfCalibration:
    """:func:`udf.selfcal.self_calibrate` on a seeded sample of the cube's pixels that have kept NDVI."""
    yy, xx = _calibration_sample(cube, rows, max_pixels, seed)
    if yy.size == 0:
        return SelfCalibration()
    sample = cube.isel(y=xr.DataArray(yy, dims="p"), x=xr.DataArray(xx, dims="p"))

    def band(name: str) -> np.ndarray:  # (pixels, t)
        return np.ascontiguousarray(np.asarray(sample.sel(bands=name).transpose("p", "t").values))

    def tensor(values: np.ndarray) -> torch.Tensor:
        return torch.from_numpy(values).to(dev)

    vv, vh = (tensor(s1_to_linear(band(b), units, check=False)) for b in ("VV", "VH"))
    nd = tensor(check_ndvi(band(NDVI_BAND)))
    cal = self_calibrate(model, vv, vh, nd, days, seed=seed)
    _log.info("Self-calibration on %d pixels: %s", yy.size, cal.describe())
    return cal


def predict_cube(cube: xr.DataArray, model: FusionNet, meta: dict, s1_units: str = "auto",
                 include_uncertainty: bool = False, batch_size: int = 4096, device: str = "auto",
                 self_calibration: bool = True, borrowing: bool = True,
                 progress: Callable[[int, int], None] | None = None) -> xr.DataArray:
    """Predict NDVI (and its predictive std) for every pixel and step of a cube.

    Args:
        cube: ``(t, bands, y, x)`` with ``VV``, ``VH`` and optionally ``NDVI``.
        model: the network (from :func:`udf.weights.load_checkpoint`).
        meta: checkpoint metadata (``std_scale`` calibrates the spread unless self-calibration replaces it).
        s1_units: ``auto``, ``db``, ``linear`` or ``uint16_db``.
        include_uncertainty: add band ``NDVI_STD``.
        batch_size: pixels per forward pass (rows of the cube are grouped to about this many).
        device: ``auto``, ``cpu`` or ``cuda``.
        self_calibration: calibrate trust weights and std on the cube's own kept NDVI (:mod:`udf.selfcal`).
        borrowing: pixels without any kept NDVI borrow from clear pixels of the cube with similar S1
            (:mod:`udf.borrow`; needs ``self_calibration`` and NDVI on some pixels).
        progress: called with ``(pixels_done, pixels_total)``.

    Returns:
        float32 ``(t, bands, y, x)`` with bands ``NDVI`` (+ ``NDVI_STD``), the input's labels, NaN for pixels
        without any valid S1; ``attrs['s1ndvi_self_calibration']`` describes the calibration (JSON).
    """
    cube = check_cube(cube)
    has_ndvi = NDVI_BAND in [str(b) for b in cube["bands"].values]
    units = _units(cube, s1_units)
    days_np = check_times(times_to_days(cube["t"].values))
    nt, ny, nx = cube.sizes["t"], cube.sizes["y"], cube.sizes["x"]
    dev = resolve_device(device)
    model = model.to(dev)
    days = torch.from_numpy(days_np).to(dev)  # days since 1970 (float64): gaps, and the day of year if used
    rows = max(1, batch_size // max(nx, 1))
    cal = calibrate_cube(cube, model, units, days, dev, rows) if self_calibration and has_ndvi else SelfCalibration()
    std_scale = float(meta.get("std_scale", 1.0))
    borrower = None
    if borrowing and self_calibration and has_ndvi:
        with torch.inference_mode():
            borrower = borrower_for_cube(cube, model, units, days, dev, rows, std_scale)
    out_bands = [NDVI_BAND, "NDVI_STD"] if include_uncertainty else [NDVI_BAND]
    out = np.full((nt, len(out_bands), ny, nx), np.nan, dtype=np.float32)
    with torch.inference_mode():
        for r0 in range(0, ny, rows):
            r1 = min(ny, r0 + rows)
            vv = _flat(s1_to_linear(_stripe(cube, "VV", r0, r1), units, check=False), dev)
            vh = _flat(s1_to_linear(_stripe(cube, "VH", r0, r1), units, check=False), dev)
            nd = _flat(check_ndvi(_stripe(cube, NDVI_BAND, r0, r1)), dev) if has_ndvi else None
            m, std = predict_series(model, vv, vh, nd, days, cal, std_scale, borrower)
            out[:, 0, r0:r1] = m.T.reshape(nt, r1 - r0, nx).cpu().numpy()
            if include_uncertainty:
                out[:, 1, r0:r1] = std.T.reshape(nt, r1 - r0, nx).cpu().numpy()
            if progress is not None:
                progress(r1 * nx, ny * nx)
    attrs = {k: v for k, v in cube.attrs.items() if k in ("crs", "ndvi_warning")}
    attrs["s1ndvi_self_calibration"] = json.dumps(cal.describe())
    attrs.update(band_attrs(list(out_bands)))
    attrs["s1ndvi_borrowing"] = json.dumps(None if borrower is None else borrower.describe())
    return xr.DataArray(out, dims=("t", "bands", "y", "x"), attrs=attrs,
                        coords={"t": cube["t"].values, "bands": out_bands, "y": cube["y"].values,
                                "x": cube["x"].values})
