"""Lazy GeoTIFF access for the ingest readers: band names, pixel grid, no-data and dask-backed values.

A file is opened with rioxarray in chunks that hold every band of a spatial window (``band: -1``): Earth Engine
writes pixel-interleaved tiles, so one read decompresses each tile once for all its bands. Nothing is read until a
chunk is computed.
"""

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import dask.array as da
import numpy as np
import xarray as xr

from udf.errors import GridMismatch, UnsupportedLayout
from udf.ingest.decode import Encoding

if TYPE_CHECKING:
    import rasterio

__all__ = ["GDAL_CACHE_MB", "Grid", "Raster", "check_same_grid", "decode", "gdal_env", "open_raster"]

_log = logging.getLogger(__name__)

GDAL_CACHE_MB = 64
"""GDAL's block cache while reading (its default is 5 % of RAM): blocks are read once, since chunks follow tiles."""


def gdal_env(cache_mb: int = GDAL_CACHE_MB) -> "rasterio.Env":
    """A ``rasterio.Env`` that bounds GDAL's block cache."""
    import rasterio

    return rasterio.Env(GDAL_CACHEMAX=cache_mb)


@dataclass(frozen=True)
class Grid:
    """A north-up pixel grid."""

    crs_wkt: str | None
    """CRS as WKT, None when the file has none."""
    transform: tuple[float, float, float, float, float, float]
    """Affine coefficients ``a, b, c, d, e, f`` (x = a·col + b·row + c, y = d·col + e·row + f)."""
    shape: tuple[int, int]
    """``(ny, nx)`` pixels."""

    def x(self) -> np.ndarray:
        """Pixel-centre x coordinates."""
        a, _, c = self.transform[:3]
        return c + a * (np.arange(self.shape[1]) + 0.5)

    def y(self) -> np.ndarray:
        """Pixel-centre y coordinates."""
        e, f = self.transform[4], self.transform[5]
        return f + e * (np.arange(self.shape[0]) + 0.5)

    def describe(self) -> str:
        """One line for error messages."""
        from pyproj import CRS

        crs = CRS.from_wkt(self.crs_wkt).to_string() if self.crs_wkt else "no CRS"
        a, _, c, _, e, f = self.transform
        return f"{crs}, {self.shape[1]} x {self.shape[0]} px of {a:.6g} x {abs(e):.6g} from ({c:.10g}, {f:.10g})"

    def matches(self, other: "Grid") -> bool:
        """Same CRS, same size and the same transform within a thousandth of a pixel."""
        if self.shape != other.shape:
            return False
        if (self.crs_wkt is None) != (other.crs_wkt is None):
            return False
        if self.crs_wkt and other.crs_wkt:
            from pyproj import CRS

            if not CRS.from_wkt(self.crs_wkt).equals(CRS.from_wkt(other.crs_wkt)):
                return False
        tol = 1e-3 * max(abs(self.transform[0]), abs(self.transform[4]))
        return bool(np.allclose(self.transform, other.transform, rtol=0, atol=tol))


@dataclass(frozen=True)
class Raster:
    """An opened GeoTIFF: nothing of its pixel values is in memory."""

    path: Path
    names: tuple[str, ...]
    """Band descriptions in file order ('' for a band without one)."""
    data: xr.DataArray
    """``(band, y, x)`` raw values, dask-backed."""
    grid: Grid
    nodata: float | None
    scales: tuple[float, ...]
    offsets: tuple[float, ...]

    @property
    def dtype(self) -> np.dtype:
        """Stored data type."""
        return np.dtype(self.data.dtype)


def open_raster(path: str | Path, chunk: int = 128) -> Raster:
    """Open a GeoTIFF lazily in chunks of ``chunk`` x ``chunk`` pixels holding all bands.

    Raises:
        FileNotFoundError: the file does not exist.
        UnsupportedLayout: the grid is rotated.
    """
    import rasterio
    import rioxarray

    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"Input file '{path}' does not exist.")
    with rasterio.open(path) as src:
        names = tuple(d or "" for d in src.descriptions)
        t = src.transform
        if t.b != 0 or t.d != 0:
            raise UnsupportedLayout(f"'{path}' has a rotated grid ({t}); export it north-up.")
        grid = Grid(src.crs.to_wkt() if src.crs else None, (t.a, t.b, t.c, t.d, t.e, t.f), (src.height, src.width))
        nodata, scales, offsets = src.nodata, tuple(src.scales), tuple(src.offsets)
    data = rioxarray.open_rasterio(path, chunks={"band": -1, "y": chunk, "x": chunk}, mask_and_scale=False,
                                   lock=False, cache=False, parse_coordinates=False)
    if not isinstance(data, xr.DataArray):
        raise UnsupportedLayout(f"'{path}' holds several subdatasets; expected one GeoTIFF image.")
    _log.debug("Opened %s: %d bands, %s, nodata %s", path, len(names), grid.describe(), nodata)
    return Raster(path, names, data, grid, nodata, scales, offsets)


def decode(raster: Raster, positions: list[int], nodata: bool = True) -> da.Array:
    """Bands at 0-based ``positions`` as float32 ``(n, y, x)``, decoded by :class:`udf.ingest.decode.Encoding`.

    The file's no-data value and non-finite values become NaN; a per-band scale or offset stored in the file is
    applied (and logged). ``nodata=False`` keeps the no-data value as a value: a GeoTIFF has one no-data value for
    all bands, and 0 is "no cloud" in a QA60 or probability band.
    """
    encodings = tuple(Encoding.from_geotiff(raster.nodata if nodata else None, raster.scales[p], raster.offsets[p])
                      for p in positions)
    if any(e.scale != 1.0 or e.offset != 0.0 for e in encodings):
        _log.info("Applying the scale/offset stored in '%s' to bands %s", raster.path, positions)
    block = raster.data.data
    return da.map_blocks(_decode_block, block, positions=tuple(positions), encodings=encodings, dtype=np.float32,
                         chunks=((len(positions),),) + block.chunks[1:])


def _decode_block(raw: np.ndarray, positions: tuple[int, ...], encodings: tuple[Encoding, ...]) -> np.ndarray:
    if not positions:
        return np.empty((0, *raw.shape[1:]), dtype=np.float32)
    if len(set(encodings)) == 1:  # the usual case (one no-data value per file, no scales): one call for all bands
        return encodings[0].decode(raw[list(positions)])
    return np.stack([enc.decode(raw[p]) for p, enc in zip(positions, encodings)])


def check_same_grid(grids: dict[str, Grid]) -> Grid:
    """Return the common grid of the named inputs.

    Raises:
        GridMismatch: two inputs differ; the message describes both grids.
    """
    items = list(grids.items())
    first_name, first = items[0]
    for name, grid in items[1:]:
        if not grid.matches(first):
            raise GridMismatch(
                f"'{name}' is on another pixel grid than '{first_name}': {grid.describe()} vs {first.describe()}. "
                "Export every file with the same CRS, scale and region (or reproject them onto one grid)."
            )
    return first
