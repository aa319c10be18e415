"""Units of the resilience machinery: worker supervisor, guard, login limiter, limits of the local cluster."""

import threading
import time

import pytest

from local_backend.errors import ClientDisconnected, CubeTooLarge, ExecutionCanceled, ProcessingTimeout
from local_backend.limits import Guard, Limits


def test_supervisor_restores_a_dropped_worker() -> None:
    from local_backend.jobs.cluster import start_local_cluster
    from local_backend.jobs.supervision import WorkerSupervisor

    dask = start_local_cluster(1, memory_limit=1024 * 2**20)
    try:
        supervisor = WorkerSupervisor(dask)
        assert not supervisor.check_once()
        name, nanny = next(iter(dask.cluster.workers.items()))
        dask.cluster.sync(nanny.close)  # what LocalCluster does when a worker is not back in time
        del dask.cluster.workers[name]
        assert supervisor.check_once()
        dask.client.wait_for_workers(1, timeout=60)
        assert dask.client.submit(sum, [1, 2], pure=False).result(timeout=30) == 3
        assert dask.cluster.scheduler_address.startswith("tls://")
        info = dask.client.scheduler_info()["workers"]
        assert [w["memory_limit"] for w in info.values()] == [1024 * 2**20]
    finally:
        dask.close()


def test_default_worker_memory_shares_half_the_ram() -> None:
    from local_backend.jobs.cluster import default_worker_memory

    assert default_worker_memory(1, 16 * 2**30) == 8 * 2**30
    assert default_worker_memory(4, 16 * 2**30) == 2 * 2**30


def test_guard_deadline_cancel_and_disconnect() -> None:
    guard = Limits(request_timeout_s=0.2).guard(sync=True)
    guard.check()
    time.sleep(0.3)
    with pytest.raises(ProcessingTimeout, match="--request-timeout"):
        guard.check()
    guard = Guard()
    guard.cancel("the job was canceled by the user")
    with pytest.raises(ExecutionCanceled, match="canceled by the user"):
        guard.check()
    gone = threading.Event()
    guard = Guard(disconnected=gone.is_set)
    guard.check()
    gone.set()
    guard._next_probe = 0.0
    with pytest.raises(ClientDisconnected):
        guard.check()


def test_guard_size_of_lazy_intermediate() -> None:
    import dask.array as da
    import xarray as xr

    cube = xr.DataArray(da.zeros((10, 1000, 1000), dtype="float32", chunks=100), dims=("t", "y", "x"))
    Guard(max_bytes=40 * 2**20).check_size("resample_spatial", cube)
    with pytest.raises(CubeTooLarge, match=r"'resample_spatial' \(38.1 MiB.*--max-sync-mb"):
        Guard(max_bytes=20 * 2**20).check_size("resample_spatial", cube)
    with pytest.raises(CubeTooLarge, match="--max-batch-mb"):
        Guard(sync=False, max_bytes=20 * 2**20).check_size("resample_spatial", cube)


def test_login_limiter_locks_user_then_address() -> None:
    from local_backend.api.ratelimit import LoginLimiter

    limiter = LoginLimiter(max_failures=3, lockout_s=60, window_s=600)
    for _ in range(2):
        limiter.failed("alice", "10.0.0.1", now=100.0)
    assert limiter.retry_after("alice", "10.0.0.1", now=100.0) == 0
    limiter.failed("alice", "10.0.0.1", now=100.0)
    assert limiter.retry_after("alice", "10.0.0.2", now=100.0) == 61  # the name is locked from any address
    assert limiter.retry_after("alice", "10.0.0.1", now=161.0) == 0
    for i in range(12):  # many names from one address: the address gets locked
        limiter.failed(f"guess{i}", "10.0.0.9", now=200.0)
    assert limiter.retry_after("bob", "10.0.0.9", now=200.0) > 0
    assert limiter.retry_after("bob", "10.0.0.8", now=200.0) == 0


def test_dask_callback_stops_a_local_computation(tmp_path: object) -> None:
    import dask.array as da

    from local_backend.context import Execution, activate, deactivate
    from local_backend.guards import install_dask_callback

    def slow(block: object) -> object:
        time.sleep(0.2)
        return block

    install_dask_callback()
    work = da.zeros(100, chunks=1).map_blocks(slow)  # 100 tasks of 0.2 s
    token = activate(Execution(catalog=None, output_dir=tmp_path, guard=Guard(timeout_s=0.5)))  # type: ignore[arg-type]
    start = time.monotonic()
    try:
        with pytest.raises(ProcessingTimeout):
            work.compute(scheduler="threads", num_workers=2)
    finally:
        deactivate(token)
    assert time.monotonic() - start < 5
    assert float(da.ones(4, chunks=1).sum().compute(scheduler="sync")) == 4.0  # outside an evaluation: no effect
