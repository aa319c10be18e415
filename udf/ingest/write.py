"""Write a lazy model cube to chunked netCDF a few spatial blocks at a time.

Handing the whole dask graph to ``to_netcdf`` lets the scheduler read many blocks ahead of the writes (each
Earth Engine block holds every period and band); here at most ``workers`` blocks are computed at once and written
into the file before the next ones are read, so memory is bounded by the block size, not by the area.
"""

import logging
import os
from pathlib import Path
from typing import Callable

import dask.array as da
import netCDF4
import numpy as np
import xarray as xr

from udf.ingest.cube_io import write_cube
from udf.ingest.geotiff import gdal_env
from udf.ingest.lazy import by_blocks

__all__ = ["write_cube_lazily"]

_log = logging.getLogger(__name__)

_CHUNK_CACHE_BYTES = 1 << 20
"""netCDF chunk cache while writing (netCDF-C's default is 64 MiB per variable)."""
_CHUNK_CACHE_SLOTS = 521


def write_cube_lazily(cube: xr.DataArray, path: str | Path, workers: int | None = None,
                      progress: Callable[[int, int], None] | None = None) -> Path:
    """Write a ``(t, bands, y, x)`` cube (dask-backed or in memory) as openEO-layout netCDF chunked like its blocks.

    Args:
        cube: the cube, e.g. from :func:`udf.ingest.sources.make_cube`.
        path: output netCDF.
        workers: threads computing blocks at the same time (default: ``min(4, cores)``).
        progress: called with (blocks done, blocks in all).
    """
    path = Path(path)
    if not isinstance(cube.data, da.Array):
        return write_cube(cube, path)
    workers = workers or min(4, os.cpu_count() or 1)
    data = cube.data.rechunk({0: -1, 1: -1})
    chunks = (int(data.chunks[2][0]), int(data.chunks[3][0]))
    template = cube.copy(data=da.full(data.shape, np.nan, dtype=np.float32, chunks=data.chunks))
    bands = [str(b) for b in cube["bands"].values]
    n = data.numblocks[2] * data.numblocks[3]
    default_cache = netCDF4.get_chunk_cache()
    netCDF4.set_chunk_cache(_CHUNK_CACHE_BYTES, _CHUNK_CACHE_SLOTS)  # writes fill whole chunks: no cache needed
    try:
        write_cube(template, path, chunks=chunks)
        with gdal_env(), netCDF4.Dataset(path, "a") as nc:
            for k, (ys, xs, block) in enumerate(by_blocks(data, workers)):
                for b, band in enumerate(bands):
                    nc[band][:, ys, xs] = block[:, b]
                if progress:
                    progress(k + 1, n)
    finally:
        netCDF4.set_chunk_cache(*default_cache)
    _log.info("Wrote cube %s to %s in %d blocks", dict(cube.sizes), path, n)
    return path
