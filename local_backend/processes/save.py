"""``save_result``: netCDF in the openEO layout and GeoTIFF with CRS, written to the evaluation's output folder."""

import logging
from pathlib import Path
from typing import Any

import numpy as np
import rioxarray  # noqa: F401 - .rio accessor (CRS of cubes, GeoTIFF writing)
import xarray as xr

from local_backend.context import current
from local_backend.errors import ProcessParameterInvalid, ResultTooLarge
from local_backend.tiles.stream_write import stream_gtiff, stream_netcdf

_log = logging.getLogger(__name__)

FORMATS = {"netcdf": "netCDF", "nc": "netCDF", "gtiff": "GTiff", "geotiff": "GTiff", "tiff": "GTiff"}
"""Accepted ``format`` names (case-insensitive) and the canonical name."""
MEDIA_TYPES = {"netCDF": "application/x-netcdf", "GTiff": "image/tiff; application=geotiff"}


def _storable(value: Any) -> Any:
    """``value`` as netCDF can store it (bools become 0/1, numeric sequences arrays), or None to strip it."""
    if isinstance(value, (bool, np.bool_)):
        return int(value)
    if isinstance(value, (str, int, float, np.number)):
        return value
    if isinstance(value, (list, tuple, np.ndarray)):
        array = np.asarray(value)
        return array if array.ndim == 1 and array.size and array.dtype.kind in "iuf" else None
    return None


def clean_attrs(attrs: dict[str, Any]) -> dict[str, Any]:
    """Attributes netCDF can store; dicts, None, objects, nested or string lists are stripped (and logged)."""
    kept, dropped = {}, []
    for key, value in attrs.items():
        stored = _storable(value)
        if stored is None or key in ("crs", "grid_mapping", "_FillValue"):
            dropped.append(key)
        else:
            kept[str(key)] = stored
    if dropped:
        _log.debug("Attributes not written to netCDF: %s", dropped)
    return kept


def cube_crs(cube: xr.DataArray) -> str | None:
    """The cube's CRS as WKT: ``attrs['crs']`` or the rioxarray grid mapping (kept by more processes)."""
    crs = cube.attrs.get("crs")
    if not crs and cube.rio.crs is not None:
        crs = cube.rio.crs.to_wkt()
    return str(crs) if crs else None


def to_dataset(cube: xr.DataArray) -> xr.Dataset:
    """Build the openEO netCDF layout: one float32 variable per band over ``(t, y, x)``, a ``crs`` grid-mapping variable."""
    if "y" not in cube.dims or "x" not in cube.dims:
        raise ProcessParameterInvalid("save_result", "data", f"a raster cube with x and y is needed, got {cube.dims}")
    extra = [d for d in cube.dims if d not in ("t", "bands", "y", "x")]
    if extra:
        raise ProcessParameterInvalid("save_result", "data", f"cannot write dimensions {extra} (dims {cube.dims})")
    crs = cube_crs(cube)
    if "bands" not in cube.dims:
        cube = cube.expand_dims(bands=[str(cube.name or "var")])
    order = [d for d in ("t", "y", "x") if d in cube.dims]
    ds = xr.Dataset(attrs={"Conventions": "CF-1.9", "institution": "s1ndvi local openEO backend"})
    for band in cube["bands"].values:
        var = cube.sel(bands=band, drop=True).transpose(*order).astype(np.float32)
        var.attrs = {"long_name": str(band), "grid_mapping": "crs"}
        ds[str(band)] = var.drop_vars([c for c in var.coords if c not in order])
    ds["crs"] = xr.DataArray(np.array(b"", dtype="S1"),
                             attrs={"crs_wkt": crs, "spatial_ref": crs} if crs else {})
    ds["x"].attrs = {"standard_name": "projection_x_coordinate", "units": "m"}
    ds["y"].attrs = {"standard_name": "projection_y_coordinate", "units": "m"}
    ds.attrs.update(clean_attrs(cube.attrs))
    return ds


def write_netcdf(cube: xr.DataArray, path: Path) -> Path:
    """Write ``cube`` with :func:`to_dataset` (``t`` as days since 1990-01-01, NaN fill), one spatial block at a time."""
    return stream_netcdf(to_dataset(cube), path)


def write_gtiff(cube: xr.DataArray, folder: Path) -> list[Path]:
    """Write one GeoTIFF per time label (``openEO_YYYY-MM-DD.tif``) or ``openEO.tif`` without ``t``, block by block."""
    crs = cube_crs(cube)
    if "bands" not in cube.dims:
        cube = cube.expand_dims(bands=[str(cube.name or "var")])
    labels = [None] if "t" not in cube.dims else list(cube["t"].values)
    names = ["openEO.tif" if t is None else f"openEO_{np.datetime_as_string(t, unit='D')}.tif" for t in labels]
    return stream_gtiff(cube, [folder / name for name in names], crs)


def save_result(data: xr.DataArray, format: str = "netCDF", options: dict | None = None) -> bool:
    """Write ``data`` to the evaluation's output folder, computing one spatial block at a time.

    Args:
        data: raster cube with ``y``, ``x`` and optionally ``t``, ``bands``.
        format: ``netCDF`` or ``GTiff`` (case-insensitive).
        options: format options; none are supported yet (must be empty).
    """
    execution = current()
    canonical = FORMATS.get(str(format).lower())
    if canonical is None:
        raise ProcessParameterInvalid("save_result", "format",
                                      f"'{format}' is not supported; use one of {sorted(set(FORMATS.values()))}")
    if options:
        raise ProcessParameterInvalid("save_result", "options", f"no format options are supported, got {options}")
    if not isinstance(data, xr.DataArray):
        raise ProcessParameterInvalid("save_result", "data", f"expected a raster cube, got {type(data).__name__}")
    if execution.sync and data.size * 4 > execution.max_sync_bytes:
        raise ResultTooLarge(int(data.size * 4), execution.max_sync_bytes)
    execution.output_dir.mkdir(parents=True, exist_ok=True)
    if canonical == "netCDF":
        paths = [write_netcdf(data, execution.output_dir / "openEO.nc")]
    else:
        if execution.sync and "t" in data.dims and data.sizes["t"] > 1:
            raise ProcessParameterInvalid(
                "save_result", "format",
                f"GTiff of a cube with {data.sizes['t']} time steps gives one file per date; reduce 't', use "
                f"netCDF, or run a batch job")
        paths = write_gtiff(data, execution.output_dir)
    execution.outputs.extend(paths)
    execution.log.info("save_result: wrote %s", [p.name for p in paths])
    return True
