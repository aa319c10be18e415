"""Read a folder of per-scene COGs (Planetary Computer / STAC downloads) lazily into per-sensor stacks.

Layout (what :func:`udf.ingest.stac_download.download_scenes` and ``docs/recipes/planetary_computer.md`` write)::

    ROOT/20191103T223012_DESC_032/vv.tif, vh.tif, item.json        Sentinel-1 (sentinel-1-rtc: gamma0, linear)
    ROOT/20191105T025549/B04.tif, B08.tif, SCL.tif, item.json      Sentinel-2 L2A (reflectance x 10000)

One sub-folder per scene, one single-band GeoTIFF per asset (file name = asset key, any case), all on one pixel grid.
``item.json`` is the scene's STAC item (``properties``: ``datetime``, ``sat:orbit_state``, ``sat:relative_orbit``,
``s2:processing_baseline``; ``collection``). Without it the date and orbit come from the folder name. Sentinel-2
L2A from processing baseline 04.00 (2022-01-25 on) stores reflectance + 1000; the offset is removed when the item
says so, and a scene from that date on without an item is refused (its offset cannot be known).
"""

import json
import logging
from pathlib import Path

import dask.array as da
import numpy as np
import xarray as xr

from udf.errors import DatesNotFound, UnsupportedLayout
from udf.ingest.gee import SENSOR_BANDS
from udf.ingest.geotiff import check_same_grid, decode, open_raster
from udf.ingest.names import orbit_from_text, parse_datetime

__all__ = ["ASSETS", "BASELINE_04_START", "is_scene_folder", "read_scene_folders"]

_log = logging.getLogger(__name__)

ASSETS = {"vv": "VV", "vh": "VH", "b04": "B04", "b4": "B04", "b08": "B08", "b8": "B08", "scl": "SCL",
          "qa60": "QA60", "probability": "probability", "msk_cldprb": "MSK_CLDPRB"}
"""Asset file stems (lower case) → cube band names."""
BASELINE_04_START = np.datetime64("2022-01-25")
"""First day of Sentinel-2 processing baseline 04.00 (BOA_ADD_OFFSET = -1000)."""
_TIFS = ("*.tif", "*.tiff", "*.TIF", "*.TIFF")


def is_scene_folder(root: Path) -> bool:
    """True when ``root`` holds sub-folders with asset GeoTIFFs (the layout above)."""
    return root.is_dir() and any(_assets(sub) for sub in root.iterdir() if sub.is_dir())


def _assets(folder: Path) -> dict[str, Path]:
    files = [f for pattern in _TIFS for f in folder.glob(pattern)]
    return {ASSETS[f.stem.lower()]: f for f in files if f.stem.lower() in ASSETS}


def read_scene_folders(root: Path, sensor: str, chunk: int = 128) -> xr.Dataset:
    """Read every scene of ``root`` that has the ``sensor``'s assets.

    Returns:
        A stack as in :mod:`udf.ingest.gee` (float32 ``(t, y, x)`` dask arrays, ``t``/``orbit`` coordinates) with
        attrs ``s1_backscatter`` (from the items' collection) and, for S2, a ``boa_offset`` coordinate.

    Raises:
        UnsupportedLayout: no scene, scenes with different assets, an uncalibrated collection, unknown offsets.
        DatesNotFound: a scene without ``item.json`` and without a date in its folder name.
        GridMismatch: assets on different grids.
    """
    scenes = sorted(sub for sub in root.iterdir() if sub.is_dir() and _assets(sub))
    need = SENSOR_BANDS[sensor]
    mine = [s for s in scenes if all(b in _assets(s) for b in need)]
    partial = [s for s in scenes if s not in mine and any(b in _assets(s) for b in need)]
    if partial:
        raise UnsupportedLayout(f"Scene '{partial[0]}' has assets {sorted(_assets(partial[0]))} but not all of "
                                f"{need}; every {sensor.upper()} scene needs them ({len(partial)} scene(s) incomplete).")
    if not mine:
        found = sorted({b for s in scenes for b in _assets(s)})
        raise UnsupportedLayout(f"No scene folder in '{root}' has the {sensor.upper()} assets {need} (assets found: "
                                f"{found}; expected e.g. {root}/<date>/vv.tif, vh.tif or B04.tif, B08.tif, SCL.tif).")
    bands = _common_bands(mine, sensor)
    rasters = {(s, b): open_raster(_assets(s)[b], chunk) for s in mine for b in bands}
    grid = check_same_grid({str(r.path): r.grid for r in rasters.values()})
    for r in rasters.values():
        if len(r.names) != 1:
            raise UnsupportedLayout(f"'{r.path}' has {len(r.names)} bands; one band per asset file is expected.")
    meta = [_scene_meta(s, sensor) for s in mine]
    data = {b: da.concatenate([decode(rasters[(s, b)], [0], nodata=b in need) for s in mine], axis=0)
            for b in bands}
    coords = {"t": np.array([m["time"] for m in meta], dtype="datetime64[ns]"),
              "orbit": ("t", np.array([m["orbit"] for m in meta])), "y": grid.y(), "x": grid.x()}
    if sensor == "s2":
        coords["boa_offset"] = ("t", np.array([m["offset"] for m in meta], dtype=np.float32))
    ds = xr.Dataset({b: (("t", "y", "x"), v) for b, v in data.items()}, coords=coords)
    ds.attrs = {"crs": grid.crs_wkt or "", "source": str(root), "layout": "stac-folders",
                "raw_dtype": str(rasters[(mine[0], bands[0])].dtype), "bands_in_file": " ".join(bands),
                "collections": " ".join(sorted({m["collection"] for m in meta if m["collection"]}))}
    _log.info("Read %s from %s: %d scenes, assets %s", sensor.upper(), root, len(mine), bands)
    return ds.sortby("t")


def _common_bands(scenes: list[Path], sensor: str) -> list[str]:
    sets = [set(_assets(s)) for s in scenes]
    common = set.intersection(*sets)
    if sensor == "s2":
        masks = {b for b in ("SCL", "QA60", "probability", "MSK_CLDPRB") if any(b in s for s in sets)}
        partial = sorted(masks - common)
        if partial:
            lacking = next(sc for sc, st in zip(scenes, sets) if partial[0] not in st)
            raise UnsupportedLayout(f"Mask asset {partial[0]} exists for some scenes of '{scenes[0].parent}' but "
                                    f"not for '{lacking.name}'; every scene must have the same assets.")
        return [*SENSOR_BANDS[sensor], *sorted(masks)]
    return list(SENSOR_BANDS[sensor])


def _scene_meta(folder: Path, sensor: str) -> dict:
    item_path = folder / "item.json"
    item = json.loads(item_path.read_text(encoding="utf-8")) if item_path.exists() else None
    props = (item or {}).get("properties", {})
    time = parse_datetime(str(props.get("datetime", ""))) if props.get("datetime") else parse_datetime(folder.name)
    if time is None:
        raise DatesNotFound(f"Scene folder '{folder}' has no item.json with a datetime and no date in its name "
                            "(expected e.g. 20191103T223012 or 2019-11-03).")
    orbit = ""
    if props.get("sat:orbit_state"):
        direction = {"ascending": "ASC", "descending": "DESC"}.get(str(props["sat:orbit_state"]).lower(), "")
        rel = props.get("sat:relative_orbit")
        orbit = f"{direction}_{int(rel):03d}" if rel is not None else direction
    elif sensor == "s1":
        orbit = orbit_from_text(folder.name) or ""
    collection = str((item or {}).get("collection", ""))
    if sensor == "s1" and collection == "sentinel-1-grd":
        raise UnsupportedLayout(f"'{folder}' comes from Planetary Computer's sentinel-1-grd, whose values are "
                                "uncalibrated amplitude; use sentinel-1-rtc (gamma0, linear power).")
    return {"time": time, "orbit": orbit, "collection": collection,
            "offset": _boa_offset(folder, props, time, item is not None) if sensor == "s2" else 0.0}


def _boa_offset(folder: Path, props: dict, time: np.datetime64, has_item: bool) -> float:
    if has_item and "s2:processing_baseline" in props:
        if props.get("earthsearch:boa_offset_applied"):
            return 0.0
        return 1000.0 if float(props["s2:processing_baseline"]) >= 4.0 else 0.0
    if time < BASELINE_04_START:
        return 0.0
    raise UnsupportedLayout(
        f"Scene '{folder}' ({str(time)[:10]}) has no item.json with 's2:processing_baseline': from "
        f"{BASELINE_04_START} on, L2A reflectance may carry a +1000 offset that changes NDVI. Keep the STAC item "
        "next to the COGs (as the recipe does)."
    )
