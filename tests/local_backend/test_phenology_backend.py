"""The phenology UDF in the graph a cloud user writes, through the stock client against the local backend.

fused = load_collection → apply_neighborhood(fusion UDF); pheno = fused.apply_dimension(phenology UDF, dimension="t",
target_dimension="bands"); save_result as netCDF and as GeoTIFF (one band per output).
"""

from pathlib import Path

import numpy as np
import openeo
import pytest
import rasterio
import xarray as xr
from conftest import requires_project_udf
from openeo.udf.run_code import execute_local_udf

FARMING_YEAR = ["2017-11-01", "2018-11-01"]


def _fused(connection: openeo.Connection) -> openeo.DataCube:
    from udf import UDF_PATH

    cube = connection.load_collection("S1NDVI_SAMPLE_CUBE", temporal_extent=FARMING_YEAR)
    size = [{"dimension": d, "value": 64, "unit": "px"} for d in ("x", "y")] + [{"dimension": "t", "value": None}]
    overlap = [{"dimension": d, "value": 1, "unit": "px"} for d in ("x", "y")]
    udf = openeo.UDF.from_file(UDF_PATH, context={"include_uncertainty": True, "device": "cpu"})
    return cube.apply_neighborhood(process=udf, size=size, overlap=overlap)


def _phenology(cube: openeo.DataCube, context: dict | None = None) -> openeo.DataCube:
    from udf import PHENOLOGY_UDF_PATH

    udf = openeo.UDF.from_file(PHENOLOGY_UDF_PATH, context=context or {})
    return cube.apply_dimension(process=udf, dimension="t", target_dimension="bands")


@pytest.fixture(scope="module")
def fused_file(connection: openeo.Connection, tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("fused") / "fused.nc"
    _fused(connection).download(path, format="netCDF")
    return path


@pytest.fixture(scope="module")
def connection(server) -> openeo.Connection:  # type: ignore[no-untyped-def]  # module scope for fused_file
    from conftest import PASSWORD, USER

    return openeo.connect(server.url).authenticate_basic(USER, PASSWORD)


@requires_project_udf
def test_fused_then_phenology_netcdf(connection: openeo.Connection, fused_file: Path, tmp_path: Path) -> None:
    from udf import PHENOLOGY_UDF_PATH
    from udf.phenology import band_names

    _phenology(_fused(connection)).download(tmp_path / "pheno.nc", format="netCDF")
    got = xr.open_dataset(tmp_path / "pheno.nc")
    assert [v for v in got.data_vars if v != "crs"] == band_names(3)
    assert [str(t)[:10] for t in got["t"].values] == ["2017-11-01"]
    assert "crs_wkt" in got["crs"].attrs
    want = execute_local_udf(PHENOLOGY_UDF_PATH, fused_file, fmt="netcdf").get_datacube_list()[0].get_array()
    pos = want.sel(bands="POS_1").values
    assert np.isfinite(pos).mean() > 0.5  # not an all-NaN comparison
    for band in want["bands"].values:
        np.testing.assert_allclose(got[str(band)].values, want.sel(bands=band).transpose("t", "y", "x").values,
                                   rtol=1e-6, atol=1e-3, equal_nan=True)
    start, end = (np.datetime64(d).astype("datetime64[D]").astype(np.int64) for d in FARMING_YEAR)
    assert np.nanmin(pos) >= start and np.nanmax(pos) < end  # seasons assigned to the year of their peak


@requires_project_udf
def test_fused_then_phenology_geotiff_one_band_per_output(connection: openeo.Connection, fused_file: Path,
                                                           tmp_path: Path) -> None:
    from udf.phenology import band_names

    _phenology(_fused(connection), {"max_seasons": 2}).download(tmp_path / "pheno.tif", format="GTiff")
    with rasterio.open(tmp_path / "pheno.tif") as src:
        assert src.count == len(band_names(2)) and list(src.descriptions) == band_names(2)
        assert src.crs is not None and src.crs.to_epsg() == 32631
        n_seasons = src.read(src.count)
    ref = xr.open_dataset(fused_file)
    assert n_seasons.shape == (ref.sizes["y"], ref.sizes["x"])
    assert np.nanmax(n_seasons) >= 1 and np.isfinite(n_seasons).mean() > 0.5


def test_phenology_error_reaches_the_client(connection: openeo.Connection, tmp_path: Path) -> None:
    cube = connection.load_collection("S1NDVI_SAMPLE_CUBE", temporal_extent=FARMING_YEAR, bands=["VV", "VH"])
    with pytest.raises(openeo.rest.OpenEoApiError, match="NDVI"):
        _phenology(cube).download(tmp_path / "x.nc", format="netCDF")
