"""The endpoints the openeo client and the openEO conformance suite use, and GTiff output with CRS."""

from pathlib import Path

import numpy as np
import openeo
import pytest
from conftest import Server, read_json


@pytest.mark.parametrize("path", ["/collections", "/collections/SENTINEL1_GRD", "/processes", "/file_formats",
                                  "/udf_runtimes", "/conformance", "/"])
def test_public_endpoints(server: Server, path: str) -> None:
    body = read_json(f"{server.url}/openeo/1.2{path}")
    assert body


def test_discovery(server: Server) -> None:
    versions = read_json(f"{server.url}/.well-known/openeo")["versions"]
    assert any(v["api_version"] == "1.2.0" for v in versions)
    capabilities = read_json(f"{server.url}/openeo/1.2/")
    paths = {e["path"] for e in capabilities["endpoints"]}
    for wanted in ("/collections", "/processes", "/result", "/jobs", "/jobs/{job_id}/results", "/me",
                   "/credentials/basic", "/file_formats", "/udf_runtimes", "/jobs/{job_id}/logs"):
        assert wanted in paths


def test_process_listing(connection: openeo.Connection) -> None:
    ids = {p["id"] for p in connection.list_processes()}
    for wanted in ("load_collection", "save_result", "run_udf", "apply_neighborhood", "apply_dimension",
                   "reduce_dimension", "aggregate_temporal_period", "merge_cubes", "mask", "ndvi",
                   "resample_cube_spatial", "sar_backscatter"):
        assert wanted in ids
    assert not any(i.startswith("s1ndvi_") for i in ids)


def test_file_formats_and_me(connection: openeo.Connection) -> None:
    formats = connection.list_output_formats()
    assert {"netCDF", "GTiff"} <= set(formats)
    assert connection.describe_account()["user_id"] == "tester"


def test_gtiff_with_crs(connection: openeo.Connection, tmp_path: Path) -> None:
    import rasterio

    cube = connection.load_collection("S1NDVI_SAMPLE_CUBE", temporal_extent=["2018-05-01", "2018-05-11"])
    cube.download(tmp_path / "one.tif", format="GTiff")
    with rasterio.open(tmp_path / "one.tif") as src:
        assert src.crs.to_epsg() == 32631
        assert src.count == 3 and src.descriptions == ("VV", "VH", "NDVI")
        assert src.transform.a == 20.0 and src.bounds.left == 501360.0
        vv = src.read(1)
    assert 0 < float(np.nanmedian(vv)) < 1


def test_spatial_extent_in_other_crs(connection: openeo.Connection, tmp_path: Path) -> None:
    import xarray as xr

    box = {"west": 501400, "south": 5629100, "east": 501600, "north": 5629300, "crs": 32631}
    connection.load_collection("S1NDVI_SAMPLE_CUBE", spatial_extent=box,
                               temporal_extent=["2018-05-01", "2018-05-11"]).download(tmp_path / "box.nc")
    ds = xr.open_dataset(tmp_path / "box.nc")
    assert ds["x"].values.min() >= 501400 and ds["x"].values.max() <= 501600 and ds.sizes["x"] == 10
