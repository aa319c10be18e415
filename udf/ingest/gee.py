"""Read Google Earth Engine GeoTIFF exports lazily into per-sensor stacks.

Layouts (see ``docs/recipes/gee.md``):

- ``tobands``: one file holding many images, band names ``<image id>_VV`` (``ImageCollection.toBands()``) or
  ``VV, VH, ..., VV_1, VH_1, ...`` (``ee.Image.cat`` of per-period images). Dates come from a sidecar CSV/JSON
  (``--dates``), else from the image ids (S1/S2 product ids, ``YYYYMMDD`` or ``YYYY-MM-DD`` keys).
- ``per-period``: one file per image or period, plain band names, the date in the file name.
- ``cropharvest``: nasaharvest/cropharvest's export (12 periods of 30 days from the start date in the file name,
  ``<id>_<start>_<end>.tif``; per period VV, VH (dB), B1…B12 (L1C TOA ×10000, a cloud-score quality mosaic without
  a mask band), ERA5 temperature and precipitation; then elevation and slope). Band names are used when the file
  has them, else cropharvest's band order.

A stack is an ``xarray.Dataset`` of float32 ``(t, y, x)`` dask arrays named with the cube's band spelling (``VV``,
``VH``, ``B04``, ``B08``, ``SCL``, ``QA60``, ``probability``, ``MSK_CLDPRB``), a ``t`` and an ``orbit`` coordinate
and ``attrs`` ``crs``, ``source``, ``layout``, ``raw_dtype`` and ``bands_in_file``.
"""

import logging
import re
from pathlib import Path

import numpy as np
import xarray as xr

from udf.errors import DatesNotFound, UnsupportedLayout
from udf.ingest.geotiff import Raster, check_same_grid, decode, open_raster
from udf.ingest.names import (
    BandRef,
    SidecarRow,
    canonical_band,
    orbit_from_text,
    parse_datetime,
    parse_stack_names,
    read_sidecar,
)

__all__ = ["CROPHARVEST_BANDS", "SENSOR_BANDS", "read_gee"]

_log = logging.getLogger(__name__)

SENSOR_BANDS = {"s1": ("VV", "VH"), "s2": ("B04", "B08")}
"""Bands every image of a sensor must have."""
_S2_MASKS = ("SCL", "QA60", "probability", "MSK_CLDPRB")
CROPHARVEST_BANDS = ("VV", "VH", "B1", "B2", "B3", "B4", "B5", "B6", "B7", "B8", "B8A", "B9", "B10", "B11", "B12",
                     "temperature_2m", "total_precipitation")
"""cropharvest's bands of one period, in file order (after the periods: elevation, slope)."""
CROPHARVEST_DAYS = 30
_CROPHARVEST_NAME = re.compile(r"_(\d{4}-\d{2}-\d{2})_(\d{4}-\d{2}-\d{2})$")


def read_gee(paths: list[Path], sensor: str, layout: str = "auto", sidecar: Path | None = None,
             chunk: int = 128) -> xr.Dataset:
    """Read the ``sensor`` (``s1`` or ``s2``) images of one or more Earth Engine GeoTIFFs.

    Args:
        paths: one stack, or one file per period.
        sensor: ``s1`` (VV, VH) or ``s2`` (B04, B08 and mask bands).
        layout: ``auto``, ``tobands``, ``per-period`` or ``cropharvest``.
        sidecar: CSV/JSON with the images' dates (and ids, orbits); see :func:`udf.ingest.names.read_sidecar`.
        chunk: spatial chunk edge in pixels.

    Raises:
        UnsupportedLayout: unnamed or unknown bands, images missing a band, files of different layouts.
        DatesNotFound: an image has no date.
        GridMismatch: files on different grids.
    """
    rows = read_sidecar(sidecar) if sidecar else None
    if rows is not None and len(paths) > 1 and any(r.key is None for r in rows):
        raise DatesNotFound(f"Sidecar '{sidecar}' has no 'id' column, so it cannot be matched to {len(paths)} files; "
                            "add the image ids, or put each file's date in its name.")
    read = [_read_one(open_raster(p, chunk), sensor, layout, rows) for p in paths]
    parts = [p for p in read if p is not None]
    if not parts:
        raise UnsupportedLayout(f"No {sensor.upper()} bands {SENSOR_BANDS[sensor]} in {[str(p) for p in paths]}.")
    check_same_grid({str(p.attrs["source"]): p.attrs.pop("_grid") for p in parts})
    stack = xr.concat(parts, dim="t", combine_attrs="drop_conflicts") if len(parts) > 1 else parts[0]
    stack.attrs["source"] = ", ".join(str(p) for p in paths)
    _check_times(stack, sensor)
    return stack.sortby("t")


def _check_times(stack: xr.Dataset, sensor: str) -> None:
    keys = [f"{str(t)[:19]} {o}" for t, o in zip(stack["t"].values, stack["orbit"].values)]
    dup = sorted({k for k in keys if keys.count(k) > 1})
    if dup:
        raise UnsupportedLayout(f"{sensor.upper()} images repeat the same time and orbit: {dup[:5]} in "
                                f"{stack.attrs['source']}; each image must appear once.")


def _read_one(raster: Raster, sensor: str, layout: str, rows: list[SidecarRow] | None) -> xr.Dataset | None:
    names = raster.names
    if layout == "cropharvest" and not any(names):
        names = _cropharvest_names(raster)
    style, refs = parse_stack_names(names, raster.path)
    keys = list(dict.fromkeys(r.key for r in refs))
    by_key: dict[str, dict[str, BandRef]] = {k: {} for k in keys}
    for ref in refs:
        by_key[ref.key][ref.band] = ref
    wanted = [k for k in keys if any(canonical_band(b) in SENSOR_BANDS[sensor] for b in by_key[k])]
    if not wanted:
        return None
    times, orbits = _dates(raster, style, keys, wanted, layout, rows)
    variables = _variables(raster, sensor, wanted, by_key)
    y, x = raster.grid.y(), raster.grid.x()
    ds = xr.Dataset({b: (("t", "y", "x"), v) for b, v in variables.items()},
                    coords={"t": times, "orbit": ("t", orbits), "y": y, "x": x})
    ds.attrs = {"crs": raster.grid.crs_wkt or "", "source": str(raster.path), "raw_dtype": str(raster.dtype),
                "layout": "cropharvest" if layout == "cropharvest" else f"gee-{style}",
                "bands_in_file": " ".join(sorted({r.band for r in refs})), "_grid": raster.grid}
    _log.info("Read %s from %s: %d images, bands %s, layout %s", sensor.upper(), raster.path, len(wanted),
              list(variables), ds.attrs["layout"])
    return ds


def _cropharvest_names(raster: Raster) -> tuple[str, ...]:
    n = len(raster.names)
    per = len(CROPHARVEST_BANDS)
    if n < per + 2 or (n - 2) % per:
        raise UnsupportedLayout(f"'{raster.path}' has {n} unnamed bands; a cropharvest stack has k x {per} + 2 "
                                f"(per period {', '.join(CROPHARVEST_BANDS)}; then elevation, slope).")
    names = [b if k == 0 else f"{b}_{k}" for k in range((n - 2) // per) for b in CROPHARVEST_BANDS]
    _log.info("'%s' has no band names: cropharvest's band order assumed for %d periods", raster.path, (n - 2) // per)
    return tuple(names) + ("elevation", "slope")


def _variables(raster: Raster, sensor: str, keys: list[str], by_key: dict[str, dict[str, BandRef]]) -> dict:
    present = {canonical_band(b) or b: b for k in keys for b in by_key[k]}
    needed = list(SENSOR_BANDS[sensor]) + ([m for m in _S2_MASKS if m in present] if sensor == "s2" else [])
    out = {}
    for band in needed:
        refs = [next((r for b, r in by_key[k].items() if canonical_band(b) == band), None) for k in keys]
        missing = [k for k, r in zip(keys, refs) if r is None]
        if missing:
            raise UnsupportedLayout(
                f"Band {band} is missing for {len(missing)} of {len(keys)} images in '{raster.path}' (e.g. image "
                f"{missing[0]!r}, which has {sorted(by_key[missing[0]])}); every image must have "
                f"{', '.join(needed)}."
            )
        out[band] = decode(raster, [r.position for r in refs if r is not None], nodata=band not in _S2_MASKS)
    return out


def _dates(raster: Raster, style: str, keys: list[str], wanted: list[str], layout: str,
           rows: list[SidecarRow] | None) -> tuple[np.ndarray, np.ndarray]:
    if rows is not None:
        return _dates_from_sidecar(raster, keys, wanted, rows)
    if layout == "cropharvest":
        return _cropharvest_dates(raster, keys, wanted)
    stem = raster.path.stem
    if style == "prefix":
        found = {k: parse_datetime(k) for k in wanted}
        if all(v is not None for v in found.values()):
            return (np.array([found[k] for k in wanted], dtype="datetime64[ns]"),
                    np.array([orbit_from_text(k) or "" for k in wanted]))
        undated = [k for k, v in found.items() if v is None]
        hint = f"image ids without a date: {undated[:4]}"
    elif len(keys) == 1 and (date := parse_datetime(stem)) is not None:
        return np.array([date], dtype="datetime64[ns]"), np.array([orbit_from_text(stem) or ""])
    else:
        hint = f"{len(keys)} images named by position (VV, VV_1, ...) and no date in the file name"
    cropharvest_like = "temperature_2m" in raster.names or "elevation" in raster.names
    raise DatesNotFound(
        f"No dates for '{raster.path}': {hint}. Give --dates SIDECAR (CSV/JSON, one row per image in band order, "
        "column 'date' [, 'id', 'orbit']), export with image ids holding the date, or one file per period with the "
        "date in its name" + (" — the ERA5/elevation bands suggest a cropharvest export: use --layout cropharvest."
                              if cropharvest_like else ".")
    )


def _dates_from_sidecar(raster: Raster, keys: list[str], wanted: list[str],
                        rows: list[SidecarRow]) -> tuple[np.ndarray, np.ndarray]:
    if all(r.key is not None for r in rows):
        table = {r.key: r for r in rows}
        missing = [k for k in wanted if k not in table]
        if missing:
            raise DatesNotFound(f"The sidecar lists no date for images {missing[:5]} of '{raster.path}' "
                                f"({len(missing)} of {len(wanted)}); its ids start {list(table)[:3]}.")
        chosen = [table[k] for k in wanted]
    else:
        if len(rows) != len(keys):
            raise DatesNotFound(f"The sidecar lists {len(rows)} dates but '{raster.path}' holds {len(keys)} images "
                                f"({keys[0]!r} … {keys[-1]!r}); one row per image, in band order, is expected.")
        chosen = [rows[keys.index(k)] for k in wanted]
    orbits = [r.orbit or (orbit_from_text(k) or "") for r, k in zip(chosen, wanted)]
    return np.array([r.date for r in chosen], dtype="datetime64[ns]"), np.array(orbits)


def _cropharvest_dates(raster: Raster, keys: list[str], wanted: list[str]) -> tuple[np.ndarray, np.ndarray]:
    m = _CROPHARVEST_NAME.search(raster.path.stem)
    if not m:
        raise DatesNotFound(f"cropharvest file name '{raster.path.name}' does not end in _<start>_<end> "
                            "(YYYY-MM-DD); rename it as cropharvest writes it or give --dates.")
    start, end = np.datetime64(m[1], "D"), np.datetime64(m[2], "D")
    span = int((end - start) / np.timedelta64(1, "D"))
    if span != CROPHARVEST_DAYS * len(keys):
        raise DatesNotFound(f"'{raster.path.name}' spans {span} days from {start} to {end}, but holds {len(keys)} "
                            f"periods of {CROPHARVEST_DAYS} days ({CROPHARVEST_DAYS * len(keys)} days).")
    starts = {k: start + int(k) * np.timedelta64(CROPHARVEST_DAYS, "D") for k in keys}
    return np.array([starts[k] for k in wanted], dtype="datetime64[ns]"), np.array([""] * len(wanted))
