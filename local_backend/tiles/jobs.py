"""A UDF run tile by tile, each tile read, computed and written by the worker that runs it; resumable.

The server never holds a tile's pixels. For each tile it ships a :class:`TileTask` to a dask worker (or runs it in
this process without a cluster): the culled dask graph of the tile's input window (file paths and slices, a few
KB, when the input is a lazily loaded collection) and the path to write to; the UDF code and context travel once
per step as tasks of their own (:mod:`local_backend.tiles.shipping`: a self-contained UDF is ~100 kB). The
worker computes the window (reading only that window), runs the UDF, crops the tile's core and writes it with
:meth:`~local_backend.tiles.store.TileStore.write`. At most ``2 x`` the cluster's threads tiles are in flight, so
neither the server nor a worker needs memory in proportion to the area. The step's result is a lazy cube over the
tile files, which ``save_result`` streams to the output.

The tiles run under the evaluation's :class:`~local_backend.limits.Guard`: :func:`local_backend.jobs.supervision.collect`
stops the tiles in flight on cancel, client disconnect, deadline or the per-tile time limit (restarting the workers
running them) and turns a worker killed twice into a clear error; without a cluster the guard is checked between
tiles.

A step's folder (under :meth:`Execution.tiles_root`) is named by a digest of what determines its tiles: the UDF
code and context, the tile grid, the input's shape and labels, the collection files read and their modification
times, the process graph and the step's position in it. Running the same batch job again therefore finds the tiles
of an interrupted run and computes only the missing ones (a canceled or stopped job keeps its finished tiles too);
progress is reported per tile to the job's log (:func:`~local_backend.jobs.log.job_log`) and ``progress``.
"""

import hashlib
import json
import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator

import numpy as np
import xarray as xr

from local_backend.context import Execution, current
from local_backend.errors import ProcessParameterInvalid, UdfError, UdfRuntimeError
from local_backend.jobs.cluster import DaskCluster
from local_backend.jobs.log import job_log, progress_step
from local_backend.jobs.supervision import collect, wait_for_workers
from local_backend.processes.save import cube_crs
from local_backend.tiles.sandbox import SandboxSpec, policy, run_isolated
from local_backend.tiles.shipping import ship
from local_backend.tiles.store import TileStore
from local_backend.tiles.timing import stage, summarise, timed_tile
from local_backend.tiles.windows import CUBE_ORDER, Window, run_udf_on_array, windows

_log = logging.getLogger(__name__)

__all__ = ["TileTask", "run_tile", "run_tiles"]

SPATIAL = ("y", "x")


@dataclass(frozen=True)
class TileTask:
    """Everything a worker needs for one tile besides the UDF (shipped once per step, see :func:`run_tiles`)."""

    index: tuple[int, int]
    """Tile row and column."""
    window: xr.DataArray
    """The tile's input (core plus overlap): lazy, a culled dask graph, when the input is lazy."""
    rows: Window
    """The tile along ``y``."""
    cols: Window
    """The tile along ``x``."""
    stem: str
    """Where to write the tile (``TileStore.stem``)."""


def _restore_labels(out: xr.DataArray, tile: xr.DataArray) -> xr.DataArray:
    """Give the UDF output the tile's y/x labels when it dropped them but kept the shape."""
    for dim in SPATIAL:
        if dim in out.dims and dim not in out.coords and out.sizes[dim] == tile.sizes[dim]:
            out = out.assign_coords({dim: tile[dim].values})
    return out


def _core(out: xr.DataArray, tile: xr.DataArray, task: TileTask) -> xr.DataArray:
    """The tile's core of the UDF output, dims in openEO order."""
    out = _restore_labels(out, tile)
    if all(d in out.dims for d in SPATIAL):
        for dim in SPATIAL:
            if out.sizes[dim] != tile.sizes[dim]:
                raise UdfRuntimeError(f"the UDF returned {out.sizes[dim]} pixels along '{dim}' for a tile of "
                                      f"{tile.sizes[dim]}; a tiled UDF must keep the tile's grid")
        out = out.isel(y=slice(task.rows.core_offset, task.rows.core_offset + task.rows.core_size),
                       x=slice(task.cols.core_offset, task.cols.core_offset + task.cols.core_size))
    order = [d for d in CUBE_ORDER if d in out.dims] + [d for d in out.dims if d not in CUBE_ORDER]
    return out.transpose(*order)


def run_tile(task: TileTask, code: str, context: dict | None, isolation: SandboxSpec | None = None) -> dict[str, Any]:
    """Compute one tile in this process: read its window, run the UDF, write the core; return its description.

    Args:
        task: the tile.
        code: UDF source.
        context: the UDF's own context.
        isolation: run the UDF in a sandbox (:mod:`local_backend.tiles.sandbox`) with this spec (None: in this process).

    Raises:
        UdfRuntimeError: whatever the UDF raised, as text.
    """
    start = time.perf_counter()
    with timed_tile() as timer:
        tile = task.window.compute(scheduler="synchronous")  # read and decode: timed by the collection reader
        with stage("udf"):
            if isolation is None:
                out = _core(run_udf_on_array(tile, code, context), tile, task)
            else:
                out = _core(run_isolated(tile, code, context, str(Path(task.stem).parent), isolation), tile, task)
        meta = TileStore.write(out, Path(task.stem), time.perf_counter() - start, timer)
    return {**meta, "index": list(task.index)}


def _digest(data: xr.DataArray, parts: dict[str, Any]) -> str:
    """Key of a tiled step: ``parts`` plus the input's dims, shape, dtype and every coordinate's labels."""
    digest = hashlib.sha256()
    head = {**parts, "dims": [str(d) for d in data.dims], "shape": list(data.shape), "dtype": str(data.dtype)}
    digest.update(json.dumps(head, sort_keys=True, default=str).encode())
    for name in sorted(str(n) for n in data.coords):
        values = np.asarray(data[name].values)
        digest.update(name.encode())
        digest.update(values.astype(str).tobytes() if values.dtype.kind in "OUS" else values.tobytes())
    return digest.hexdigest()[:24]


class _Progress:
    """Per-tile lines in the job log (or the server log) and the percentage of tiles done (a job's ``progress``)."""

    def __init__(self, execution: Execution, total: int, done: int, many: bool) -> None:
        self.execution, self.total, self.done, self.many = execution, total, done, many
        self.timings: list[dict[str, Any]] = []
        """Stage times of the tiles computed by this run (:meth:`~local_backend.tiles.timing.TileTimer.describe`)."""
        self._report()

    def _report(self) -> None:
        if self.execution.progress is not None:
            self.execution.progress(100.0 * self.done / self.total)

    def tile(self, meta: dict[str, Any]) -> None:
        """Record one finished tile (a log line for every tile, or about 50 lines for many tiles)."""
        if self.many and not all(d in meta["dims"] for d in SPATIAL):
            raise UdfError(f"the UDF removed a spatial dimension (output dims {tuple(meta['dims'])}); "
                           f"it cannot be tiled")
        self.done += 1
        if "timing" in meta:
            self.timings.append(meta["timing"])
        if self.done == self.total or self.done % progress_step(self.total) == 0:
            i, j = meta["index"]
            job_log(self.execution.job_id, f"UDF tile {self.done}/{self.total} done: row {i}, column {j}, "
                                           f"{meta['seconds']:.1f} s (pid {meta['pid']} on {meta['host']})")
        self._report()

    def log_stages(self) -> None:
        """One job-log line with the seconds per stage of the tiles computed by this run."""
        if self.timings:
            summary = summarise(self.timings)
            busy = ", ".join(f"{k} {v:.1f} s" for k, v in summary["busy_s"].items())
            job_log(self.execution.job_id, f"tile stages of {summary['tiles']} tile(s): {busy}; tiles "
                                           f"{summary['tile_s']:.1f} s (CPU {summary['cpu_s']:.1f} s) in "
                                           f"{summary['span_s']:.1f} s wall")


def _in_this_thread(execution: Execution, tasks: Iterator[tuple[int, TileTask]], code: str, context: dict | None,
                    finished: Callable[[dict[str, Any]], None], isolation: SandboxSpec | None) -> None:
    """Run the tiles one after the other here, checking the guard between tiles (a running UDF cannot be stopped)."""
    for _, task in tasks:
        execution.guard.check()
        finished(run_tile(task, code, context, isolation))


def _on_workers(execution: Execution, tasks: Iterator[tuple[int, TileTask]], total: int, code: str,
                context: dict | None, finished: Callable[[dict[str, Any]], None],
                isolation: SandboxSpec | None) -> None:
    """Run the tiles on the dask workers, at most twice the cluster's threads in flight, under the guard.

    The UDF code and context go to the workers once per step (:func:`~local_backend.tiles.shipping.ship`), not
    once per tile. :func:`~local_backend.jobs.supervision.collect` stops the tiles in flight (and restarts the workers
    running them) on cancel, client disconnect, deadline, per-tile time limit or the first error.
    """
    client = execution.client
    wait_for_workers(client, execution.guard)
    code_ref, context_ref = ship(client, code), ship(client, context)
    in_flight = max(2, 2 * sum(client.nthreads().values()))

    def submit(task: TileTask) -> Any:
        return client.submit(run_tile, task, code_ref, context_ref, isolation, pure=False)

    collect(execution.dask or DaskCluster(client=client), submit, tasks, total, execution.guard, in_flight, finished)


def _task(data: xr.DataArray, rows: Window, cols: Window, index: tuple[int, int], store: TileStore) -> TileTask:
    import dask

    window = data.isel(y=rows.read, x=cols.read)
    if dask.is_dask_collection(window):
        (window,) = dask.optimize(window)  # cull to this window's chunks, fuse slices into the readers
    return TileTask(index, window, rows, cols, str(store.stem(*index)))


def run_tiles(data: xr.DataArray, code: str, context: dict | None, size: dict[str, int],
              overlap: dict[str, int]) -> xr.DataArray:
    """Run a UDF per spatial tile of ``data``; the result is a lazy cube over the tile files.

    Args:
        data: labelled cube with ``y`` and ``x`` (lazy: tiles read their window where they run).
        code: UDF source.
        context: the UDF's own context.
        size: core tile size per spatial dim (pixels); a dim missing here is not split.
        overlap: pixels read on each side per spatial dim.

    Raises:
        UdfError: when the UDF fails on any tile (its message is included).
        ProcessParameterInvalid: for a ``context`` that is not an object.
    """
    if context is not None and not isinstance(context, dict):  # a UDF's context is an object (openEO: any type)
        raise ProcessParameterInvalid("run_udf", "context", f"this backend passes an object (or null) to the UDF, "
                                                            f"got {type(context).__name__} {str(context)[:40]!r}")
    execution = current()
    isolation = policy().for_request()
    rows = windows(data.sizes["y"], size.get("y", data.sizes["y"]), overlap.get("y", 0))
    cols = windows(data.sizes["x"], size.get("x", data.sizes["x"]), overlap.get("x", 0))
    parts = {"code": code, "context": context, "size": size, "overlap": overlap,
             "inputs": sorted(set(execution.inputs)), "graph": execution.graph_digest, "step": execution.steps}
    key = _digest(data, parts)
    _log.info("Tiled step %s: %s", key, {k: v for k, v in parts.items() if k != "code"})
    execution.steps += 1
    store = TileStore(execution.tiles_root() / key)
    grid = [(i, j) for i in range(len(rows)) for j in range(len(cols))]
    todo = [ij for ij in grid if not store.done(*ij)]
    execution.log.info("run_udf on %d tile(s) of %s (overlap %s) on %s; %d tile(s) done by an earlier run are kept",
                       len(grid), size, overlap, "dask workers" if execution.client is not None else "this process",
                       len(grid) - len(todo))
    progress = _Progress(execution, len(grid), len(grid) - len(todo), many=len(grid) > 1)
    tasks = ((i * len(cols) + j + 1, _task(data, rows[i], cols[j], (i, j), store)) for i, j in todo)
    try:
        if execution.client is None:
            _in_this_thread(execution, tasks, code, context, progress.tile, isolation)
        else:
            _on_workers(execution, tasks, len(grid), code, context, progress.tile, isolation)
    except UdfRuntimeError as exc:
        raise UdfError(str(exc)) from None
    progress.log_stages()
    cores = [[(w.read.start + w.core_offset, w.core_size) for w in axis] for axis in (rows, cols)]
    crs = cube_crs(data)
    out = store.mosaic(cores[0], cores[1], data["y"].values, data["x"].values, {"crs": crs} if crs else {}, key)
    return _keep_grid_crs(out, data)


def _keep_grid_crs(out: xr.DataArray, data: xr.DataArray) -> xr.DataArray:
    """The input's CRS (rioxarray ``spatial_ref`` coordinate) on a UDF result that kept the grid."""
    if "spatial_ref" in data.coords and "spatial_ref" not in out.coords and {"y", "x"} <= set(out.dims):
        return out.assign_coords(spatial_ref=data.coords["spatial_ref"])
    return out
