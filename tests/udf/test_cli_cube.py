"""``s1ndvi cube`` on every kind of input: the real GEE fixture, netCDF, refusals; lazy and chunked output."""

import netCDF4
import numpy as np
import pytest
import xarray as xr

from tests.conftest import DATA
from tests.udf.gee_files import Series, s1_id, s2_id, tobands_s1, tobands_s2
from udf.cli import main
from udf.errors import CloudMaskMissing
from udf.ingest.cube_io import read_cube
from udf.ingest.options import IngestOptions
from udf.ingest.sample import CROSS_SITE_FILE, sample_files
from udf.ingest.sources import make_cube

TOGO = DATA / "gee" / "98-togo_2019-02-06_2020-02-01.tif"


def test_cube_command_on_the_cropharvest_export(tmp_path):
    out = tmp_path / "togo.nc"
    assert main(["cube", "--s1", str(TOGO), "--s2", str(TOGO), "--layout", "cropharvest", "--no-cloud-mask",
                 "--period", "acquisition", "--out", str(out)]) == 0
    cube = read_cube(out)
    assert list(cube["bands"].values) == ["VV", "VH", "NDVI"] and cube.sizes["t"] == 12
    assert cube.attrs["ndvi_warning"].startswith("NDVI may be cloud-contaminated")
    assert cube.attrs["ndvi_cloud_mask"] == "none" and "cropharvest" in cube.attrs["source_s2"]


def test_cube_command_on_netcdf_is_unchanged_and_refuses_s2_without_scl(tmp_path):
    f = sample_files()
    out = tmp_path / "c.nc"
    assert main(["cube", "--s1", str(f["s1"]), "--s2", str(f["s2_10m"]), "--scl", str(f["s2_20m"]), "--period",
                 "12D", "--out", str(out)]) == 0
    from udf.ingest.base import build_cube, load_s1, load_s2_ndvi

    s1 = load_s1(f["s1"])
    ref = build_cube(s1, load_s2_ndvi(f["s2_10m"], s1, scl_path=f["s2_20m"]), period="12D")
    np.testing.assert_array_equal(read_cube(out).values, ref.values)
    with pytest.raises(CloudMaskMissing, match=r"no SCL band .*--no-cloud-mask"):
        make_cube([str(CROSS_SITE_FILE)], [str(CROSS_SITE_FILE)], IngestOptions())
    assert main(["cube", "--s1", str(CROSS_SITE_FILE), "--s2", str(CROSS_SITE_FILE), "--out", str(out)]) == 2
    assert main(["cube", "--s1", str(CROSS_SITE_FILE), "--s2", str(CROSS_SITE_FILE), "--no-cloud-mask",
                 "--period", "acquisition", "--out", str(out)]) == 0
    assert "cloud-contaminated" in read_cube(out).attrs["ndvi_warning"]


def test_geotiff_cube_is_lazy_blockwise_equal_and_written_chunked(tmp_path):
    s = Series(nt=9, ny=40, nx=36, step_days=4, cloud=0.03)  # 3 scenes a period: the clearest-scene rule matters
    f1 = tobands_s1(tmp_path / "s1.tif", s, [s1_id(st, 29739) for st in s.stamps()])
    f2 = tobands_s2(tmp_path / "s2.tif", s, [s2_id(st) for st in s.stamps()])
    opts = dict(period="12D", cloud_dilation=1)
    small = make_cube([f1], [f2], IngestOptions(chunk=16, **opts))
    whole = make_cube([f1], [f2], IngestOptions(chunk=512, **opts))
    assert small.chunks is not None and small.data.numblocks[2:] == (3, 3)
    np.testing.assert_array_equal(small.values, whole.values)
    assert np.isfinite(whole.sel(bands="NDVI").values).mean() > 0.5
    out = tmp_path / "cube.nc"
    assert main(["cube", "--s1", str(f1), "--s2", str(f2), "--period", "12D", "--chunk", "16", "--cloud-dilation",
                 "1", "--out", str(out)]) == 0
    with netCDF4.Dataset(out) as nc:
        assert nc["NDVI"].chunking() == [1, 16, 16] and nc["VV"].dimensions == ("t", "y", "x")
    np.testing.assert_array_equal(read_cube(out).values, whole.values)
    with xr.open_dataset(out) as ds:
        assert ds.attrs["s1_orbits"] == "one orbit label for all acquisitions: REL092"
