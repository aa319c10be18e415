"""Peer result files on a cube's grid: exact grid/CRS checks, matching dates, in-sample detection, CropSAR."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import xarray as xr

from comparison.compare.core import prepare_cube
from comparison.compare.field_case import field_truth
from comparison.errors import GridMismatch, NoMatchingDates, UnknownResultLayout
from comparison.peers import align_to_cube, cloud_mogpr_method, cropsar_method, seen_in_periods
from comparison.result_files import FIELD_DATA, read_cropsar
from tests.conftest import make_cube

CLOUD = Path(__file__).resolve().parents[1] / "data" / "mogpr_cloud" / "mogpr_s1_s2_sample.nc"


def _cube() -> xr.DataArray:
    cube = prepare_cube(make_cube(nt=12, ny=4, nx=5, units="linear", seed=1))
    cube.attrs["crs"] = "EPSG:32631"
    return cube


def _cloud_file(cube: xr.DataArray, path: Path, raw_ndvi: np.ndarray, crs: str = "EPSG:32631",
                shift_days: int = 0, dx: float = 0.0, names: tuple[str, ...] = ()) -> Path:
    """A file in the mogpr_s1_s2 layout on the cube's grid: means = truth + 0.01, std bands, raw bands."""
    truth = cube.sel(bands="NDVI").values
    layers = [np.full_like(truth, 1.0), truth + 0.01, np.full_like(truth, 0.1), np.full_like(truth, 0.02),
              np.full_like(truth, 1.0), raw_ndvi]
    names = names or ("RVI", "NDVI") + tuple(f"unkown_band_{i}" for i in range(2, 6))
    t = cube["t"].values + np.timedelta64(shift_days, "D")
    ds = xr.Dataset({n: (("t", "y", "x"), a.astype(np.float32)) for n, a in zip(names, layers)},
                    coords={"t": t, "y": cube["y"].values, "x": cube["x"].values + dx})
    ds["crs"] = xr.DataArray(b"", attrs={"spatial_ref": crs})
    ds.to_netcdf(path)
    return path


def test_cloud_file_in_sample_and_held_out_are_told_apart(tmp_path: Path) -> None:
    cube = _cube()
    truth = cube.sel(bands="NDVI").values
    hidden = np.isfinite(truth) & (np.arange(12)[:, None, None] % 3 == 0)
    masked = cube.copy(data=cube.values.copy())
    masked.loc[{"bands": "NDVI"}] = np.where(hidden, np.nan, truth)
    pixels = np.ones((4, 5), bool)
    saw_all = cloud_mogpr_method(_cloud_file(cube, tmp_path / "a.nc", truth), cube)(masked, pixels)
    assert saw_all.note == f"in-sample: the service's input held {hidden.sum()} of the {hidden.sum()} hidden observations"
    np.testing.assert_allclose(saw_all.mean, truth + 0.01, rtol=1e-6)
    assert saw_all.dates.all() and saw_all.n_pixels == 0  # a file: no speed to report
    kept = np.where(hidden, np.nan, truth)
    fair = cloud_mogpr_method(_cloud_file(cube, tmp_path / "b.nc", kept), cube)(masked, pixels)
    assert fair.note.startswith("held out")
    # FuseTS "std" is var·σ: the real std is sqrt(var·σ·σ), σ = std of the raw band over time.
    sigma = np.nanstd(kept, axis=0)
    np.testing.assert_allclose(fair.std, np.sqrt(0.02 * sigma)[None].repeat(12, 0), rtol=1e-5)


def test_grid_crs_and_date_mismatches_are_errors(tmp_path: Path) -> None:
    cube = _cube()
    truth = cube.sel(bands="NDVI").values
    with pytest.raises(GridMismatch, match="CRS 'EPSG:32630' differs"):
        cloud_mogpr_method(_cloud_file(cube, tmp_path / "c.nc", truth, crs="EPSG:32630"), cube)
    with pytest.raises(GridMismatch, match=r"x coordinates \(310.00…, step 20\) are not on the cube's x grid"):
        cloud_mogpr_method(_cloud_file(cube, tmp_path / "d.nc", truth, dx=10.0), cube)
    with pytest.raises(GridMismatch, match="no pixel in common"):
        cloud_mogpr_method(_cloud_file(cube, tmp_path / "e.nc", truth, dx=2000.0), cube)
    with pytest.raises(NoMatchingDates, match="none of its 12 dates"):
        cloud_mogpr_method(_cloud_file(cube, tmp_path / "f.nc", truth, shift_days=1), cube)
    odd = ("RVI", "NDVI", "VV", "unkown_band_3", "unkown_band_4", "unkown_band_5")
    with pytest.raises(UnknownResultLayout, match=r"\['RVI', 'NDVI', 'VV', 'unkown_band_3'"):
        cloud_mogpr_method(_cloud_file(cube, tmp_path / "g.nc", truth, names=odd), cube)


def test_seen_in_periods_covers_composite_windows() -> None:
    cube = _cube()  # 10-day steps
    raw_t = cube["t"].values[:3] + np.timedelta64(4, "D")  # acquisitions inside the first three composites
    raw = xr.DataArray(np.ones((3, 4, 5)), dims=("t", "y", "x"),
                       coords={"t": raw_t, "y": cube["y"].values, "x": cube["x"].values})
    seen = seen_in_periods(raw, cube, "raw")
    assert seen[:3].all() and not seen[3:].any()


def test_sample_cloud_file_matches_sample_cube(sample_cube: xr.DataArray) -> None:
    """The shipped layout file (3×3 pixels, 5-day grid ∪ raw dates) lands on the right pixels and dates."""
    cube = prepare_cube(sample_cube)
    pred = cloud_mogpr_method(CLOUD, cube)(cube, np.ones((32, 32), bool))
    covered = np.isfinite(pred.mean).any(0)
    assert covered.sum() == 9 and covered[12:15, 20:23].all()
    assert pred.dates.all()  # 10-day labels from the first date are on the file's 5-day grid
    with xr.open_dataset(CLOUD) as ds:
        want = ds["NDVI"].sel(t=cube["t"].values[5]).values
    np.testing.assert_allclose(pred.mean[5, 12:15, 20:23], want, rtol=1e-6)


def test_cropsar_interpolated_onto_s2_dates() -> None:
    truth = field_truth("BIDS_workshop")
    pred = cropsar_method(FIELD_DATA / "BIDS_workshop_cropsar_ndvi.nc", truth)(truth, np.ones((19, 21), bool))
    assert pred.note.startswith("in-sample")
    assert pred.dates[:-1].all() and not pred.dates[-1]  # CropSAR ends 2019-12-27, the last S2 date is 12-28
    cs = read_cropsar(FIELD_DATA / "BIDS_workshop_cropsar_ndvi.nc")
    k = 3
    day = truth["t"].values[k].astype("datetime64[D]")
    t_cs = cs["t"].values.astype("datetime64[D]")
    j = int(np.searchsorted(t_cs, day))
    w = (day - t_cs[j - 1]).astype(int) / (t_cs[j] - t_cs[j - 1]).astype(int)
    want = (1 - w) * cs.values[j - 1] + w * cs.values[j]
    np.testing.assert_allclose(pred.mean[k, :, :], want, rtol=1e-6)


def test_align_with_interpolation_refuses_long_gaps() -> None:
    cube = _cube()
    vals = xr.DataArray(np.arange(2.0)[:, None, None] * np.ones((2, 4, 5)), dims=("t", "y", "x"),
                        coords={"t": cube["t"].values[[0, 11]], "y": cube["y"].values, "x": cube["x"].values})
    out, covered = align_to_cube(vals, cube, "two dates", interp_days=200.0)
    np.testing.assert_allclose(out[:, 0, 0], np.arange(12) / 11)
    with pytest.raises(NoMatchingDates):
        align_to_cube(vals.isel(t=[0]).assign_coords(t=[cube["t"].values[0] - np.timedelta64(3, "D")]), cube,
                      "one date", interp_days=10.0)
    _, covered = align_to_cube(vals, cube, "two dates", interp_days=50.0)
    assert covered.tolist() == [True] + [False] * 10 + [True]
