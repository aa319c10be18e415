"""Peer results from files (cloud MOGPR, CropSAR) put on a model cube's grid and dates, as harness methods.

A peer file was computed elsewhere, on whatever observations its service had: it cannot be re-run on a protocol's
masked input. It is scored on the same hidden observations as every method, only at the dates it covers, and its
caveat is reported with it: a cloud MOGPR file whose raw NDVI band holds the hidden values, or any CropSAR output,
is *in-sample* (the service saw what it is scored on).

Grids must agree exactly: same CRS (when both declare one) and pixel centres on the cube's grid; a file may cover
part of the cube. Anything else is an error that describes both grids, never a silent resampling.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Optional

import numpy as np
import xarray as xr

from comparison.caveats import IN_SAMPLE, POSSIBLY_IN_SAMPLE
from comparison.compare.methods import Method, Prediction
from comparison.errors import GridMismatch, NoMatchingDates
from comparison.result_files import fusets_std_to_std, read_cloud_mogpr, read_cropsar
from udf.ingest.cube_io import open_netcdf
from udf.ingest.decode import crs_wkt

_log = logging.getLogger(__name__)

__all__ = ["file_crs", "align_to_cube", "cloud_mogpr_method", "cropsar_method", "seen_in_periods"]


def file_crs(path: str | Path) -> Optional[str]:
    """CRS declared by a netCDF file's ``crs`` grid-mapping variable (``crs_wkt`` or ``spatial_ref``), else None."""
    with open_netcdf(path, decode_cf=False) as ds:
        return crs_wkt({str(n): ds[n].attrs for n in ds.variables}) or None


def _same_crs(a: Optional[str], b: Optional[str]) -> bool:
    if not a or not b:
        return True
    from pyproj import CRS

    return bool(CRS.from_user_input(a).equals(CRS.from_user_input(b)))


def _axis_index(file_coords: np.ndarray, cube_coords: np.ndarray, axis: str, what: str) -> np.ndarray:
    """Index of each file coordinate on the cube axis (−1 outside); raises if a coordinate is off the grid."""
    step = float(np.median(np.diff(cube_coords))) if len(cube_coords) > 1 else 1.0
    pos = (np.asarray(file_coords, dtype=np.float64) - cube_coords[0]) / step
    idx = np.rint(pos).astype(np.int64)
    if np.abs(pos - idx).max(initial=0.0) > 0.01:
        file_step = float(np.median(np.diff(file_coords))) if len(file_coords) > 1 else float("nan")
        raise GridMismatch(
            f"{what}: its {axis} coordinates ({file_coords[0]:.2f}…, step {file_step:g}) are not on the cube's {axis} "
            f"grid ({cube_coords[0]:.2f}…, step {step:g}); resample one of them onto the other first.")
    return np.where((idx >= 0) & (idx < len(cube_coords)), idx, -1)


def _on_cube_grid(values: xr.DataArray, cube: xr.DataArray, what: str, crs: Optional[str]) -> np.ndarray:
    """``values`` ``(t, y, x)`` on the cube's pixel grid, keeping the file's own time axis (NaN where not covered).

    Raises:
        GridMismatch: other CRS, pixel centres off the cube grid, or no pixel in common.
    """
    if not _same_crs(crs, cube.attrs.get("crs")):
        raise GridMismatch(f"{what}: CRS {crs!r:.80} differs from the cube's {cube.attrs.get('crs')!r:.80}.")
    iy = _axis_index(values["y"].values, cube["y"].values, "y", what)
    ix = _axis_index(values["x"].values, cube["x"].values, "x", what)
    if (iy < 0).all() or (ix < 0).all():
        raise GridMismatch(f"{what}: no pixel in common with the cube (file y {values['y'].values.min():.1f}…"
                           f"{values['y'].values.max():.1f}, x {values['x'].values.min():.1f}…"
                           f"{values['x'].values.max():.1f}; cube y {cube['y'].values.min():.1f}…"
                           f"{cube['y'].values.max():.1f}, x {cube['x'].values.min():.1f}…{cube['x'].values.max():.1f}).")
    data = values.transpose("t", "y", "x").values.astype(np.float64)
    out = np.full((data.shape[0], cube.sizes["y"], cube.sizes["x"]), np.nan)
    ky, kx = np.flatnonzero(iy >= 0), np.flatnonzero(ix >= 0)
    out[:, iy[ky][:, None], ix[kx][None, :]] = data[:, ky][:, :, kx]
    return out


def align_to_cube(values: xr.DataArray, cube: xr.DataArray, what: str, crs: Optional[str] = None,
                  interp_days: float = 0.0) -> tuple[np.ndarray, np.ndarray]:
    """Put a file's ``(t, y, x)`` values on the cube's ``(t, y, x)`` grid.

    Args:
        values: the file's values with ``t``, ``y``, ``x`` coordinates.
        cube: the model cube (its ``crs`` attribute is compared with ``crs``).
        what: name of the file, for messages.
        crs: the file's CRS.
        interp_days: 0: use only the file's dates that equal a cube date (calendar day). > 0: interpolate the file
            linearly in time onto each cube date that lies between two file dates at most this many days apart.

    Returns:
        ``(t, y, x)`` array on the cube (NaN where not covered) and the ``(t,)`` bool mask of covered cube dates.

    Raises:
        GridMismatch: other CRS, pixel centres off the cube grid, or no pixel in common.
        NoMatchingDates: no cube date covered.
    """
    gridded = _on_cube_grid(values, cube, what, crs)
    return _to_cube_dates(gridded, values["t"].values, cube["t"].values, what, interp_days)


def seen_in_periods(raw: xr.DataArray, cube: xr.DataArray, what: str, crs: Optional[str] = None) -> np.ndarray:
    """``(t, y, x)`` bool: the file holds a finite raw value inside each cube step's period ``[t_k, t_k+1)``.

    For a per-acquisition cube that is the same date; for composites, any acquisition of the composite.
    """
    gridded = np.isfinite(_on_cube_grid(raw, cube, what, crs))
    file_d = raw["t"].values.astype("datetime64[D]").astype(np.int64)
    cube_d = cube["t"].values.astype("datetime64[D]").astype(np.int64)
    step = int(np.median(np.diff(cube_d))) if len(cube_d) > 1 else 1
    ends = np.append(cube_d[1:], cube_d[-1] + step)
    out = np.zeros((len(cube_d),) + gridded.shape[1:], dtype=bool)
    for k in range(len(cube_d)):
        inside = (file_d >= cube_d[k]) & (file_d < ends[k])
        out[k] = gridded[inside].any(0)
    return out


def _to_cube_dates(data: np.ndarray, file_t: np.ndarray, cube_t: np.ndarray, what: str,
                   interp_days: float) -> tuple[np.ndarray, np.ndarray]:
    file_d = file_t.astype("datetime64[D]").astype(np.int64).astype(np.float64)
    cube_d = cube_t.astype("datetime64[D]").astype(np.int64).astype(np.float64)
    out = np.full((len(cube_d),) + data.shape[1:], np.nan)
    if interp_days <= 0:
        covered = np.isin(cube_d, file_d)
        for k in np.flatnonzero(covered):
            out[k] = data[np.flatnonzero(file_d == cube_d[k])[0]]
    else:
        right = np.searchsorted(file_d, cube_d)
        left = np.clip(right - 1, 0, len(file_d) - 1)
        right = np.clip(right, 0, len(file_d) - 1)
        exact = file_d[right] == cube_d
        left = np.where(exact, right, left)
        span = file_d[right] - file_d[left]
        covered = (cube_d >= file_d[0]) & (cube_d <= file_d[-1]) & (span <= interp_days)
        w = np.where(span > 0, (cube_d - file_d[left]) / np.where(span > 0, span, 1.0), 0.0)
        for k in np.flatnonzero(covered):
            out[k] = (1 - w[k]) * data[left[k]] + w[k] * data[right[k]]
    if not covered.any():
        raise NoMatchingDates(f"{what}: none of its {len(file_d)} dates ({file_t.min()!s:.10}…"
                              f"{file_t.max()!s:.10}) matches one of the cube's {len(cube_d)} dates "
                              f"({cube_t.min()!s:.10}…{cube_t.max()!s:.10})")
    return out, covered


def cloud_mogpr_method(path: str | Path, cube: xr.DataArray, inputs: tuple[str, ...] = ("RVI", "NDVI"),
                       by_order: bool = False) -> Method:
    """A cloud ``mogpr_s1_s2`` result as a method: its NDVI (and real std) at the cube dates it shares.

    The hidden observations the service had as input (its raw NDVI band) are counted per protocol and reported;
    without raw bands the input is unknown and the note says so.
    """
    res = read_cloud_mogpr(path, inputs=inputs, by_order=by_order)
    crs = file_crs(path)
    names = [str(b) for b in res["bands"].values]
    mean, covered = align_to_cube(res.sel(bands="NDVI"), cube, f"MOGPR file '{path}'", crs)
    std = raw = None
    if "NDVI_RAW" in names:
        raw = seen_in_periods(res.sel(bands="NDVI_RAW"), cube, f"MOGPR file '{path}'", crs)
        if "NDVI_FUSETS_STD" in names:
            std, _ = align_to_cube(fusets_std_to_std(res, "NDVI"), cube, f"MOGPR file '{path}'", crs)

    def run(masked: xr.DataArray, pixels: np.ndarray) -> Prediction:
        hidden = np.isfinite(cube.sel(bands="NDVI").values) & ~np.isfinite(masked.sel(bands="NDVI").values)
        hidden &= covered[:, None, None] & pixels[None]
        if raw is None:
            note = (f"{POSSIBLY_IN_SAMPLE}: input unknown (no raw NDVI band), the service may have seen the hidden "
                    "observations")
        else:
            seen = int((hidden & raw).sum())
            note = (f"{IN_SAMPLE}: the service's input held {seen} of the {int(hidden.sum())} hidden observations"
                    if seen else "held out: none of the hidden observations was in the service's input")
        return Prediction(mean, std, 0, dates=covered, note=note)
    return run


def cropsar_method(path: str | Path, cube: xr.DataArray, interp_days: float = 10.0) -> Method:
    """A CropSAR NDVI file as a method, linearly interpolated in time onto the cube dates inside its range."""
    ndvi = read_cropsar(path)
    mean, covered = align_to_cube(ndvi, cube, f"CropSAR file '{path}'", file_crs(path), interp_days=interp_days)
    note = (f"{IN_SAMPLE}: CropSAR (VITO service) used every S2 observation of its period; interpolated linearly "
            f"from its {int(ndvi.sizes['t'])} dates onto the scored dates")

    def run(masked: xr.DataArray, pixels: np.ndarray) -> Prediction:
        return Prediction(mean, None, 0, dates=covered, note=note)
    return run
