"""Describe local raster sources (netCDF, zarr v2/v3, GeoTIFF) and open them lazily as decoded band datasets.

:func:`describe_source` reads metadata only (variables, dimensions, attributes, coordinates) and returns a
:class:`~local_backend.cubes.lazy_io.SourceInfo`; :func:`open_source` gives an :class:`xarray.Dataset` with one
dask-backed float32 variable per band over ``(t, y, x)`` (``t`` absent for a single GeoTIFF), fill values as NaN
and scale/offset applied, plus the CRS as WKT in ``attrs["crs"]``. Encodings are decoded by hand because xarray's
automatic decoding crashes on some real files (uint8 SCL with an out-of-range ``_FillValue``), and zarr is read with
zarr-python directly because the pinned xarray (openeo's ``xarray<2025.01.2``) cannot open zarr v3 stores with
zarr-python 3.1.
"""

import logging
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import xarray as xr

from local_backend.cubes.lazy_io import CHUNK, NETCDF_LOCK, CubeSource, SourceInfo, lazy_cube
from local_backend.errors import CollectionReadError
from udf.ingest.decode import Encoding, crs_wkt, decode_time

_log = logging.getLogger(__name__)

TIME_NAMES = ("t", "time", "timestamp")
"""Names accepted for the time dimension in files (renamed to ``t``)."""
NETCDF_SUFFIXES = (".nc", ".nc4", ".netcdf")
GEOTIFF_SUFFIXES = (".tif", ".tiff")
_NON_BANDS = ("crs", "spatial_ref")
_DATE_RE = re.compile(r"(\d{4})-?(\d{2})-?(\d{2})")


@dataclass(frozen=True)
class _Variable:
    """Metadata of one stored variable."""

    dims: tuple[str, ...]
    dtype: np.dtype
    shape: tuple[int, ...]
    attrs: dict[str, Any]
    chunks: tuple[int, ...] | None = None
    values: np.ndarray | None = None
    """Values of a 1-D coordinate variable (read eagerly, they are small)."""
    fill: Any = None
    """A fill value stored outside the attributes (zarr v2 ``fill_value``)."""


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


def _netcdf_variables(path: Path) -> tuple[dict[str, _Variable], dict[str, Any]]:
    import netCDF4

    try:
        with NETCDF_LOCK, netCDF4.Dataset(path) as nc:
            found = {}
            for name, var in nc.variables.items():
                var.set_auto_maskandscale(False)
                chunking = var.chunking()
                coordinate = var.ndim == 1 and var.dimensions[0] == name
                found[name] = _Variable(
                    dims=tuple(var.dimensions), dtype=np.dtype(var.dtype) if var.dtype is not str else np.dtype("O"),
                    shape=tuple(var.shape), attrs={k: var.getncattr(k) for k in var.ncattrs()},
                    chunks=tuple(chunking) if isinstance(chunking, list) else None,
                    values=np.asarray(var[:]) if coordinate else None)
            return found, {k: nc.getncattr(k) for k in nc.ncattrs()}
    except OSError as exc:
        raise CollectionReadError(f"Cannot open '{path}' as netCDF: {exc}") from exc


def _zarr_variables(path: Path) -> tuple[dict[str, _Variable], dict[str, Any]]:
    import zarr

    try:
        group = zarr.open_group(str(path), mode="r")
        version = group.metadata.zarr_format
        found = {}
        for name, arr in group.arrays():
            attrs = dict(arr.attrs)
            named: Any = attrs.pop("_ARRAY_DIMENSIONS", None) or getattr(arr.metadata, "dimension_names", None)
            dims = tuple(named) if isinstance(named, (list, tuple)) else ()
            if len(dims) != arr.ndim or None in dims:
                _log.debug("zarr array %s/%s has no dimension names: skipped", path, name)
                continue
            coordinate = arr.ndim == 1 and dims[0] == name
            found[name] = _Variable(dims=dims, dtype=np.dtype(arr.dtype), shape=tuple(arr.shape), attrs=attrs,
                                    chunks=tuple(arr.chunks), values=np.asarray(arr[:]) if coordinate else None,
                                    fill=arr.fill_value if version == 2 else None)
        return found, dict(group.attrs)
    except Exception as exc:  # noqa: BLE001 - zarr raises many types for a store it cannot read; all are reported
        raise CollectionReadError(f"Cannot open '{path}' as a zarr store: {type(exc).__name__}: {exc}") from exc


def _time_labels(var: _Variable, name: str) -> np.ndarray:
    return decode_time(var.values if var.values is not None else np.array([]), var.attrs, name)


def _aligned(native: int | None) -> int:
    """A dask chunk edge that is a whole number of storage chunks, about :data:`CHUNK` pixels."""
    if not native or native >= CHUNK:
        return int(native or CHUNK)
    return int(native * max(1, round(CHUNK / native)))


def _cf_info(path: Path, kind: str, variables: dict[str, _Variable], attrs: dict[str, Any]) -> SourceInfo:
    """Bands, coordinates and encodings of a netCDF file or zarr store."""
    sizes: dict[str, int] = {}
    for var in variables.values():
        sizes.update(zip(var.dims, var.shape))
    tdim = next((n for n in TIME_NAMES if n in sizes), None)
    if "y" not in sizes or "x" not in sizes:
        raise CollectionReadError(f"'{path}' has dims {sizes}; expected y and x (and optionally t/time).")
    wanted = {d for d in (tdim, "y", "x") if d}
    bands = [name for name, v in variables.items()
             if name not in _NON_BANDS and name not in v.dims and set(v.dims) == wanted and v.dtype.kind in "biuf"]
    if not bands:
        raise CollectionReadError(f"'{path}' has no numeric variable over {sorted(wanted)}: {list(variables)}.")
    coords: dict[str, np.ndarray] = {}
    for dim in ("y", "x"):
        values = variables[dim].values if dim in variables else None
        coords[dim] = (values if values is not None else np.arange(sizes[dim])).astype(np.float64)
    t_order = None
    shape: tuple[int, ...] = (sizes["y"], sizes["x"])
    if tdim:
        times = _time_labels(variables[tdim], tdim) if tdim in variables else np.arange(sizes[tdim]).astype("M8[ns]")
        order = np.argsort(times, kind="stable")
        t_order = None if np.array_equal(order, np.arange(order.size)) else tuple(int(i) for i in order)
        coords["t"] = times[order]
        shape = (sizes[tdim], *shape)
    rename = {tdim: "t"} if tdim else {}
    first = variables[bands[0]]
    native = dict(zip(first.dims, first.chunks)) if first.chunks else {}
    source = CubeSource(
        kind=kind, files=(str(path),), variables=tuple(bands),
        axes=tuple(tuple(rename.get(d, d) for d in variables[b].dims) for b in bands),
        encodings=tuple(Encoding.from_cf(variables[b].attrs, variables[b].fill) for b in bands),
        shape=shape, t_order=t_order)
    crs = crs_wkt({n: v.attrs for n, v in variables.items()}, attrs)
    return SourceInfo(source=source, bands=tuple(bands), coords=coords, crs=crs,
                      chunks=(_aligned(native.get("y")), _aligned(native.get("x"))))


def tiff_date(path: Path) -> np.datetime64:
    """The acquisition date in a GeoTIFF name (``YYYY-MM-DD`` or ``YYYYMMDD``)."""
    match = _DATE_RE.search(path.stem)
    if match is None:
        raise CollectionReadError(f"No date (YYYY-MM-DD or YYYYMMDD) in the GeoTIFF name '{path.name}'.")
    return np.datetime64("-".join(match.groups()), "ns")


def _tiff_layout(path: Path) -> dict[str, Any]:
    import rasterio

    try:
        with rasterio.open(path) as src:
            if src.transform.b or src.transform.d:
                raise CollectionReadError(f"'{path}' has a rotated grid ({src.transform}); only north-up grids.")
            names = tuple(src.descriptions)
            if not all(names) or len(set(names)) != len(names):
                names = tuple(f"B{i + 1}" for i in range(src.count))
            return {"shape": (src.height, src.width), "transform": tuple(src.transform)[:6], "names": names,
                    "crs": src.crs.to_wkt() if src.crs else None, "block": src.block_shapes[0],
                    "encodings": tuple(Encoding.from_geotiff(src.nodata, src.scales[i], src.offsets[i])
                                        for i in range(src.count))}
    except rasterio.errors.RasterioIOError as exc:
        raise CollectionReadError(f"Cannot open '{path}' as GeoTIFF: {exc}") from exc


def _geotiff_info(path: Path) -> SourceInfo:
    """One GeoTIFF (no time dimension) or a folder of dated GeoTIFFs with the same grid (stacked over ``t``)."""
    files = [path] if path.is_file() else sorted(p for p in path.iterdir() if p.suffix.lower() in GEOTIFF_SUFFIXES)
    dates = [] if path.is_file() else [tiff_date(p) for p in files]
    order = np.argsort(np.array(dates, dtype="M8[ns]"), kind="stable") if dates else np.arange(1)
    files = [files[i] for i in order]
    layouts = [_tiff_layout(p) for p in files]
    first = layouts[0]
    for p, layout in zip(files, layouts):
        for key in ("crs", "shape", "transform", "names"):
            if layout[key] != first[key]:
                raise CollectionReadError(f"GeoTIFFs in '{path}' differ in {key}: '{files[0].name}' has "
                                          f"{first[key]}, '{p.name}' has {layout[key]}.")
    a, _, c, _, e, f = first["transform"]
    rows, cols = first["shape"]
    coords = {"y": f + (np.arange(rows) + 0.5) * e, "x": c + (np.arange(cols) + 0.5) * a}
    shape: tuple[int, ...] = (rows, cols)
    if dates:
        coords["t"] = np.array(dates, dtype="M8[ns]")[order]
        shape = (len(files), *shape)
    axes = ("t", "y", "x") if dates else ("y", "x")
    source = CubeSource(kind="geotiff", files=tuple(str(p) for p in files),
                        variables=tuple(str(i + 1) for i in range(len(first["names"]))),
                        axes=(axes,) * len(first["names"]), encodings=first["encodings"], shape=shape)
    block_y, block_x = first["block"]
    return SourceInfo(source=source, bands=first["names"], coords=coords, crs=first["crs"],
                      chunks=(_aligned(block_y), _aligned(block_x)))


def describe_source(path: Path) -> SourceInfo:
    """Metadata of any supported source (dispatch on :func:`source_kind`); no pixel is read."""
    kind = source_kind(path)
    if kind == "netcdf":
        return _cf_info(path, "netcdf", *_netcdf_variables(path))
    if kind == "zarr":
        return _cf_info(path, "zarr", *_zarr_variables(path))
    if kind in ("geotiff", "geotiff_series"):
        return _geotiff_info(path)
    raise CollectionReadError(f"'{path}' is not a netCDF file, zarr store, GeoTIFF or folder of GeoTIFFs.")


def open_source(path: Path) -> xr.Dataset:
    """Open any supported source lazily as a dataset of decoded float32 bands (nothing read until computed)."""
    info = describe_source(path)
    ds = lazy_cube(info).to_dataset(dim="bands")
    ds.attrs["crs"] = info.crs
    return ds
