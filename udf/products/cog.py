"""Cloud-Optimised GeoTIFFs of a ``(t, bands, y, x)`` cube: one file per band and farming year.

Time-series bands (``NDVI``, ``NDVI_STD``) get one GeoTIFF band per time step of the farming year, described by its
date (``2018-03-05``); phenology bands (``SOS_1`` … ``N_SEASONS``) get one single-band file per farming year. Dates
(``SOS``/``POS``/``EOS``) are stored as days since 1970-01-01 (float32, the unit is in the file's tags) and NaN is
no-data.
"""

import logging
from pathlib import Path

import numpy as np
import xarray as xr

from udf.errors import CubeError

__all__ = ["cube_transform", "write_cog", "write_phenology_cogs", "write_series_cogs", "year_label"]

_log = logging.getLogger(__name__)


def cube_transform(cube: xr.DataArray) -> "object":
    """The affine transform of a cube's regular ``x``/``y`` pixel-centre labels.

    Raises:
        CubeError: irregular or single-pixel axes.
    """
    from rasterio.transform import Affine

    x, y = cube["x"].values.astype(np.float64), cube["y"].values.astype(np.float64)
    if x.size < 2 or y.size < 2:
        raise CubeError(f"A GeoTIFF needs at least 2 x 2 pixels; the cube has {x.size} x {y.size}.")
    dx, dy = np.diff(x), np.diff(y)
    if not (np.allclose(dx, dx[0], rtol=1e-6) and np.allclose(dy, dy[0], rtol=1e-6)):
        raise CubeError("The cube's x/y labels are not a regular grid; cannot write a GeoTIFF.")
    return Affine(dx[0], 0.0, x[0] - dx[0] / 2, 0.0, dy[0], y[0] - dy[0] / 2)


def write_cog(values: np.ndarray, cube: xr.DataArray, path: Path, descriptions: list[str],
              tags: dict[str, str] | None = None) -> Path:
    """Write ``(n, y, x)`` float32 values on the cube's grid as a Cloud-Optimised GeoTIFF (NaN no-data, deflate)."""
    import rasterio.shutil
    from rasterio.io import MemoryFile

    path.parent.mkdir(parents=True, exist_ok=True)
    profile = {"driver": "GTiff", "width": values.shape[2], "height": values.shape[1], "count": values.shape[0],
               "dtype": "float32", "crs": cube.attrs.get("crs"), "transform": cube_transform(cube),
               "nodata": np.nan}
    with MemoryFile() as mem:
        with mem.open(**profile) as tmp:
            tmp.write(values.astype(np.float32))
            for i, d in enumerate(descriptions, start=1):
                tmp.set_band_description(i, d)
            if tags:
                tmp.update_tags(**tags)
        with mem.open() as src:
            rasterio.shutil.copy(src, path, driver="COG", compress="DEFLATE", predictor="3",
                                 blocksize=256, overview_resampling="average")
    return path


def year_label(start: np.datetime64) -> str:
    """``2017-11`` style label of a farming year from its start date."""
    return str(start)[:7]


def write_series_cogs(fused: xr.DataArray, year_starts: np.ndarray, out: Path) -> list[Path]:
    """One COG per series band and farming year (bands = the year's time steps)."""
    written = []
    t = fused["t"].values
    for k, start in enumerate(year_starts):
        end = year_starts[k + 1] if k + 1 < len(year_starts) else None
        sel = (t >= start) & ((t < end) if end is not None else np.ones_like(t, bool))
        if not sel.any():
            continue
        for band in [str(b) for b in fused["bands"].values]:
            values = fused.sel(bands=band).values[sel]
            path = out / year_label(start) / f"{band}.tif"
            write_cog(values, fused, path, [str(d)[:10] for d in t[sel]],
                      {"band": band, "farming_year_start": str(start)[:10]})
            written.append(path)
    return written


def write_phenology_cogs(pheno: xr.DataArray, out: Path) -> list[Path]:
    """One single-band COG per phenology band and farming year."""
    written = []
    for k, start in enumerate(pheno["t"].values):
        for band in [str(b) for b in pheno["bands"].values]:
            unit = ("days (uncertainty)" if "STD" in band.upper() or "UNC" in band.upper() else
                    "days since 1970-01-01" if band.split("_")[0] in ("SOS", "POS", "EOS") else
                    "days" if band.startswith("LOS") else "NDVI" if band.split("_")[0] in ("PEAK", "AMP") else
                    "count")
            path = out / year_label(start) / f"{band}.tif"
            write_cog(pheno.isel(t=k).sel(bands=band).values[None], pheno, path, [band],
                      {"band": band, "unit": unit, "farming_year_start": str(start)[:10]})
            written.append(path)
    return written
