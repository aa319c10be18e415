"""Write a lazy cube to netCDF or GeoTIFF one spatial block at a time.

Memory is bounded by one block (all time steps and bands of :data:`BLOCK` x :data:`BLOCK` pixels), never by the
area: each block is computed (reading only what it needs, e.g. from the tile files of a UDF step) and written
before the next. netCDF calls hold :data:`~local_backend.cubes.lazy_io.NETCDF_LOCK` for one call at a time (define, write a
block, close), so other threads of the server keep reading and writing other files meanwhile.
"""

import logging
from pathlib import Path
from typing import Any, Iterator

import numpy as np
import xarray as xr

from local_backend.cubes.lazy_io import NETCDF_LOCK

_log = logging.getLogger(__name__)

__all__ = ["BLOCK", "TIME_UNITS", "blocks", "stream_gtiff", "stream_netcdf"]

BLOCK = 256
"""Edge (pixels) of the spatial blocks written one at a time; also the netCDF/GeoTIFF chunk edge."""
TIME_UNITS = "days since 1990-01-01"
"""Encoding of ``t`` in netCDF output."""


def blocks(ny: int, nx: int, edge: int = BLOCK) -> Iterator[tuple[slice, slice]]:
    """Regular spatial blocks ``(y, x)`` of at most ``edge`` pixels, row by row."""
    for y0 in range(0, ny, edge):
        for x0 in range(0, nx, edge):
            yield slice(y0, min(y0 + edge, ny)), slice(x0, min(x0 + edge, nx))


def _days(values: np.ndarray) -> np.ndarray:
    since = np.datetime64(TIME_UNITS.split("since ")[1], "ns")
    return (values.astype("datetime64[ns]") - since) / np.timedelta64(1, "D")


def _define(nc: Any, ds: xr.Dataset, streamed: list[str]) -> None:
    """Dimensions, coordinates and small variables written now; ``streamed`` variables created empty."""
    for dim, size in ds.sizes.items():
        nc.createDimension(str(dim), size)
    for name, var in ds.variables.items():
        if name in streamed:
            chunks = tuple(min(32 if d == "t" else BLOCK, ds.sizes[d]) for d in var.dims)
            out = nc.createVariable(str(name), "f4", var.dims, zlib=True, complevel=4, chunksizes=chunks,
                                    fill_value=np.float32(np.nan))
        elif name == "t":
            out = nc.createVariable("t", "f8", ("t",))
            out[:] = _days(np.asarray(var.values))
            out.setncatts({"units": TIME_UNITS, "calendar": "standard"})
        else:
            values = np.asarray(var.values)
            out = nc.createVariable(str(name), values.dtype if values.dtype.kind != "U" else str, var.dims)
            if values.dtype.kind != "S":
                out[...] = values
        out.setncatts({str(k): v for k, v in var.attrs.items() if k not in ("_FillValue",)})
    nc.setncatts({str(k): v for k, v in ds.attrs.items()})


def stream_netcdf(ds: xr.Dataset, path: Path) -> Path:
    """Write ``ds`` (lazy bands over ``(t, y, x)`` plus small variables) to a netCDF-4 file block by block.

    Every variable with both ``y`` and ``x`` is written in blocks (float32, zlib, NaN fill, chunks of
    ``(<= 32, BLOCK, BLOCK)``); the others (coordinates, grid mapping) at once.
    """
    import netCDF4

    streamed = [str(v) for v in ds.data_vars if {"y", "x"} <= set(ds[v].dims)]
    with NETCDF_LOCK:
        nc = netCDF4.Dataset(path, "w", format="NETCDF4")
    try:
        with NETCDF_LOCK:
            _define(nc, ds, streamed)
        for ys, xs in blocks(ds.sizes["y"], ds.sizes["x"]):
            block = ds[streamed].isel(y=ys, x=xs).compute()
            with NETCDF_LOCK:
                for name in streamed:
                    var = block[name]
                    index = tuple(ys if d == "y" else xs if d == "x" else slice(None) for d in var.dims)
                    nc.variables[name][index] = var.values.astype(np.float32)
    finally:
        with NETCDF_LOCK:
            nc.close()
    return path


def stream_gtiff(cube: xr.DataArray, paths: list[Path], crs: str | None) -> list[Path]:
    """Write a ``([t,] bands, y, x)`` cube as one GeoTIFF per time label (``paths`` in ``t`` order), block by block.

    Files are tiled (``BLOCK`` px), deflate-compressed float32 with NaN as no-data and band descriptions.
    """
    import rasterio
    from rasterio.windows import Window

    has_t = "t" in cube.dims
    cube = cube.transpose(*(("t",) if has_t else ()), "bands", "y", "x")
    names = [str(b) for b in cube["bands"].values]
    profile = {"driver": "GTiff", "height": cube.sizes["y"], "width": cube.sizes["x"], "count": len(names),
               "dtype": "float32", "crs": crs, "transform": cube.rio.transform(recalc=True), "nodata": np.nan,
               "tiled": True, "blockxsize": BLOCK, "blockysize": BLOCK, "compress": "deflate"}
    outputs = [rasterio.open(p, "w", **profile) for p in paths]
    try:
        for dst in outputs:
            for i, name in enumerate(names, start=1):
                dst.set_band_description(i, name)
        for ys, xs in blocks(cube.sizes["y"], cube.sizes["x"]):
            values = np.asarray(cube.isel(y=ys, x=xs).values, dtype=np.float32)
            window = Window(xs.start, ys.start, xs.stop - xs.start, ys.stop - ys.start)
            for k, dst in enumerate(outputs):
                dst.write(values[k] if has_t else values, window=window)
    finally:
        for dst in outputs:
            dst.close()
    return paths
