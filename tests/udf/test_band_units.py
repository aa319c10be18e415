"""Output variables carry CF ``units`` and ``long_name``: the fusion and phenology outputs (DataArray attributes the
openEO UDF returns) and every netCDF file written through :func:`udf.ingest.cube_io.write_cube`."""

import json

import numpy as np
import pytest
import xarray as xr

from tests.conftest import make_cube
from tests.udf.test_phenology import cube_of, curve, grid
from udf.band_info import band_attrs, band_info
from udf.inference import predict_cube
from udf.ingest.cube_io import read_cube, write_cube
from udf.phenology import PhenologyConfig, band_names, phenology_cube
from udf.weights import load_checkpoint


def test_every_output_band_is_defined() -> None:
    for band in ["NDVI", "NDVI_STD", *band_names(3, uncertainty=True, flooding=True)]:
        info = band_info(band)
        assert info and info["units"] and info["long_name"], band
    assert band_info("SOS_2") == {"units": "day", "long_name": "start of season 2 (days since 1970-01-01)"}
    assert band_info("CONF_1")["units"] == "1" and band_info("LOS_1")["units"] == "day"
    assert band_info("VV", "linear")["units"] == "1" and band_info("VH", "db")["units"] == "dB"
    assert "units" not in band_info("VV") and band_info("B04") is None  # never a guessed unit


def test_band_attrs_lists_each_band_and_a_shared_unit() -> None:
    attrs = band_attrs(["NDVI", "NDVI_STD"])
    assert attrs["units"] == "1" and attrs["band_units"] == "1;1"
    assert attrs["band_long_names"].split(";")[1] == "predictive standard deviation of NDVI (±1σ)"
    assert "units" not in band_attrs(["SOS_1", "CONF_1"])  # mixed units: only the per-band list


def _variables(path) -> xr.Dataset:
    with xr.open_dataset(path, decode_timedelta=False) as ds:
        return ds.load()


def test_predict_output_and_its_netcdf_carry_units(random_checkpoint, tmp_path) -> None:
    model, meta = load_checkpoint(str(random_checkpoint))
    out = predict_cube(make_cube(units="linear", nt=20, ny=4, nx=4), model, meta, device="cpu",
                       include_uncertainty=True)
    assert out.attrs["units"] == "1" and out.attrs["band_units"] == "1;1"
    json.loads(out.attrs["s1ndvi_self_calibration"])  # the other attributes are kept
    path = write_cube(out, tmp_path / "fused.nc")
    ds = _variables(path)
    assert ds["NDVI"].attrs["units"] == "1" and ds["NDVI"].attrs["long_name"].startswith("NDVI")
    assert ds["NDVI_STD"].attrs["long_name"] == "predictive standard deviation of NDVI (±1σ)"
    assert "units" not in ds.attrs and "band_units" not in ds.attrs  # per band, not global
    back = read_cube(path)
    np.testing.assert_allclose(back.values, out.values)


def test_phenology_output_and_its_netcdf_carry_units(tmp_path) -> None:
    days = grid("2017-08-01", "2018-10-31", 10)
    out = phenology_cube(cube_of(days, curve(days, [("2018-04-01", "2018-09-01")])),
                         PhenologyConfig(year_start="01-01", uncertainty=True))
    names = [str(b) for b in out["bands"].values]
    assert out.attrs["band_units"].split(";") == [band_info(b)["units"] for b in names]
    path = write_cube(out, tmp_path / "pheno.nc")
    ds = _variables(path)
    assert ds["SOS_1"].attrs == {**band_info("SOS_1"), "grid_mapping": "crs"}
    assert ds["N_SEASONS"].attrs["units"] == "1" and ds["SOS_STD_1"].attrs["units"] == "day"
    back = read_cube(path)  # no band decoded into dates or durations and dropped
    assert [str(b) for b in back["bands"].values] == names
    np.testing.assert_allclose(back.values, out.values.astype(np.float32), equal_nan=True)


@pytest.mark.parametrize("units,want", [("linear", "1"), ("db", "dB")])
def test_a_model_cube_written_to_netcdf_says_its_s1_units(tmp_path, units, want) -> None:
    cube = make_cube(units=units, nt=4, ny=3, nx=3)
    cube.attrs["s1_units"] = units
    ds = _variables(write_cube(cube, tmp_path / "cube.nc"))
    assert ds["VV"].attrs["units"] == want and ds["VH"].attrs["long_name"].startswith("Sentinel-1 VH backscatter")
    assert ds["NDVI"].attrs["units"] == "1"
    assert ds.attrs["s1_units"] == units


def test_an_unknown_band_keeps_its_name_as_long_name(tmp_path) -> None:
    cube = make_cube(nt=3, ny=2, nx=2).assign_coords(bands=["B1", "B2", "B3"])
    ds = _variables(write_cube(cube, tmp_path / "x.nc"))
    assert ds["B2"].attrs == {"long_name": "B2", "grid_mapping": "crs"}
