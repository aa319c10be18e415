"""Read S1 and S2 files into model cubes and write them in the openEO netCDF layout.

Supported inputs: the WorldCereal training layout (S1 dB int32 ×1e-4 at 20 m, S2 L2A reflectance uint16 ×1e-4 at
10 m, SCL at 20 m; time in ``timestamp``) and openEO netCDF exports (``t``, one variable per band, uint16
"compressed dB" S1 stored as int16 with ``_Unsigned``). Files are decoded by hand (``decode_cf=False``): fill values,
``_Unsigned``, scale and offset are applied explicitly so that no encoding is guessed silently.
"""

import logging
from pathlib import Path

import numpy as np
import xarray as xr

from udf.errors import BandNotAvailable, CubeError, DimensionNotAvailable
from udf.ingest.compositing import composite_ndvi, composite_s1, regular_grid
from udf.ingest.cube_io import open_netcdf
from udf.ingest.decode import Encoding, crs_wkt, decode_time, ndvi_from_reflectance
from udf.preprocess import NDVI_BAND, S1_BANDS, detect_s1_units, s1_to_linear

_log = logging.getLogger(__name__)

SCL_VALID = (4, 5, 6)
"""SCL classes kept as clear: vegetation, bare soil, water."""
SCL_CLOUDY = (3, 8, 9, 10)
"""SCL classes that a cloud-mask dilation grows: cloud shadow, cloud medium/high probability, cirrus."""
_TIME_NAMES = ("t", "time", "timestamp")


def _time_dim(ds: xr.Dataset, path: Path) -> str:
    for name in _TIME_NAMES:
        if name in ds.dims:
            return name
    raise DimensionNotAvailable(f"No time dimension {_TIME_NAMES} in '{path}'; dims are {dict(ds.sizes)}.")


def decode_var(var: xr.DataArray) -> tuple[np.ndarray, np.dtype]:
    """Decode a netCDF variable read with ``decode_cf=False`` (:class:`udf.ingest.decode.Encoding`, CF rules) to float64.

    Returns:
        The values (NaN for no data) and the raw stored dtype (after ``_Unsigned``).
    """
    encoding = Encoding.from_cf(var.attrs)
    raw = encoding.stored(np.asarray(var.values))
    return encoding.decode(raw, np.float64), raw.dtype


def find_band(ds: xr.Dataset, band: str, path: Path) -> str:
    """Variable of ``ds`` holding ``band`` (exact, ``*-BAND``/``*_BAND`` or by long name); raises BandNotAvailable."""
    names = [str(v) for v in ds.data_vars]
    if band in names:
        return band
    hits = [n for n in names if n.upper().endswith(("-" + band.upper(), "_" + band.upper()))]
    if not hits:  # openEO/WorldCereal exports may name a band B4 with long_name 'S2-L2A-B04'
        hits = [n for n in names if str(ds[n].attrs.get("long_name", "")).upper().endswith("-" + band.upper())]
    if len(hits) != 1:
        raise BandNotAvailable(f"No band {band!r} in '{path}' (variables: {names}); found {len(hits)} candidates.")
    return hits[0]


def open_bands(path: str | Path, bands: tuple[str, ...]) -> tuple[xr.Dataset, np.ndarray, str | None]:
    """Open a netCDF file and decode the requested bands.

    Returns:
        A Dataset with float64 bands over ``(t, y, x)`` (NaN for fill values), the raw dtypes in band order, and the
        CRS as WKT (or None).
    """
    path = Path(path)
    ds = open_netcdf(path, "Input file", decode_cf=False, decode_times=False)
    tdim = _time_dim(ds, path)
    times = decode_time(ds[tdim].values, ds[tdim].attrs, tdim)
    out, dtypes = {}, []
    for band in bands:
        var = ds[find_band(ds, band, path)]
        if set(var.dims) != {tdim, "y", "x"}:
            raise DimensionNotAvailable(f"Band {band!r} in '{path}' has dims {var.dims}; expected ({tdim}, y, x).")
        values, dtype = decode_var(var.transpose(tdim, "y", "x"))
        out[band] = (("t", "y", "x"), values)
        dtypes.append(dtype)
    coords = {"t": times, "y": ds["y"].values.astype(np.float64), "x": ds["x"].values.astype(np.float64)}
    decoded = xr.Dataset(out, coords=coords).sortby("t")
    return decoded, np.array(dtypes, dtype=object), crs_wkt({str(n): ds[n].attrs for n in ds.variables})


def load_s1(path: str | Path, s1_units: str = "auto") -> xr.DataArray:
    """Read VV and VH from a file as linear power.

    Args:
        path: netCDF file (WorldCereal or openEO export layout).
        s1_units: ``auto``, ``db``, ``linear`` or ``uint16_db`` (of the decoded values).

    Returns:
        float32 DataArray ``(t, bands=[VV, VH], y, x)`` of linear power, NaN where no data; ``attrs['crs']`` WKT.
    """
    ds, dtypes, crs = open_bands(path, S1_BANDS)
    units = s1_units
    if units == "auto":
        units = detect_s1_units(ds["VV"].values, ds["VH"].values, dtype=dtypes[0])
    lin = [s1_to_linear(ds[b].values, units) for b in S1_BANDS]
    _log.info("Read S1 from %s: %d acquisitions, %s px, units %s", path, ds.sizes["t"], ds["VV"].shape[1:], units)
    cube = _as_cube(np.stack(lin, axis=1), ds, list(S1_BANDS), crs)
    cube.attrs["s1_units_input"] = units + (" (auto)" if s1_units == "auto" else "")
    return cube


def _as_cube(values: np.ndarray, ds: xr.Dataset, bands: list[str], crs: str | None) -> xr.DataArray:
    cube = xr.DataArray(
        values.astype(np.float32), dims=("t", "bands", "y", "x"),
        coords={"t": ds["t"].values, "bands": bands, "y": ds["y"].values, "x": ds["x"].values},
    )
    if crs:
        cube.attrs["crs"] = crs
    return cube


def dilate(mask: np.ndarray, pixels: int) -> np.ndarray:
    """Grow a boolean ``(..., y, x)`` mask by ``pixels`` in the 8-neighbourhood."""
    out = mask.copy()
    for _ in range(pixels):
        grown = out.copy()
        grown[..., 1:, :] |= out[..., :-1, :]
        grown[..., :-1, :] |= out[..., 1:, :]
        grown[..., :, 1:] |= grown[..., :, :-1]
        grown[..., :, :-1] |= grown[..., :, 1:]
        out = grown
    return out


def scl_clear(scl: np.ndarray, cloud_dilation: int = 0) -> np.ndarray:
    """Clear-sky mask from SCL: classes 4, 5, 6 valid, optionally minus a dilated cloud/shadow mask."""
    clear = np.isin(np.nan_to_num(scl, nan=0).astype(np.int64), SCL_VALID)
    if cloud_dilation > 0:
        cloudy = np.isin(np.nan_to_num(scl, nan=0).astype(np.int64), SCL_CLOUDY)
        clear &= ~dilate(cloudy, cloud_dilation)
    return clear


def _block_mean(values: np.ndarray, factor: int) -> np.ndarray:
    t, ny, nx = values.shape
    blocks = values[:, : ny - ny % factor, : nx - nx % factor].reshape(t, ny // factor, factor, nx // factor, factor)
    with np.errstate(invalid="ignore"):
        mean = np.nanmean(blocks, axis=(2, 4)) if np.isnan(blocks).any() else blocks.mean(axis=(2, 4))
    return np.where(np.isnan(blocks).any(axis=(2, 4)), np.nan, mean)


def to_grid(ds: xr.Dataset, y: np.ndarray, x: np.ndarray, name: str) -> xr.Dataset:
    """Bring ``ds`` onto the target ``y``/``x`` grid.

    An aligned grid finer by an integer factor is block-averaged (a block with any NaN is NaN); a grid of the same
    resolution is matched by nearest label within half a pixel. Anything else raises.
    """
    res_t = abs(float(x[1] - x[0])) if x.size > 1 else 0.0
    res_s = abs(float(ds["x"][1] - ds["x"][0])) if ds.sizes["x"] > 1 else 0.0
    if res_t and res_s and res_t / res_s > 1.5:
        factor = int(round(res_t / res_s))
        out = {v: (("t", "y", "x"), _block_mean(ds[v].values, factor)) for v in ds.data_vars}
        ny_c, nx_c = ds.sizes["y"] // factor, ds.sizes["x"] // factor
        ys = ds["y"].values[: ny_c * factor].reshape(ny_c, factor).mean(axis=1)
        xs = ds["x"].values[: nx_c * factor].reshape(nx_c, factor).mean(axis=1)
        ds = xr.Dataset(out, coords={"t": ds["t"].values, "y": ys, "x": xs})
    try:
        return ds.sel(y=y, x=x, method="nearest", tolerance=max(res_t, 1e-6) / 2)
    except KeyError as exc:
        raise CubeError(
            f"{name} grid (x {float(ds['x'].min())}..{float(ds['x'].max())}, res {res_s}) does not cover the S1 grid "
            f"(x {float(x.min())}..{float(x.max())}, res {res_t})."
        ) from exc


def load_s2_ndvi(path: str | Path, target: xr.DataArray, scl_path: str | Path | None = None,
                 cloud_dilation: int = 0, use_scl: bool = True) -> xr.DataArray:
    """Compute SCL-masked NDVI = (B08 − B04)/(B08 + B04) on the grid of ``target``.

    Reflectances are averaged to the target grid first, then NDVI is computed and pixels whose SCL is not 4/5/6
    become NaN.

    Args:
        path: file with B04 and B08 (and SCL when ``scl_path`` is None).
        target: cube whose ``y``/``x`` labels define the grid (usually the S1 cube).
        scl_path: separate file with SCL (WorldCereal keeps it in the 20 m file).
        cloud_dilation: pixels by which clouds and shadows are grown before masking.
        use_scl: False only for composites that were cloud-masked upstream and carry no SCL (logged as a warning).

    Returns:
        float32 DataArray ``(t, y, x)`` named ``NDVI``, NaN where cloudy or missing.
    """
    refl, _, crs = open_bands(path, ("B04", "B08"))
    _check_crs(crs, target.attrs.get("crs"), path)
    refl = to_grid(refl, target["y"].values, target["x"].values, f"S2 '{path}'")
    red, nir = refl["B04"].values, refl["B08"].values
    ndvi = ndvi_from_reflectance(red, nir)
    if use_scl:
        scl_ds, _, _ = open_bands(scl_path or path, ("SCL",))
        scl = to_grid(scl_ds, target["y"].values, target["x"].values, f"SCL '{scl_path or path}'")
        scl = scl.reindex(t=refl["t"].values, method="nearest", tolerance=np.timedelta64(1, "h"))  # type: ignore[arg-type]
        ndvi[~scl_clear(scl["SCL"].values, cloud_dilation)] = np.nan
    else:
        _log.info("NDVI from '%s' is not masked with SCL (use_scl=False): the composites must be cloud-free", path)
    _log.info("Read S2 from %s: %d scenes, %.1f%% clear pixels", path, ndvi.shape[0], 100 * np.isfinite(ndvi).mean())
    return xr.DataArray(ndvi, dims=("t", "y", "x"), name=NDVI_BAND,
                        coords={"t": refl["t"].values, "y": target["y"].values, "x": target["x"].values})


def _check_crs(crs: str | None, target_crs: str | None, path: str | Path) -> None:
    if crs and target_crs:
        from pyproj import CRS  # local: pyproj is only needed when both files carry a CRS

        if not CRS.from_user_input(crs).equals(CRS.from_user_input(target_crs)):
            raise CubeError(f"CRS of '{path}' ({CRS.from_user_input(crs).to_string()}) differs from the S1 CRS "
                            f"({CRS.from_user_input(target_crs).to_string()}); reproject first.")


def build_cube(s1: xr.DataArray, ndvi: xr.DataArray | None, period: str | None = "10D",
               start: str | None = None, end: str | None = None, s2_rule: str = "clearest") -> xr.DataArray:
    """Merge S1 (linear) and S2 NDVI into a model cube, composited onto a regular grid or per acquisition.

    Args:
        s1: ``(t, bands=[VV, VH], y, x)`` linear power.
        ndvi: ``(t, y, x)`` NDVI on the same grid, or None for an S1-only cube.
        period: composite length as pandas-style days (``"5D"``, ``"10D"``, ``"12D"``), or None to keep every
            acquisition date (S1 and S2 dates merged by day).
        start: first day of the grid (default: the first acquisition's day).
        end: last day covered (default: the last acquisition).
        s2_rule: ``"clearest"`` (NDVI of the scene with the largest clear fraction) or ``"max"`` (maximum NDVI).

    Returns:
        float32 cube ``(t, bands=[VV, VH, NDVI], y, x)``: VV/VH mean linear power, NDVI from the rule above.
    """
    days = None if period is None else period_days(period)
    t_all = s1["t"].values if ndvi is None else np.concatenate([s1["t"].values, ndvi["t"].values])
    t0 = np.datetime64(start or str(t_all.min())[:10], "D")
    t1 = np.datetime64(end or str(t_all.max())[:10], "D") + np.timedelta64(1, "D")
    edges = regular_grid(t0, t1, days) if days else acquisition_days(t_all)
    vv_vh = composite_s1(s1.values, s1["t"].values, edges)
    if ndvi is None:
        nd = np.full((len(edges) - 1,) + vv_vh.shape[2:], np.nan, dtype=np.float32)
    else:
        nd = composite_ndvi(ndvi.values, ndvi["t"].values, edges, rule=s2_rule)
    values = np.concatenate([vv_vh, nd[:, None]], axis=1)
    cube = xr.DataArray(values.astype(np.float32), dims=("t", "bands", "y", "x"),
                        coords={"t": edges[:-1].astype("datetime64[ns]"), "bands": [*S1_BANDS, NDVI_BAND],
                                "y": s1["y"].values, "x": s1["x"].values}, attrs=dict(s1.attrs))
    cube.attrs["s1_units"] = "linear"
    cube.attrs["composite_period"] = period or "acquisition"
    return cube


def period_days(period: str) -> int:
    """Days of a composite period such as ``"10D"``; ValueError otherwise."""
    text = period.strip().upper()
    if not text.endswith("D") or not text[:-1].isdigit() or int(text[:-1]) < 1:
        raise ValueError(f"Composite period {period!r} is not a number of days such as '5D', '10D' or '12D'.")
    return int(text[:-1])


def acquisition_days(times: np.ndarray) -> np.ndarray:
    """Edges of one composite per acquisition day (each day and the day after the last)."""
    days = np.unique(np.asarray(times).astype("datetime64[D]"))
    return np.concatenate([days, days[-1:] + np.timedelta64(1, "D")])


def load_sample_cube(period: str | None = "10D", cloud_dilation: int = 0) -> xr.DataArray:
    """Build the model cube of the embedded WorldCereal sample (see ``udf/data/sample/ATTRIBUTION.md``)."""
    from udf.ingest.sample import sample_files

    files = sample_files()
    s1 = load_s1(files["s1"])
    ndvi = load_s2_ndvi(files["s2_10m"], s1, scl_path=files["s2_20m"], cloud_dilation=cloud_dilation)
    return build_cube(s1, ndvi, period=period)
