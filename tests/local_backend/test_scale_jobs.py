"""Scale: zarr v2 and v3 collections served, a killed batch job resumed without recomputing its finished tiles,
UDF tiles on a separately started ``dask scheduler`` + ``dask worker``."""

import json
import os
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Callable

import numpy as np
import openeo
import xarray as xr
from conftest import PASSWORD, REPO, UDF_CODE, USER, start_server

COUNTING_UDF = UDF_CODE / "count_tiles.py"


def _sample(sample_data: Path) -> xr.Dataset:
    ds = xr.open_dataset(sample_data / "S1NDVI_SAMPLE_CUBE.nc").load()
    for name in ds.variables:
        ds[name].encoding = {}
    return ds


def _write_zarr_v3(ds: xr.Dataset, path: Path) -> None:
    """With zarr-python itself (format 3), NDVI as uint16 with scale, offset and fill, as other tools write."""
    import zarr

    group = zarr.open_group(str(path), mode="w", zarr_format=3)
    days = (ds["t"].values - np.datetime64("2017-01-01")) / np.timedelta64(1, "D")
    group.create_array("t", data=days.astype("int64"), dimension_names=["t"],
                       attributes={"units": "days since 2017-01-01", "calendar": "standard"})
    for dim in ("y", "x"):
        group.create_array(dim, data=ds[dim].values, dimension_names=[dim])
    chunks = (ds.sizes["t"], 16, 16)
    for band in ("VV", "VH"):
        group.create_array(band, data=ds[band].values.astype(np.float32), chunks=chunks,
                           dimension_names=["t", "y", "x"])
    ndvi = ds["NDVI"].values
    encoded = np.where(np.isnan(ndvi), 65535, np.round((ndvi + 1.0) / 1e-4)).astype(np.uint16)
    group.create_array("NDVI", data=encoded, chunks=chunks, dimension_names=["t", "y", "x"],
                       attributes={"_FillValue": 65535, "scale_factor": 1e-4, "add_offset": -1.0})
    group.create_array("crs", shape=(), dtype="int32", attributes={"crs_wkt": ds["crs"].attrs["crs_wkt"]})


def test_zarr_v2_and_v3_served(tmp_path: Path, sample_data: Path, users_file: Path) -> None:
    ds = _sample(sample_data)
    data = tmp_path / "data"
    data.mkdir()
    v2 = ds.copy()
    v2["NDVI"].encoding = {"dtype": "int16", "scale_factor": 1e-4, "_FillValue": -32768}
    v2.to_zarr(data / "SAMPLE_V2.zarr", zarr_format=2)  # xarray's writer, CF-encoded NDVI
    _write_zarr_v3(ds, data / "SAMPLE_V3.zarr")
    assert (data / "SAMPLE_V2.zarr" / ".zgroup").exists() and (data / "SAMPLE_V3.zarr" / "zarr.json").exists()
    server = start_server(tmp_path / "state", data, users_file)
    try:
        conn = openeo.connect(server.url).authenticate_basic(USER, PASSWORD)
        assert {"SAMPLE_V2", "SAMPLE_V3"} <= set(conn.list_collection_ids())
        x, y = ds["x"].values, ds["y"].values
        extent = {"west": float(x[4]), "east": float(x[15]), "south": float(y[19]), "north": float(y[10]),
                  "crs": "EPSG:32631"}
        expected = ds.sel(t=slice("2018-05-01", "2018-06-30")).isel(y=slice(10, 20), x=slice(4, 16))
        for collection in ("SAMPLE_V2", "SAMPLE_V3"):
            cube = conn.load_collection(collection, spatial_extent=extent, temporal_extent=["2018-05-01", "2018-07-01"])
            cube.download(tmp_path / f"{collection}.nc")
            got = xr.open_dataset(tmp_path / f"{collection}.nc")
            assert dict(got["VV"].sizes) == dict(expected["VV"].sizes) and "32631" in got["crs"].attrs["crs_wkt"]
            np.testing.assert_array_equal(got["t"].values, expected["t"].values)
            np.testing.assert_array_equal(got["VH"].values, expected["VH"].values)
            np.testing.assert_allclose(got["NDVI"].values, expected["NDVI"].values, atol=6e-5)
            assert np.isnan(got["NDVI"].values).sum() == np.isnan(expected["NDVI"].values).sum() > 0
    finally:
        server.stop()


def _tile_job(conn: openeo.Connection, markers: Path, seconds: float, tile: int) -> openeo.BatchJob:
    udf = openeo.UDF.from_file(COUNTING_UDF, context={"log_dir": str(markers), "seconds": seconds})
    cube = conn.load_collection("S1NDVI_SAMPLE_CUBE", temporal_extent=["2018-03-01", "2018-07-01"])
    size = [{"dimension": d, "value": tile, "unit": "px"} for d in ("x", "y")]
    overlap = [{"dimension": d, "value": 1, "unit": "px"} for d in ("x", "y")]
    return cube.apply_neighborhood(process=udf, size=size, overlap=overlap).create_job(out_format="netCDF")


def _wait(job: openeo.BatchJob, done: Callable[[dict], bool], timeout: float = 180) -> dict:
    deadline = time.time() + timeout
    while time.time() < deadline:
        info = job.describe()
        if done(info):
            return info
        time.sleep(0.2)
    raise AssertionError(f"job {job.job_id}: {job.describe()['status']} after {timeout} s; logs {job.logs()[-5:]}")


def _calls(markers: Path) -> Counter:
    """UDF calls per tile (a tile is named by the first y/x labels of its window)."""
    return Counter("_".join(p.name.split("_")[:2]) for p in markers.iterdir())


def test_killed_job_resumes_without_recomputing(tmp_path: Path, sample_data: Path, users_file: Path) -> None:
    markers = tmp_path / "markers"
    markers.mkdir()
    server = start_server(tmp_path / "state", sample_data, users_file)
    conn = openeo.connect(server.url).authenticate_basic(USER, PASSWORD)
    job = _tile_job(conn, markers, seconds=0.6, tile=8)  # 32 x 32 px: 16 tiles
    job.start()
    seen = _wait(job, lambda info: (info.get("progress") or 0) >= 40)
    server.kill()
    tiles = tmp_path / "state" / "jobs" / job.job_id / "tiles"
    finished = {p.stem: p.stat().st_mtime_ns for p in tiles.glob("*/*.json")}
    before = _calls(markers)
    assert 40 <= seen["progress"] < 100 and 6 <= len(finished) < 16 and sum(before.values()) <= len(finished) + 1

    server = start_server(tmp_path / "state", sample_data, users_file)
    try:
        conn = openeo.connect(server.url).authenticate_basic(USER, PASSWORD)
        again = conn.job(job.job_id)
        assert again.status() == "error"
        again.start()
        progress: list[tuple[str, float | None]] = []

        def ended(info: dict) -> bool:
            progress.append((info["status"], info.get("progress")))
            return info["status"] in ("finished", "error")

        _wait(again, ended)
        assert again.status() == "finished", again.logs()
        after = _calls(markers)
        assert len(after) == 16 and sum(after.values()) == 16 + sum(before.values()) - len(finished)
        assert sum(n - 1 for n in after.values()) == sum(before.values()) - len(finished) <= 1  # only the tile
        # that was running when the server was killed is computed twice; the finished ones are kept
        messages = [e.message for e in again.logs()]
        assert any(f"{len(finished)} tile(s) done by an earlier run are kept" in m for m in messages)
        assert any(m.startswith("UDF tile 16/16 done") for m in messages)
        running = [p for status, p in progress if status == "running" and p is not None]
        assert running and min(running) >= 100 * len(finished) / 16 - 1e-6  # resumed from the kept tiles
        assert again.describe()["progress"] == 100 and not tiles.exists()  # tiles are removed once finished
        again.get_results().download_files(tmp_path / "result")
        inp = conn.load_collection("S1NDVI_SAMPLE_CUBE", temporal_extent=["2018-03-01", "2018-07-01"])
        inp.download(tmp_path / "input.nc")
        got, want = xr.open_dataset(tmp_path / "result" / "openEO.nc"), xr.open_dataset(tmp_path / "input.nc")
        for band in ("VV", "VH", "NDVI"):
            np.testing.assert_array_equal(got[band].values, want[band].values)
    finally:
        server.stop()


def _start_dask(tmp_path: Path) -> tuple[subprocess.Popen, subprocess.Popen, str]:
    """``dask scheduler`` and one ``dask worker`` (no nanny: the worker is this subprocess) on loopback."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])}
    scheduler_file = tmp_path / "scheduler.json"
    log = (tmp_path / "dask.log").open("w")
    scheduler = subprocess.Popen(
        [sys.executable, "-m", "dask", "scheduler", "--host", "127.0.0.1", "--port", "0", "--no-dashboard",
         "--scheduler-file", str(scheduler_file)], cwd=tmp_path, env=env, stdout=log, stderr=subprocess.STDOUT)
    deadline = time.time() + 60
    while not scheduler_file.exists() and time.time() < deadline:
        time.sleep(0.2)
    address = json.loads(scheduler_file.read_text())["address"]
    worker = subprocess.Popen(
        [sys.executable, "-m", "dask", "worker", address, "--nthreads", "1", "--no-nanny", "--no-dashboard",
         "--host", "127.0.0.1", "--local-directory", str(tmp_path / "worker")],
        cwd=tmp_path, env=env, stdout=log, stderr=subprocess.STDOUT)
    return scheduler, worker, address


def test_external_dask_scheduler_and_worker(tmp_path: Path, sample_data: Path, users_file: Path) -> None:
    from distributed import Client

    scheduler, worker, address = _start_dask(tmp_path)
    server = None
    try:
        with Client(address, timeout=60) as client:
            client.wait_for_workers(1, timeout=90)
        server = start_server(tmp_path / "state", sample_data, users_file, extra=("--dask-scheduler", address))
        markers = tmp_path / "markers"
        markers.mkdir()
        conn = openeo.connect(server.url).authenticate_basic(USER, PASSWORD)
        job = _tile_job(conn, markers, seconds=0, tile=16)  # 4 tiles
        job.start()
        assert _wait(job, lambda info: info["status"] in ("finished", "error"))["status"] == "finished", job.logs()
        pids = {p.name.split("_")[2] for p in markers.iterdir()}
        assert len(_calls(markers)) == 4 and pids == {str(worker.pid)}  # every tile ran in the dask worker
        messages = [e.message for e in job.logs()]
        assert any("on dask workers" in m for m in messages)
        assert sum(f"(pid {worker.pid} on" in m for m in messages) == 4
        job.get_results().download_files(tmp_path / "result")
        got = xr.open_dataset(tmp_path / "result" / "openEO.nc")
        want = _sample(sample_data).sel(t=slice("2018-03-01", "2018-06-30"))
        np.testing.assert_array_equal(got["VH"].values, want["VH"].values)
    finally:
        if server is not None:
            server.stop()
        for process in (worker, scheduler):
            process.terminate()
            process.wait(timeout=60)
