"""``GET /jobs/{id}/estimate``: size from the pixels the job's graph loads, duration from this server's measured speed.

* ``size``: bytes of the float32 cubes the graph's ``load_collection`` nodes load (their literal extents and bands
  applied to the collection's grid); a graph loading an unknown collection or with extents given by parameters has
  no size estimate.
* ``duration``: those pixels divided by the speed (loaded pixels per second, median) of up to
  :data:`MEASURED_JOBS` jobs this server finished most recently; absent before the first finished job.
* ``costs``: 0; this backend charges nothing (it has no billing plan, see ``GET /``).
"""

import logging
import math
import statistics
from datetime import datetime
from typing import Any

from local_backend.cubes.collections import LocalCollectionCatalog
from local_backend.jobs.store import JobStore

_log = logging.getLogger(__name__)

__all__ = ["MEASURED_JOBS", "estimate", "loaded_pixels"]

MEASURED_JOBS = 20
"""Finished jobs whose speed is measured for the duration estimate."""


def _bbox(extent: Any, crs_wkt: str | None) -> tuple[float, float, float, float] | None:
    """A literal bounding box in the cube's CRS (None: no literal box)."""
    if not isinstance(extent, dict) or not all(isinstance(extent.get(k), (int, float))
                                               for k in ("west", "south", "east", "north")):
        return None
    box = (extent["west"], extent["south"], extent["east"], extent["north"])
    if not crs_wkt:
        return box
    from pyproj import CRS, Transformer

    source = CRS.from_user_input(extent.get("crs") or 4326)
    transformer = Transformer.from_crs(source, CRS.from_user_input(crs_wkt), always_xy=True)
    return tuple(float(v) for v in transformer.transform_bounds(*box))  # type: ignore[return-value]


def _node_pixels(arguments: dict[str, Any], catalog: LocalCollectionCatalog) -> int | None:
    import numpy as np

    collection_id, bands = arguments.get("id"), arguments.get("bands")
    if not isinstance(collection_id, str) or not (bands is None or isinstance(bands, list)):
        return None
    try:
        cube = catalog.open_cube(collection_id, bands)
    except Exception:  # noqa: BLE001 - unknown collection or band: no estimate, the job reports the error
        return None
    x, y = cube["x"].values, cube["y"].values
    nx, ny = x.size, y.size
    box = _bbox(arguments.get("spatial_extent"), cube.attrs.get("crs"))
    if box is not None:
        nx = int(np.count_nonzero((x >= box[0]) & (x <= box[2])))
        ny = int(np.count_nonzero((y >= box[1]) & (y <= box[3])))
    nt = cube.sizes.get("t", 1)
    interval = arguments.get("temporal_extent")
    if "t" in cube.dims and isinstance(interval, list) and len(interval) == 2:
        t = cube["t"].values
        start = np.datetime64(str(interval[0]).rstrip("Z")) if interval[0] else t.min()
        end = np.datetime64(str(interval[1]).rstrip("Z")) if interval[1] else t.max() + np.timedelta64(1, "s")
        nt = int(np.count_nonzero((t >= start) & (t < end)))
    return int(nt * cube.sizes.get("bands", 1) * ny * nx)


def loaded_pixels(process: dict[str, Any], catalog: LocalCollectionCatalog) -> int | None:
    """Pixels (all bands and dates) the graph's ``load_collection`` nodes load; None when one is unknown."""
    from local_backend import graph

    nodes = [n for n in graph.all_nodes(process.get("process_graph") or {}) if n.get("process_id") ==
             "load_collection"]
    counts = [_node_pixels(n.get("arguments") or {}, catalog) for n in nodes]
    if not counts or any(c is None for c in counts):
        return None
    return sum(c for c in counts if c is not None)


def _speed(store: JobStore, catalog: LocalCollectionCatalog) -> float | None:
    """Median loaded pixels per second of the jobs this server finished most recently."""
    from contextlib import closing

    with closing(store._connect()) as db:
        rows = db.execute("SELECT * FROM jobs WHERE status = 'finished' AND started IS NOT NULL AND finished IS NOT "
                          "NULL ORDER BY finished DESC LIMIT ?", (MEASURED_JOBS,)).fetchall()
    speeds = []
    for row in rows:
        record = store._decode(row)
        seconds = (datetime.fromisoformat(record["finished"]) - datetime.fromisoformat(record["started"]))
        pixels = loaded_pixels(record["process"], catalog)
        if pixels and seconds.total_seconds() > 0:
            speeds.append(pixels / seconds.total_seconds())
    return statistics.median(speeds) if speeds else None


def estimate(record: dict[str, Any], store: JobStore, catalog: LocalCollectionCatalog) -> dict[str, Any]:
    """The openEO estimate of one job record (see the module docstring)."""
    body: dict[str, Any] = {"costs": 0}
    pixels = loaded_pixels(record["process"], catalog)
    if pixels is None:
        _log.info("Estimate of job %s: no size (extent or collection not literal/known)", record["id"])
        return body
    body["size"] = pixels * 4
    speed = _speed(store, catalog)
    if speed:
        body["duration"] = f"PT{max(1, math.ceil(pixels / speed))}S"
    _log.info("Estimate of job %s: %d pixels, %s", record["id"], pixels, body.get("duration", "no measured speed"))
    return body
