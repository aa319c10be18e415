"""Build a model cube from any supported export: the entry of ``s1ndvi cube`` and of the Python API.

Inputs (``docs/recipes/``): WorldCereal-layout and openEO netCDF files (:mod:`udf.ingest.base`), Google Earth Engine
GeoTIFFs (:mod:`udf.ingest.gee`: ``toBands`` stacks, one file per period, cropharvest), and folders of per-scene
COGs from Planetary Computer / STAC (:mod:`udf.ingest.folder`). GeoTIFF and folder inputs are read lazily and the
cube is computed block by block when written (:func:`write_cube_lazily`); what was read, decided and done is kept in
the cube's attributes (``source_*``, ``s1_*``, ``s2_level``, ``ndvi_cloud_mask``, ``ndvi_warning``).

Example::

    from udf.ingest.options import IngestOptions
    from udf.ingest.sources import make_cube, write_cube_lazily
    cube = make_cube(["s1.tif"], ["s2.tif"], IngestOptions(dates=Path("dates.csv"), period="12D"))
    write_cube_lazily(cube, "cube.nc")
"""

import logging
from pathlib import Path
from typing import Sequence

import dask.array as da
import numpy as np
import xarray as xr

from udf.errors import UnsupportedLayout
from udf.ingest.cloudmask import choose_mask, describe_mask
from udf.ingest.geotiff import gdal_env
from udf.ingest.lazy import (
    composite_cube,
    cube_edges,
    decide_s1_units,
    ndvi_lazy,
    normalise_orbits,
    per_scene_sum,
    s1_linear_lazy,
)
from udf.ingest.options import LAYOUTS, IngestOptions
from udf.ingest.write import write_cube_lazily

__all__ = ["cube_from_exports", "make_cube", "open_stack", "write_cube_lazily"]

_log = logging.getLogger(__name__)

_TIF_SUFFIXES = (".tif", ".tiff")


def _kind(paths: Sequence[Path], layout: str) -> str:
    if layout not in LAYOUTS:
        raise ValueError(f"Unknown layout {layout!r}; expected one of {LAYOUTS}.")
    if layout != "auto":
        return layout
    if all(p.suffix.lower() == ".nc" for p in paths):
        return "netcdf"
    if all(p.suffix.lower() in _TIF_SUFFIXES for p in paths):
        return "tobands" if len(paths) == 1 else "per-period"
    if len(paths) == 1 and paths[0].is_dir():
        from udf.ingest.folder import is_scene_folder

        return "stac-folders" if is_scene_folder(paths[0]) else "per-period"
    raise UnsupportedLayout(f"Cannot tell the layout of {[str(p) for p in paths]}: expected netCDF files (.nc), "
                            "GeoTIFFs (.tif) or one folder (of scene sub-folders or of per-period GeoTIFFs).")


def open_stack(paths: Sequence[str | Path], sensor: str, opts: IngestOptions) -> xr.Dataset:
    """Open the ``sensor`` (``s1``/``s2``) images of GeoTIFF or folder inputs as a lazy stack (see ``ingest_gee``)."""
    files = [Path(p) for p in paths]
    kind = _kind(files, opts.layout)
    if kind == "stac-folders":
        from udf.ingest.folder import read_scene_folders

        return read_scene_folders(files[0], sensor, opts.chunk)
    if kind == "netcdf":
        raise UnsupportedLayout("netCDF inputs are read in memory by udf.ingest.base, not as a lazy stack.")
    from udf.ingest.gee import read_gee

    if len(files) == 1 and files[0].is_dir():
        files = sorted(p for p in files[0].iterdir() if p.suffix.lower() in _TIF_SUFFIXES)
        if not files:
            raise UnsupportedLayout(f"Folder '{paths[0]}' holds no GeoTIFF and no scene sub-folder.")
    missing = [str(p) for p in files if not p.exists()]
    if missing:
        raise FileNotFoundError(f"Input file(s) {missing} do not exist.")
    return read_gee(files, sensor, layout="auto" if kind in ("tobands", "per-period") else kind,
                    sidecar=opts.dates, chunk=opts.chunk)


def make_cube(s1: Sequence[str | Path], s2: Sequence[str | Path] | None, opts: IngestOptions) -> xr.DataArray:
    """The model cube ``(t, bands=[VV, VH, NDVI], y, x)`` of the inputs; lazy for GeoTIFF/folder inputs.

    Args:
        s1: S1 inputs (one netCDF, GeoTIFF stack or folder; or several files, one per period or orbit).
        s2: S2 inputs, None for an S1-only cube. May be the same file as ``s1`` (e.g. cropharvest).
        opts: options.

    Raises:
        UnsupportedLayout, DatesNotFound, CloudMaskMissing, GridMismatch, S1UnitsError, OrbitsNotComparable.
    """
    s1p = [Path(p) for p in s1]
    if opts.layout in ("auto", "per-period", "netcdf") and _composited(s1p, s2, opts.bands):
        from udf.ingest.composited import CompositedOptions, composited_cube

        period = None if opts.period in ("auto", None) else opts.period
        cube = composited_cube(s1p, CompositedOptions(start=opts.start, period=period, bands=opts.bands,
                                                      s1_units=opts.s1_units, s1_backscatter=opts.s1_backscatter))
        cube.attrs.update(opts.extra_attrs)
        return cube
    if opts.period == "auto":
        from dataclasses import replace

        opts = replace(opts, period="10D")
    if _kind(s1p, opts.layout) == "netcdf":
        from udf.ingest.netcdf import netcdf_cube

        return netcdf_cube(s1p, [Path(p) for p in s2] if s2 else None, opts)
    with gdal_env():
        return _lazy_cube(s1p, s2, opts)


def _composited(s1p: list[Path], s2: Sequence[str | Path] | None, bands: tuple[str, ...] | None) -> bool:
    """Composited exports (period folders, netCDF with an NDVI variable) carry their own NDVI: no separate S2."""
    from udf.ingest.composited import is_composited

    if not is_composited(s1p, bands):
        return False
    if s2 and [Path(p).resolve() for p in s2] != [p.resolve() for p in s1p]:
        raise UnsupportedLayout(f"{[str(p) for p in s1p]} is a composited export with its own NDVI band; give it "
                                "alone (--input/--s1), without a separate --s2.")
    return True


def _lazy_cube(s1p: list[Path], s2: Sequence[str | Path] | None, opts: IngestOptions) -> xr.DataArray:
    stack1 = open_stack(s1p, "s1", opts)
    units = decide_s1_units(stack1, opts.s1_units)
    linear = s1_linear_lazy(stack1, units, opts.chunk)
    attrs = {"source_s1": f"{stack1.attrs['layout']}: {stack1.attrs['source']}",
             "s1_units_input": units + (" (auto)" if opts.s1_units == "auto" else ""),
             "s1_backscatter": _backscatter(stack1, opts)}
    if opts.orbit_normalisation == "per-orbit":
        linear, orbit_attrs = normalise_orbits(linear, stack1["t"].values, stack1["orbit"].values,
                                               opts.orbit_pair_days, opts.workers)
    else:
        orbit_attrs = {"s1_orbits": _orbit_list(stack1["orbit"].values),
                       "s1_orbit_normalisation": "none (--orbit-normalisation none)"}
    if stack1.attrs["layout"] == "cropharvest":
        orbit_attrs["s1_orbits"] = ("not known per period: cropharvest composites the median of one pass direction's "
                                    "acquisitions within 15 days of each period's middle")
    attrs.update(orbit_attrs)
    ndvi, s2_times = None, None
    if s2:
        stack2 = open_stack(s2, "s2", opts)
        _same_grid(stack1, stack2)
        ndvi, s2_attrs = _ndvi(stack2, opts)
        s2_times = stack2["t"].values
        attrs.update(s2_attrs)
    edges = cube_edges([stack1["t"].values] + ([s2_times] if s2_times is not None else []), opts.period,
                       opts.start, opts.end)
    cube = composite_cube(linear, stack1["t"].values, ndvi, s2_times, edges,
                          {"y": stack1["y"].values, "x": stack1["x"].values}, workers=opts.workers)
    cube.attrs = {"crs": stack1.attrs["crs"], **attrs, "s1_units": "linear",
                  "composite_period": opts.period or "acquisition", **opts.extra_attrs}
    return cube


def _orbit_list(orbits: np.ndarray) -> str:
    labels, counts = np.unique(np.asarray(orbits).astype(str), return_counts=True)
    return ", ".join(f"{lab or 'unknown'}: {c}" for lab, c in zip(labels, counts))


def _backscatter(stack: xr.Dataset, opts: IngestOptions) -> str:
    if opts.s1_backscatter != "auto":
        return f"{opts.s1_backscatter} (stated with --s1-backscatter)"
    if "sentinel-1-rtc" in stack.attrs.get("collections", ""):
        return "gamma0 RTC, terrain-flattened (Planetary Computer sentinel-1-rtc)"
    if stack.attrs["layout"].startswith("gee") or stack.attrs["layout"] == "cropharvest":
        return "sigma0 (Earth Engine COPERNICUS/S1_GRD convention; not recorded in the file)"
    return "unknown (not recorded in the input; state it with --s1-backscatter)"


def _same_grid(s1: xr.Dataset, s2: xr.Dataset) -> None:
    from udf.errors import GridMismatch

    tol = 1e-3 * abs(float(s1["x"].values[1] - s1["x"].values[0])) if s1.sizes["x"] > 1 else 1e-9
    same = (s1.sizes["y"] == s2.sizes["y"] and s1.sizes["x"] == s2.sizes["x"]
            and np.allclose(s1["y"].values, s2["y"].values, rtol=0, atol=tol)
            and np.allclose(s1["x"].values, s2["x"].values, rtol=0, atol=tol))
    if not same:
        raise GridMismatch(
            f"S1 ({s1.sizes['x']} x {s1.sizes['y']} px, x {s1['x'].values[0]:.10g}…, y {s1['y'].values[0]:.10g}…) "
            f"and S2 ({s2.sizes['x']} x {s2.sizes['y']} px, x {s2['x'].values[0]:.10g}…, y "
            f"{s2['y'].values[0]:.10g}…) are not on one grid; export both with the same crs, scale and region."
        )


def _ndvi(stack: xr.Dataset, opts: IngestOptions) -> tuple[da.Array, dict[str, str]]:
    bands = [str(b) for b in stack.data_vars]
    kind, band = choose_mask(bands, opts.s2_mask, opts.no_cloud_mask, f"'{stack.attrs['source']}'")
    ndvi = ndvi_lazy(stack, kind, band, opts.cloud_probability, opts.cloud_dilation, opts.chunk)
    level = _s2_level(stack, opts)
    attrs = {"source_s2": f"{stack.attrs['layout']}: {stack.attrs['source']}", "s2_level": level,
             "ndvi_cloud_mask": describe_mask(kind, band, opts.cloud_probability, opts.cloud_dilation)}
    if kind == "none":
        attrs["ndvi_warning"] = ("NDVI may be cloud-contaminated: no cloud mask was applied (--no-cloud-mask)"
                                 + ("; top-of-atmosphere (L1C) reflectance" if level.startswith("L1C") else ""))
        _log.warning("S2 from %s is used without a cloud mask: %s", stack.attrs["source"], attrs["ndvi_warning"])
    if kind == "qa60":
        note = _qa60_note(stack, band, opts.workers)
        if note:
            attrs["ndvi_warning"] = note
    if level.startswith("L1C"):
        _log.warning("S2 is L1C top-of-atmosphere reflectance: its NDVI runs lower than L2A's over vegetation")
    return ndvi, attrs


def _qa60_note(stack: xr.Dataset, band: str | None, workers: int | None) -> str | None:
    late = stack["t"].values >= np.datetime64("2022-01-25")
    if not late.any() or band is None:
        return None
    flagged = per_scene_sum(stack[band].data[late], _qa60_flagged, workers)
    empty = int((flagged == 0).sum())
    if not empty:
        return None
    _log.warning("QA60 flags no cloud in %d S2 scenes from 2022-01-25 on", empty)
    return (f"NDVI may be cloud-contaminated: QA60 flags no cloud at all in {empty} of {int(late.sum())} scenes from "
            "2022-01-25 on (ESA no longer fills it); use SCL or s2cloudless probability for those dates")


def _qa60_flagged(block: np.ndarray) -> np.ndarray:
    bits = np.nan_to_num(block, nan=0).astype(np.int64) & ((1 << 10) | (1 << 11))
    return (bits != 0).sum(axis=(1, 2)).astype(np.float64)


def _s2_level(stack: xr.Dataset, opts: IngestOptions) -> str:
    if opts.s2_level != "auto":
        return {"l2a": "L2A surface reflectance", "l1c": "L1C top-of-atmosphere reflectance"}[opts.s2_level] + \
            " (stated with --s2-level)"
    in_file = set(stack.attrs.get("bands_in_file", "").split())
    if stack.attrs["layout"] == "cropharvest":
        return "L1C top-of-atmosphere reflectance (cropharvest exports COPERNICUS/S2)"
    if "sentinel-2-l2a" in stack.attrs.get("collections", "") or in_file & {"SCL", "MSK_CLDPRB"}:
        return "L2A surface reflectance"
    if "B10" in in_file:
        return "L1C top-of-atmosphere reflectance (band B10 present)"
    return "unknown (state it with --s2-level)"


def cube_from_exports(s1: str | Path | list, s2: str | Path | list | None = None, **options: object) -> xr.DataArray:
    """Model cube of any supported export: Earth Engine GeoTIFFs, Planetary Computer/STAC COG folders, netCDF.

    The Python face of ``s1ndvi cube`` (lazy for GeoTIFFs and folders; write it with
    :func:`udf.ingest.write.write_cube_lazily`). ``options`` are fields of :class:`udf.ingest.options.IngestOptions`
    (``dates``, ``layout``, ``period``, ``no_cloud_mask``, ...); see ``docs/recipes/``.
    """
    def paths(p: str | Path | list) -> list:
        return [p] if isinstance(p, (str, Path)) else list(p)

    return make_cube(paths(s1), paths(s2) if s2 is not None else None, IngestOptions(**options))  # type: ignore[arg-type]
