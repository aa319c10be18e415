"""The user's notebook exports, written from the embedded WorldCereal sample (31UDS, 2017-08 → 2018-11).

- :func:`write_period_folder`: the Earth Engine notebook's layout: one GeoTIFF per 12-day period, ``period_NN.tif``,
  bands ``VV``, ``VH`` (median of S1 dB), ``S2ndvi`` (median of SCL-masked NDVI) named by band descriptions,
  reprojected to EPSG:4326, masked pixels nodata (NaN).
- :func:`write_timeseries_nc`: the Planetary Computer notebook's ``timeseries.nc``: ``VV``, ``VH`` linear power and
  ``S2ndvi`` on ``t, y, x`` (UTM grid of the sample, CRS in ``spatial_ref``).
"""

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import xarray as xr

from udf.ingest.base import load_s1, load_s2_ndvi
from udf.ingest.compositing import regular_grid
from udf.ingest.sample import sample_files

START = "2017-08-01"
PERIOD_DAYS = 12


@dataclass
class Composites:
    """12-day composites of the sample on its own UTM grid: ``(P, y, x)`` arrays."""

    times: np.ndarray
    vv_db: np.ndarray
    vh_db: np.ndarray
    ndvi: np.ndarray
    y: np.ndarray
    x: np.ndarray
    crs: str


def sample_composites(period_days: int = PERIOD_DAYS, start: str = START) -> Composites:
    """Median composites per period, as the notebooks make them (S1 median in dB; S2 NDVI masked, then median)."""
    files = sample_files()
    s1 = load_s1(files["s1"])
    nd = load_s2_ndvi(files["s2_10m"], s1, scl_path=files["s2_20m"])
    t_all = np.concatenate([s1["t"].values, nd["t"].values])
    edges = regular_grid(np.datetime64(start, "D"), t_all.max().astype("datetime64[D]") + 1, period_days)
    with np.errstate(divide="ignore", invalid="ignore"):
        db = 10 * np.log10(s1.values)
    out: dict[str, list[np.ndarray]] = {"vv": [], "vh": [], "nd": []}
    times = []
    import warnings

    for a, b in zip(edges[:-1], edges[1:]):
        i1 = (s1["t"].values >= a) & (s1["t"].values < b)
        i2 = (nd["t"].values >= a) & (nd["t"].values < b)
        if not i1.any():
            continue
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            out["vv"].append(np.nanmedian(db[i1, 0], axis=0))
            out["vh"].append(np.nanmedian(db[i1, 1], axis=0))
            out["nd"].append(np.nanmedian(nd.values[i2], axis=0) if i2.any() else np.full(db.shape[2:], np.nan))
        times.append(a)
    return Composites(np.array(times, dtype="datetime64[ns]"), np.array(out["vv"], np.float32),
                      np.array(out["vh"], np.float32), np.array(out["nd"], np.float32), s1["y"].values,
                      s1["x"].values, s1.attrs["crs"])


def _utm_transform(c: Composites):  # type: ignore[no-untyped-def]
    from rasterio.transform import from_origin

    res = abs(float(c.x[1] - c.x[0]))
    return from_origin(float(c.x[0]) - res / 2, float(c.y[0]) + res / 2, res, res)


def to_4326(c: Composites) -> tuple[np.ndarray, object]:
    """Reproject ``(P, 3, y, x)`` [VV dB, VH dB, NDVI] to EPSG:4326 (bilinear, NaN nodata); return values, transform."""
    from rasterio.crs import CRS
    from rasterio.warp import Resampling, calculate_default_transform, reproject

    src = np.stack([c.vv_db, c.vh_db, c.ndvi], axis=1)
    ny, nx = src.shape[2:]
    src_t = _utm_transform(c)
    crs = CRS.from_wkt(c.crs)
    left, top = src_t.c, src_t.f
    right, bottom = left + src_t.a * nx, top + src_t.e * ny
    dst_t, w, h = calculate_default_transform(crs, "EPSG:4326", nx, ny, left, bottom, right, top)
    out = np.full((src.shape[0], 3, h, w), np.nan, np.float32)
    for p in range(src.shape[0]):
        for b in range(3):
            reproject(src[p, b], out[p, b], src_transform=src_t, src_crs=crs, dst_transform=dst_t,
                      dst_crs="EPSG:4326", resampling=Resampling.bilinear, src_nodata=np.nan, dst_nodata=np.nan)
    return out, dst_t


def write_period_folder(folder: Path, c: Composites | None = None, skip: tuple[int, ...] = (),
                        descriptions: bool = True, nodata: float = float("nan"), names: tuple[str, ...] =
                        ("VV", "VH", "S2ndvi"), limit: int | None = None,
                        window: tuple[int, int] | None = None) -> Path:
    """Write ``period_NN.tif`` (EPSG:4326) for every period except the numbers in ``skip``; return the folder.

    ``limit`` writes the first periods only, ``window`` the top-left ``(rows, cols)`` pixels only.
    """
    import rasterio

    c = c or sample_composites()
    values, transform = to_4326(c)
    if window is not None:  # the top-left rows x cols (same transform)
        values = values[:, :, : window[0], : window[1]]
    folder.mkdir(parents=True, exist_ok=True)
    n = values.shape[0] if limit is None else min(limit, values.shape[0])
    for p in range(n):
        number = p + 1
        if number in skip:
            continue
        data = values[p].copy()
        if not np.isnan(nodata):
            data[np.isnan(data)] = nodata
        with rasterio.open(folder / f"period_{number:02d}.tif", "w", driver="GTiff", width=data.shape[2],
                           height=data.shape[1], count=3, dtype="float32", crs="EPSG:4326", transform=transform,
                           nodata=nodata) as dst:
            dst.write(data)
            if descriptions:
                for i, name in enumerate(names, start=1):
                    dst.set_band_description(i, name)
    return folder


def write_timeseries_nc(path: Path, c: Composites | None = None, ndvi_name: str = "S2ndvi",
                        extra: bool = False) -> Path:
    """Write the Planetary Computer notebook's ``timeseries.nc`` (VV/VH linear γ⁰, S2ndvi on t, y, x)."""
    c = c or sample_composites()
    data = {"VV": (("t", "y", "x"), 10 ** (c.vv_db / 10)), "VH": (("t", "y", "x"), 10 ** (c.vh_db / 10)),
            ndvi_name: (("t", "y", "x"), c.ndvi)}
    if extra:
        data["B11"] = (("t", "y", "x"), np.full(c.ndvi.shape, 0.2, np.float32))
    ds = xr.Dataset(data, coords={"t": c.times, "y": c.y, "x": c.x})
    ds["spatial_ref"] = xr.DataArray(0, attrs={"crs_wkt": c.crs, "spatial_ref": c.crs})
    for v in ("VV", "VH", ndvi_name):
        ds[v].attrs["grid_mapping"] = "spatial_ref"
    path.parent.mkdir(parents=True, exist_ok=True)
    ds.to_netcdf(path)
    return path
