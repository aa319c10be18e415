"""Earth Engine GeoTIFF exports: the real cropharvest fixture and small files in every layout made here."""

import json
import shutil

import numpy as np
import pytest
import rasterio
import xarray as xr

from tests.conftest import DATA
from tests.udf.gee_files import Series, s1_id, s2_id, tobands_s1, tobands_s2, write_tif
from udf.errors import CloudMaskMissing, DatesNotFound, GridMismatch, S1UnitsError, UnsupportedLayout
from udf.ingest.base import build_cube
from udf.ingest.options import IngestOptions
from udf.ingest.sources import make_cube

TOGO = DATA / "gee" / "98-togo_2019-02-06_2020-02-01.tif"


def _reference(s: Series, period: str | None = "12D") -> xr.DataArray:
    """The cube built in memory by udf.ingest.base.build_cube from the same values."""
    t = s.times.astype("datetime64[ns]")
    coords = {"y": np.arange(s.shape[1]), "x": np.arange(s.shape[2])}
    lin = np.stack([10 ** (s.vv_db / 10), 10 ** (s.vh_db / 10)], axis=1).astype(np.float32)
    s1 = xr.DataArray(lin, dims=("t", "bands", "y", "x"), coords={"t": t, "bands": ["VV", "VH"], **coords})
    nd = xr.DataArray(s.ndvi(), dims=("t", "y", "x"), coords={"t": t, **coords})
    return build_cube(s1, nd, period=period)


def test_cropharvest_fixture_is_read_band_by_band():
    cube = make_cube([TOGO], [TOGO], IngestOptions(layout="cropharvest", no_cloud_mask=True, period=None)).compute()
    with rasterio.open(TOGO) as src:
        raw, names = src.read(), src.descriptions
    assert cube.sizes == {"t": 12, "bands": 3, "y": 17, "x": 17}
    steps = (cube["t"].values - np.datetime64("2019-02-06")).astype("timedelta64[D]").astype(int)
    assert steps.tolist() == [30 * k for k in range(12)]
    for k in (0, 5, 11):
        suffix = "" if k == 0 else f"_{k}"
        vv = raw[names.index("VV" + suffix)]
        red, nir = raw[names.index("B4" + suffix)], raw[names.index("B8" + suffix)]
        np.testing.assert_allclose(cube.sel(bands="VV").values[k], 10 ** (vv / 10), rtol=1e-5)
        np.testing.assert_allclose(cube.sel(bands="NDVI").values[k], (nir - red) / (nir + red), atol=1e-6)
    assert "cloud-contaminated" in cube.attrs["ndvi_warning"] and cube.attrs["s2_level"].startswith("L1C")
    assert "EPSG\",\"4326" in cube.attrs["crs"] and cube.attrs["s1_units_input"] == "db (auto)"


def test_cropharvest_needs_its_layout_and_the_no_mask_flag():
    with pytest.raises(DatesNotFound, match=r"12 images named by position.*--layout cropharvest"):
        make_cube([TOGO], [TOGO], IngestOptions(no_cloud_mask=True))
    with pytest.raises(CloudMaskMissing, match=r"bands \['B04', 'B08'\].*--no-cloud-mask"):
        make_cube([TOGO], [TOGO], IngestOptions(layout="cropharvest"))


def test_cropharvest_without_band_names_uses_its_band_order(tmp_path):
    plain = tmp_path / TOGO.name
    shutil.copy(TOGO, plain)
    with rasterio.open(plain, "r+") as dst:
        for i in range(dst.count):
            dst.set_band_description(i + 1, "")
    with pytest.raises(UnsupportedLayout, match="206 bands without names"):
        make_cube([plain], None, IngestOptions())
    opts = IngestOptions(layout="cropharvest", no_cloud_mask=True, period=None)
    np.testing.assert_array_equal(make_cube([plain], [plain], opts).values, make_cube([TOGO], [TOGO], opts).values)


def test_tobands_with_image_ids_matches_the_in_memory_cube(tmp_path):
    s = Series()
    f1 = tobands_s1(tmp_path / "s1.tif", s, [s1_id(st, 29739) for st in s.stamps()])
    f2 = tobands_s2(tmp_path / "s2.tif", s, [s2_id(st) for st in s.stamps()])
    cube = make_cube([f1], [f2], IngestOptions(period="12D", chunk=8))
    ref = _reference(s)
    np.testing.assert_array_equal(cube["t"].values, ref["t"].values)
    np.testing.assert_allclose(cube.values, ref.values, rtol=1e-5, equal_nan=True)
    assert cube.attrs["s1_orbits"] == "one orbit label for all acquisitions: REL092"
    assert cube.attrs["ndvi_cloud_mask"].startswith("SCL") and cube.attrs["s2_level"] == "L2A surface reflectance"


@pytest.mark.parametrize("fmt", ["csv", "json", "gee-csv"])
def test_positional_stack_with_sidecar(tmp_path, fmt):
    s = Series()
    data = np.stack([x for i in range(6) for x in (s.vv_db[i], s.vh_db[i])])
    f1 = write_tif(tmp_path / "s1.tif", data, [b if i == 0 else f"{b}_{i}" for i in range(6) for b in ("VV", "VH")])
    dates = [str(t)[:10] for t in s.times]
    side = tmp_path / ("dates.json" if fmt == "json" else "dates.csv")
    if fmt == "json":
        side.write_text(json.dumps({"images": [{"date": d} for d in dates]}))
    elif fmt == "csv":
        side.write_text("date\n" + "\n".join(dates) + "\n")
    else:
        ms = (s.times.astype("datetime64[ms]").astype(np.int64)).tolist()
        side.write_text("system:index,system:time_start\n" + "\n".join(f"{i},{m}" for i, m in enumerate(ms)) + "\n")
    cube = make_cube([f1], None, IngestOptions(dates=side, period=None))
    np.testing.assert_array_equal(cube["t"].values, s.times.astype("datetime64[ns]"))
    np.testing.assert_allclose(cube.sel(bands="VH").values, 10 ** (s.vh_db / 10), rtol=1e-5)


def test_sidecar_mismatch_and_missing_dates_are_named(tmp_path):
    s = Series()
    data = np.stack([x for i in range(6) for x in (s.vv_db[i], s.vh_db[i])])
    f1 = write_tif(tmp_path / "s1.tif", data, [b if i == 0 else f"{b}_{i}" for i in range(6) for b in ("VV", "VH")])
    short = tmp_path / "short.csv"
    short.write_text("date\n2019-11-01\n2019-11-13\n")
    with pytest.raises(DatesNotFound, match=r"lists 2 dates but .* holds 6 images \('0' … '5'\)"):
        make_cube([f1], None, IngestOptions(dates=short))
    with pytest.raises(DatesNotFound, match="6 images named by position"):
        make_cube([f1], None, IngestOptions())
    ids = tobands_s1(tmp_path / "ids.tif", s, [f"img{i}" for i in range(6)])
    with pytest.raises(DatesNotFound, match=r"image ids without a date: \['img0'"):
        make_cube([ids], None, IngestOptions())


def test_one_file_per_period_from_names_and_folders(tmp_path):
    s = Series(nt=4)
    folder = tmp_path / "periods"
    for i, stamp in enumerate(s.stamps()):
        write_tif(folder / f"s1_{stamp[:8]}.tif", np.stack([s.vv_db[i], s.vh_db[i]]), ["VV", "VH"])
    cube = make_cube([folder], None, IngestOptions(period=None))
    assert cube.sizes["t"] == 4 and cube.attrs["source_s1"].startswith("gee-suffix")
    np.testing.assert_allclose(cube.sel(bands="VV").values, 10 ** (s.vv_db / 10), rtol=1e-5)
    write_tif(folder / "s1_copy_of_first.tif", np.stack([s.vv_db[0], s.vh_db[0]]), ["VV", "VH"])
    with pytest.raises(DatesNotFound, match="no date in the file name"):
        make_cube([folder], None, IngestOptions())
    (folder / "s1_copy_of_first.tif").rename(folder / f"again_{s.stamps()[0][:8]}.tif")
    with pytest.raises(UnsupportedLayout, match="repeat the same time and orbit"):
        make_cube([folder], None, IngestOptions())


@pytest.mark.parametrize("units", ["db", "linear"])
def test_s1_units_auto_and_explicit(tmp_path, units):
    s = Series()
    f1 = tobands_s1(tmp_path / "s1.tif", s, [s1_id(st, 29739) for st in s.stamps()], units=units)
    auto = make_cube([f1], None, IngestOptions(period=None))
    assert auto.attrs["s1_units_input"] == f"{units} (auto)"
    np.testing.assert_allclose(auto.sel(bands="VV").values, 10 ** (s.vv_db / 10), rtol=1e-4)
    other = "linear" if units == "db" else "db"
    with pytest.raises(S1UnitsError, match=f"s1_units='{other}'"):
        make_cube([f1], None, IngestOptions(period=None, s1_units=other)).compute()


def test_s1_range_that_fits_no_encoding_is_refused(tmp_path):
    s = Series()
    amplitude = np.stack([x for i in range(6) for x in (s.red[i], s.nir[i])]).astype(np.float32) * 3.7
    f1 = write_tif(tmp_path / "dn.tif", amplitude, [f"{st}_{b}" for st in s.stamps() for b in ("VV", "VH")])
    with pytest.raises(S1UnitsError, match=r"fit none of the known encodings.*sampled from"):
        make_cube([f1], None, IngestOptions())


@pytest.mark.parametrize("kind", ["QA60", "probability", "MSK_CLDPRB"])
def test_qa60_and_probability_masks(tmp_path, kind):
    s = Series()
    cloudy = s.scl != 4
    if kind == "QA60":
        mask = np.where(cloudy, 1 << 10, 0).astype(np.uint16)
        mask[0, 5, 5] = 1 << 11  # cirrus
        cloudy[0, 5, 5] = True
    else:
        mask = np.where(cloudy, 80, 20).astype(np.uint16)
        mask[0, 5, 5] = 45  # above the default 40 % threshold
        cloudy[0, 5, 5] = True
    f2 = tobands_s2(tmp_path / "s2.tif", s, [s2_id(st) for st in s.stamps()], mask_name=kind, mask=mask)
    f1 = tobands_s1(tmp_path / "s1.tif", s, [s1_id(st, 29739) for st in s.stamps()])
    cube = make_cube([f1], [f2], IngestOptions(period=None))
    nd = cube.sel(bands="NDVI").values
    assert np.isnan(nd[cloudy]).all() and np.isfinite(nd[~cloudy]).all()
    assert kind in cube.attrs["ndvi_cloud_mask"]
    if kind != "QA60":
        loose = make_cube([f1], [f2], IngestOptions(period=None, cloud_probability=50)).sel(bands="NDVI").values
        assert np.isfinite(loose[0, 5, 5])
    with pytest.raises(CloudMaskMissing, match=r"expected one of \['SCL'\]"):
        make_cube([f1], [f2], IngestOptions(s2_mask="scl"))


def test_qa60_after_baseline_04_is_flagged(tmp_path):
    s = Series(start="2022-03-01")
    f2 = tobands_s2(tmp_path / "s2.tif", s, [s2_id(st) for st in s.stamps()], "QA60", np.zeros(s.shape, np.uint16))
    f1 = tobands_s1(tmp_path / "s1.tif", s, [s1_id(st, 29739) for st in s.stamps()])
    cube = make_cube([f1], [f2], IngestOptions())
    assert "QA60 flags no cloud at all in 6 of 6 scenes" in cube.attrs["ndvi_warning"]


def test_unsupported_layouts_say_what_was_found(tmp_path):
    s = Series()
    f1 = tobands_s1(tmp_path / "s1.tif", s, [s1_id(st, 29739) for st in s.stamps()])
    elevation = write_tif(tmp_path / "dem.tif", s.vv_db[:2], ["elevation", "slope"])
    with pytest.raises(UnsupportedLayout, match=r"No Sentinel-1/2 band .*\['elevation', 'slope'\]"):
        make_cube([elevation], None, IngestOptions())
    mixed = write_tif(tmp_path / "mixed.tif", s.vv_db[:2], ["VV", "20191101_VV"])
    with pytest.raises(UnsupportedLayout, match="mixes band names of two styles"):
        make_cube([mixed], None, IngestOptions())
    no_vh = write_tif(tmp_path / "novh.tif", np.stack([s.vv_db[0], s.vh_db[0], s.vv_db[1]]),
                      ["20191101_VV", "20191101_VH", "20191113_VV"])
    with pytest.raises(UnsupportedLayout, match=r"Band VH is missing for 1 of 2 images .*'20191113'"):
        make_cube([no_vh], None, IngestOptions())
    with pytest.raises(UnsupportedLayout, match=r"No S2 bands \('B04', 'B08'\)"):
        make_cube([f1], [f1], IngestOptions())
    other = tobands_s2(tmp_path / "s2.tif", s, [s2_id(st) for st in s.stamps()])
    with rasterio.open(other, "r+") as dst:
        dst.transform = rasterio.transform.from_origin(440010.0, 9240000.0, 50.0, 50.0)
    with pytest.raises(GridMismatch, match="not on one grid"):
        make_cube([f1], [other], IngestOptions())


def test_python_entry_in_udf_ingest():
    from udf.ingest.sources import cube_from_exports

    cube = cube_from_exports(TOGO, TOGO, layout="cropharvest", no_cloud_mask=True, period=None)
    assert cube.sizes["t"] == 12 and "ndvi_warning" in cube.attrs
    with pytest.raises(TypeError, match="unexpected keyword"):
        cube_from_exports(TOGO, None, no_such_option=1)
