"""The phenology UDF in the graph a cloud user writes, through the stock client against the local backend.

pheno = cube.apply_dimension(phenology UDF, dimension="t", target_dimension="bands") on the sample's NDVI and on the
fusion UDF's output (fused = load_collection → apply_neighborhood(fusion UDF)); save_result as netCDF and as GeoTIFF
(one band per output); both checked against ``execute_local_udf`` on the same input.
"""

from pathlib import Path

import numpy as np
import openeo
import pytest
import rasterio
import xarray as xr
from conftest import PASSWORD, USER, requires_project_udf
from openeo.udf.run_code import execute_local_udf

FARMING_YEAR = ["2017-11-01", "2018-11-01"]


@pytest.fixture(scope="module")
def connection(server) -> openeo.Connection:  # type: ignore[no-untyped-def]  # module scope, for the file fixtures
    return openeo.connect(server.url).authenticate_basic(USER, PASSWORD)


def _sample(connection: openeo.Connection, bands: list[str] | None = None) -> openeo.DataCube:
    return connection.load_collection("S1NDVI_SAMPLE_CUBE", temporal_extent=FARMING_YEAR, bands=bands)


def _fused(connection: openeo.Connection) -> openeo.DataCube:
    from udf import UDF_PATH

    size = [{"dimension": d, "value": 64, "unit": "px"} for d in ("x", "y")] + [{"dimension": "t", "value": None}]
    overlap = [{"dimension": d, "value": 1, "unit": "px"} for d in ("x", "y")]
    udf = openeo.UDF.from_file(UDF_PATH, context={"include_uncertainty": True, "device": "cpu"})
    return _sample(connection).apply_neighborhood(process=udf, size=size, overlap=overlap)


def _phenology(cube: openeo.DataCube, context: dict | None = None) -> openeo.DataCube:
    from udf import PHENOLOGY_UDF_PATH

    udf = openeo.UDF.from_file(PHENOLOGY_UDF_PATH, context=context or {})
    return cube.apply_dimension(process=udf, dimension="t", target_dimension="bands")


def _assert_matches_local(result: Path, source: Path, context: dict | None = None) -> xr.DataArray:
    from udf import PHENOLOGY_UDF_PATH
    from udf.phenology import PhenologyConfig, band_names

    got = xr.open_dataset(result)
    max_seasons = PhenologyConfig.from_context(context).max_seasons
    assert [v for v in got.data_vars if v != "crs"] == band_names(max_seasons)
    assert [str(t)[:10] for t in got["t"].values] == ["2017-11-01"]
    assert "crs_wkt" in got["crs"].attrs
    udf = openeo.UDF.from_file(PHENOLOGY_UDF_PATH, context=context or {})
    want = execute_local_udf(udf, source, fmt="netcdf").get_datacube_list()[0].get_array()
    assert np.isfinite(want.sel(bands="POS_1").values).mean() > 0.5  # not an all-NaN comparison
    for band in want["bands"].values:
        np.testing.assert_allclose(got[str(band)].values, want.sel(bands=band).transpose("t", "y", "x").values,
                                   rtol=1e-6, atol=1e-3, equal_nan=True)
    return want


def test_phenology_of_the_sample_netcdf_and_geotiff(connection: openeo.Connection, tmp_path: Path) -> None:
    from udf.phenology import band_names

    _sample(connection, ["NDVI"]).download(tmp_path / "in.nc", format="netCDF")
    _phenology(_sample(connection)).download(tmp_path / "pheno.nc", format="netCDF")
    want = _assert_matches_local(tmp_path / "pheno.nc", tmp_path / "in.nc")
    pos = want.sel(bands="POS_1").values
    start, end = (np.datetime64(d).astype("datetime64[D]").astype(np.int64) for d in FARMING_YEAR)
    assert np.nanmin(pos) >= start and np.nanmax(pos) < end  # seasons belong to the year of their peak
    _phenology(_sample(connection)).download(tmp_path / "pheno.tif", format="GTiff")
    with rasterio.open(tmp_path / "pheno.tif") as src:
        assert src.count == len(band_names(3)) and list(src.descriptions) == band_names(3)
        assert src.crs is not None and src.crs.to_epsg() == 32631
        bands = src.read()
    for k, name in enumerate(band_names(3)):
        np.testing.assert_allclose(bands[k], want.sel(bands=name).values[0], atol=1e-3, equal_nan=True)


@requires_project_udf
def test_fused_then_phenology(connection: openeo.Connection, tmp_path: Path) -> None:
    _fused(connection).download(tmp_path / "fused.nc", format="netCDF")
    _phenology(_fused(connection)).download(tmp_path / "pheno.nc", format="netCDF")
    _assert_matches_local(tmp_path / "pheno.nc", tmp_path / "fused.nc")


def test_phenology_error_reaches_the_client(connection: openeo.Connection, tmp_path: Path) -> None:
    with pytest.raises(openeo.rest.OpenEoApiError, match="NDVI"):
        _phenology(_sample(connection, ["VV", "VH"])).download(tmp_path / "x.nc", format="netCDF")
