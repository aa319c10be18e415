"""The user's notebook exports (period folder, timeseries.nc) read as they are, from the embedded sample."""

import logging
import warnings
from pathlib import Path

import numpy as np
import pytest
import rasterio

from tests.udf.export_fixtures import START, Composites, sample_composites, write_period_folder, write_timeseries_nc
from udf.errors import BandNotAvailable, CubeError, DatesNotFound, NotEnoughNDVI, UnsupportedLayout
from udf.ingest.options import IngestOptions
from udf.ingest.sources import make_cube


@pytest.fixture(scope="module")
def comp() -> Composites:
    return sample_composites()


@pytest.fixture(scope="module")
def folder(comp: Composites, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_period_folder(tmp_path_factory.mktemp("gee") / "periods", comp, skip=(5,))


@pytest.fixture(scope="module")
def nc(comp: Composites, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_timeseries_nc(tmp_path_factory.mktemp("pc") / "timeseries.nc", comp)


def _db(lin: np.ndarray) -> np.ndarray:
    with np.errstate(divide="ignore", invalid="ignore"):
        return 10 * np.log10(lin)


def _step_means(a: np.ndarray) -> np.ndarray:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        return np.nanmean(a.reshape(a.shape[0], -1), axis=1)


def _read_folder(folder: Path) -> tuple[list[int], np.ndarray]:
    files = sorted(folder.glob("period_*.tif"))
    data = []
    for f in files:
        with rasterio.open(f) as src:
            data.append(src.read().astype(np.float32))
    return [int(f.stem.split("_")[1]) for f in files], np.array(data)


def test_period_folder_matches_its_files(folder: Path, comp: Composites) -> None:
    cube = make_cube([folder], None, IngestOptions(start=START, period="12D"))
    numbers, raw = _read_folder(folder)
    assert cube.sizes["t"] == len(numbers) == comp.times.size - 1  # period 5 missing: one step less, no shift
    expected = [np.datetime64(START) + (n - 1) * np.timedelta64(12, "D") for n in numbers]
    assert (cube["t"].values == np.array(expected, dtype="datetime64[ns]")).all()
    assert np.datetime64("2017-09-18", "ns") not in cube["t"].values  # period 5 is missing, not shifted in
    nd_in, nd_cube = raw[:, 2], cube.sel(bands="NDVI").values
    assert abs(np.isfinite(nd_cube).sum() / np.isfinite(nd_in).sum() - 1) <= 0.03
    ok = np.isfinite(_step_means(nd_in))
    np.testing.assert_allclose(_step_means(nd_cube)[ok], _step_means(nd_in)[ok], atol=0.01)
    np.testing.assert_allclose(_step_means(_db(cube.sel(bands="VV").values)), _step_means(raw[:, 0]), atol=0.1)
    # against the composites before the reprojection to EPSG:4326
    keep = [n - 1 for n in numbers]
    ok = np.isfinite(_step_means(comp.ndvi[keep])) & np.isfinite(_step_means(nd_cube))
    np.testing.assert_allclose(_step_means(nd_cube)[ok], _step_means(comp.ndvi[keep])[ok], atol=0.02)
    np.testing.assert_allclose(_step_means(_db(cube.sel(bands="VH").values)), _step_means(comp.vh_db[keep]),
                               atol=0.3)
    assert "masked upstream" in cube.attrs["ndvi_cloud_mask"]
    assert "S2ndvi" in cube.attrs["input_variables_used"] and cube.attrs["input_variables_ignored"] == "none"
    assert "periods [5] missing" in cube.attrs["ingest_decisions"]
    assert "4326" in cube.attrs["crs"]


def test_timeseries_nc_keeps_ndvi_and_cadence(nc: Path, comp: Composites) -> None:
    cube = make_cube([nc], None, IngestOptions())
    assert cube.sizes["t"] == comp.times.size
    assert (np.diff(cube["t"].values) == np.timedelta64(12, "D")).all()  # no 12 → 10 day resampling
    nd = cube.sel(bands="NDVI").values
    assert abs(np.isfinite(nd).sum() / np.isfinite(comp.ndvi).sum() - 1) <= 0.03
    ok = np.isfinite(_step_means(comp.ndvi))
    np.testing.assert_allclose(_step_means(nd)[ok], _step_means(comp.ndvi)[ok], atol=0.01)
    np.testing.assert_allclose(_step_means(_db(cube.sel(bands="VV").values)), _step_means(comp.vv_db), atol=0.1)
    assert cube.attrs["composite_period"].startswith("12D")
    assert cube.attrs["s1_units_input"].startswith("linear")
    # --period asks for other steps: re-composited, and said so
    monthly = make_cube([nc], None, IngestOptions(period="30D"))
    assert (np.diff(monthly["t"].values) == np.timedelta64(30, "D")).all()
    assert "re-composited to 30D" in monthly.attrs["ingest_decisions"]
    assert np.isfinite(monthly.sel(bands="NDVI").values).any()
    # --s2 naming the same file is fine
    assert make_cube([nc], [nc], IngestOptions()).sizes["t"] == comp.times.size


def test_ignored_variable_is_warned_and_recorded(comp: Composites, tmp_path: Path,
                                                 caplog: pytest.LogCaptureFixture) -> None:
    path = write_timeseries_nc(tmp_path / "timeseries.nc", comp, ndvi_name="NDVI", extra=True)
    with caplog.at_level(logging.WARNING):
        cube = make_cube([path], None, IngestOptions())
    assert "B11" in cube.attrs["input_variables_ignored"]
    assert any("'B11'" in r.getMessage() and "ignored" in r.getMessage() for r in caplog.records)
    assert "NDVI: NDVI, masked upstream" in cube.attrs["input_variables_used"]


def test_bands_option_and_nodata_value(comp: Composites, tmp_path: Path) -> None:
    folder = write_period_folder(tmp_path / "p", comp, descriptions=False, nodata=-9999.0, limit=6)
    with pytest.raises(UnsupportedLayout, match="without names.*--bands VV,VH,S2ndvi"):
        make_cube([folder], None, IngestOptions(start=START, period="12D"))
    cube = make_cube([folder], None, IngestOptions(start=START, period="12D", bands=("VV", "VH", "S2ndvi")))
    assert cube.sizes["t"] == 6
    assert np.nanmin(cube.sel(bands="NDVI").values) > -1  # -9999 is missing, not NDVI
    with pytest.raises(UnsupportedLayout, match="--bands lists 2 names"):
        make_cube([folder], None, IngestOptions(start=START, period="12D", bands=("VV", "VH")))


def _stack(path: Path, comp: Composites, name: str | None) -> Path:
    """A 31-band GeoTIFF, one band per period (the sample's VH in dB on its UTM grid)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    res = abs(float(comp.x[1] - comp.x[0]))
    transform = rasterio.transform.from_origin(comp.x[0] - res / 2, comp.y[0] + res / 2, res, res)
    with rasterio.open(path, "w", driver="GTiff", width=comp.x.size, height=comp.y.size, count=31, dtype="float32",
                       crs=comp.crs, transform=transform, nodata=0.0) as dst:
        dst.write(np.nan_to_num(comp.vh_db[:31], nan=0.0))
        if name:
            for i in range(1, 32):
                dst.set_band_description(i, name)
    return path


def test_vh_only_inputs_impute_vv(comp: Composites, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    folder = write_period_folder(tmp_path / "vh", comp, names=("VH", "B1", "S2ndvi"), limit=4)
    with caplog.at_level(logging.WARNING):
        cube = make_cube([folder], None, IngestOptions(start=START, period="12D"))
    assert "imputed as VH + 7 dB" in cube.attrs["s1_warning"]
    assert any("imputed" in r.getMessage() for r in caplog.records)
    ratio = _db(cube.sel(bands="VV").values) - _db(cube.sel(bands="VH").values)
    np.testing.assert_allclose(ratio[np.isfinite(ratio)], 7.0, atol=1e-4)
    # a 31-band VH stack, band k = period k, named by --bands VH (no descriptions) or by its descriptions
    for name, bands in ((None, ("VH",)), ("VH", None)):
        stack = _stack(tmp_path / f"s{name}" / "java_vh_stack.tif", comp, name)
        if bands is None:
            stack = stack.rename(stack.with_name("period_01_mosaic.tif"))
        cube = make_cube([stack], None, IngestOptions(start=START, period="12D", bands=bands))
        assert cube.sizes["t"] == 31 and str(cube["t"].values[1])[:10] == "2017-08-13"
        np.testing.assert_allclose(_step_means(_db(cube.sel(bands="VH").values)), _step_means(comp.vh_db[:31]),
                                   atol=0.1)
        assert not np.isfinite(cube.sel(bands="NDVI").values).any()
    with pytest.raises(UnsupportedLayout, match="stack of 31 periods of band 'B1'"):
        make_cube([stack], None, IngestOptions(start=START, period="12D", bands=("B1",)))


def test_refusals(comp: Composites, folder: Path, nc: Path, tmp_path: Path) -> None:
    with pytest.raises(DatesNotFound, match="give --start"):
        make_cube([folder], None, IngestOptions(period="12D"))
    with pytest.raises(DatesNotFound, match="give --period as the length"):
        make_cube([folder], None, IngestOptions(start=START))
    from udf.ingest.sample import sample_files

    with pytest.raises(UnsupportedLayout, match="holds a precomputed NDVI variable.*give it alone"):
        make_cube([sample_files()["s1"]], [nc], IngestOptions())
    with pytest.raises(UnsupportedLayout, match="without a separate --s2"):
        make_cube([folder], [nc], IngestOptions(start=START, period="12D"))
    # VV only is refused; no S1 at all too
    vv_only = write_period_folder(tmp_path / "vv", comp, names=("VV", "B1", "S2ndvi"), limit=3)
    with pytest.raises(UnsupportedLayout, match="holds VV only \\(VV\\).*needs VH"):
        make_cube([vv_only], None, IngestOptions(start=START, period="12D"))
    no_s1 = write_period_folder(tmp_path / "nos1", comp, names=("A", "B", "S2ndvi"), limit=2)
    with pytest.raises(BandNotAvailable, match="no VV and VH band"):
        make_cube([no_s1], None, IngestOptions(start=START, period="12D"))
    stack = _stack(tmp_path / "vvstack" / "period_01_mosaic.tif", comp, "VV")
    with pytest.raises(UnsupportedLayout, match="stack of 31 periods of VV only.*must hold VH"):
        make_cube([stack], None, IngestOptions(start=START, period="12D"))
    # an empty NDVI band, an NDVI band on another scale
    empty = Composites(comp.times, comp.vv_db, comp.vh_db, np.full_like(comp.ndvi, np.nan), comp.y, comp.x, comp.crs)
    with pytest.raises(NotEnoughNDVI, match="'S2ndvi'.*holds no valid NDVI value"):
        make_cube([write_timeseries_nc(tmp_path / "empty.nc", empty)], None, IngestOptions())
    scaled = Composites(comp.times, comp.vv_db, comp.vh_db, comp.ndvi * 10000, comp.y, comp.x, comp.crs)
    with pytest.raises(CubeError, match="outside \\[-1, 1\\]"):
        make_cube([write_timeseries_nc(tmp_path / "scaled.nc", scaled)], None, IngestOptions())
    # files not named by period, numbers repeated
    mixed = write_period_folder(tmp_path / "mixed", comp, limit=2)
    (mixed / "period_02.tif").rename(mixed / "scene_b.tif")
    with pytest.raises(DatesNotFound, match="not named period_NN.tif"):
        make_cube([mixed / "period_01.tif", mixed / "scene_b.tif"], None, IngestOptions(start=START, period="12D"))
    (mixed / "scene_b.tif").rename(mixed / "period_1.tif")
    with pytest.raises(UnsupportedLayout, match="Period number\\(s\\) \\[1\\] appear in more than one file"):
        make_cube([mixed], None, IngestOptions(start=START, period="12D"))


def test_cli_cube_on_timeseries_nc(nc: Path, comp: Composites, tmp_path: Path, cli) -> None:  # type: ignore[no-untyped-def]
    from udf.ingest.cube_io import read_cube

    status, out, err = cli("cube", "--s1", nc, "--out", tmp_path / "cube.nc")
    assert status == 0, err
    cube = read_cube(tmp_path / "cube.nc")
    assert cube.sizes["t"] == comp.times.size  # 12-day steps kept (it resampled to 10-day ones before)
    assert np.isfinite(cube.sel(bands="NDVI").values).sum() == np.isfinite(comp.ndvi).sum()  # S2ndvi not dropped
    assert "S2ndvi" in cube.attrs["input_variables_used"]
    status, _, err = cli("cube", "--s1", nc, "--period", "10D", "--out", tmp_path / "c10.nc")
    assert status == 0 and read_cube(tmp_path / "c10.nc").sizes["t"] > comp.times.size  # asked: 10-day steps


def test_netcdf_extra_variable_is_named(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    import xarray as xr

    from udf.ingest.sample import sample_files

    with xr.open_dataset(sample_files()["s1"], decode_cf=False, decode_times=False) as ds:
        ds = ds.load()
    ds["LIA"] = ds["VV"].copy()
    ds.to_netcdf(tmp_path / "s1.nc")
    with caplog.at_level(logging.WARNING):
        cube = make_cube([tmp_path / "s1.nc"], None, IngestOptions())
    assert cube.attrs["input_variables_ignored"] == "s1.nc:LIA: not a band the model uses (VV, VH)"
    assert any("'s1.nc:LIA' is ignored" in r.getMessage() for r in caplog.records)
