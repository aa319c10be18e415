"""openEO error JSON (code, message, id) and HTTP status for each failure; the server keeps serving after each."""

import concurrent.futures
import json
import urllib.error
import urllib.request
from pathlib import Path

import numpy as np
import openeo
import pytest
import xarray as xr
from conftest import UDF_CODE, Server
from openeo.rest import OpenEoApiError


def _post_raw(server: Server, connection: openeo.Connection, path: str, body: bytes) -> tuple[int, dict]:
    token = connection.auth.bearer  # type: ignore[union-attr]
    request = urllib.request.Request(f"{server.url}/openeo/1.2{path}", data=body, method="POST",
                                     headers={"Content-Type": "application/json", "Authorization": f"Bearer {token}"})
    try:
        with urllib.request.urlopen(request, timeout=30) as resp:
            return resp.status, {}
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def _still_serving(connection: openeo.Connection) -> None:
    assert "S1NDVI_SAMPLE_CUBE" in connection.list_collection_ids()
    cube = connection.load_collection("S1NDVI_SAMPLE_CUBE", temporal_extent=["2018-05-01", "2018-05-11"])
    assert len(cube.download(format="netCDF") or b"") > 1000


def test_malformed_json(server: Server, connection: openeo.Connection) -> None:
    status, body = _post_raw(server, connection, "/result", b'{"process": {"process_graph": ')
    assert status == 400
    assert body["code"] == "BadRequest" and body["id"] and "Malformed" in body["message"]
    _still_serving(connection)


def test_unknown_process(connection: openeo.Connection) -> None:
    cube = connection.load_collection("S1NDVI_SAMPLE_CUBE").process("no_such_process", data=None)
    with pytest.raises(OpenEoApiError) as info:
        cube.download(format="netCDF")
    assert info.value.http_status_code == 400 and info.value.code == "ProcessUnsupported"
    assert "no_such_process" in info.value.message
    _still_serving(connection)


def test_internal_process_ids_refused(connection: openeo.Connection) -> None:
    cube = connection.load_collection("S1NDVI_SAMPLE_CUBE").process("s1ndvi_udf_apply_dimension", data=None)
    with pytest.raises(OpenEoApiError) as info:
        cube.download(format="netCDF")
    assert info.value.code == "ProcessUnsupported"


def test_unknown_collection(connection: openeo.Connection) -> None:
    with pytest.raises(OpenEoApiError) as info:
        connection.load_collection("NOPE_COLLECTION").download(format="netCDF")
    assert info.value.http_status_code == 404 and info.value.code == "CollectionNotFound"
    assert "NOPE_COLLECTION" in info.value.message and "SENTINEL1_GRD" in info.value.message
    graph = connection.datacube_from_process("load_collection", id="NOPE_COLLECTION")  # no client-side lookup
    with pytest.raises(OpenEoApiError) as info:
        graph.download(format="netCDF")
    assert info.value.http_status_code == 404 and info.value.code == "CollectionNotFound"
    _still_serving(connection)


@pytest.mark.parametrize("kwargs, parameter", [
    ({"bands": ["VV", "B99"]}, "bands"),
    ({"spatial_extent": {"west": 10.0, "south": 40.0, "east": 10.1, "north": 40.1}}, "spatial_extent"),
    ({"temporal_extent": ["2030-01-01", "2030-02-01"]}, "temporal_extent"),
])
def test_invalid_argument(connection: openeo.Connection, kwargs: dict, parameter: str) -> None:
    graph = connection.datacube_from_process("load_collection", id="S1NDVI_SAMPLE_CUBE", **kwargs)
    with pytest.raises(OpenEoApiError) as info:
        graph.download(format="netCDF")
    assert info.value.http_status_code == 400 and info.value.code == "ProcessParameterInvalid"
    assert f"'{parameter}'" in info.value.message
    _still_serving(connection)


def test_sar_backscatter_refuses_other_coefficient(connection: openeo.Connection) -> None:
    cube = connection.load_collection("SENTINEL1_GRD", temporal_extent=["2018-05-01", "2018-05-10"])
    with pytest.raises(OpenEoApiError) as info:
        cube.sar_backscatter(coefficient="gamma0-terrain").download(format="netCDF")
    assert info.value.code == "ProcessParameterInvalid" and "sigma0-ellipsoid" in info.value.message


def test_sar_backscatter_is_identity_on_backscatter(connection: openeo.Connection, tmp_path: Path) -> None:
    cube = connection.load_collection("SENTINEL1_GRD", temporal_extent=["2018-05-01", "2018-05-20"])
    cube.download(tmp_path / "raw.nc")
    cube.sar_backscatter(coefficient="sigma0-ellipsoid").download(tmp_path / "sar.nc")
    raw, sar = xr.open_dataset(tmp_path / "raw.nc"), xr.open_dataset(tmp_path / "sar.nc")
    for band in ("VV", "VH"):
        np.testing.assert_array_equal(raw[band].values, sar[band].values)
    assert 0 < float(np.nanmedian(raw["VV"].values)) < 1  # linear power, not dB


def test_udf_exception(connection: openeo.Connection) -> None:
    udf = openeo.UDF.from_file(UDF_CODE / "failing.py", context={"marker": 42})
    cube = connection.load_collection("S1NDVI_SAMPLE_CUBE", temporal_extent=["2018-05-01", "2018-06-01"])
    with pytest.raises(OpenEoApiError) as info:
        cube.apply_dimension(process=udf, dimension="t").download(format="netCDF")
    assert info.value.http_status_code == 400 and info.value.code == "UdfError"
    assert "ValueError: boom from the test UDF" in info.value.message and "'marker': 42" in info.value.message
    _still_serving(connection)


def test_result_too_large_for_sync(connection: openeo.Connection) -> None:
    with pytest.raises(OpenEoApiError) as info:
        connection.load_collection("SENTINEL2_L2A").download(format="netCDF")
    assert info.value.http_status_code == 413 and info.value.code == "ProcessGraphComplexity"
    assert "batch job" in info.value.message
    _still_serving(connection)


def test_processing_requires_authentication(server: Server) -> None:
    anonymous = openeo.connect(server.url)
    assert "SENTINEL1_GRD" in anonymous.list_collection_ids()  # discovery stays public
    with pytest.raises(OpenEoApiError) as info:
        anonymous.load_collection("S1NDVI_SAMPLE_CUBE").download(format="netCDF")
    assert info.value.http_status_code == 401


def test_wrong_password_and_forged_token(server: Server) -> None:
    import base64

    with pytest.raises(OpenEoApiError) as info:
        openeo.connect(server.url).authenticate_basic("tester", "wrong")
    assert info.value.http_status_code == 403
    forged = base64.urlsafe_b64encode(b"tester").decode()  # openeo-driver's default (unsigned) token
    request = urllib.request.Request(f"{server.url}/openeo/1.2/me",
                                     headers={"Authorization": f"Bearer basic//{forged}"})
    with pytest.raises(urllib.error.HTTPError) as http:
        urllib.request.urlopen(request, timeout=10)
    assert http.value.code == 403 and json.loads(http.value.read())["code"] == "TokenInvalid"


def test_concurrent_sync_requests(connection: openeo.Connection, tmp_path: Path) -> None:
    udf = openeo.UDF.from_file(UDF_CODE / "scale_labels.py", context={"factor": 2})
    months = [f"2018-0{m}" for m in range(3, 7)]

    def run(month: str) -> None:  # only HTTP in threads: HDF5 in this test process is not thread-safe
        cube = connection.load_collection("S1NDVI_SAMPLE_CUBE", temporal_extent=[f"{month}-01", f"{month}-28"],
                                          bands=["VV"])
        cube.apply_dimension(process=udf, dimension="t").download(tmp_path / f"{month}-out.nc")
        cube.download(tmp_path / f"{month}-in.nc")

    with concurrent.futures.ThreadPoolExecutor(max_workers=4) as pool:
        list(pool.map(run, months))
    means = []
    for month in months:
        out, inp = xr.open_dataset(tmp_path / f"{month}-out.nc"), xr.open_dataset(tmp_path / f"{month}-in.nc")
        np.testing.assert_allclose(out["VV"].values, 2 * inp["VV"].values, rtol=1e-6, equal_nan=True)
        means.append(float(np.nanmean(out["VV"].values)))
    assert len(set(means)) == 4
