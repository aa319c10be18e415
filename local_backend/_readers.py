"""Open local raster files (netCDF, zarr, GeoTIFF) lazily as decoded band datasets.

Every reader returns an :class:`xarray.Dataset` with one float32 variable per band over ``(t, y, x)`` (``t`` absent
for a single GeoTIFF), dask-backed, with fill values as NaN and scale/offset applied, plus the CRS as WKT in
``attrs["crs"]``. Encodings are decoded by hand (``decode_cf=False``) because xarray's automatic decoding crashes on
some real files (uint8 SCL with an out-of-range ``_FillValue``).
"""

import logging
import re
import threading
from pathlib import Path

import numpy as np
import xarray as xr

from local_backend.errors import CollectionReadError

_log = logging.getLogger(__name__)

TIME_NAMES = ("t", "time", "timestamp")
"""Names accepted for the time dimension in files (renamed to ``t``)."""
NETCDF_SUFFIXES = (".nc", ".nc4", ".netcdf")
GEOTIFF_SUFFIXES = (".tif", ".tiff")
_NON_BANDS = ("crs", "spatial_ref")
_DATE_RE = re.compile(r"(\d{4})-?(\d{2})-?(\d{2})")

IO_LOCK = threading.RLock()
"""Serialises file I/O of the server: the HDF5 library under netCDF4 is not thread-safe, and concurrent requests
read and write netCDF files from several threads (xarray's own locks do not cover writes against reads)."""


def source_kind(path: Path) -> str | None:
    """Classify a path under the data directory: ``netcdf``, ``zarr``, ``geotiff``, ``geotiff_series`` or None."""
    name = path.name.lower()
    if path.is_file() and name.endswith(NETCDF_SUFFIXES):
        return "netcdf"
    if path.is_file() and name.endswith(GEOTIFF_SUFFIXES):
        return "geotiff"
    if path.is_dir():
        if name.endswith(".zarr") or (path / ".zgroup").exists() or (path / "zarr.json").exists():
            return "zarr"
        if any(p.suffix.lower() in GEOTIFF_SUFFIXES for p in path.iterdir()):
            return "geotiff_series"
    return None


def _crs_wkt(ds: xr.Dataset) -> str | None:
    for name in _NON_BANDS:
        if name in ds.variables:
            for key in ("crs_wkt", "spatial_ref"):
                if key in ds[name].attrs:
                    return str(ds[name].attrs[key])
    for key in ("crs", "crs_wkt"):
        value = ds.attrs.get(key)
        if isinstance(value, str) and value:
            from pyproj import CRS

            return str(CRS.from_user_input(value.replace("+init=", "")).to_wkt())
    return None


def _decode_band(var: xr.DataArray) -> xr.DataArray:
    """Apply ``_Unsigned``, ``_FillValue``/``missing_value`` (→ NaN), ``scale_factor``, ``add_offset`` lazily."""
    attrs = var.attrs
    raw = var
    if str(attrs.get("_Unsigned", "")).lower() == "true" and var.dtype.kind == "i":
        unsigned = np.dtype(var.dtype.str.replace("i", "u"))
        raw = var.copy(data=var.data.view(unsigned))
    out = raw.astype(np.float32)
    for key in ("_FillValue", "missing_value"):
        if key in attrs and not np.isnan(np.float64(np.asarray(attrs[key]).ravel()[0])):
            fill = np.asarray(attrs[key]).astype(raw.dtype)
            out = out.where(raw != fill)
    scale, offset = float(attrs.get("scale_factor", 1.0)), float(attrs.get("add_offset", 0.0))
    if scale != 1.0 or offset != 0.0:
        out = out * np.float32(scale) + np.float32(offset)
    keep = {k: v for k, v in attrs.items() if k in ("long_name", "units", "standard_name")}
    return out.assign_attrs(keep)


def _decode_time(ds: xr.Dataset, name: str) -> np.ndarray:
    var = ds[name]
    if np.issubdtype(var.dtype, np.datetime64):
        return np.asarray(var.values).astype("datetime64[ns]")
    decoded = xr.decode_cf(xr.Dataset(coords={name: var.variable.to_base_variable()}))
    return np.asarray(decoded[name].values).astype("datetime64[ns]")


def open_cf(path: Path, engine: str | None = None) -> xr.Dataset:
    """Open a netCDF file or zarr store as a decoded band dataset (see module docstring)."""
    try:
        ds = xr.open_dataset(path, engine=engine, decode_cf=False, decode_times=False, chunks={})
    except (OSError, ValueError) as exc:
        raise CollectionReadError(f"Cannot open '{path}' as {engine or 'netCDF'}: {exc}") from exc
    tdim = next((n for n in TIME_NAMES if n in ds.dims), None)
    if "y" not in ds.dims or "x" not in ds.dims:
        raise CollectionReadError(f"'{path}' has dims {dict(ds.sizes)}; expected y and x (and optionally t/time).")
    wanted = {d for d in (tdim, "y", "x") if d}
    bands = {
        str(k): _decode_band(v.transpose(*[d for d in (tdim, "y", "x") if d]))
        for k, v in ds.data_vars.items()
        if k not in _NON_BANDS and set(v.dims) == wanted and v.dtype.kind in "biuf"
    }
    if not bands:
        raise CollectionReadError(f"'{path}' has no numeric variable over {sorted(wanted)}: {list(ds.data_vars)}.")
    coords: dict[str, np.ndarray] = {"y": ds["y"].values.astype(np.float64), "x": ds["x"].values.astype(np.float64)}
    out = xr.Dataset(bands)
    if tdim:
        coords["t"] = _decode_time(ds, tdim)
        out = out.rename({tdim: "t"}) if tdim != "t" else out
    out = out.drop_vars([c for c in out.coords], errors="ignore").assign_coords(coords)
    if tdim:
        out = out.sortby("t")
    out.attrs["crs"] = _crs_wkt(ds)
    out.set_close(ds.close)  # closing the decoded dataset closes the file (never left to the garbage collector)
    return out


def _open_tiff(path: Path) -> xr.Dataset:
    import rioxarray

    opened = rioxarray.open_rasterio(path, chunks=True, mask_and_scale=False)
    if not isinstance(opened, xr.DataArray):
        raise CollectionReadError(f"'{path}' holds several subdatasets; give one GeoTIFF per band set.")
    arr = opened
    names = arr.attrs.get("long_name")
    if isinstance(names, str):
        names = (names,)
    if not names or len(names) != arr.sizes["band"]:
        names = tuple(f"B{i + 1}" for i in range(arr.sizes["band"]))
    crs = arr.rio.crs.to_wkt() if arr.rio.crs else None
    bands = {}
    for i, name in enumerate(names):
        var = arr.isel(band=i, drop=True)
        attrs = {k: arr.attrs[k] for k in ("_FillValue", "scale_factor", "add_offset") if k in arr.attrs}
        bands[str(name)] = _decode_band(var.drop_vars("spatial_ref", errors="ignore").assign_attrs(attrs))
    out = xr.Dataset(bands)
    out.attrs["crs"] = crs
    out.set_close(arr.close)
    return out


def tiff_date(path: Path) -> np.datetime64:
    """The acquisition date in a GeoTIFF name (``YYYY-MM-DD`` or ``YYYYMMDD``)."""
    match = _DATE_RE.search(path.stem)
    if match is None:
        raise CollectionReadError(f"No date (YYYY-MM-DD or YYYYMMDD) in the GeoTIFF name '{path.name}'.")
    return np.datetime64("-".join(match.groups()), "ns")


def open_geotiff(path: Path) -> xr.Dataset:
    """Open one GeoTIFF (no time dimension) or a folder of dated GeoTIFFs (stacked over ``t``)."""
    if path.is_file():
        return _open_tiff(path)
    files = sorted(p for p in path.iterdir() if p.suffix.lower() in GEOTIFF_SUFFIXES)
    parts = [_open_tiff(p).expand_dims(t=[tiff_date(p)]) for p in files]
    crs = {p.attrs["crs"] for p in parts}
    if len(crs) != 1:
        raise CollectionReadError(f"GeoTIFFs in '{path}' have different CRSs: {sorted(map(str, crs))}.")
    out = xr.concat(parts, dim="t").sortby("t")
    out.attrs["crs"] = crs.pop()

    def close_all() -> None:
        for part in parts:
            part.close()

    out.set_close(close_all)
    return out


def open_source(path: Path) -> xr.Dataset:
    """Open any supported source lazily (dispatch on :func:`source_kind`)."""
    kind = source_kind(path)
    if kind == "netcdf":
        return open_cf(path)
    if kind == "zarr":
        return open_cf(path, engine="zarr")
    if kind in ("geotiff", "geotiff_series"):
        return open_geotiff(path)
    raise CollectionReadError(f"'{path}' is not a netCDF file, zarr store, GeoTIFF or folder of GeoTIFFs.")
