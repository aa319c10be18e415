"""Every bad input found while probing the server answers 4xx with an openEO error code, never a 500 (issue 13)."""

import http.client
import json
import time
from pathlib import Path

import numpy as np
import openeo
import pytest
import requests
import xarray as xr
from conftest import UDF_CODE, Server
from openeo.rest import OpenEoApiError


def _headers(connection: openeo.Connection) -> dict[str, str]:
    return {"Authorization": f"Bearer {connection.auth.bearer}"}  # type: ignore[union-attr]


def _api(server: Server, path: str) -> str:
    return f"{server.url}/openeo/1.2{path}"


def _error(response: requests.Response, status: int, code: str) -> dict:
    assert response.status_code == status, response.text
    body = response.json()
    assert body["code"] == code and body["message"], body
    return dict(body)


def _graph(connection: openeo.Connection, cube: openeo.DataCube) -> dict:
    return {"process": {"process_graph": cube.flat_graph()}}


def test_non_ascii_token_signature(server: Server, connection: openeo.Connection) -> None:
    token = connection.auth.bearer  # type: ignore[union-attr]
    raw = http.client.HTTPConnection(server.url.split("//")[1], timeout=10)
    raw.putrequest("GET", "/openeo/1.2/me")
    raw.putheader("Authorization", f"Bearer {token[:-2]}\u00e9\u00e9".encode("latin-1"))
    raw.endheaders()
    response = raw.getresponse()
    assert response.status == 403 and json.loads(response.read())["code"] == "TokenInvalid"


@pytest.mark.parametrize("path", [
    "/jobs/j-123/results/assets/dGVzdGVy/abc/openEO.nc",  # valid base64 user: openeo-driver hit a None signer
    "/jobs/j-123/results/assets/dGVzdGV/abc/openEO.nc",   # "Incorrect padding"
    "/jobs/j-123/results/dGVzdGVy/abc",
    "/jobs/j-123/results/items/dGVzdGVy/abc/item",
])
def test_signed_result_urls_are_not_served(server: Server, path: str) -> None:
    body = _error(requests.get(_api(server, path), timeout=10), 404, "NotFound")
    assert "Signed result URLs" in body["message"]


def test_load_collection_with_object_id(server: Server, connection: openeo.Connection) -> None:
    graph = {"process": {"process_graph": {"load": {"process_id": "load_collection", "result": True,
                                                    "arguments": {"id": {"nested": "id"}, "spatial_extent": None,
                                                                  "temporal_extent": None}}}}}
    response = requests.post(_api(server, "/result"), json=graph, headers=_headers(connection), timeout=30)
    assert "'id'" in _error(response, 400, "ProcessParameterInvalid")["message"]


@pytest.mark.parametrize("field, value", [("title", {"a": 1}), ("description", ["x", "y"])])
def test_job_text_field_of_wrong_type(server: Server, connection: openeo.Connection, field: str,
                                      value: object) -> None:
    cube = connection.load_collection("S1NDVI_SAMPLE_CUBE")
    response = requests.post(_api(server, "/jobs"), json={**_graph(connection, cube), field: value},
                             headers=_headers(connection), timeout=30)
    assert f"'{field}'" in _error(response, 400, "BadRequest")["message"]


def test_deeply_nested_json(server: Server, connection: openeo.Connection) -> None:
    body = '{"process": {"process_graph": ' + "[" * 100_000 + "]" * 100_000 + "}}"
    response = requests.post(_api(server, "/result"), data=body, timeout=30,
                             headers={**_headers(connection), "Content-Type": "application/json"})
    assert "nested" in _error(response, 400, "BadRequest")["message"]


def test_body_over_size_limit(server: Server, connection: openeo.Connection) -> None:
    raw = http.client.HTTPConnection(server.url.split("//")[1], timeout=10)
    raw.putrequest("POST", "/openeo/1.2/result")
    for key, value in {**_headers(connection), "Content-Type": "application/json",
                       "Content-Length": str(100 * 2**20)}.items():
        raw.putheader(key, value)
    raw.endheaders()  # the body is never sent: the server must answer from the headers
    response = raw.getresponse()
    body = json.loads(response.read())
    assert response.status == 413 and body["code"] == "BadRequest" and "larger than the limit" in body["message"]


def test_merge_cubes_with_overlap_resolver_as_the_client_sends_it(connection: openeo.Connection,
                                                                 tmp_path: Path) -> None:
    def band(name: str) -> openeo.DataCube:
        cube = connection.load_collection("S1NDVI_SAMPLE_CUBE", temporal_extent=["2018-05-01", "2018-06-01"],
                                          bands=[name])
        return cube.rename_labels(dimension="bands", target=["B"])

    band("VV").merge_cubes(band("VH"), overlap_resolver="max").download(tmp_path / "max.nc")
    band("VV").download(tmp_path / "vv.nc")
    band("VH").download(tmp_path / "vh.nc")
    merged, vv, vh = (xr.open_dataset(tmp_path / f"{n}.nc")["B"].values for n in ("max", "vv", "vh"))
    np.testing.assert_allclose(merged, np.fmax(vv, vh), equal_nan=True)


@pytest.mark.parametrize("path", ["/_debug/echo", "/_debug/error", "/_debug/error/api/500/Boom"])
def test_debug_routes_are_off(server: Server, connection: openeo.Connection, path: str) -> None:
    for headers in ({}, _headers(connection)):
        response = requests.get(_api(server, path), headers=headers, timeout=10)
        assert "--debug" in _error(response, 404, "NotFound")["message"]
        assert "Bearer" not in response.text


def test_intermediate_cube_over_sync_limit(connection: openeo.Connection) -> None:
    cube = connection.load_collection("S1NDVI_SAMPLE_CUBE", temporal_extent=["2018-05-01", "2018-06-01"])
    start = time.monotonic()
    with pytest.raises(OpenEoApiError) as info:
        cube.resample_spatial(resolution=0.5).reduce_dimension(dimension="t", reducer="mean").download()
    assert info.value.http_status_code == 413 and info.value.code == "ProcessGraphComplexity"
    assert "'resample_spatial'" in info.value.message and "--max-sync-mb" in info.value.message
    assert time.monotonic() - start < 20


def test_client_errors_logged_without_traceback(server: Server, connection: openeo.Connection) -> None:
    with pytest.raises(OpenEoApiError):
        connection.load_collection("NO_SUCH_COLLECTION_ISSUE13").download()
    time.sleep(0.5)
    lines = server.log.read_text().splitlines()
    hits = [i for i, line in enumerate(lines) if "NO_SUCH_COLLECTION_ISSUE13" in line and "status_code=404" in line]
    assert hits
    for i in hits:
        assert " INFO " in lines[i], lines[i]
        assert not any(line.startswith("Traceback") for line in lines[i + 1:i + 3])


def test_client_disconnect_stops_the_request(server: Server, connection: openeo.Connection) -> None:
    cube = connection.load_collection("S1NDVI_SAMPLE_CUBE", temporal_extent=["2018-05-01", "2018-06-01"])
    slow = cube.apply_dimension(process=openeo.UDF.from_file(UDF_CODE / "slow.py", context={"seconds": 60}),
                                dimension="t")
    with pytest.raises(requests.exceptions.ReadTimeout):  # the client gives up and closes its connection
        requests.post(_api(server, "/result"), json=_graph(connection, slow), headers=_headers(connection), timeout=3)
    start = time.monotonic()
    quick = cube.apply_dimension(process=openeo.UDF.from_file(UDF_CODE / "scale_labels.py"), dimension="t")
    assert len(quick.download(format="netCDF") or b"") > 1000
    assert time.monotonic() - start < 30  # not queued behind the abandoned 60 s tile on the single worker
    assert "The client closed the connection" in server.log.read_text()
