"""Window readers: a collection opens as a dask array whose chunks read only their own window from disk.

A :class:`CubeSource` says where the bands of a collection live (netCDF variables, zarr arrays of a v2 or v3 store,
GeoTIFF bands, one GeoTIFF per time step) and how they are encoded; it holds no pixels and no coordinates, so a
dask graph built on it ships to a worker as a few hundred bytes. :class:`CubeReader` reads any ``(t, bands, y, x)``
window of it as decoded float32 (by :class:`udf.ingest.decode.Encoding`, the project's one decoder: ``_Unsigned``,
``_FillValue``/``missing_value`` and the other no-data rules → NaN, ``scale_factor``, ``add_offset``);
:func:`lazy_cube` wraps it in a dask-backed :class:`xarray.DataArray`. dask fuses a slice of such an array
into the reader call, so ``cube.isel(y=..., x=...)`` reads that window and nothing else.

Locking: the HDF5 library under netCDF4 is not thread-safe, so every netCDF call of this process goes through
:data:`NETCDF_LOCK` for the duration of that one call (open, read a window, close), never across a computation.
Each dask worker is its own process with its own lock. zarr and GeoTIFF reads open their own handles and need none.
"""

import logging
import os
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import xarray as xr

from local_backend.tiles.timing import stage
from udf.ingest.decode import Encoding

_log = logging.getLogger(__name__)

__all__ = ["NETCDF_LOCK", "CubeReader", "CubeSource", "SourceInfo", "apply_index", "index_ranges",
           "lazy_cube", "read_window"]

NETCDF_LOCK = threading.RLock()
"""Serialises the netCDF/HDF5 calls of this process (held for one open/read/write, never across a computation)."""

CHUNK = 256
"""Default spatial chunk edge (pixels) of a lazily opened collection."""


@dataclass(frozen=True)
class CubeSource:
    """Where the bands of one collection are stored (no pixels, no coordinates: cheap to ship to a worker)."""

    kind: str
    """``netcdf``, ``zarr`` or ``geotiff``."""
    files: tuple[str, ...]
    """The netCDF file or zarr store, or the GeoTIFF(s): one file, or one per time step in time order."""
    variables: tuple[str, ...]
    """Per band: the netCDF/zarr variable name, or the 1-based GeoTIFF band index."""
    axes: tuple[tuple[str, ...], ...]
    """Per band: its dimensions in stored order, named ``t``/``y``/``x``."""
    encodings: tuple[Encoding, ...]
    """Per band: how stored values decode."""
    shape: tuple[int, ...]
    """``(t, y, x)``, or ``(y, x)`` without time."""
    t_order: tuple[int, ...] | None = None
    """Stored positions of the time steps in ascending time (None: stored in ascending order)."""


@dataclass(frozen=True)
class SourceInfo:
    """A :class:`CubeSource` with what describes it: band names, coordinates, CRS."""

    source: CubeSource
    bands: tuple[str, ...]
    """Band names, in the order of ``source.variables``."""
    coords: dict[str, np.ndarray]
    """``t`` (datetime64[ns], ascending, when present), ``y``, ``x`` (float64)."""
    crs: str | None
    """CRS as WKT."""
    chunks: tuple[int, int] = (CHUNK, CHUNK)
    """Spatial dask chunk (y, x) aligned with the storage chunks."""


def index_ranges(key: Any, shape: tuple[int, ...]) -> tuple[list[slice], list[Any]]:
    """Contiguous ranges covering an index ``key``, and the index to apply inside them to get ``key``."""
    key = key if isinstance(key, tuple) else (key,)
    if any(k is Ellipsis for k in key):
        at = next(i for i, k in enumerate(key) if k is Ellipsis)
        key = key[:at] + (slice(None),) * (len(shape) - len(key) + 1) + key[at + 1:]
    key = key + (slice(None),) * (len(shape) - len(key))
    ranges: list[slice] = []
    inner: list[Any] = []
    for k, n in zip(key, shape):
        step = k.indices(n)[2] if isinstance(k, slice) else 0
        picked = np.arange(*k.indices(n)) if isinstance(k, slice) else np.asarray(k) % max(n, 1)
        if picked.size == 0:
            ranges.append(slice(0, 0))
            inner.append(slice(None))
            continue
        lo = int(picked.min())
        ranges.append(slice(lo, int(picked.max()) + 1))
        if step > 0:
            inner.append(slice(None, None, step))
        else:
            inner.append(picked - lo if np.ndim(picked) else int(picked) - lo)
    return ranges, inner


def apply_index(block: np.ndarray, inner: list[Any]) -> np.ndarray:
    """Index ``block`` with the per-axis ``inner`` index (slices and arrays first, then integers from the last axis)."""
    for axis, index in enumerate(inner):
        if isinstance(index, slice):
            if index.step not in (None, 1):
                block = block[(slice(None),) * axis + (index,)]
        elif np.ndim(index):
            block = np.take(block, index, axis=axis)
    for axis in reversed(range(len(inner))):
        if not isinstance(inner[axis], slice) and np.ndim(inner[axis]) == 0:
            block = np.take(block, inner[axis], axis=axis)
    return block


def _read_netcdf(path: str, variable: str, key: tuple[slice, ...]) -> np.ndarray:
    import netCDF4

    with NETCDF_LOCK, netCDF4.Dataset(path) as nc:
        var = nc.variables[variable]
        var.set_auto_maskandscale(False)
        return np.asarray(var[key])


def _read_zarr(path: str, variable: str, key: tuple[slice, ...]) -> np.ndarray:
    import zarr

    return np.asarray(zarr.open_array(store=os.path.join(path, variable), mode="r")[key])


def _read_geotiff(path: str, band: int, key: tuple[slice, ...]) -> np.ndarray:
    import rasterio
    from rasterio.windows import Window

    rows, cols = key
    window = Window(cols.start, rows.start, cols.stop - cols.start, rows.stop - rows.start)
    with rasterio.open(path) as src:
        return np.asarray(src.read(band, window=window))


def read_window(source: CubeSource, band: int, ranges: dict[str, slice]) -> np.ndarray:
    """Stored values of one band over contiguous ``ranges`` (``t``, ``y``, ``x``), in ``(t, y, x)`` order."""
    axes = source.axes[band]
    if source.kind == "geotiff":
        spatial = (ranges["y"], ranges["x"])
        if "t" not in ranges:
            return _read_geotiff(source.files[0], int(source.variables[band]), spatial)
        steps = range(ranges["t"].start, ranges["t"].stop)
        empty = np.empty((0, ranges["y"].stop - ranges["y"].start, ranges["x"].stop - ranges["x"].start))
        return np.stack([_read_geotiff(source.files[i], int(source.variables[band]), spatial) for i in steps]) \
            if steps else empty
    reader = _read_netcdf if source.kind == "netcdf" else _read_zarr
    wanted = dict(ranges)
    take = None
    if "t" in ranges and source.t_order is not None:
        stored = np.asarray(source.t_order)[ranges["t"]]
        if stored.size:
            wanted["t"] = slice(int(stored.min()), int(stored.max()) + 1)
            take = stored - stored.min()
    raw = reader(source.files[0], source.variables[band], tuple(wanted[a] for a in axes))
    canonical = [a for a in ("t", "y", "x") if a in axes]
    raw = raw.transpose([axes.index(a) for a in canonical])
    return raw[take] if take is not None else raw


class CubeReader:
    """Array-like ``(t, bands, y, x)`` (or ``(bands, y, x)``) float32 view of selected bands of a source."""

    def __init__(self, source: CubeSource, bands: tuple[int, ...]) -> None:
        self.source, self.bands = source, tuple(bands)
        spatial = source.shape[-2:]
        self.shape = (*source.shape[:-2], len(self.bands), *spatial)
        self.dtype = np.dtype(np.float32)
        self.ndim = len(self.shape)

    def __getitem__(self, key: Any) -> np.ndarray:
        ranges, inner = index_ranges(key, self.shape)
        names = ("t", "bands", "y", "x")[-self.ndim:]
        by_name = dict(zip(names, ranges))
        band_range = by_name.pop("bands")
        block = np.empty([r.stop - r.start for r in ranges], dtype=np.float32)
        band_axis = names.index("bands")
        if block.size:
            for k, position in enumerate(range(band_range.start, band_range.stop)):
                band = self.bands[position]
                with stage("read"):
                    raw = read_window(self.source, band, by_name)
                with stage("decode"):
                    values = self.source.encodings[band].decode(raw)
                block[(slice(None),) * band_axis + (k,)] = values
        return apply_index(block, inner)


def _mtimes(source: CubeSource) -> tuple[int, ...]:
    return tuple(Path(f).stat().st_mtime_ns for f in source.files)


def lazy_cube(info: SourceInfo, bands: list[str] | None = None) -> xr.DataArray:
    """The collection as a dask-backed ``(t, bands, y, x)`` float32 cube; nothing is read until computed.

    Args:
        info: the source and its description.
        bands: band names to keep, in this order (default: all).

    Returns:
        A cube with ``attrs["crs"]`` (WKT or None), chunked ``t``: whole, ``bands``: 1, ``y``/``x``: ``info.chunks``.
    """
    import dask.array as da
    from dask.base import tokenize

    wanted = list(bands) if bands else list(info.bands)
    index = tuple(info.bands.index(b) for b in wanted)
    reader = CubeReader(info.source, index)
    has_t = "t" in info.coords
    chunks = ((reader.shape[0],) if has_t else ()) + (1, *info.chunks)
    name = f"load-{tokenize(info.source, index, _mtimes(info.source))}"
    array = da.from_array(reader, chunks=chunks, name=name, asarray=False,
                          meta=np.empty((0,) * reader.ndim, dtype=np.float32))
    dims = ("t", "bands", "y", "x") if has_t else ("bands", "y", "x")
    coords: dict[str, Any] = {d: info.coords[d] for d in ("t", "y", "x") if d in info.coords}
    coords["bands"] = wanted
    return xr.DataArray(array, dims=dims, coords=coords, attrs={"crs": info.crs})
