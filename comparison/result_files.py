"""Readers of peer results: cloud MOGPR (openEO ``mogpr_s1_s2`` service) netCDF and VITO CropSAR uint8 NDVI.

Cloud MOGPR layout (FuseTS service on the openEO Geotrellis backend): the fused bands keep the input names in merge
order (e.g. ``RVI``, ``NDVI``); the backend names the bands it has no metadata for ``unkown_band_<i>`` (sic), which
for ``K`` inputs are the ``K`` "std" bands and then the ``K`` raw input bands. The time axis is a 5-day grid from the
first date unioned with the raw dates. FuseTS' "std" is ``var · σ`` (normalised predictive variance times the data
std); :func:`fusets_std_to_std` turns it into a real standard deviation using the raw band.

CropSAR: NDVI stored as ``int8`` with ``_Unsigned: true`` (i.e. uint8 DN), ``NDVI = DN · 0.004 − 0.08``, 255 outside
the field. On the two FuseTS BIDS fields a least-squares fit of DN against the field's own S2 NDVI (CropSAR linearly
interpolated to the S2 dates) gives slopes 0.00397 / 0.00392 (RMSE 0.018 / 0.019 with 0.004 versus 0.038 / 0.034 with
0.00432); the FOSS4G_demo copy of the same workshop field fits 0.00433 (RMSE 0.014 versus 0.038). So 0.004 is the
default and :func:`fit_cropsar_scale` checks a file against S2.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Sequence, Union

import numpy as np
import xarray as xr

from comparison.errors import BandNotFound, NoMatchingDates, UnknownResultLayout
from udf.ingest.cube_io import open_netcdf

_log = logging.getLogger(__name__)

__all__ = ["read_cloud_mogpr", "fusets_std_to_std", "match_dates", "score_at_matching_dates", "read_cropsar",
           "fit_cropsar_scale", "CROPSAR_SCALE", "CROPSAR_OFFSET", "CROPSAR_OUTSIDE", "FIELD_DATA"]

PathLike = Union[str, Path]
CROPSAR_SCALE, CROPSAR_OFFSET, CROPSAR_OUTSIDE = 0.004, -0.08, 255
FIELD_DATA = Path(__file__).resolve().parent / "data" / "fusets_field_2019"
"""The FuseTS workshop field files shipped with the package (see ATTRIBUTION.md there)."""


def _open(path_or_ds: Union[PathLike, xr.Dataset]) -> xr.Dataset:
    ds = path_or_ds if isinstance(path_or_ds, xr.Dataset) else open_netcdf(path_or_ds, "Result file")
    if "time" in ds.dims and "t" not in ds.dims:
        ds = ds.rename(time="t")
    return ds


def _band_vars(ds: xr.Dataset) -> list[str]:
    """Data variables that are bands (have the ``t`` dimension), in file order."""
    return [str(v) for v in ds.data_vars if "t" in ds[v].dims]


def _cloud_names(found: list[str], inputs: Sequence[str]) -> list[str]:
    """Band names for the variables ``found``: ``inputs``, then ``<b>_FUSETS_STD``, then ``<b>_RAW``."""
    k = len(inputs)
    full = list(inputs) + [f"{b}_FUSETS_STD" for b in inputs] + [f"{b}_RAW" for b in inputs]
    accepted = [{full[i]} | ({f"unkown_band_{i}", f"unknown_band_{i}"} if i >= k else set()) for i in range(3 * k)]
    layout_ok = len(found) in (k, 2 * k, 3 * k) and all(name in accepted[i] for i, name in enumerate(found))
    if not layout_ok:
        raise UnknownResultLayout(
            f"Cloud MOGPR file bands {found} do not fit the mogpr_s1_s2 layout for inputs {list(inputs)}: expected "
            f"{full[:k]} then optionally {k} std bands and {k} raw bands named as such or 'unkown_band_{k}'…"
            f"'unkown_band_{3 * k - 1}'")
    return full[: len(found)]


def read_cloud_mogpr(path: Union[PathLike, xr.Dataset], inputs: Sequence[str] = ("RVI", "NDVI"),
                     by_order: bool = False) -> xr.DataArray:
    """Read a cloud MOGPR result into a cube ``(t, bands, y, x)`` with the band names restored by order.

    Args:
        path: netCDF file (or an open Dataset) as the openEO service writes it.
        inputs: the input bands in merge order (``mogpr_s1_s2``: S1 index then S2 index).
        by_order: ignore the variable names (all lost, e.g. ``band_1``…) and name bands by position alone; the band
            count must still be ``K``, ``2K`` or ``3K``. Logs a warning.

    Returns:
        float DataArray with bands ``inputs`` (fused means), then ``<b>_FUSETS_STD`` (FuseTS' var·σ, see
        :func:`fusets_std_to_std`) and ``<b>_RAW`` where present; ``t`` as datetime64.

    Raises:
        UnknownResultLayout: the band variables fit no known layout (the message lists them).
    """
    ds = _open(path)
    found = _band_vars(ds)
    if by_order and len(found) in (len(inputs), 2 * len(inputs), 3 * len(inputs)):
        names = _cloud_names(list(inputs) + [f"unkown_band_{i}" for i in range(len(inputs), len(found))], inputs)
        _log.warning("cloud MOGPR: band names %s ignored; named by order as %s", found, names)
    else:
        names = _cloud_names(found, inputs)
    _log.info("cloud MOGPR %s: bands %s read as %s", path if not isinstance(path, xr.Dataset) else "<dataset>",
              found, names)
    cube = xr.concat([ds[v].astype(np.float64) for v in found], dim="bands").assign_coords(bands=names)
    return cube.transpose("t", "bands", "y", "x")


def fusets_std_to_std(cube: xr.DataArray, band: str) -> xr.DataArray:
    """Real predictive std of ``band`` from FuseTS' ``var·σ``: ``sqrt(var·σ · σ)``, σ = raw band std per pixel."""
    names = [str(b) for b in cube["bands"].values]
    for need in (f"{band}_FUSETS_STD", f"{band}_RAW"):
        if need not in names:
            raise BandNotFound(f"Band {need!r} needed for the std of {band!r} not in bands {names}")
    sigma = cube.sel(bands=f"{band}_RAW").std("t", skipna=True)
    std: xr.DataArray = (cube.sel(bands=f"{band}_FUSETS_STD") * sigma) ** 0.5
    return std.drop_vars("bands", errors="ignore")


def _dates(t: xr.DataArray) -> np.ndarray:
    return t.values.astype("datetime64[D]")


def match_dates(a: xr.DataArray, b: xr.DataArray) -> tuple[xr.DataArray, xr.DataArray]:
    """Both series restricted to the calendar dates they share (``t`` compared at day resolution).

    Raises:
        NoMatchingDates: no common date; the message gives both ranges.
    """
    da, db = _dates(a["t"]), _dates(b["t"])
    common = np.intersect1d(da, db)
    if len(common) == 0:
        raise NoMatchingDates(f"No common date between {da.min()}…{da.max()} ({len(da)} dates) and "
                              f"{db.min()}…{db.max()} ({len(db)} dates)")
    ia = np.array([np.flatnonzero(da == d)[0] for d in common])
    ib = np.array([np.flatnonzero(db == d)[0] for d in common])
    a2 = a.isel(t=ia).assign_coords(t=common.astype("datetime64[ns]"))
    b2 = b.isel(t=ib).assign_coords(t=common.astype("datetime64[ns]"))
    return a2, b2


def score_at_matching_dates(pred: xr.DataArray, truth: xr.DataArray) -> dict[str, float]:
    """RMSE, MAE, bias (pred − truth), R² and n over the dates both share and values both hold (finite).

    Args:
        pred: predictions with a ``t`` dimension (any other dims must align with ``truth``).
        truth: observations, NaN where missing.
    """
    p, t = match_dates(pred, truth)
    p, t = xr.align(p, t, join="exact")
    pv, tv = p.values.ravel(), t.transpose(*p.dims).values.ravel()
    ok = np.isfinite(pv) & np.isfinite(tv)
    if not ok.any():
        return {"n": 0, "n_dates": int(p.sizes["t"]), "rmse": np.nan, "mae": np.nan, "bias": np.nan, "r2": np.nan}
    err = pv[ok] - tv[ok]
    ss_tot = float(((tv[ok] - tv[ok].mean()) ** 2).sum())
    return {"n": int(ok.sum()), "n_dates": int(p.sizes["t"]), "rmse": float(np.sqrt(np.mean(err**2))),
            "mae": float(np.mean(np.abs(err))), "bias": float(np.mean(err)),
            "r2": float(1 - (err**2).sum() / ss_tot) if ss_tot > 0 else np.nan}


def read_cropsar(path: PathLike, scale: float = CROPSAR_SCALE, offset: float = CROPSAR_OFFSET,
                 variable: str = "NDVI") -> xr.DataArray:
    """CropSAR NDVI ``(t, y, x)`` as float64: ``DN · scale + offset``, NaN where DN is 255 (outside the field).

    Raises:
        BandNotFound: ``variable`` is not in the file (the message lists its variables).
    """
    ds = _open(path)
    if variable not in ds.data_vars:
        raise BandNotFound(f"No variable {variable!r} in CropSAR file '{path}'; it has {list(ds.data_vars)}")
    dn = ds[variable]
    if dn.dtype != np.uint8:  # xarray applies _Unsigned itself; an undecoded int8 needs the two's-complement fix
        dn = dn.astype(np.int16) % 256
    out = xr.where(dn == CROPSAR_OUTSIDE, np.nan, dn.astype(np.float64) * scale + offset)
    return out.transpose("t", "y", "x").rename(variable)


def fit_cropsar_scale(cropsar_path: PathLike, s2_ndvi: xr.DataArray) -> tuple[float, float]:
    """Least-squares ``(slope, intercept)`` of S2 NDVI on CropSAR DN, CropSAR interpolated linearly to S2 dates."""
    dn = read_cropsar(cropsar_path, scale=1.0, offset=0.0)
    s2 = s2_ndvi.interp(x=dn["x"], y=dn["y"], method="nearest")
    a = dn.interp(t=s2["t"].values).transpose("t", "y", "x").values.ravel()
    b = s2.transpose("t", "y", "x").values.ravel()
    ok = np.isfinite(a) & np.isfinite(b)
    slope, intercept = np.linalg.lstsq(np.c_[a[ok], np.ones(ok.sum())], b[ok], rcond=None)[0]
    return float(slope), float(intercept)
