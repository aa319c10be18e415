import numpy as np
import pytest
import xarray as xr
from openeo.udf import XarrayDataCube

from tests.conftest import DATA
from udf.errors import BandNotAvailable
from udf.ingest.base import build_cube, load_s1, load_s2_ndvi, load_sample_cube
from udf.ingest.compositing import composite_ndvi, composite_s1, regular_grid
from udf.ingest.cube_io import read_cube, write_cube
from udf.ingest.sample import sample_files

FIXTURES = DATA / "openeo_fixtures"


def test_worldcereal_sample_is_decoded_as_db():
    s1 = load_s1(sample_files()["s1"])
    assert s1.dims == ("t", "bands", "y", "x") and s1.sizes["t"] == 159
    vv_db = 10 * np.log10(s1.sel(bands="VV").values)
    assert -30 < np.nanmedian(vv_db) < 0
    raw = xr.open_dataset(sample_files()["s1"], decode_cf=False)["VV"].values[0, 0, 0]
    assert vv_db[0, 0, 0] == pytest.approx(raw * 1e-4, abs=1e-4)


def test_openeo_export_uint16_and_scl(tmp_path):
    s1 = load_s1(FIXTURES / "cdse_sentinel1_grd.nc")
    raw = xr.open_dataset(FIXTURES / "cdse_sentinel1_grd.nc", decode_cf=False)["S1-SIGMA0-VV"].values.view(np.uint16)
    v = float(raw[0, 10, 10])
    expected = 10 ** ((20 * np.log10(v) - 83) / 10) if 0 < v < 65535 else np.nan
    assert s1.sel(bands="VV").values[0, 10, 10] == pytest.approx(expected, rel=1e-5, nan_ok=True)
    ndvi = load_s2_ndvi(FIXTURES / "cdse_sentinel2_l2a.nc", s1)
    scl = xr.open_dataset(FIXTURES / "cdse_sentinel2_l2a.nc", decode_cf=False)["S2-L2A-SCL"].values
    assert np.array_equal(np.isfinite(ndvi.values), np.isin(scl, [4, 5, 6]) & np.isfinite(ndvi.values))
    assert np.isnan(ndvi.values[~np.isin(scl, [4, 5, 6])]).all()
    cube = build_cube(s1, ndvi, period="5D")
    write_cube(cube, tmp_path / "c.nc")
    arr = XarrayDataCube.from_file(tmp_path / "c.nc").get_array()
    assert set(arr.dims) == {"t", "bands", "y", "x"} and list(arr["bands"].values) == ["VV", "VH", "NDVI"]
    back = read_cube(tmp_path / "c.nc")
    np.testing.assert_allclose(back.values, cube.values, equal_nan=True)
    assert "UTM zone 31N" in back.attrs["crs"]


def test_missing_band_in_file_is_named(tmp_path):
    with pytest.raises(BandNotAvailable, match="No band 'B04'.*S1-SIGMA0-VV"):
        load_s2_ndvi(FIXTURES / "cdse_sentinel1_grd.nc", load_s1(FIXTURES / "cdse_sentinel1_grd.nc"))


def test_composites_match_naive_reference():
    rng = np.random.default_rng(0)
    t = np.datetime64("2020-01-01") + np.sort(rng.choice(60, 25, replace=False)) * np.timedelta64(1, "D")
    t = t.astype("datetime64[ns]")
    s1 = rng.random((25, 2, 3, 4)).astype(np.float32)
    s1[rng.random(s1.shape) < 0.2] = np.nan
    edges = regular_grid(np.datetime64("2020-01-01"), np.datetime64("2020-03-01"), 12)
    got = composite_s1(s1, t, edges)
    for b in range(len(edges) - 1):
        sel = (t >= edges[b]) & (t < edges[b + 1])
        with np.errstate(all="ignore"):
            ref = np.nanmean(s1[sel].astype(np.float64), axis=0) if sel.any() else np.full((2, 3, 4), np.nan)
        np.testing.assert_allclose(got[b], ref, rtol=1e-6, equal_nan=True)
    nd = rng.random((25, 3, 4)).astype(np.float32)
    nd[rng.random(nd.shape) < 0.5] = np.nan
    clearest = composite_ndvi(nd, t, edges, rule="clearest")
    frac = np.isfinite(nd).mean(axis=(1, 2))
    for b in range(len(edges) - 1):
        members = np.flatnonzero((t >= edges[b]) & (t < edges[b + 1]))
        for i in range(3):
            for j in range(4):
                ok = [m for m in members if np.isfinite(nd[m, i, j])]
                if not ok:
                    assert np.isnan(clearest[b, i, j])
                else:
                    best = max(ok, key=lambda m: (frac[m], -m))
                    assert clearest[b, i, j] == nd[best, i, j]


def test_sample_cube_layout():
    cube = load_sample_cube("12D")
    assert cube.dims == ("t", "bands", "y", "x") and list(cube["bands"].values) == ["VV", "VH", "NDVI"]
    steps = np.diff(cube["t"].values).astype("timedelta64[D]").astype(int)
    assert (steps == 12).all()
    nd = cube.sel(bands="NDVI").values
    assert 0.3 < np.isfinite(nd).mean() < 0.9 and np.nanmax(nd) <= 1


def test_bad_period():
    s1 = load_s1(sample_files()["s1"])
    with pytest.raises(ValueError, match="not a number of days"):
        build_cube(s1, None, period="1M")


def test_cross_site_cube_treats_65535_as_nodata():
    from udf.ingest.sample import CROSS_SITE_FILE

    raw = xr.open_dataset(CROSS_SITE_FILE, decode_cf=False)["S2-L2A-B04"].values.view(np.uint16)
    s1 = load_s1(CROSS_SITE_FILE)
    ndvi = load_s2_ndvi(CROSS_SITE_FILE, s1, use_scl=False)
    assert np.isnan(ndvi.values[raw == 65535]).all()
    assert np.isfinite(ndvi.values[(raw > 0) & (raw < 65535)]).mean() > 0.99
    assert np.isfinite(s1.values).all()
