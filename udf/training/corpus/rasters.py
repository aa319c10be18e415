"""Readers of gridded sources into :class:`~udf.training.corpus.series.SeriesSet`: model cubes and GeoTIFF stacks.

A cube's pixels become sequences; spatial blocks of ``block`` × ``block`` pixels are the validation groups, so that a
validation pixel never has a training pixel in the same block.
"""

import logging
import re
from pathlib import Path

import numpy as np
import xarray as xr

from udf.errors import BandNotAvailable, CubeError
from udf.ingest.decode import ndvi_from_reflectance
from udf.preprocess import times_to_days
from udf.training.corpus.series import SeriesSet

_log = logging.getLogger(__name__)

__all__ = ["cube_series", "read_cropharvest_tif"]


def cube_series(cube: xr.DataArray, site: str, source: str, block: int = 8, grid: str | None = None) -> SeriesSet:
    """The pixels of a model cube ``(t, bands[VV, VH, NDVI], y, x)`` with linear S1, as sequences.

    Args:
        cube: model cube (e.g. from :func:`udf.ingest.base.build_cube`), S1 in linear power.
        site: site name.
        source: file name(s) for the record.
        block: edge (pixels) of the spatial validation groups.
        grid: grid name (default: the cube's ``composite_period`` attribute).
    """
    nt, ny, nx = cube.sizes["t"], cube.sizes["y"], cube.sizes["x"]
    s1 = np.stack([cube.sel(bands=b).values for b in ("VV", "VH")], axis=-1)  # (t, y, x, 2)
    s1 = s1.reshape(nt, ny * nx, 2).transpose(1, 0, 2).astype(np.float32)
    ndvi = cube.sel(bands="NDVI").values.reshape(nt, ny * nx).T.astype(np.float32)
    days = np.broadcast_to(times_to_days(cube["t"].values), (ny * nx, nt)).copy()
    yy, xx = np.meshgrid(np.arange(ny) // block, np.arange(nx) // block, indexing="ij")
    group = (yy * (-(-nx // block)) + xx).ravel()
    xy = np.stack(np.meshgrid(cube["x"].values, cube["y"].values), axis=-1).reshape(-1, 2)
    return SeriesSet(site=site, source=source, grid=grid or str(cube.attrs.get("composite_period", "unknown")),
                     days=days, s1=s1, ndvi=ndvi, group=group, attrs={"shape": [ny, nx], "crs": cube.attrs.get("crs")},
                     xy=xy.astype(np.float64))


def _band_layout(names: tuple[str | None, ...], path: Path) -> tuple[list[str], int]:
    """Per-period band names and the number of periods of a ``toBands()``-like stack (``VV``, ..., ``VV_1``, ...)."""
    first = [str(n) for n in names if n and not re.search(r"_\d+$", str(n))]
    periods = 1 + max((int(m.group(1)) for n in names if n and (m := re.search(r"_(\d+)$", str(n)))), default=0)
    for band in ("VV", "VH", "B4", "B8"):
        if band not in first:
            raise BandNotAvailable(f"'{path}' has no band {band!r} among its first-period bands {first}; expected a "
                                   "stack named VV, VH, B4, B8, ... then VV_1, VH_1, ...")
    return first, periods


def read_cropharvest_tif(path: str | Path, site: str, start: str, blue_cloud: float = 2000.0,
                         block: int = 4) -> SeriesSet:
    """Read a GeoTIFF stack in cropharvest's ``toBands()`` layout (30-day periods; S1 dB, S2 reflectance × 10000).

    The stack holds per month ``VV, VH`` (dB), the S2 bands ``B1 … B12`` (reflectance × 10000) and ERA5 bands, named
    ``<band>`` for the first month and ``<band>_<k>`` after; static bands (elevation, slope) follow. Its S2 values
    are monthly composites without a cloud mask: a composite whose blue reflectance (B2) exceeds ``blue_cloud``
    (× 10000) is treated as cloud/haze and dropped (documented screen, not a cloud mask).

    Args:
        path: GeoTIFF file.
        site: site name.
        start: first month's start day (``YYYY-MM-DD``); cropharvest encodes it in the file name.
        blue_cloud: B2 threshold (reflectance × 10000) above which NDVI is dropped.
        block: edge (pixels) of the spatial validation groups.
    """
    try:
        import rasterio
    except ImportError as exc:
        raise ImportError('Reading GeoTIFF stacks needs rasterio: pip install -e ".[backend]"') from exc
    path = Path(path)
    with rasterio.open(path) as src:
        names = tuple(src.descriptions)
        values = src.read().astype(np.float64)
    first, periods = _band_layout(names, path)
    index = {n: i for i, n in enumerate(names) if n}

    def band(name: str) -> np.ndarray:  # (periods, y, x)
        keys = [name] + [f"{name}_{k}" for k in range(1, periods)]
        missing = [k for k in keys if k not in index]
        if missing:
            raise CubeError(f"'{path}' lacks bands {missing[:4]} of a {periods}-period stack.")
        return values[[index[k] for k in keys]]

    ny, nx = values.shape[1:]
    with np.errstate(invalid="ignore"):
        vv, vh = (10.0 ** (band(b) / 10.0) for b in ("VV", "VH"))
    ndvi = ndvi_from_reflectance(band("B4"), band("B8"))
    ndvi[band("B2") > blue_cloud] = np.nan
    s1 = np.stack([vv, vh], axis=-1).reshape(periods, ny * nx, 2).transpose(1, 0, 2).astype(np.float32)
    day0 = float(np.datetime64(start, "D").astype(np.int64))
    days = np.broadcast_to(day0 + 30.0 * np.arange(periods), (ny * nx, periods)).copy()  # cropharvest: 30-day steps
    yy, xx = np.meshgrid(np.arange(ny) // block, np.arange(nx) // block, indexing="ij")
    out = SeriesSet(site=site, source=path.name, grid="month", days=days, s1=s1,
                    ndvi=ndvi.reshape(periods, ny * nx).T, group=(yy * (-(-nx // block)) + xx).ravel(),
                    attrs={"s1": "dB", "s2": f"monthly composite, B2 > {blue_cloud:g} dropped", "shape": [ny, nx]})
    _log.info("Read %s", out.describe())
    return out
