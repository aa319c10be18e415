"""Already-composited exports read as they are: period-folder GeoTIFFs and netCDF time series with a precomputed NDVI.

Layouts (``docs/run.md``):

- **Period folder** (an Earth Engine notebook that composites each period and downloads one image per period):
  ``period_01.tif``, ``period_02.tif``, … with bands ``VV``, ``VH`` (dB or linear) and ``S2ndvi`` (or ``NDVI``/``ndvi``)
  named by their band descriptions (or, when the file has none, by ``--bands VV,VH,S2ndvi`` in file order). Period N
  starts at ``--start`` + (N − 1) × ``--period``; gaps in the numbering are missing periods (the other periods keep
  their dates). Any CRS, EPSG:4326 included.
- **Single polarisation (VH only)**: single-band mosaics per period ``period_NN_mosaic.tif``, or one GeoTIFF stack
  with one band per period (``--bands VH``: band k is period k). VV is then imputed as VH + :data:`VV_FROM_VH_DB`
  dB (the VH/VV ratio becomes a constant), which the cube records and the log warns about: measured on the embedded
  sample (``benchmarks/single_pol.py``) it costs ≤ 1 % MAE with S2 (P1, P2_60) and 6–7 % without (P3, R² 0.50 →
  0.46), whatever offset 6–9 dB is assumed. VV only is refused (not measured).
- **netCDF time series** (``timeseries.nc`` of a Planetary Computer notebook): ``VV``, ``VH`` and an NDVI variable on
  ``t``/``time`` × ``y``/``lat`` × ``x``/``lon``, one step per period (kept; ``--period`` with another length
  re-composites them).

The steps of the input are the cube's steps (no re-compositing). The NDVI variable is used as NDVI "masked upstream"
(its masked pixels are NaN; no cloud mask is asked for). No-data (NaN, ±inf, the file's no-data value, 0 for S1) is
missing. Every input variable is either used or named in a warning saying why it was not; all of it is recorded in
the cube's attributes (:mod:`udf.ingest.stats`).
"""

import logging
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np
import xarray as xr

from udf.errors import BandNotAvailable, CubeError, DatesNotFound, DimensionNotAvailable, UnsupportedLayout
from udf.ingest.decode import Encoding, crs_wkt, decode_time, s1_nodata
from udf.ingest.stats import IngestRecord, check_ndvi_not_empty
from udf.preprocess import check_s1_units, detect_s1_units, s1_to_linear

__all__ = ["NDVI_NAMES", "PERIOD_FILE", "SINGLE_POL_MESSAGE", "VV_FROM_VH_DB", "CompositedOptions", "composited_cube",
           "is_composited", "period_dates"]

_log = logging.getLogger(__name__)

NDVI_NAMES = ("S2ndvi", "NDVI", "ndvi", "s2ndvi", "S2_NDVI", "s2_ndvi")
"""Names of a precomputed NDVI band or variable (matched case-insensitively)."""
PERIOD_FILE = re.compile(r"^period_(\d+)(_mosaic)?\.tiff?$", re.IGNORECASE)
"""``period_NN.tif`` (or ``period_NN_mosaic.tif``): NN is the 1-based period number."""
SINGLE_POL_MESSAGE = (
    "holds VV only ({found}); the fusion model needs VH (with VV, or alone: VV is then imputed from VH, measured in "
    "benchmarks/single_pol.py); VV alone was not measured and is refused. Export VH for every period (e.g. "
    "select(['VV', 'VH']) in the Earth Engine notebook)."
)
VV_FROM_VH_DB = 7.0
"""VV − VH offset (dB) assumed when only VH exists (the sample's median is 7.7 dB; 6 or 9 dB score the same)."""
_S1 = ("VV", "VH")
_TIF = (".tif", ".tiff")
_GRID_VARS = ("crs", "spatial_ref", "transverse_mercator", "latitude_longitude")


@dataclass(frozen=True)
class CompositedOptions:
    """How to read a composited export."""

    start: str | None = None
    """First day of period 1 (``YYYY-MM-DD``): required for period folders (the dates are not in the files)."""
    period: str | None = None
    """Length of a period (``12D``): required for period folders; for netCDF only a check of its steps."""
    bands: tuple[str, ...] | None = None
    """Band names in file order for GeoTIFFs without band descriptions."""
    s1_units: str = "auto"
    """``auto``, ``db`` or ``linear``."""
    s1_backscatter: str = "auto"
    """Recorded in the cube: ``auto`` (from the layout), ``sigma0`` or ``gamma0``."""


def _period_days(period: str | None, what: str) -> int:
    if period is None or not re.fullmatch(r"[1-9][0-9]*D", str(period).strip().upper()):
        raise DatesNotFound(f"{what}: give --period as the length of one period in days (e.g. 12D); got {period!r}.")
    return int(str(period).strip().upper()[:-1])


def _tif_files(paths: Sequence[Path]) -> list[Path]:
    if len(paths) == 1 and paths[0].is_dir():
        return sorted(p for p in paths[0].iterdir() if p.suffix.lower() in _TIF)
    return list(paths)


def is_composited(paths: Sequence[Path], bands: tuple[str, ...] | None = None) -> bool:
    """True for composited inputs.

    Period files (any ``period_NN.tif``), a netCDF with an NDVI variable (a composited series), or one GeoTIFF given
    with one band name (a stack with one band per period).
    """
    paths = [Path(p) for p in paths]
    if len(paths) == 1 and paths[0].suffix.lower() in _TIF and bands is not None and len(bands) == 1:
        return True
    files = _tif_files(paths)
    if files and any(PERIOD_FILE.match(p.name) for p in files):
        return True  # files not named period_NN among them are refused by name
    if len(paths) == 1 and paths[0].suffix.lower() == ".nc" and paths[0].is_file():
        from udf.ingest.cube_io import open_netcdf

        with open_netcdf(paths[0], "Input file", decode_cf=False, decode_times=False) as ds:
            return _ndvi_name([str(v) for v in ds.data_vars]) is not None
    return False


def _ndvi_name(names: Sequence[str]) -> str | None:
    lowered = {n.lower(): n for n in names}
    for cand in NDVI_NAMES:
        if cand.lower() in lowered:
            return lowered[cand.lower()]
    return None


def period_dates(numbers: Sequence[int], start: str | None, period: str | None) -> np.ndarray:
    """Start dates of periods ``numbers`` (1-based): ``start + (N − 1) × period``.

    Raises:
        DatesNotFound: no ``start`` or no ``period``.
    """
    if start is None:
        raise DatesNotFound("Period files hold no dates: give --start (the first day of period 1, e.g. 2024-11-01) "
                            "and --period (e.g. 12D); period N starts at start + (N - 1) x period.")
    days = _period_days(period, "Period files hold no dates")
    first = np.datetime64(start, "D")
    return np.array([first + (n - 1) * np.timedelta64(days, "D") for n in numbers], dtype="datetime64[ns]")


def composited_cube(paths: Sequence[str | Path], opts: CompositedOptions) -> xr.DataArray:
    """The model cube ``(t, bands=[VV, VH, NDVI], y, x)`` of a composited export, one step per input period.

    Raises:
        UnsupportedLayout: single-polarisation input, bands without names, unknown files.
        DatesNotFound: a period folder without ``--start``/``--period``, or unnumbered files.
        BandNotAvailable: VV or VH missing.
        CubeError: the NDVI variable is present but empty, or outside [-1, 1].
    """
    files = [Path(p) for p in paths]
    missing = [str(p) for p in files if not p.exists()]
    if missing:
        raise FileNotFoundError(f"Input file(s) {missing} do not exist.")
    if len(files) == 1 and files[0].suffix.lower() == ".nc":
        return _netcdf(files[0], opts)
    return _period_folder(files, opts)


# --- period folders -------------------------------------------------------------------------------------------


def _numbered(files: list[Path], source: str) -> list[tuple[int, Path]]:
    if not files:
        raise UnsupportedLayout(f"'{source}' holds no GeoTIFF (.tif); expected period_01.tif, period_02.tif, ...")
    bad = [p.name for p in files if not PERIOD_FILE.match(p.name)]
    if bad:
        raise DatesNotFound(f"Files {bad[:5]} in {source} are not named period_NN.tif: the period number in the "
                            "name dates each file (with --start and --period).")
    numbered = sorted((int(PERIOD_FILE.match(p.name)[1]), p) for p in files)  # type: ignore[index]
    nums = [n for n, _ in numbered]
    dup = sorted({n for n in nums if nums.count(n) > 1})
    if dup:
        raise UnsupportedLayout(f"Period number(s) {dup} appear in more than one file in {source}.")
    if nums[0] < 1:
        raise DatesNotFound(f"Period numbers start at 1 (period_01.tif); {source} has period {nums[0]}.")
    return numbered


def _band_names(src: "object", path: Path, bands: tuple[str, ...] | None) -> list[str]:
    names = [d or "" for d in src.descriptions]  # type: ignore[attr-defined]
    if all(names) and len(set(names)) == len(names):
        if bands and tuple(bands) != tuple(names):
            _log.warning("'%s' names its bands %s; --bands %s is ignored (band descriptions win)", path, names,
                         list(bands))
        return names
    if bands:
        if len(bands) != len(names):
            raise UnsupportedLayout(f"--bands lists {len(bands)} names {list(bands)} but '{path}' has {len(names)} "
                                    "bands; give one name per band, in file order.")
        return list(bands)
    raise UnsupportedLayout(f"'{path}' has {len(names)} band(s) without names (band descriptions {names}); give their "
                            "order with --bands, e.g. --bands VV,VH,S2ndvi.")


def _roles(names: list[str], where: str) -> tuple[dict[str, int], dict[str, str]]:
    """Map names to VV/VH/NDVI positions; the other names with the reason they are not used."""
    roles: dict[str, int] = {}
    ignored: dict[str, str] = {}
    ndvi = _ndvi_name(names)
    for i, name in enumerate(names):
        key = name.upper() if name.upper() in _S1 else ("NDVI" if name == ndvi else None)
        if key is None:
            ignored[name] = "not a band the model uses (VV, VH, or an NDVI band named one of " + \
                            f"{', '.join(NDVI_NAMES[:3])})"
        elif key in roles:
            ignored[name] = f"a second {key} band (the first one is used)"
        else:
            roles[key] = i
    s1 = [b for b in _S1 if b in roles]
    if s1 == ["VV"]:
        raise UnsupportedLayout(f"{where} " + SINGLE_POL_MESSAGE.format(found=names[roles["VV"]]))
    if not s1:
        raise BandNotAvailable(f"{where} has no VV and VH band (bands {names}); name them in the band descriptions "
                               "or give --bands in file order, e.g. --bands VV,VH,S2ndvi.")
    return roles, ignored


def _period_folder(files: list[Path], opts: CompositedOptions) -> xr.DataArray:
    import rasterio

    source = str(files[0]) if len(files) == 1 else f"{len(files)} files in {files[0].parent}"
    files = _tif_files(files)
    if len(files) == 1 and files[0].suffix.lower() in _TIF and _is_stack(files[0], opts):
        return _stack(files[0], opts)
    numbered = _numbered(files, source)
    times = period_dates([n for n, _ in numbered], opts.start, opts.period)
    record = IngestRecord(source=source)
    grids, layers, names0 = [], [], None
    for number, path in numbered:
        with rasterio.open(path) as src:
            names = _band_names(src, path, opts.bands)
            roles, ignored = _roles(names, f"'{path}'")
            if names0 is None:
                names0 = names
            elif names != names0:
                raise UnsupportedLayout(f"'{path}' has bands {names}, but '{numbered[0][1]}' has {names0}; every "
                                        "period file must hold the same bands in the same order.")
            t = src.transform
            if t.b != 0 or t.d != 0:
                raise UnsupportedLayout(f"'{path}' has a rotated grid ({t}); export it north-up.")
            grids.append((src.crs.to_wkt() if src.crs else None, tuple(t)[:6], (src.height, src.width), path))
            raw = src.read()
            encodings = [Encoding.from_geotiff(src.nodata, src.scales[i], src.offsets[i]) for i in range(src.count)]
        layers.append(_decode_layer(raw, roles, encodings))
    _same_grids(grids)
    crs, transform, shape, _ = grids[0]
    assert names0 is not None
    roles, ignored = _roles(names0, f"'{numbered[0][1]}'")
    vv = np.stack([lay["VV"] for lay in layers]) if "VV" in roles else None
    vh = np.stack([lay["VH"] for lay in layers])
    nd = np.stack([lay["NDVI"] for lay in layers]) if "NDVI" in roles else None
    gaps = _gaps([n for n, _ in numbered])
    if gaps:
        _log.warning("Periods %s have no file in %s: they are missing periods (the other files keep their dates)",
                     gaps, source)
        record.decided.append(f"periods {gaps} missing from the numbering (no file): left out, other dates kept")
    a, _, c, _, e, f = transform
    y = f + e * (np.arange(shape[0]) + 0.5)
    x = c + a * (np.arange(shape[1]) + 0.5)
    record.decided.append(f"period N starts at {opts.start} + (N - 1) x {opts.period} (from --start/--period)")
    for name, reason in ignored.items():
        record.ignore(name, reason)
    layout = "period-folder"
    backscatter = (f"{opts.s1_backscatter} (stated with --s1-backscatter)" if opts.s1_backscatter != "auto" else
                   "sigma0 (Earth Engine COPERNICUS/S1_GRD convention; not recorded in the file)")
    return _build(vv, vh, nd, times, y, x, crs, names0[roles["VV"]] if "VV" in roles else None, names0[roles["VH"]],
                  names0[roles["NDVI"]] if "NDVI" in roles else None, record, opts, layout, backscatter)


def _decode_layer(raw: np.ndarray, roles: dict[str, int], encodings: list[Encoding]) -> dict[str, np.ndarray]:
    """Decode the bands of ``roles`` (:mod:`udf.ingest.decode`); a zero S1 value is no-data."""
    out = {}
    for key, pos in roles.items():
        band = encodings[pos].decode(raw[pos])
        out[key] = s1_nodata(band) if key in _S1 else band
    return out


def _same_grids(grids: list[tuple]) -> None:
    from udf.errors import GridMismatch

    crs0, t0, shape0, path0 = grids[0]
    for crs, t, shape, path in grids[1:]:
        tol = 1e-3 * max(abs(t0[0]), abs(t0[4]))
        if shape != shape0 or crs != crs0 or not np.allclose(t, t0, rtol=0, atol=tol):
            raise GridMismatch(f"'{path}' ({shape[1]} x {shape[0]} px, transform {t}) is not on the grid of "
                               f"'{path0}' ({shape0[1]} x {shape0[0]} px, transform {t0}); export every period with "
                               "the same crs, scale and region.")


def _gaps(numbers: list[int]) -> list[int]:
    present = set(numbers)
    return [n for n in range(1, max(numbers) + 1) if n not in present]


def _is_stack(path: Path, opts: CompositedOptions) -> bool:
    """One file whose bands are periods of one polarisation: ``--bands VH`` (one name), or every band named alike."""
    import rasterio

    with rasterio.open(path) as src:
        names = [d or "" for d in src.descriptions]
        count = src.count
    if count < 2:
        return False
    return (opts.bands is not None and len(opts.bands) == 1) or (all(names) and len(set(names)) == 1)


def _stack(path: Path, opts: CompositedOptions) -> xr.DataArray:
    import rasterio

    with rasterio.open(path) as src:
        names = [d or "" for d in src.descriptions]
        name = opts.bands[0] if opts.bands and len(opts.bands) == 1 else names[0]
        raw = src.read()
        encodings = [Encoding.from_geotiff(src.nodata, src.scales[i], src.offsets[i]) for i in range(src.count)]
        t, crs, shape = src.transform, (src.crs.to_wkt() if src.crs else None), (src.height, src.width)
    if name.upper() != "VH":
        kind = "VV only" if name.upper() == "VV" else f"band {name!r}"
        raise UnsupportedLayout(f"'{path}' is a stack of {raw.shape[0]} periods of {kind}; a one-band-per-period "
                                "stack must hold VH (give --bands VH), and VV alone is not supported: " +
                                SINGLE_POL_MESSAGE.format(found=name))
    vh = np.stack([_decode_layer(raw, {"VH": k}, encodings)["VH"] for k in range(raw.shape[0])])
    times = period_dates(list(range(1, raw.shape[0] + 1)), opts.start, opts.period)
    record = IngestRecord(source=str(path))
    record.decided.append(f"a stack of {raw.shape[0]} periods of {name}: band k is period k, starting at {opts.start} "
                          f"+ (k - 1) x {opts.period}")
    y = t.f + t.e * (np.arange(shape[0]) + 0.5)
    x = t.c + t.a * (np.arange(shape[1]) + 0.5)
    backscatter = (f"{opts.s1_backscatter} (stated with --s1-backscatter)" if opts.s1_backscatter != "auto" else
                   "unknown (not recorded in the input; state it with --s1-backscatter)")
    return _build(None, vh, None, times, y, x, crs, None, f"{name} (bands 1-{raw.shape[0]})", None, record, opts,
                  "period-stack", backscatter)


# --- netCDF time series ---------------------------------------------------------------------------------------

_TIME = ("t", "time", "timestamp")
_Y = ("y", "lat", "latitude")
_X = ("x", "lon", "longitude")


def _dim(ds: xr.Dataset, names: tuple[str, ...], what: str, path: Path) -> str:
    for n in names:
        if n in ds.dims:
            return n
    raise DimensionNotAvailable(f"No {what} dimension {names} in '{path}'; dims are {dict(ds.sizes)}.")


def _netcdf(path: Path, opts: CompositedOptions) -> xr.DataArray:
    from udf.ingest.base import decode_var
    from udf.ingest.cube_io import open_netcdf

    ds = open_netcdf(path, "Input file", decode_cf=False, decode_times=False)
    tdim, ydim, xdim = _dim(ds, _TIME, "time", path), _dim(ds, _Y, "y", path), _dim(ds, _X, "x", path)
    names = [str(v) for v in ds.data_vars]
    record = IngestRecord(source=str(path))
    usable = []
    for name in names:
        dims = set(ds[name].dims)
        if name in _GRID_VARS or ds[name].attrs.get("grid_mapping_name"):
            record.grid_variable(name)
        elif dims != {tdim, ydim, xdim}:
            record.ignore(name, f"dims {ds[name].dims}, not ({tdim}, {ydim}, {xdim})")
        else:
            usable.append(name)
    roles, ignored = _roles(usable, f"'{path}'")
    for name, reason in ignored.items():
        record.ignore(name, reason)
    times = decode_time(ds[tdim].values, ds[tdim].attrs, tdim)
    order = np.argsort(times, kind="stable")
    decoded = {}
    for key, pos in roles.items():
        values, _ = decode_var(ds[usable[pos]].transpose(tdim, ydim, xdim))
        values = values[order].astype(np.float32)
        decoded[key] = s1_nodata(values) if key in _S1 else values
    times = times[order]
    y, x = ds[ydim].values.astype(np.float64), ds[xdim].values.astype(np.float64)
    crs = crs_wkt({str(n): ds[n].attrs for n in ds.variables}) or ("EPSG:4326" if ydim in ("lat", "latitude") else None)
    resample = _check_cadence(times, opts.period, path, record)
    backscatter = (f"{opts.s1_backscatter} (stated with --s1-backscatter)" if opts.s1_backscatter != "auto" else
                   str(ds.attrs.get("s1_backscatter", "unknown (not recorded in the input; state it with "
                                                         "--s1-backscatter)")))
    ds.close()
    cube = _build(decoded["VV"], decoded["VH"], decoded.get("NDVI"), times, y, x, crs, usable[roles["VV"]],
                         usable[roles["VH"]], usable[roles["NDVI"]] if "NDVI" in roles else None, record, opts,
                         "netcdf-timeseries", backscatter)
    return _recomposite(cube, str(opts.period), opts.start) if resample else cube


def _check_cadence(times: np.ndarray, period: str | None, path: Path, record: IngestRecord) -> bool:
    """Record the input's cadence; True when ``period`` asks for other steps (the cube is then re-composited)."""
    steps = np.unique(np.diff(times).astype("timedelta64[D]").astype(int)) if times.size > 1 else np.array([])
    cadence = f"{int(steps[0])}D" if steps.size == 1 else ("irregular" if steps.size else "one step")
    if period is not None and steps.size and not (steps.size == 1 and f"{int(steps[0])}D" == period.upper()):
        _period_days(period, f"--period for '{path}'")
        record.decided.append(f"the input's {times.size} steps (cadence {cadence}) re-composited to {period} "
                              "(asked with --period): S1 mean of linear power, NDVI of the clearest step")
        _log.warning("'%s' has steps of %s days; re-compositing to --period %s as asked", path,
                     sorted(set(steps.tolist())), period)
        return True
    record.decided.append(f"the input's {times.size} steps kept as they are (cadence {cadence}; no re-compositing)")
    return False


def _recomposite(cube: xr.DataArray, period: str, start: str | None) -> xr.DataArray:
    from udf.ingest.base import build_cube

    nd = cube.sel(bands="NDVI").drop_vars("bands").rename("NDVI")
    out = build_cube(cube.sel(bands=["VV", "VH"]), nd if np.isfinite(nd.values).any() else None, period=period,
                     start=start)
    out.attrs = {**cube.attrs, "composite_period": f"{period} (re-composited from the input's steps)"}
    return out


# --- common ---------------------------------------------------------------------------------------------------


def _build(vv: np.ndarray | None, vh: np.ndarray, nd: np.ndarray | None, times: np.ndarray, y: np.ndarray, x: np.ndarray,
           crs: str | None, vv_name: str | None, vh_name: str, nd_name: str | None, record: IngestRecord,
           opts: CompositedOptions, layout: str, backscatter: str) -> xr.DataArray:
    units = opts.s1_units
    vv_check = vh if vv is None else vv
    if units == "auto":
        units = detect_s1_units(vv_check, vh, dtype=np.dtype(np.float32))
    elif units not in ("db", "linear"):
        raise CubeError(f"--s1-units {units} is not an encoding of float composites; expected auto, db or linear.")
    else:
        check_s1_units(vv_check, vh, units)
    lin_vh = s1_to_linear(vh, units, check=False)
    s1_warning = None
    if vv is None or vv_name is None:
        lin = [lin_vh * np.float32(10 ** (VV_FROM_VH_DB / 10)), lin_vh]
        s1_warning = (f"single polarisation: VV is not in the input and was imputed as VH + {VV_FROM_VH_DB:g} dB "
                      "(measured cost on the embedded sample: <= 1 % MAE with S2, 6-7 % without; "
                      "benchmarks/single_pol.py)")
        _log.warning("%s: %s", record.source, s1_warning)
        record.decided.append(s1_warning)
    else:
        lin = [s1_to_linear(vv, units, check=False), lin_vh]
        record.use(vv_name, f"S1 VV ({units}{' (auto)' if opts.s1_units == 'auto' else ''} -> linear power)")
    record.use(vh_name, f"S1 VH ({units}{' (auto)' if opts.s1_units == 'auto' else ''} -> linear power)")
    if nd is not None and nd_name is not None:
        check_ndvi_not_empty(nd, nd_name, record.source)
        bad = np.isfinite(nd) & (np.abs(nd) > 1.0 + 1e-6)
        if bad.any():
            raise CubeError(f"Band '{nd_name}' of {record.source} has {int(bad.sum())} value(s) outside [-1, 1] (e.g. "
                            f"{float(nd[bad][0]):.4g}); an NDVI band must hold NDVI (convert scaled values first).")
        record.use(nd_name, "NDVI, masked upstream (its missing pixels are cloudy or no data)")
    else:
        nd = np.full_like(lin[0], np.nan)
        record.decided.append("no NDVI band: an S1-only cube (the model predicts NDVI from S1 alone)")
    values = np.stack([lin[0], lin[1], nd.astype(np.float32)], axis=1)
    cube = xr.DataArray(values, dims=("t", "bands", "y", "x"),
                        coords={"t": times.astype("datetime64[ns]"), "bands": ["VV", "VH", "NDVI"], "y": y, "x": x})
    attrs: dict[str, str] = {"source_s1": f"{layout}: {record.source}", "s1_units_input": units + (
        " (auto)" if opts.s1_units == "auto" else ""), "s1_units": "linear", "s1_backscatter": backscatter,
        "s1_orbit_normalisation": "none (composites of the input; orbits not known per period)",
        "composite_period": _cadence_label(times), "layout": layout}
    if crs:
        attrs["crs"] = crs
    if s1_warning:
        attrs["s1_warning"] = s1_warning
    if nd_name is not None:
        attrs.update({"source_s2": f"{layout}: {record.source} (band {nd_name})",
                      "ndvi_cloud_mask": f"masked upstream (precomputed band '{nd_name}' of the input)",
                      "s2_level": "unknown (precomputed NDVI)"})
    attrs.update(record.attrs())
    cube.attrs = attrs
    record.log(dict(cube.sizes))
    return cube


def _cadence_label(times: np.ndarray) -> str:
    if times.size < 2:
        return "one step"
    steps = np.unique(np.diff(times).astype("timedelta64[D]").astype(int))
    if steps.size == 1:
        return f"{int(steps[0])}D (of the input)"
    return f"input periods (steps of {', '.join(str(int(s)) for s in steps)} days)"
