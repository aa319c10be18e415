"""Split a cube into spatial tiles (with overlap), run a UDF on each (locally or on dask workers), stitch back."""

import logging
import traceback
from dataclasses import dataclass
from typing import Any

import xarray as xr

from local_backend._context import current
from local_backend.cluster import DaskCluster
from local_backend.errors import UdfError, UdfRuntimeError
from local_backend.joblog import job_log, progress_step
from local_backend.processes._shipping import ship
from local_backend.supervision import collect, wait_for_workers

_log = logging.getLogger(__name__)

CUBE_ORDER = ("t", "bands", "y", "x")


@dataclass(frozen=True)
class Window:
    """One tile along one axis: what is read (core plus overlap) and where the core sits in it."""

    read: slice
    """Index range read from the input (core plus overlap, clipped to the cube)."""
    core_offset: int
    """Start of the core inside the read range."""
    core_size: int
    """Length of the core (kept in the output)."""


def windows(n: int, size: int, overlap: int) -> list[Window]:
    """Tile ``n`` pixels into cores of ``size`` with ``overlap`` pixels read on each side."""
    out = []
    for start in range(0, n, max(size, 1)):
        lo, hi = max(0, start - overlap), min(n, start + size + overlap)
        out.append(Window(slice(lo, hi), start - lo, min(size, n - start)))
    return out


def run_udf_on_array(cube: xr.DataArray, code: str, context: dict | None) -> xr.DataArray:
    """Run UDF ``code`` on one labelled cube exactly as openEO's UDF runtime does (``run_udf_code``).

    Raises:
        UdfRuntimeError: whatever the UDF raised, as text (exception classes defined inside the UDF cannot cross
            process boundaries).
    """
    from openeo.udf import UdfData, XarrayDataCube
    from openeo.udf.run_code import run_udf_code

    order = [d for d in CUBE_ORDER if d in cube.dims] + [d for d in cube.dims if d not in CUBE_ORDER]
    data = UdfData(datacube_list=[XarrayDataCube(cube.transpose(*order))], user_context=dict(context or {}))
    try:
        result = run_udf_code(code=code, data=data)
    except Exception as exc:  # noqa: BLE001 - any UDF failure is reported to the user, with its type and message
        detail = "".join(traceback.format_exception_only(type(exc), exc)).strip()
        raise UdfRuntimeError(detail) from None
    cubes = result.get_datacube_list() or []
    if len(cubes) != 1:
        raise UdfRuntimeError(f"the UDF must return exactly one data cube, it returned {len(cubes)}")
    return cubes[0].get_array()


def _restore_labels(out: xr.DataArray, tile: xr.DataArray) -> xr.DataArray:
    """Give the UDF output the tile's y/x labels when it dropped them but kept the shape."""
    for dim in ("y", "x"):
        if dim in out.dims and dim not in out.coords and out.sizes[dim] == tile.sizes[dim]:
            out = out.assign_coords({dim: tile[dim].values})
    return out


def _progress(done: int, total: int) -> None:
    """Per-tile progress line in the job log (every tile, or about 50 lines for many tiles)."""
    if done == total or done % progress_step(total) == 0:
        job_log(current().job_id, f"UDF tile {done}/{total} done")


def _gather(tiles: list[xr.DataArray], code: str, context: dict | None) -> list[xr.DataArray]:
    execution = current()
    if execution.client is None:
        results = []
        for tile in tiles:  # in this thread: the guard is checked between tiles, a running UDF cannot be stopped
            execution.guard.check()
            results.append(run_udf_on_array(tile, code, context))
            _progress(len(results), len(tiles))
        return results
    wait_for_workers(execution.client, execution.guard)
    code_ref, context_ref = ship(execution.client, code), ship(execution.client, context)  # once per worker
    futures = execution.client.map(run_udf_on_array, tiles, code=code_ref, context=context_ref, pure=False)
    return collect(execution.dask or DaskCluster(client=execution.client), futures, execution.guard,
                   on_done=_progress)


def run_tiled(data: xr.DataArray, code: str, context: dict | None, size: dict[str, int],
              overlap: dict[str, int]) -> xr.DataArray:
    """Run a UDF per spatial tile of ``data`` and stitch the cores back together.

    Args:
        data: labelled cube with ``y`` and ``x``.
        code: UDF source.
        context: the UDF's own context.
        size: core tile size per spatial dim (pixels); a dim missing here is not split.
        overlap: pixels read on each side per spatial dim.

    Raises:
        UdfError: when the UDF fails on any tile (its message is included).
    """
    execution = current()
    computed = data.compute()
    rows = windows(computed.sizes["y"], size.get("y", computed.sizes["y"]), overlap.get("y", 0))
    cols = windows(computed.sizes["x"], size.get("x", computed.sizes["x"]), overlap.get("x", 0))
    tiles = [computed.isel(y=r.read, x=c.read) for r in rows for c in cols]
    execution.log.info("run_udf on %d tile(s) of %s (overlap %s) on %s", len(tiles), size, overlap,
                       "dask workers" if execution.client is not None else "this process")
    try:
        results = _gather(tiles, code, context)
    except UdfRuntimeError as exc:
        raise UdfError(str(exc)) from None
    grid = []
    for i, r in enumerate(rows):
        row = []
        for j, c in enumerate(cols):
            out = _restore_labels(results[i * len(cols) + j], tiles[i * len(cols) + j])
            if "y" in out.dims and "x" in out.dims:
                out = out.isel(y=slice(r.core_offset, r.core_offset + r.core_size),
                               x=slice(c.core_offset, c.core_offset + c.core_size))
            row.append(out)
        grid.append(row)
    return _keep_grid_crs(_stitch(grid, data.attrs), data)


def _keep_grid_crs(out: xr.DataArray, data: xr.DataArray) -> xr.DataArray:
    """The input's CRS (rioxarray ``spatial_ref`` coordinate) on a UDF result that kept the grid but dropped it."""
    if "spatial_ref" in data.coords and "spatial_ref" not in out.coords and {"y", "x"} <= set(out.dims):
        return out.assign_coords(spatial_ref=data.coords["spatial_ref"])
    return out


def _stitch(grid: list[list[xr.DataArray]], attrs: dict[str, Any]) -> xr.DataArray:
    first = grid[0][0]
    if "y" not in first.dims or "x" not in first.dims:
        if len(grid) * len(grid[0]) != 1:
            raise UdfError(f"the UDF removed a spatial dimension (output dims {first.dims}); it cannot be tiled")
        stitched = first
    else:
        stitched = xr.concat([xr.concat(row, dim="x") for row in grid], dim="y")
    order = [d for d in CUBE_ORDER if d in stitched.dims] + [d for d in stitched.dims if d not in CUBE_ORDER]
    stitched = stitched.transpose(*order)
    stitched.attrs = {**{k: v for k, v in attrs.items() if k in ("crs",)}, **stitched.attrs}
    return stitched
