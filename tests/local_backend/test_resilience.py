"""Dying workers, hung tiles, time limits, cancel, per-worker memory limit and job progress logs (issue 13).

One server for the module: 1 local worker, short limits, and dask's ``lost-worker-timeout`` at 1 s in the environment:
with it, dask's ``LocalCluster`` drops any worker that takes longer than 1 s to restart (the race that left the
server with no worker at all after two kills, deterministic here); the server must not lose its worker.
"""

import time
from pathlib import Path
from typing import Iterator

import numpy as np
import openeo
import pytest
import requests
import xarray as xr
from conftest import PASSWORD, UDF_CODE, USER, Server, start_server
from openeo.rest import OpenEoApiError

TILE_TIMEOUT_S, REQUEST_TIMEOUT_S, WORKER_MB = 10, 20, 800


@pytest.fixture(scope="module")
def resilient(tmp_path_factory: pytest.TempPathFactory, sample_data: Path, users_file: Path) -> Iterator[Server]:
    """A server with 1 worker, 10 s tile / 20 s request limits, 800 MiB per worker, 8 MiB batch limit."""
    srv = start_server(tmp_path_factory.mktemp("resilient"), sample_data, users_file, workers=1,
                       extra=("--tile-timeout", str(TILE_TIMEOUT_S), "--request-timeout", str(REQUEST_TIMEOUT_S),
                              "--worker-memory-mb", str(WORKER_MB), "--max-batch-mb", "8"),
                       env={"DASK_DISTRIBUTED__DEPLOY__LOST_WORKER_TIMEOUT": "1s"})
    yield srv
    srv.stop()


@pytest.fixture
def conn(resilient: Server) -> openeo.Connection:
    """The stock client, logged in to the module's server."""
    return openeo.connect(resilient.url).authenticate_basic(USER, PASSWORD)


def _cube(conn: openeo.Connection) -> openeo.DataCube:
    return conn.load_collection("S1NDVI_SAMPLE_CUBE", temporal_extent=["2018-05-01", "2018-06-01"])


def _udf(name: str, **context: object) -> openeo.UDF:
    return openeo.UDF.from_file(UDF_CODE / name, context=context)


def _run_ok(conn: openeo.Connection, tmp_path: Path, timeout: float = 60) -> float:
    """Run the trivial scaling UDF synchronously; check its values; return the seconds it took."""
    start = time.monotonic()
    cube = _cube(conn)
    raw = xr.open_dataset(_download(conn, cube, tmp_path / "in.nc", timeout))
    out = xr.open_dataset(_download(conn, cube.apply_dimension(process=_udf("scale_labels.py", factor=3),
                                                               dimension="t"), tmp_path / "out.nc", timeout))
    np.testing.assert_allclose(out["VV"].values, 3 * raw["VV"].values, rtol=1e-6, equal_nan=True)
    return time.monotonic() - start


def _download(conn: openeo.Connection, cube: openeo.DataCube, path: Path, timeout: float) -> Path:
    conn.download(cube.flat_graph(), outputfile=path, timeout=timeout)
    return path


def _fails(cube: openeo.DataCube, timeout: float = 60) -> OpenEoApiError:
    with pytest.raises(OpenEoApiError) as info:
        cube.connection.download(cube.flat_graph(), timeout=timeout)
    return info.value


def _wait_status(job: openeo.BatchJob, wanted: set[str], timeout: float = 90) -> str:
    deadline = time.time() + timeout
    while time.time() < deadline:
        status = job.status()
        if status in wanted:
            return status
        time.sleep(0.3)
    raise AssertionError(f"job {job.job_id} still {job.status()} after {timeout} s")


def test_worker_killed_twice_then_udf_runs(conn: openeo.Connection, tmp_path: Path) -> None:
    for attempt in range(2):
        error = _fails(_cube(conn).apply_dimension(process=_udf("exit_worker.py"), dimension="t"))
        assert error.http_status_code == 400 and error.code == "UdfError", (attempt, error)
        assert "worker process running tile 1/1 died (2 attempts)" in error.message
    assert _run_ok(conn, tmp_path) < 45
    time.sleep(2)  # past the 1 s lost-worker-timeout, after which dask's LocalCluster dropped a restarting worker
    assert _run_ok(conn, tmp_path) < 45


def test_udf_over_memory_limit_fails_clearly(conn: openeo.Connection, tmp_path: Path) -> None:
    error = _fails(_cube(conn).apply_dimension(process=_udf("allocate.py", mb=4 * WORKER_MB), dimension="t"))
    assert error.http_status_code == 400 and error.code == "UdfError"
    assert f"memory limit of {WORKER_MB} MiB" in error.message
    assert _run_ok(conn, tmp_path) < 45


def test_hung_tile_times_out_and_frees_the_worker(conn: openeo.Connection, tmp_path: Path) -> None:
    start = time.monotonic()
    error = _fails(_cube(conn).apply_dimension(process=_udf("slow.py", seconds=120), dimension="t"))
    assert error.http_status_code == 408 and error.code == "RequestTimeout"
    assert "tile 1/1" in error.message and f"({TILE_TIMEOUT_S} s, --tile-timeout)" in error.message
    assert time.monotonic() - start < 40
    assert _run_ok(conn, tmp_path) < 45  # the worker that slept was restarted, not left busy for two minutes


@pytest.mark.slow  # ~25 s; the deadline itself is unit-tested in test_supervision.py
def test_request_time_limit(conn: openeo.Connection, tmp_path: Path) -> None:
    size = [{"dimension": d, "value": 8, "unit": "px"} for d in ("x", "y")]  # 16 tiles x 2 s > 20 s
    cube = _cube(conn).apply_neighborhood(process=_udf("slow.py", seconds=2), size=size, overlap=[])
    start = time.monotonic()
    error = _fails(cube)
    assert error.http_status_code == 408 and "--request-timeout" in error.message
    assert REQUEST_TIMEOUT_S <= time.monotonic() - start < REQUEST_TIMEOUT_S + 25
    assert _run_ok(conn, tmp_path) < 45


def test_cancel_stops_a_running_job(conn: openeo.Connection, tmp_path: Path) -> None:
    size = [{"dimension": d, "value": 8, "unit": "px"} for d in ("x", "y")]  # 16 tiles x 3 s on one worker
    job = _cube(conn).apply_neighborhood(process=_udf("slow.py", seconds=3), size=size, overlap=[]).create_job()
    job.start()
    _wait_status(job, {"running"})
    deadline = time.time() + 60
    while not any("UDF tile 1/16 done" in e.message for e in job.logs()) and time.time() < deadline:
        time.sleep(0.3)
    job.stop()
    assert job.status() == "canceled"
    assert _run_ok(conn, tmp_path) < 25  # 40 s of tiles were left: they were stopped, not run to the end
    time.sleep(1)
    assert job.status() == "canceled"
    messages = [e.message for e in job.logs()]
    assert "Job canceled by the user." in messages and not any("UDF tile 16/16" in m for m in messages)


def test_job_log_records_start_tiles_and_finish(conn: openeo.Connection) -> None:
    size = [{"dimension": d, "value": 16, "unit": "px"} for d in ("x", "y")]
    job = _cube(conn).apply_neighborhood(process=_udf("scale_labels.py", factor=2), size=size, overlap=[]).create_job()
    job.start()
    assert _wait_status(job, {"finished", "error"}) == "finished"
    messages = [e.message for e in job.logs()]
    start = next(i for i, m in enumerate(messages) if m.startswith("Job started"))
    tiles = [i for i, m in enumerate(messages) if m.startswith("UDF tile ")]
    finish = next(i for i, m in enumerate(messages) if m.startswith("Job finished"))
    assert [messages[i].split(":")[0] for i in tiles] == [f"UDF tile {k}/4 done" for k in range(1, 5)]
    assert all(" s (pid " in messages[i] for i in tiles)  # each line says how long the tile took and where
    assert start < tiles[0] and tiles[-1] < finish


def test_job_log_records_failure(conn: openeo.Connection) -> None:
    job = _cube(conn).apply_dimension(process=_udf("failing.py"), dimension="t").create_job()
    job.start()
    assert _wait_status(job, {"finished", "error"}) == "error"
    errors = [e.message for e in job.logs() if e.level == "error"]
    assert errors[-1].startswith("Job ended with an error after ")  # the log's last line, with the duration
    assert errors[-2].startswith("Job failed: UdfError") and "boom from the test UDF" in errors[-2]


def test_batch_limit_on_intermediate_cube(conn: openeo.Connection) -> None:
    cube = _cube(conn).resample_spatial(resolution=0.5).reduce_dimension(dimension="t", reducer="mean")
    job = cube.create_job()
    job.start()
    assert _wait_status(job, {"finished", "error"}, timeout=60) == "error"
    errors = [e.message for e in job.logs() if e.level == "error"]
    assert errors[-1].startswith("Job ended with an error after ")
    assert "ProcessGraphComplexity" in errors[-2] and "'resample_spatial'" in errors[-2]
    assert "--max-batch-mb" in errors[-2]


def _listening_ports(server: Server) -> set[int]:
    """TCP ports the server process and its children (dask workers) listen on, except the HTTP port."""
    import psutil

    http_port = int(server.url.rsplit(":", 1)[1])
    root = psutil.Process(server.process.pid)
    ports = set()
    for proc in [root, *root.children(recursive=True)]:
        for conn in proc.net_connections(kind="tcp"):
            if conn.status == psutil.CONN_LISTEN:
                ports.add(conn.laddr.port)
    return ports - {http_port}


def _serves_http(port: int) -> bool:
    """Whether ``port`` answers HTTP; then it must serve nothing (dask's scheduler/worker HTTP servers)."""
    try:
        response = requests.get(f"http://127.0.0.1:{port}/health", timeout=3)
    except requests.RequestException:
        return False
    for path in ("/health", "/metrics", "/info/main/workers.html", "/json/identity.json", "/proxy/8787/127.0.0.1/"):
        assert requests.get(f"http://127.0.0.1:{port}{path}", timeout=3).status_code == 404, (port, path)
    return response.status_code == 404


async def _identity(address: str, security: object) -> dict:
    from distributed.core import rpc

    args = security.get_connection_args("client") if security is not None else {}  # type: ignore[attr-defined]
    async with rpc(address, connection_args=args, timeout=5) as remote:
        return dict(await remote.identity())


async def _submit(address: str, security: object) -> int:
    from distributed import Client

    async with Client(address, security=security, asynchronous=True, timeout=5) as client:
        return int(await client.submit(sum, [1, 2], pure=False))


def _works(probe: object, address: str, security: object = None) -> bool:
    import asyncio

    try:
        asyncio.run(asyncio.wait_for(probe(address, security), timeout=15))  # type: ignore[operator]
        return True
    except Exception:  # noqa: BLE001 - any refusal (TLS handshake, timeout, closed stream) means it did not work
        return False


def test_dask_cluster_refuses_peers_without_credentials(conn: openeo.Connection, resilient: Server) -> None:
    from distributed.security import Security

    ports = sorted(p for p in _listening_ports(resilient) if not _serves_http(p))
    assert len(ports) >= 3, ports  # scheduler, nanny, worker
    foreign = Security.temporary()  # a valid certificate, but not from the server's throw-away CA
    for port in ports:
        for address, security in ((f"tcp://127.0.0.1:{port}", None), (f"tls://127.0.0.1:{port}", foreign)):
            assert not _works(_identity, address, security), address  # no RPC at all: scheduler, nanny, worker
            assert not _works(_submit, address, security), address  # and no way to submit code as a client
    assert "tls://127.0.0.1" in resilient.log.read_text()


def test_probe_detects_an_open_cluster() -> None:
    """Control for the test above: the same probes do reach a plain dask cluster (as the server's was before)."""
    from distributed import LocalCluster

    with LocalCluster(n_workers=1, threads_per_worker=1, processes=False, dashboard_address=None) as cluster:
        assert _works(_identity, cluster.scheduler_address, None)
        assert _works(_submit, cluster.scheduler_address, None)
