"""netCDF inputs (WorldCereal layout, openEO exports) through the same orbit and compositing steps as the GeoTIFFs.

The files are decoded in memory by :mod:`udf.ingest.base` (they are small extractions); several S1 files are one per
orbit, named with an ``ASC``/``DESC[_NNN]`` token (an openEO recipe loads each orbit direction separately, since a
backend merges same-day acquisitions of both).
"""

import logging
from pathlib import Path
from typing import TYPE_CHECKING

import dask.array as da
import numpy as np
import xarray as xr

from udf.errors import BandNotAvailable, CloudMaskMissing, GridMismatch, UnsupportedLayout
from udf.ingest.base import find_band, load_s1, load_s2_ndvi
from udf.ingest.lazy import composite_cube, cube_edges, normalise_orbits
from udf.ingest.names import orbit_from_text

if TYPE_CHECKING:
    from udf.ingest.options import IngestOptions

__all__ = ["netcdf_cube"]

_log = logging.getLogger(__name__)


def _orbits(paths: list[Path]) -> list[str]:
    if len(paths) == 1:
        return [orbit_from_text(paths[0].stem) or ""]
    labels = [orbit_from_text(p.stem) for p in paths]
    if any(lab is None for lab in labels) or len(set(labels)) != len(labels):
        raise UnsupportedLayout(
            f"Several S1 netCDF files {[p.name for p in paths]} must be one per orbit, each named with a distinct "
            "ASC/DESC[_NNN] token (e.g. s1_ASC.nc, s1_DESC.nc)."
        )
    return [str(lab) for lab in labels]


def _s1(paths: list[Path], units: str) -> xr.DataArray:
    parts = [load_s1(p, s1_units=units) for p in paths]
    for p, part in zip(paths[1:], parts[1:]):
        if part.sizes["y"] != parts[0].sizes["y"] or not np.allclose(part["x"].values, parts[0]["x"].values) \
                or not np.allclose(part["y"].values, parts[0]["y"].values):
            raise GridMismatch(f"S1 file '{p}' is not on the grid of '{paths[0]}'.")
    labels = _orbits(paths)
    for part, lab in zip(parts, labels):
        part.coords["orbit"] = ("t", np.full(part.sizes["t"], lab))
    s1 = xr.concat(parts, dim="t", combine_attrs="override").sortby("t") if len(parts) > 1 else parts[0]
    return s1


def _check_scl(path: Path, scl: Path | None, s2_mask: str) -> None:
    if s2_mask not in ("auto", "scl"):
        raise UnsupportedLayout(f"netCDF S2 inputs are masked with SCL only; --s2-mask {s2_mask} is for GeoTIFFs.")
    with xr.open_dataset(scl or path, decode_cf=False, decode_times=False) as ds:
        try:
            find_band(ds, "SCL", scl or path)
        except BandNotAvailable as exc:
            raise CloudMaskMissing(
                f"S2 input '{scl or path}' has no SCL band (variables {list(ds.data_vars)}): no cloud information. "
                "Give --scl FILE, or --no-cloud-mask for composites masked upstream (the cube will then say its NDVI "
                "may be cloud-contaminated)."
            ) from exc


def netcdf_cube(s1_paths: list[Path], s2_paths: list[Path] | None, opts: "IngestOptions") -> xr.DataArray:
    """The model cube of netCDF inputs, per :func:`udf.ingest.sources.make_cube`."""
    s1 = _s1(s1_paths, opts.s1_units)
    linear = da.from_array(s1.values, chunks=(-1, -1, opts.chunk, opts.chunk))
    attrs = {"source_s1": "netcdf: " + ", ".join(str(p) for p in s1_paths),
             "s1_units_input": s1.attrs.get("s1_units_input", ""),
             "s1_backscatter": (f"{opts.s1_backscatter} (stated with --s1-backscatter)" if opts.s1_backscatter != "auto"
                                else "unknown (not recorded in the input; state it with --s1-backscatter)")}
    if opts.orbit_normalisation == "per-orbit":
        linear, orbit_attrs = normalise_orbits(linear, s1["t"].values, s1["orbit"].values, opts.orbit_pair_days,
                                               opts.workers)
    else:
        orbit_attrs = {"s1_orbit_normalisation": "none (--orbit-normalisation none)"}
    attrs.update(orbit_attrs)
    ndvi, s2_times = None, None
    if s2_paths:
        if len(s2_paths) != 1:
            raise UnsupportedLayout(f"One S2 netCDF file is expected, got {[str(p) for p in s2_paths]}.")
        from udf.ingest.composited import is_composited

        if is_composited(s2_paths):
            raise UnsupportedLayout(f"S2 input '{s2_paths[0]}' holds a precomputed NDVI variable (a composited "
                                    "export, e.g. a notebook's timeseries.nc): give it alone as the input "
                                    f"(--s1 {s2_paths[0]}, or `s1ndvi run --input`); it is read with its own VV/VH.")
        if not opts.no_cloud_mask:
            _check_scl(s2_paths[0], opts.scl, opts.s2_mask)
        nd = load_s2_ndvi(s2_paths[0], s1, scl_path=opts.scl, cloud_dilation=opts.cloud_dilation,
                          use_scl=not opts.no_cloud_mask)
        ndvi, s2_times = da.from_array(nd.values, chunks=(-1, opts.chunk, opts.chunk)), nd["t"].values
        attrs.update({"source_s2": "netcdf: " + str(s2_paths[0]), "s2_level": "L2A surface reflectance",
                      "ndvi_cloud_mask": "none" if opts.no_cloud_mask else
                      "SCL classes 4, 5, 6 kept" + (f", clouds grown by {opts.cloud_dilation} px"
                                                     if opts.cloud_dilation else "")})
        if opts.no_cloud_mask:
            attrs["ndvi_warning"] = "NDVI may be cloud-contaminated: no cloud mask was applied (--no-cloud-mask)"
    edges = cube_edges([s1["t"].values] + ([s2_times] if s2_times is not None else []), opts.period, opts.start,
                       opts.end)
    cube = composite_cube(linear, s1["t"].values, ndvi, s2_times, edges, {"y": s1["y"].values, "x": s1["x"].values},
                          workers=opts.workers)
    from udf.ingest.stats import netcdf_leftovers

    used = ("VV", "VH") + (("B04", "B08") + (() if opts.no_cloud_mask else ("SCL",)) if s2_paths else ())
    attrs.update(netcdf_leftovers(list(s1_paths) + list(s2_paths or []) + ([opts.scl] if s2_paths and opts.scl
                                                                              else []), used))
    cube.attrs = {**({"crs": s1.attrs["crs"]} if "crs" in s1.attrs else {}), **attrs, "s1_units": "linear",
                  "composite_period": opts.period or "acquisition", **opts.extra_attrs}
    _log.info("netCDF cube %s from %s", dict(cube.sizes), [p.name for p in s1_paths])
    return cube
