"""The stock openeo client runs UDFs on the local backend with the same result as ``execute_local_udf``."""

from pathlib import Path

import numpy as np
import openeo
import pytest
import xarray as xr
from conftest import UDF_CODE, requires_project_udf
from openeo.udf.run_code import execute_local_udf

PERIOD = ["2018-03-01", "2018-07-01"]


def _cube(connection: openeo.Connection, bands: list[str] | None = None) -> openeo.DataCube:
    return connection.load_collection("S1NDVI_SAMPLE_CUBE", temporal_extent=PERIOD, bands=bands)


def _expected(udf: openeo.UDF, cube_file: Path) -> xr.DataArray:
    return execute_local_udf(udf, cube_file, fmt="netcdf").get_datacube_list()[0].get_array()


def _assert_equal(result_file: Path, expected: xr.DataArray, atol: float = 1e-6) -> None:
    got = xr.open_dataset(result_file)
    for band in expected["bands"].values:
        want = expected.sel(bands=band).transpose("t", "y", "x")
        np.testing.assert_array_equal(got["t"].values, want["t"].values.astype("datetime64[ns]"))
        np.testing.assert_allclose(got[str(band)].values, want.values, atol=atol, equal_nan=True)


def test_collections_listed(connection: openeo.Connection) -> None:
    ids = connection.list_collection_ids()
    assert {"SENTINEL1_GRD", "SENTINEL2_L2A", "S1NDVI_SAMPLE_CUBE"} <= set(ids)
    meta = connection.describe_collection("S1NDVI_SAMPLE_CUBE")
    assert meta["cube:dimensions"]["bands"]["values"] == ["VV", "VH", "NDVI"]
    assert meta["cube:dimensions"]["x"]["reference_system"] == 32631


def test_apply_dimension_udf_matches_local_execution(connection: openeo.Connection, tmp_path: Path) -> None:
    udf = openeo.UDF.from_file(UDF_CODE / "scale_labels.py", context={"factor": 3})
    _cube(connection).download(tmp_path / "in.nc")
    _cube(connection).apply_dimension(process=udf, dimension="t").download(tmp_path / "out.nc")
    expected = _expected(udf, tmp_path / "in.nc")
    _assert_equal(tmp_path / "out.nc", expected)
    assert float(np.nanmax(np.abs(expected.sel(bands="VV").values))) > 0  # not an all-zero/NaN comparison


def test_apply_neighborhood_overlap_matches_whole_cube(connection: openeo.Connection, tmp_path: Path) -> None:
    udf = openeo.UDF.from_file(UDF_CODE / "mean3x3.py")
    _cube(connection).download(tmp_path / "in.nc")
    size = [{"dimension": d, "value": 10, "unit": "px"} for d in ("x", "y")] + [{"dimension": "t", "value": None}]
    overlap = [{"dimension": d, "value": 1, "unit": "px"} for d in ("x", "y")]
    _cube(connection).apply_neighborhood(process=udf, size=size, overlap=overlap).download(tmp_path / "out.nc")
    _assert_equal(tmp_path / "out.nc", _expected(udf, tmp_path / "in.nc"), atol=1e-5)


def test_apply_neighborhood_without_overlap_differs(connection: openeo.Connection, tmp_path: Path) -> None:
    """Guards the overlap test: without overlap tile borders must differ from the whole-cube filter."""
    udf = openeo.UDF.from_file(UDF_CODE / "mean3x3.py")
    _cube(connection).download(tmp_path / "in.nc")
    size = [{"dimension": d, "value": 10, "unit": "px"} for d in ("x", "y")]
    _cube(connection).apply_neighborhood(process=udf, size=size, overlap=[]).download(tmp_path / "out.nc")
    expected = _expected(udf, tmp_path / "in.nc").sel(bands="VV").transpose("t", "y", "x").values
    assert not np.allclose(xr.open_dataset(tmp_path / "out.nc")["VV"].values, expected, atol=1e-5, equal_nan=True)


def test_reduce_dimension_udf_over_bands(connection: openeo.Connection, tmp_path: Path) -> None:
    udf = openeo.UDF.from_file(UDF_CODE / "band_reducer.py")
    cube = _cube(connection, ["VV", "VH"])
    cube.download(tmp_path / "in.nc")
    cube.reduce_dimension(dimension="bands", reducer=udf).download(tmp_path / "out.nc")
    inp = xr.open_dataset(tmp_path / "in.nc")
    got = xr.open_dataset(tmp_path / "out.nc")
    values = [v for v in got.data_vars if v != "crs"]
    assert len(values) == 1
    np.testing.assert_allclose(got[values[0]].values, (inp["VV"] / inp["VH"]).values, rtol=1e-6, equal_nan=True)


def test_top_level_run_udf(connection: openeo.Connection, tmp_path: Path) -> None:
    udf_code = (UDF_CODE / "scale_labels.py").read_text()
    cube = _cube(connection)
    cube.download(tmp_path / "in.nc")
    cube.process("run_udf", data=cube, udf=udf_code, runtime="Python", context={"factor": 2}).download(
        tmp_path / "out.nc", format="netCDF")
    _assert_equal(tmp_path / "out.nc", _expected(openeo.UDF(udf_code, context={"factor": 2}), tmp_path / "in.nc"))


@requires_project_udf
@pytest.mark.parametrize("how", ["apply_dimension", "apply_neighborhood"])
def test_project_udf_matches_local_execution(connection: openeo.Connection, tmp_path: Path, how: str) -> None:
    from udf import UDF_PATH

    udf = openeo.UDF.from_file(UDF_PATH, context={"device": "cpu"})
    cube = _cube(connection)
    cube.download(tmp_path / "in.nc")
    if how == "apply_dimension":
        result = cube.apply_dimension(process=udf, dimension="t")
    else:
        size = [{"dimension": d, "value": 64, "unit": "px"} for d in ("x", "y")] + [{"dimension": "t", "value": None}]
        result = cube.apply_neighborhood(process=udf, size=size, overlap=[])
    result.download(tmp_path / "out.nc")
    expected = _expected(udf, tmp_path / "in.nc")
    assert list(expected["bands"].values) == ["NDVI"]
    _assert_equal(tmp_path / "out.nc", expected, atol=1e-4)
