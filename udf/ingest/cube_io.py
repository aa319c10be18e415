"""Write and read model cubes in the openEO netCDF layout (one variable per band over ``t, y, x``, with CRS)."""

import logging
from pathlib import Path

import numpy as np
import xarray as xr

from udf.errors import DimensionNotAvailable, UnreadableFile

_log = logging.getLogger(__name__)

__all__ = ["cube_to_dataset", "open_netcdf", "read_cube", "write_cube"]

_TIME_UNITS = "days since 1990-01-01"
_NETCDF_MAGIC = (b"CDF\x01", b"CDF\x02", b"CDF\x05", b"\x89HDF\r\n\x1a\n")
"""First bytes of netCDF3 (classic, 64-bit offset, 64-bit data) and netCDF4 (HDF5) files."""


def open_netcdf(path: str | Path, what: str = "File", **kwargs: object) -> xr.Dataset:
    """Open a netCDF file with errors that name the file and say what was expected.

    Args:
        path: the file.
        what: how the file is named in error messages (e.g. ``"Cube file"``).
        **kwargs: passed to :func:`xarray.open_dataset`.

    Raises:
        FileNotFoundError: the file does not exist.
        UnreadableFile: it is a folder, not netCDF, or netCDF that the installed libraries cannot read.
    """
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{what} '{path}' does not exist.")
    if path.is_dir():
        raise UnreadableFile(f"{what} '{path}' is a folder; expected a netCDF file.")
    with path.open("rb") as fh:
        head = fh.read(8)
    if not head.startswith(_NETCDF_MAGIC):
        raise UnreadableFile(f"{what} '{path}' is not a netCDF file (it starts with {head!r}); expected netCDF "
                             "(netCDF4/HDF5 or classic), such as `s1ndvi cube` or an openEO netCDF download writes.")
    try:
        return xr.open_dataset(path, **kwargs)  # type: ignore[arg-type]
    except (OSError, ValueError) as exc:
        raise UnreadableFile(f"{what} '{path}' looks like netCDF but cannot be read ({exc}); the file may be "
                             "truncated or corrupt.") from exc


def cube_to_dataset(cube: xr.DataArray) -> xr.Dataset:
    """Convert a ``(t, bands, y, x)`` cube to the openEO netCDF dataset (bands as variables, ``crs`` variable)."""
    missing = [d for d in ("bands", "y", "x") if d not in cube.dims]
    if missing:
        raise DimensionNotAvailable(f"Cube dims {cube.dims} lack {missing}; cannot write the openEO layout.")
    data_dims = [d for d in ("t", "y", "x") if d in cube.dims]
    ds = xr.Dataset()
    for band in cube["bands"].values:
        var = cube.sel(bands=band).drop_vars("bands").transpose(*data_dims).astype(np.float32)
        var.attrs = {"long_name": str(band), "grid_mapping": "crs"}
        ds[str(band)] = var
    crs = cube.attrs.get("crs")
    crs_attrs = {"crs_wkt": crs, "spatial_ref": crs} if crs else {}
    ds["crs"] = xr.DataArray(np.array(b"", dtype="S1"), attrs=crs_attrs)
    ds["x"].attrs = {"standard_name": "projection_x_coordinate", "units": "m"}
    ds["y"].attrs = {"standard_name": "projection_y_coordinate", "units": "m"}
    ds.attrs = {"Conventions": "CF-1.9", "institution": "s1ndvi"}
    for key, value in cube.attrs.items():
        if key != "crs" and isinstance(value, (str, int, float)):
            ds.attrs[key] = value
    return ds


def write_cube(cube: xr.DataArray, path: str | Path, chunks: tuple[int, int] | None = None) -> Path:
    """Write a cube as openEO-style netCDF (readable by ``openeo.udf.XarrayDataCube.from_file``).

    Args:
        cube: ``(t, bands, y, x)``, in memory or dask-backed (then computed chunk by chunk while written).
        path: output file.
        chunks: ``(y, x)`` netCDF chunk edges (one time step per chunk); default: the library's choice.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    ds = cube_to_dataset(cube)
    enc: dict[str, dict] = {str(v): {"zlib": True, "complevel": 4, "_FillValue": np.float32(np.nan)}
                            for v in ds.data_vars if v != "crs"}
    if chunks:
        for v in enc:
            dims = ds[v].dims
            enc[v]["chunksizes"] = tuple(1 if d == "t" else min(chunks[0] if d == "y" else chunks[1], ds.sizes[d])
                                         for d in dims)
    if "t" in ds.coords:
        enc["t"] = {"units": _TIME_UNITS, "calendar": "standard", "dtype": "float64"}
    ds.to_netcdf(path, encoding=enc)
    _log.info("Wrote cube %s to %s", dict(cube.sizes), path)
    return path


def read_cube(path: str | Path) -> xr.DataArray:
    """Read an openEO-layout netCDF cube as ``(t, bands, y, x)`` (``time`` is accepted as an alias of ``t``)."""
    path = Path(path)
    with open_netcdf(path, "Cube file") as ds:
        ds = ds.load()
    if "time" in ds.dims and "t" not in ds.dims:
        ds = ds.rename({"time": "t"})
    bands = [k for k, v in ds.data_vars.items() if v.dtype.kind in "biuf" and v.ndim > 0]
    if not bands:
        raise DimensionNotAvailable(f"No numeric band variable in '{path}' (variables: {list(ds.data_vars)}).")
    cube = ds[bands].to_array(dim="bands")
    order = [d for d in ("t", "bands", "y", "x") if d in cube.dims]
    extra = [d for d in cube.dims if d not in order]
    if extra:
        raise DimensionNotAvailable(f"Cube '{path}' has unexpected dims {extra}; expected t, bands, y, x.")
    cube = cube.transpose(*order)
    crs = ds["crs"].attrs.get("crs_wkt") if "crs" in ds.variables else None
    cube.attrs = {k: v for k, v in ds.attrs.items() if k not in ("Conventions", "institution")}
    if crs:
        cube.attrs["crs"] = crs
    return cube
