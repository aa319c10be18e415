"""Streaming inference over a cube: row stripes of pixels through the network, memory bounded by the batch size."""

import logging
import math
from typing import Callable

import numpy as np
import torch
import xarray as xr

from udf.errors import DeviceNotAvailable
from udf.model import FusionNet
from udf.preprocess import NDVI_BAND, check_cube, check_ndvi, detect_s1_units, pixel_features, s1_to_linear, times_to_days

_log = logging.getLogger(__name__)


def resolve_device(device: str) -> torch.device:
    """``"auto"`` → CUDA when available, else CPU; ``"cuda"`` without CUDA raises."""
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise DeviceNotAvailable(f"device={device!r} requested but CUDA is not available; use 'cpu' or 'auto'.")
    return torch.device(device)


def _run_model(model: FusionNet, feats: np.ndarray, device: torch.device) -> tuple[np.ndarray, np.ndarray]:
    x = torch.from_numpy(feats).to(device)
    with torch.inference_mode():
        if device.type == "cuda":
            with torch.autocast("cuda", dtype=torch.bfloat16):
                mean, log_b = model(x)
        else:
            mean, log_b = model(x)
    return mean.float().cpu().numpy(), log_b.float().cpu().numpy()


def predict_cube(cube: xr.DataArray, model: FusionNet, meta: dict, s1_units: str = "auto",
                 include_uncertainty: bool = False, batch_size: int = 4096, device: str = "auto",
                 progress: Callable[[int, int], None] | None = None) -> xr.DataArray:
    """Predict NDVI (and its predictive std) for every pixel and step of a cube.

    Args:
        cube: ``(t, bands, y, x)`` with ``VV``, ``VH`` and optionally ``NDVI``.
        model: the network (from :func:`udf.weights.load_checkpoint`).
        meta: checkpoint metadata (``std_scale`` calibrates the spread).
        s1_units: ``auto``, ``db``, ``linear`` or ``uint16_db``.
        include_uncertainty: add band ``NDVI_STD``.
        batch_size: pixels per forward pass (rows of the cube are grouped to about this many).
        device: ``auto``, ``cpu`` or ``cuda``.
        progress: called with ``(pixels_done, pixels_total)``.

    Returns:
        float32 ``(t, bands, y, x)`` with bands ``NDVI`` (+ ``NDVI_STD``), the input's labels, NaN for pixels
        without any valid S1.
    """
    cube = check_cube(cube)
    bands = [str(b) for b in cube["bands"].values]
    raw_vv, raw_vh = cube.sel(bands="VV").values, cube.sel(bands="VH").values
    units = detect_s1_units(raw_vv, raw_vh, dtype=cube.dtype) if s1_units == "auto" else s1_units
    ndvi_all = check_ndvi(cube.sel(bands=NDVI_BAND).values) if NDVI_BAND in bands else None
    days = times_to_days(cube["t"].values)
    nt, ny, nx = raw_vv.shape
    dev = resolve_device(device)
    model = model.to(dev)
    rows = max(1, batch_size // max(nx, 1))
    mean = np.full((nt, ny, nx), np.nan, dtype=np.float32)
    std = np.full_like(mean, np.nan)
    scale = float(meta.get("std_scale", 1.0)) * math.sqrt(2.0)
    for r0 in range(0, ny, rows):
        r1 = min(ny, r0 + rows)
        a, b = max(0, r0 - 1), min(ny, r1 + 1)  # one halo row each side for the 3×3 features
        vv, vh = s1_to_linear(raw_vv[:, a:b], units), s1_to_linear(raw_vh[:, a:b], units)
        nd = None if ndvi_all is None else ndvi_all[:, a:b]
        feats = pixel_features(vv, vh, nd, days).reshape(b - a, nx, nt, -1)[r0 - a:r0 - a + (r1 - r0)]
        m, log_b = _run_model(model, feats.reshape(-1, nt, feats.shape[-1]), dev)
        no_s1 = ~np.isfinite(vv[:, r0 - a:r0 - a + (r1 - r0)]).any(axis=0).ravel()
        m[no_s1], log_b[no_s1] = np.nan, np.nan
        mean[:, r0:r1] = np.clip(m, -1.0, 1.0).T.reshape(nt, r1 - r0, nx)
        std[:, r0:r1] = (scale * np.exp(log_b)).T.reshape(nt, r1 - r0, nx)
        if progress is not None:
            progress(r1 * nx, ny * nx)
    out_bands, data = [NDVI_BAND], [mean]
    if include_uncertainty:
        out_bands, data = [NDVI_BAND, "NDVI_STD"], [mean, std]
    return xr.DataArray(np.stack(data, axis=1), dims=("t", "bands", "y", "x"),
                        coords={"t": cube["t"].values, "bands": out_bands, "y": cube["y"].values,
                                "x": cube["x"].values}, attrs={k: v for k, v in cube.attrs.items() if k == "crs"})
