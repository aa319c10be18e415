"""Download STAC items (Planetary Computer ``sentinel-1-rtc``, ``sentinel-2-l2a``) into the scene-folder layout.

The layout is the one :mod:`udf.ingest.folder` reads: ``ROOT/<YYYYMMDDTHHMMSS>[_<ORBIT>]/<asset>.tif`` plus the
scene's ``item.json``. Items are grouped into scenes by solar day and orbit (slices of one pass are one scene;
the ascending and descending passes of the same day are two), loaded with odc-stac onto one
:class:`odc.geo.geobox.GeoBox` shared by S1 and S2, mosaicked and written as COGs, one scene at a time.

Used by ``docs/recipes/planetary_computer.md``; runs offline on local items too (the tests do).
"""

import json
import logging
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Iterable, Sequence

import numpy as np
import xarray as xr

from udf.errors import UnsupportedLayout

if TYPE_CHECKING:
    import pystac
    from odc.geo.geobox import GeoBox

__all__ = ["download_scenes", "geobox_for", "group_items", "scene_name", "write_scene"]

_log = logging.getLogger(__name__)

_KEEP = ("datetime", "platform", "sat:orbit_state", "sat:relative_orbit", "s2:processing_baseline",
         "s2:mgrs_tile", "sar:polarizations", "s1:processing_level", "earthsearch:boa_offset_applied")


def _when(item: "pystac.Item") -> datetime:
    """Acquisition time of an item (naive UTC)."""
    if item.datetime is None:
        raise UnsupportedLayout(f"STAC item {item.id} has no datetime (only a range); cannot date the scene.")
    return item.datetime.replace(tzinfo=None)


def _orbit(item: "pystac.Item") -> str:
    props = item.properties
    direction = {"ascending": "ASC", "descending": "DESC"}.get(str(props.get("sat:orbit_state", "")).lower(), "")
    rel = props.get("sat:relative_orbit")
    return "_".join(p for p in (direction, f"{int(rel):03d}" if rel is not None else "") if p)


def _solar_day(item: "pystac.Item") -> str:
    """Local solar date at the item's centre longitude (keeps one pass on one day anywhere on Earth)."""
    lon = (item.bbox[0] + item.bbox[2]) / 2 if item.bbox else 0.0
    when = np.datetime64(_when(item), "s") + np.timedelta64(int(lon / 15.0 * 3600), "s")
    return str(when)[:10]


def group_items(items: Iterable["pystac.Item"]) -> list[list["pystac.Item"]]:
    """Group items of one pass into scenes: same solar day and orbit (state + relative orbit), sorted by time."""
    groups: dict[tuple[str, str, str], list] = {}
    for item in sorted(items, key=_when):
        groups.setdefault((_solar_day(item), _orbit(item), str(item.collection_id)), []).append(item)
    return list(groups.values())


def scene_name(group: Sequence["pystac.Item"]) -> str:
    """Folder name of a scene: first acquisition time, then the orbit (``20191103T223012_DESC_032``)."""
    first = min(group, key=_when)
    stamp = _when(first).strftime("%Y%m%dT%H%M%S")
    orbit = _orbit(first) if str(first.collection_id).startswith("sentinel-1") else ""
    return f"{stamp}_{orbit}" if orbit else stamp


def geobox_for(bbox_lonlat: tuple[float, float, float, float], crs: str, resolution: float) -> "GeoBox":
    """The pixel grid shared by every scene: ``bbox_lonlat`` (west, south, east, north) in ``crs`` at ``resolution``."""
    from odc.geo.geobox import GeoBox
    from odc.geo.geom import BoundingBox

    box = BoundingBox(*bbox_lonlat, crs="EPSG:4326").to_crs(crs)
    return GeoBox.from_bbox(box, crs=crs, resolution=resolution)


def write_scene(folder: Path, scene: xr.Dataset, item: dict) -> Path:
    """Write each variable of ``scene`` (``(y, x)`` with a CRS) as ``<name>.tif`` COG, and ``item.json``."""
    import rioxarray  # noqa: F401  (registers .rio)

    folder.mkdir(parents=True, exist_ok=True)
    for name, band in scene.data_vars.items():
        band = band.squeeze(drop=True)
        nodata = band.attrs.get("nodata")
        if nodata is not None:
            band = band.rio.write_nodata(nodata, encoded=False)
        band.rio.to_raster(folder / f"{name}.tif", driver="COG")
    (folder / "item.json").write_text(json.dumps(item, indent=1, default=str), encoding="utf-8")
    return folder


def download_scenes(items: Iterable["pystac.Item"], bands: Sequence[str], root: str | Path,
                    geobox: "GeoBox", resampling: dict[str, str] | None = None,
                    patch_url: Callable[[str], str] | None = None,
                    progress: Callable[[int, int, str], None] | None = None) -> list[Path]:
    """Load each scene of ``items`` onto ``geobox`` and write it under ``root`` (existing scenes are kept).

    Args:
        items: STAC items of one collection.
        bands: asset keys (``["vv", "vh"]`` or ``["B04", "B08", "SCL"]``).
        root: output folder.
        geobox: shared pixel grid (:func:`geobox_for`).
        resampling: per-band resampling (use ``nearest`` for SCL).
        patch_url: URL signer (``planetary_computer.sign``).
        progress: called with (done, total, scene name) after each scene.

    Returns:
        The scene folders.
    """
    import odc.stac

    root = Path(root)
    groups = group_items(items)
    out = []
    for i, group in enumerate(groups):
        folder = root / scene_name(group)
        if not (folder / "item.json").exists():
            ds = odc.stac.load(group, bands=list(bands), geobox=geobox, resampling=resampling,
                               groupby=lambda item, parsed, idx: 0, patch_url=patch_url)
            first = min(group, key=_when)
            props = {k: first.properties[k] for k in _KEEP if k in first.properties}
            item = {"collection": first.collection_id, "properties": props, "ids": [it.id for it in group]}
            write_scene(folder, ds.isel(time=0), item)
        out.append(folder)
        if progress:
            progress(i + 1, len(groups), folder.name)
    _log.info("%d scenes in %s", len(out), root)
    return out
