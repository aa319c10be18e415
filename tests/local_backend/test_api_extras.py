"""PATCH /jobs, estimates, service types, OIDC, empty validation, `serve --port`, and a browser-style session."""

import subprocess
import sys
import time
from pathlib import Path

import openeo
import pytest
import requests
import xarray as xr
from conftest import PASSWORD, REPO, USER, Server, requires_project_udf

ORIGIN = "https://editor.openeo.org"
SMALL_JOB = {"load": {"process_id": "load_collection", "arguments": {
    "id": "S1NDVI_SAMPLE_CUBE", "temporal_extent": ["2018-05-01", "2018-05-11"], "spatial_extent": None,
    "bands": ["NDVI"]}},
    "save": {"process_id": "save_result", "arguments": {"data": {"from_node": "load"}, "format": "netCDF"},
             "result": True}}


def _auth(connection: openeo.Connection) -> dict[str, str]:
    return {"Authorization": f"Bearer {connection.auth.bearer}"}


def test_patch_job(server: Server, connection: openeo.Connection) -> None:
    job = connection.create_job(SMALL_JOB, title="before")
    url = f"{server.url}/openeo/1.2/jobs/{job.job_id}"
    assert requests.patch(url, json={}, headers=_auth(connection), timeout=30).status_code == 204
    response = requests.patch(url, json={"title": "after", "description": "changed", "plan": "free"},
                              headers=_auth(connection), timeout=30)
    assert response.status_code == 204, response.text
    info = job.describe()
    assert (info["title"], info["description"]) == ("after", "changed")
    bad = requests.patch(url, json={"title": {"not": "a string"}}, headers=_auth(connection), timeout=30)
    assert bad.status_code == 400
    unknown = requests.patch(url, json={"status": "finished"}, headers=_auth(connection), timeout=30)
    assert unknown.status_code == 400 and "status" in unknown.json()["message"]
    other = requests.patch(f"{server.url}/openeo/1.2/jobs/j-nope", json={}, headers=_auth(connection), timeout=30)
    assert other.status_code == 404
    job.delete()


def test_estimate_from_measured_speed(server: Server, connection: openeo.Connection, tmp_path: Path) -> None:
    job = connection.create_job(SMALL_JOB)
    first = requests.get(f"{server.url}/openeo/1.2/jobs/{job.job_id}/estimate", headers=_auth(connection),
                         timeout=60).json()
    cube = connection.load_collection("S1NDVI_SAMPLE_CUBE", temporal_extent=["2018-05-01", "2018-05-11"],
                                      bands=["NDVI"])
    cube.download(tmp_path / "loaded.nc", format="netCDF")
    with xr.open_dataset(tmp_path / "loaded.nc") as data:
        assert first["size"] == data["NDVI"].size * 4  # the pixels the job loads, float32
    assert first["costs"] == 0
    job.start_and_wait()
    again = requests.get(f"{server.url}/openeo/1.2/jobs/{job.job_id}/estimate", headers=_auth(connection),
                         timeout=60).json()
    assert again["duration"].startswith("PT") and again["duration"].endswith("S")  # measured on finished jobs
    unknown = connection.create_job({"l": {"process_id": "load_collection", "arguments": {"id": "NOPE"},
                                           "result": True}})
    assert requests.get(f"{server.url}/openeo/1.2/jobs/{unknown.job_id}/estimate", headers=_auth(connection),
                        timeout=60).json() == {"costs": 0}


def test_service_types_oidc_validation(server: Server) -> None:
    base = f"{server.url}/openeo/1.2"
    assert requests.get(f"{base}/service_types", timeout=30).json() == {}
    oidc = requests.get(f"{base}/credentials/oidc", timeout=30)
    assert oidc.status_code == 404 and oidc.json()["code"] == "NotFound" and "basic" in oidc.json()["message"]
    empty = requests.post(f"{base}/validation", json={}, timeout=30)
    assert empty.status_code == 200 and empty.json()["errors"][0]["code"] == "ProcessGraphMissing"
    assert requests.post(f"{base}/validation", timeout=30).status_code == 400  # no body at all


@pytest.mark.parametrize("port", ["99999", "-1", "http"])
def test_serve_refuses_bad_port(port: str) -> None:
    result = subprocess.run([sys.executable, "-m", "udf.cli", "serve", "--port", port], cwd=REPO,
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 2
    assert "port must be" in result.stderr and port in result.stderr


def test_browser_flow(server: Server) -> None:
    """What the openEO Web Editor does: preflight, basic login, list, store a UDP, submit and run a job."""
    base = f"{server.url}/openeo/1.2"
    browser = requests.Session()
    browser.headers["Origin"] = ORIGIN

    def preflight(method: str, path: str) -> None:
        response = browser.options(f"{base}{path}", headers={"Access-Control-Request-Method": method,
                                                             "Access-Control-Request-Headers": "authorization,"
                                                                                               "content-type"})
        assert response.status_code in (200, 204), (method, path, response.status_code)
        assert response.headers.get("Access-Control-Allow-Origin") in ("*", ORIGIN)
        allowed = response.headers.get("Access-Control-Allow-Headers", "").lower()
        assert "authorization" in allowed and "content-type" in allowed
        assert method in response.headers.get("Access-Control-Allow-Methods", method)

    preflight("GET", "/credentials/basic")
    login = browser.get(f"{base}/credentials/basic", auth=(USER, PASSWORD))
    assert login.status_code == 200 and login.headers["Access-Control-Allow-Origin"] in ("*", ORIGIN)
    browser.headers["Authorization"] = f"Bearer basic//{login.json()['access_token']}"
    assert "S1NDVI_SAMPLE_CUBE" in {c["id"] for c in browser.get(f"{base}/collections").json()["collections"]}
    assert "load_collection" in {p["id"] for p in browser.get(f"{base}/processes").json()["processes"]}
    preflight("PUT", "/process_graphs/ndvi_only")
    udp = {"process_graph": {"load": {"process_id": "load_collection", "arguments": {
        "id": "S1NDVI_SAMPLE_CUBE", "temporal_extent": {"from_parameter": "temporal_extent"},
        "spatial_extent": None, "bands": ["NDVI"]}, "result": True}},
        "parameters": [{"name": "temporal_extent", "description": "dates", "schema": {"type": "array"}}]}
    assert browser.put(f"{base}/process_graphs/ndvi_only", json=udp).status_code == 200
    assert "ndvi_only" in {p["id"] for p in browser.get(f"{base}/process_graphs").json()["processes"]}
    preflight("POST", "/jobs")
    graph = {"n": {"process_id": "ndvi_only", "arguments": {"temporal_extent": ["2018-05-01", "2018-05-11"]}},
             "save": {"process_id": "save_result", "arguments": {"data": {"from_node": "n"}, "format": "netCDF"},
                      "result": True}}
    created = browser.post(f"{base}/jobs", json={"process": {"process_graph": graph}, "title": "from a browser"})
    assert created.status_code == 201
    assert "OpenEO-Identifier" in created.headers.get("Access-Control-Expose-Headers", "")
    job_id = created.headers["OpenEO-Identifier"]
    assert browser.post(f"{base}/jobs/{job_id}/results").status_code == 202
    deadline = time.time() + 120
    while (status := browser.get(f"{base}/jobs/{job_id}").json()["status"]) in ("created", "queued", "running"):
        assert time.time() < deadline, status
        time.sleep(1)
    assert status == "finished", browser.get(f"{base}/jobs/{job_id}/logs").json()
    assets = browser.get(f"{base}/jobs/{job_id}/results").json()["assets"]
    assert any(a["type"] == "application/x-netcdf" for a in assets.values())


@requires_project_udf
def test_udf_context_error_is_one_log_line(server: Server, connection: openeo.Connection) -> None:
    from udf import UDF_PATH

    before = server.log.read_text()
    cube = connection.load_collection("S1NDVI_SAMPLE_CUBE", temporal_extent=["2018-05-01", "2018-05-21"])
    udf = openeo.UDF.from_file(UDF_PATH, context={"include_uncertanty": True})  # mistyped key
    fused = cube.apply_neighborhood(process=udf, size=[{"dimension": "x", "value": 32, "unit": "px"},
                                                       {"dimension": "y", "value": 32, "unit": "px"}], overlap=[])
    with pytest.raises(openeo.rest.OpenEoApiError) as error:
        fused.download(format="netCDF")
    assert error.value.http_status_code == 400 and "include_uncertanty" in error.value.message
    time.sleep(1)
    added = server.log.read_text()[len(before):]
    assert "Traceback" not in added and "Compute Failed" not in added
    assert len([line for line in added.splitlines() if "INFO openeo_driver.views.error: UdfError" in line]) == 1


def test_quiet_start(tmp_path: Path, sample_data: Path, users_file: Path) -> None:
    """At the default level `s1ndvi serve` with a dask worker starts with its one announcement line only."""
    import os
    import signal

    from local_backend.api.server import free_port

    port = free_port()
    log = tmp_path / "serve.log"
    with log.open("w") as handle:
        process = subprocess.Popen([sys.executable, "-m", "udf.cli", "serve", "--port", str(port), "--data",
                                    str(sample_data), "--state", str(tmp_path / "state"), "--users", str(users_file),
                                    "--workers", "1"], cwd=REPO, stdout=handle, stderr=subprocess.STDOUT,
                                   env={**os.environ, "PYTHONPATH": str(REPO)})
        try:
            deadline = time.time() + 120
            while "Ctrl+C stops it" not in log.read_text():
                assert process.poll() is None and time.time() < deadline, log.read_text()
                time.sleep(0.5)
            time.sleep(3)  # let the worker process finish its start-up
            startup = log.read_text()
        finally:
            process.send_signal(signal.SIGTERM)
            process.wait(timeout=60)
    lines = [line for line in startup.splitlines() if line.strip()]
    assert "pip install" not in startup and "distributed" not in startup
    assert len(lines) == 1, lines  # the announcement
