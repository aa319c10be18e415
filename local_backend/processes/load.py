"""``load_collection`` (spatial extent with CRS, temporal extent, bands) and ``sar_backscatter`` on local data."""

import logging
from typing import Any

import numpy as np
import pandas as pd
import rioxarray  # noqa: F401 - registers the .rio accessor used to tag cubes with their CRS
import xarray as xr

from local_backend.context import current
from local_backend.errors import ProcessParameterInvalid, ResultTooLarge, SarBackscatterUnsupported

_log = logging.getLogger(__name__)


def _bbox(spatial_extent: Any) -> tuple[float, float, float, float, str] | None:
    """``(west, south, east, north, crs)`` from a pg-parser ``BoundingBox`` or a plain dict."""
    if spatial_extent is None:
        return None
    def get(key: str) -> Any:
        return spatial_extent.get(key) if isinstance(spatial_extent, dict) else getattr(spatial_extent, key, None)

    try:
        values = [float(get(k)) for k in ("west", "south", "east", "north")]
    except (TypeError, ValueError) as exc:
        raise ProcessParameterInvalid("load_collection", "spatial_extent",
                                      f"expected west/south/east/north numbers, got {spatial_extent!r}") from exc
    crs = getattr(spatial_extent, "crs", None) if not isinstance(spatial_extent, dict) else spatial_extent.get("crs")
    return values[0], values[1], values[2], values[3], str(crs or 4326)


def _to_cube_crs(bbox: tuple[float, float, float, float, str], cube_crs: str | None) -> tuple[float, ...]:
    west, south, east, north, crs = bbox
    if cube_crs is None:
        return west, south, east, north
    from pyproj import CRS, Transformer

    source = CRS.from_user_input(int(crs) if str(crs).isdigit() else crs)
    target = CRS.from_user_input(cube_crs)
    if source.equals(target):
        return west, south, east, north
    transformer = Transformer.from_crs(source, target, always_xy=True)
    return tuple(float(v) for v in transformer.transform_bounds(west, south, east, north))


def _timestamp(value: Any) -> np.datetime64 | None:
    if value is None:
        return None
    value = getattr(value, "root", value)
    stamp = pd.Timestamp(str(value))
    if stamp.tzinfo is not None:
        stamp = stamp.tz_convert("UTC").tz_localize(None)
    return np.datetime64(stamp.to_datetime64(), "ns")


def _temporal(temporal_extent: Any) -> tuple[np.datetime64 | None, np.datetime64 | None] | None:
    if temporal_extent is None:
        return None
    values = list(getattr(temporal_extent, "root", temporal_extent))
    if len(values) != 2:
        raise ProcessParameterInvalid("load_collection", "temporal_extent",
                                      f"expected [start, end], got {temporal_extent!r}")
    return _timestamp(values[0]), _timestamp(values[1])


def _crs_name(crs: str) -> str:
    from pyproj import CRS

    parsed = CRS.from_user_input(int(crs) if str(crs).isdigit() else crs)
    return str(parsed.to_string())


def _positions(keep: np.ndarray) -> slice | np.ndarray:
    """Positions where ``keep`` holds, as a slice when contiguous (a slice of a lazy cube reads only that window)."""
    index = np.flatnonzero(keep)
    if index.size and index[-1] - index[0] + 1 == index.size:
        return slice(int(index[0]), int(index[-1]) + 1)
    return index


def spatial_selection(cube: xr.DataArray, spatial_extent: Any) -> dict[str, slice | np.ndarray]:
    """Positions along ``y`` and ``x`` of the pixels whose centres lie inside the bounding box (any CRS)."""
    bbox = _bbox(spatial_extent)
    if bbox is None:
        return {}
    west, south, east, north = _to_cube_crs(bbox, cube.attrs.get("crs"))
    x, y = cube["x"].values, cube["y"].values
    inside_x, inside_y = (x >= west) & (x <= east), (y >= south) & (y <= north)
    if not inside_x.any() or not inside_y.any():
        raise ProcessParameterInvalid(
            "load_collection", "spatial_extent",
            f"no pixel of '{cube.attrs.get('collection')}' inside [{bbox[0]}, {bbox[1]}, {bbox[2]}, {bbox[3]}] "
            f"({_crs_name(bbox[4])}) (in the collection CRS: x {west:.1f}.."
            f"{east:.1f}, y {south:.1f}..{north:.1f}; data covers x {x.min():.1f}..{x.max():.1f}, "
            f"y {y.min():.1f}..{y.max():.1f})")
    return {"x": _positions(inside_x), "y": _positions(inside_y)}


def temporal_selection(cube: xr.DataArray, temporal_extent: Any) -> dict[str, slice | np.ndarray]:
    """Positions along ``t`` of the labels in ``[start, end)`` (openEO: the end is excluded)."""
    interval = _temporal(temporal_extent)
    if interval is None or "t" not in cube.dims:
        return {}
    start, end = interval
    t = cube["t"].values
    keep = np.ones(t.shape, dtype=bool)
    if start is not None:
        keep &= t >= start
    if end is not None:
        keep &= t < end
    if not keep.any():
        raise ProcessParameterInvalid(
            "load_collection", "temporal_extent",
            f"no acquisition of '{cube.attrs.get('collection')}' in [{start}, {end}); data covers "
            f"{t.min()} .. {t.max()}")
    return {"t": _positions(keep)}


def load_collection(id: str, spatial_extent: Any = None, temporal_extent: Any = None,
                    bands: list[str] | None = None, properties: Any = None) -> xr.DataArray:
    """Load a local collection lazily as a dask-backed ``(t, bands, y, x)`` float32 cube (nothing read here).

    Args:
        id: collection id (see ``GET /collections``).
        spatial_extent: bounding box ``west/south/east/north`` with optional ``crs`` (default EPSG:4326).
        temporal_extent: ``[start, end)``; either end may be null.
        bands: band names to keep, in this order (default: all).
        properties: metadata filters; not supported on local files (must be empty).

    Raises:
        ResultTooLarge: when a synchronous request would load more than the configured limit.
    """
    execution = current()
    if properties:
        raise ProcessParameterInvalid("load_collection", "properties",
                                      "metadata property filters are not supported on local collections")
    lazy = execution.catalog.open_cube(id, list(bands) if bands else None)
    selection = {**spatial_selection(lazy, spatial_extent), **temporal_selection(lazy, temporal_extent)}
    cube = lazy.isel(selection)  # one selection, which dask fuses into the readers' calls
    if execution.sync and cube.nbytes > execution.max_sync_bytes:
        raise ResultTooLarge(int(cube.nbytes), execution.max_sync_bytes)
    path = execution.catalog.get(id).path
    execution.inputs.append(f"{path}@{path.stat().st_mtime_ns}")
    execution.log.info("load_collection %s: %s (lazy, %.1f MiB as float32)", id, dict(cube.sizes), cube.nbytes / 2**20)
    return cube.rio.write_crs(cube.attrs["crs"]) if cube.attrs.get("crs") else cube


def _requested(coefficient: str | None, flags: dict[str, Any]) -> dict[str, Any]:
    return {"coefficient": coefficient, **flags}


def sar_backscatter(data: xr.DataArray, coefficient: str | None = "gamma0-terrain", elevation_model: str | None = None,
                    mask: bool = False, contributing_area: bool = False, local_incidence_angle: bool = False,
                    ellipsoid_incidence_angle: bool = False, noise_removal: bool = True,
                    options: dict | None = None) -> xr.DataArray:
    """Identity on a collection whose metadata says it already holds the requested backscatter.

    Local S1 data is already calibrated (``s1ndvi:backscatter`` in the collection metadata); this checks that what
    the graph asks for is what the data is, logs it, and returns the data unchanged. Anything else is refused:
    computing backscatter from raw GRD is out of scope here.
    """
    execution = current()
    collection_id = data.attrs.get("collection")
    if collection_id is None:
        raise SarBackscatterUnsupported("sar_backscatter", "data",
                                        "apply sar_backscatter directly to the output of load_collection")
    have = execution.catalog.get(collection_id).metadata.get("s1ndvi:backscatter")
    if have is None:
        raise SarBackscatterUnsupported(
            "sar_backscatter", "data",
            f"collection '{collection_id}' is not calibrated backscatter (no 's1ndvi:backscatter' in its metadata)")
    if coefficient is not None and coefficient != have["coefficient"]:
        raise SarBackscatterUnsupported(
            "sar_backscatter", "coefficient",
            f"'{coefficient}' requested but local collection '{collection_id}' holds '{have['coefficient']}'; "
            f"use coefficient='{have['coefficient']}'")
    extras = {"mask": mask, "contributing_area": contributing_area, "local_incidence_angle": local_incidence_angle,
              "ellipsoid_incidence_angle": ellipsoid_incidence_angle}
    unsupported = [k for k, v in extras.items() if v and not have.get(k)]
    if unsupported:
        raise SarBackscatterUnsupported("sar_backscatter", unsupported[0],
                                        f"extra bands {unsupported} are not available in '{collection_id}'")
    execution.log.info("sar_backscatter on %s: data is already %s backscatter (%s); returned unchanged",
                       collection_id, have["coefficient"], have.get("units", "linear"))
    return data
