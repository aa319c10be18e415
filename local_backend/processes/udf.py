"""``run_udf`` at top level and as the callback of ``apply_dimension``, ``reduce_dimension``, ``apply_neighborhood``.

processes-dask hands a callback bare arrays through ``apply_ufunc`` (dimension labels lost) and overwrites the
UDF's own ``context`` with the parent's. Here a callback that is just ``run_udf`` is rewritten (see
:mod:`local_backend.graph`) into the ``s1ndvi_udf_*`` processes below, which give the UDF a labelled
:class:`xarray.DataArray` per spatial tile and its own context, exactly as a cloud backend does.
"""

import logging
from typing import Any, Callable

import xarray as xr

from local_backend.context import current
from local_backend.errors import ProcessParameterInvalid
from local_backend.tiles.jobs import run_tiles

_log = logging.getLogger(__name__)

SPATIAL = ("y", "x")


def _check_runtime(process: str, runtime: str) -> None:
    if str(runtime).lower() != "python":
        raise ProcessParameterInvalid(process, "runtime", f"'{runtime}' is not available; use 'Python'")


def _check_cube(process: str, data: Any) -> xr.DataArray:
    if not isinstance(data, xr.DataArray) or not all(d in data.dims for d in SPATIAL):
        dims = getattr(data, "dims", type(data).__name__)
        raise ProcessParameterInvalid(process, "data", f"a raster cube with y and x is needed, got {dims}")
    return data


def _square(tile: int) -> dict[str, int]:
    return {"y": tile, "x": tile}


def run_udf(data: Any, udf: str, runtime: str = "Python", version: str | None = None,
            context: dict | None = None) -> Any:
    """Run a UDF on a cube (split into spatial tiles of the configured size, no overlap)."""
    _check_runtime("run_udf", runtime)
    if not isinstance(data, xr.DataArray) or not all(d in data.dims for d in SPATIAL):
        from openeo_processes_dask.process_implementations.udf.udf import run_udf as dask_run_udf

        from local_backend.errors import ProcessParameterInvalid
        from local_backend.tiles.sandbox import policy

        if policy().wanted():  # processes-dask would run the code in this process, outside any sandbox
            raise ProcessParameterInvalid("run_udf", "data", "with UDF isolation on, a UDF runs on a cube with "
                                                             "x and y dimensions only")

        _log.info("run_udf on %s without spatial labels: delegating to processes-dask", type(data).__name__)
        return dask_run_udf(data=data, udf=udf, runtime=runtime, context=context)
    return run_tiles(data, udf, context, _square(current().tile_size), {})


def _run_along(process: str, data: xr.DataArray, dimension: str, udf: str, runtime: str,
               udf_context: dict | None) -> xr.DataArray:
    """Checks shared by the dimension-wise UDF callbacks, then the tiled run (whole ``dimension`` in every tile)."""
    data = _check_cube(process, data)
    _check_runtime(process, runtime)
    if dimension not in data.dims:
        raise ProcessParameterInvalid(process, "dimension",
                                      f"'{dimension}' not in the cube's dimensions {list(data.dims)}")
    tile = {} if dimension in SPATIAL else _square(current().tile_size)
    return run_tiles(data, udf, udf_context, tile, {})


def udf_apply_dimension(data: xr.DataArray, dimension: str, udf: str, runtime: str = "Python",
                        version: str | None = None, udf_context: dict | None = None,
                        target_dimension: str | None = None, context: dict | None = None) -> xr.DataArray:
    """``apply_dimension`` whose callback is ``run_udf``: the UDF sees labelled tiles with the whole ``dimension``."""
    out = _run_along("apply_dimension", data, dimension, udf, runtime, udf_context)
    if target_dimension and target_dimension != dimension:
        if target_dimension in out.dims:
            # The UDF built the target dimension itself (e.g. the phenology UDF: t → bands, one t label per
            # farming year); a cloud backend keeps such a UDF's output as returned, and so does this one.
            current().log.info("apply_dimension: the UDF returned %s with '%s' already: kept as returned",
                               dict(out.sizes), target_dimension)
            return out
        out = out.rename({dimension: target_dimension})
    return out


def udf_reduce_dimension(data: xr.DataArray, dimension: str, udf: str, runtime: str = "Python",
                         version: str | None = None, udf_context: dict | None = None,
                         context: dict | None = None) -> xr.DataArray:
    """``reduce_dimension`` whose reducer is ``run_udf``: the UDF must drop ``dimension`` (or leave one label)."""
    out = _run_along("reduce_dimension", data, dimension, udf, runtime, udf_context)
    if dimension in out.dims:
        if out.sizes[dimension] != 1:
            raise ProcessParameterInvalid(
                "reduce_dimension", "reducer",
                f"the UDF returned {out.sizes[dimension]} labels along '{dimension}'; a reducer must return one")
        out = out.squeeze(dimension, drop=True)
    return out


def _pixels(spec: Any, data: xr.DataArray, name: str) -> dict[str, int]:
    """Pixel counts per spatial dim from an openEO ``size``/``overlap`` list (units ``px`` or ``m``)."""
    out: dict[str, int] = {}
    for item in spec or []:
        dim, value, unit = item.get("dimension"), item.get("value"), item.get("unit") or "px"
        if dim not in SPATIAL or value is None:
            continue
        if unit == "m":
            coords = data[dim].values
            step = abs(float(coords[1] - coords[0])) if coords.size > 1 else 1.0
            value = value / step
        if unit not in ("px", "m") or float(value) < 0 or float(value) != int(value):
            raise ProcessParameterInvalid("apply_neighborhood", name,
                                          f"{item!r}: need a whole number of pixels (unit 'px' or 'm')")
        out[dim] = int(value)
    return out


def _neighbourhood(data: xr.DataArray, size: Any, overlap: Any) -> tuple[dict[str, int], dict[str, int]]:
    tile, pad = _pixels(size, data, "size"), _pixels(overlap, data, "overlap")
    for dim in SPATIAL:
        if tile.get(dim, 1) < 1:
            raise ProcessParameterInvalid("apply_neighborhood", "size", f"size along {dim} must be at least 1")
    return tile, pad


def udf_apply_neighborhood(data: xr.DataArray, size: list[dict], udf: str, runtime: str = "Python",
                           version: str | None = None, udf_context: dict | None = None,
                           overlap: list[dict] | None = None, context: dict | None = None) -> xr.DataArray:
    """``apply_neighborhood`` whose process is ``run_udf``: tiles of ``size`` read with ``overlap``, cores kept."""
    data = _check_cube("apply_neighborhood", data)
    _check_runtime("apply_neighborhood", runtime)
    tile, pad = _neighbourhood(data, size, overlap)
    return run_tiles(data, udf, udf_context, tile, pad)


def apply_neighborhood(data: xr.DataArray, process: Callable[..., Any], size: list[dict],
                       overlap: list[dict] | None = None, context: dict | None = None) -> xr.DataArray:
    """``apply_neighborhood`` with a callback other than a lone ``run_udf``.

    openeo-pg-parser-networkx caches a callback node's result after its first call, so such a callback is called
    once, on the whole labelled cube (one neighbourhood); ``size``/``overlap`` are validated only.
    """
    data = _check_cube("apply_neighborhood", data)
    _neighbourhood(data, size, overlap)
    current().log.info("apply_neighborhood with a non-UDF callback: one call on the whole cube")
    return process(data, positional_parameters={"data": 0}, named_parameters={"context": context, "data": data})
