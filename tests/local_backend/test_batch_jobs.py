"""Batch jobs persist in the state folder: they survive a server restart, interrupted ones become ``error``."""

import time
from pathlib import Path

import numpy as np
import openeo
import pytest
import xarray as xr
from conftest import PASSWORD, UDF_CODE, USER, start_server


def _wait_status(job: openeo.BatchJob, wanted: set[str], timeout: float = 120) -> str:
    deadline = time.time() + timeout
    while time.time() < deadline:
        status = job.status()
        if status in wanted:
            return status
        time.sleep(0.3)
    raise AssertionError(f"job {job.job_id} still {job.status()} after {timeout} s")


def test_job_survives_restart(tmp_path: Path, sample_data: Path, users_file: Path) -> None:
    server = start_server(tmp_path / "state", sample_data, users_file)
    try:
        conn = openeo.connect(server.url).authenticate_basic(USER, PASSWORD)
        udf = openeo.UDF.from_file(UDF_CODE / "scale_labels.py", context={"factor": 10})
        cube = conn.load_collection("SENTINEL2_L2A", bands=["B04", "B08"])  # too large for sync, fine in batch
        job = cube.apply_dimension(process=udf, dimension="t").create_job(title="restart test", out_format="netCDF")
        assert job.status() == "created"
        job.start()
        assert _wait_status(job, {"finished", "error"}) == "finished", job.logs()
        assert any("load_collection" in entry.message for entry in job.logs())
    finally:
        server.stop()

    server = start_server(tmp_path / "state", sample_data, users_file)
    try:
        conn = openeo.connect(server.url).authenticate_basic(USER, PASSWORD)
        assert job.job_id in [j["id"] for j in conn.list_jobs()]
        again = conn.job(job.job_id)
        assert again.status() == "finished" and again.describe()["title"] == "restart test"
        files = again.get_results().download_files(tmp_path / "results")
        assert [f.name for f in files if f.suffix == ".nc"] == ["openEO.nc"]
        out = xr.open_dataset(tmp_path / "results" / "openEO.nc")
        assert out.sizes["t"] == 118 and out.sizes["x"] == 64
        assert float(np.nanmedian(out["B08"].values)) > 1000  # DN x 10
        again.delete()
        assert job.job_id not in [j["id"] for j in conn.list_jobs()]
    finally:
        server.stop()


def test_running_job_marked_error_after_crash(tmp_path: Path, sample_data: Path, users_file: Path) -> None:
    server = start_server(tmp_path / "state", sample_data, users_file)
    conn = openeo.connect(server.url).authenticate_basic(USER, PASSWORD)
    udf = openeo.UDF.from_file(UDF_CODE / "slow.py", context={"seconds": 60})
    cube = conn.load_collection("S1NDVI_SAMPLE_CUBE", temporal_extent=["2018-05-01", "2018-06-01"])
    job = cube.apply_dimension(process=udf, dimension="t").create_job(out_format="netCDF")
    job.start()
    _wait_status(job, {"running"})
    server.kill()

    server = start_server(tmp_path / "state", sample_data, users_file)
    try:
        conn = openeo.connect(server.url).authenticate_basic(USER, PASSWORD)
        again = conn.job(job.job_id)
        assert again.status() == "error"
        assert any("server stopped while this job was running" in e.message for e in again.logs())
    finally:
        server.stop()


def test_failing_job_reports_udf_error(tmp_path: Path, sample_data: Path, users_file: Path) -> None:
    server = start_server(tmp_path / "state", sample_data, users_file)
    try:
        conn = openeo.connect(server.url).authenticate_basic(USER, PASSWORD)
        udf = openeo.UDF.from_file(UDF_CODE / "failing.py")
        cube = conn.load_collection("S1NDVI_SAMPLE_CUBE", temporal_extent=["2018-05-01", "2018-06-01"])
        job = cube.apply_dimension(process=udf, dimension="t").create_job(out_format="netCDF")
        job.start()
        assert _wait_status(job, {"finished", "error"}) == "error"
        assert any("boom from the test UDF" in e.message and e.level == "error" for e in job.logs())
        with pytest.raises(openeo.rest.OpenEoApiError) as info:
            job.get_results().download_files(tmp_path / "none")
        assert info.value.http_status_code == 424  # the API's answer for a failed job, with its last error
        assert info.value.code == "UdfError" and "boom from the test UDF" in info.value.message
        assert info.value.message.startswith("The UDF failed")  # the error itself, not the log line around it
    finally:
        server.stop()
