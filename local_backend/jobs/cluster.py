"""The dask cluster that runs UDF tiles: a local cluster closed to other processes, or an external scheduler.

The local cluster talks TLS with mutual authentication: :meth:`distributed.security.Security.temporary` makes a
throw-away CA and certificate held in memory only (handed to the worker processes when they are spawned), and every
scheduler, nanny and worker endpoint refuses a peer without a certificate from that CA. Without it any local process
could connect to ``tcp://127.0.0.1:<port>`` and run code in the workers or the scheduler (``run_on_scheduler``),
bypassing the openEO login. No dashboard is started, and the scheduler's and workers' HTTP servers (which dask starts
anyway: metrics, worker information, call stacks, a proxy) serve no route.

Each worker has a ``memory_limit``: by default half of the machine's RAM divided by the number of workers. A tile
that pushes its worker past it gets the worker killed by its nanny (the request fails with a ``UdfError`` naming the
limit; the worker is restarted and the server keeps serving).
"""

import logging
from dataclasses import dataclass
from typing import Any

__all__ = ["WORKER_ENVIRON", "DaskCluster", "connect", "default_worker_memory", "start_local_cluster"]

_log = logging.getLogger(__name__)

RAM_FRACTION = 0.5
"""Share of the machine's RAM the local workers may use together (the rest is for the server and the system)."""

DASK_SETTINGS = {
    "distributed.scheduler.allowed-failures": 1,
    "distributed.scheduler.worker-saturation": 1.0,
    "distributed.scheduler.http.routes": [],
}
"""A tile whose worker dies is tried once more, then fails (dask's default tries 4 workers): one retry, because a
tile that was only queued on a worker that another request's UDF killed (or that was restarted to stop an abandoned
tile) must not fail for it. The scheduler's HTTP server (on 8787 even without a dashboard: worker info, call stacks,
a proxy to the workers) serves no route."""

LOST_WORKER_TIMEOUT = "3600s"
"""``distributed.deploy.lost-worker-timeout`` for this process. ``LocalCluster`` closes a nanny for good when, that
long after one of its worker processes was lost, no worker of that name is registered; at dask's default (15 s) a
worker that happened to be restarting again at that moment was dropped for good (two UDFs killing their worker left
the server with none). Nannies restart their workers themselves, and :class:`~local_backend.jobs.supervision.
WorkerSupervisor` replaces a nanny that is gone anyway."""


WORKER_ENVIRON = {"OMP_NUM_THREADS": 1, "MKL_NUM_THREADS": 1, "OPENBLAS_NUM_THREADS": 1}
"""``distributed.nanny.pre-spawn-environ`` of the local workers: one BLAS/torch thread per single-threaded worker (so
two workers on two cores do not fight over them), and no ``MALLOC_TRIM_THRESHOLD_``. dask sets that to 64 KiB by
default so that workers hand freed memory back to the OS at once; with a UDF that allocates and frees ~100 MB
arrays per tile it made glibc trim and re-fault them on every call: the UDF took 1.6x the CPU seconds per tile
(docs/speed.md). Peak memory stays bounded by the tile (the per-worker ``memory_limit`` still applies)."""


SYSTEM_MONITOR_INTERVAL = "5s"
"""``distributed.admin.system-monitor.interval`` (dask: 500 ms): how often the scheduler, nannies and workers read
their process statistics from ``/proc`` (psutil). Nothing here uses them (no dashboard), and at 500 ms they were
the server's largest CPU cost while its workers computed (py-spy, docs/speed.md)."""


def default_worker_memory(workers: int, total_bytes: int | None = None) -> int:
    """Memory limit (bytes) of each of ``workers`` local workers: :data:`RAM_FRACTION` of RAM shared equally."""
    if total_bytes is None:
        import psutil

        total_bytes = int(psutil.virtual_memory().total)
    return int(total_bytes * RAM_FRACTION / max(workers, 1))


@dataclass
class DaskCluster:
    """A dask client and, for a local cluster, the cluster and its worker settings."""

    client: Any
    """``distributed.Client``."""
    cluster: Any = None
    """The ``LocalCluster`` (None for an external scheduler)."""
    workers: int = 0
    """Configured number of local workers."""
    memory_limit: int | None = None
    """Per-worker memory limit in bytes (None: unknown, external scheduler)."""

    @property
    def local(self) -> bool:
        """Whether the workers are this server's own (can be restored and restarted)."""
        return self.cluster is not None

    def close(self) -> None:
        """Close the client and the local cluster."""
        self.client.close()
        if self.cluster is not None:
            self.cluster.close()


def start_local_cluster(workers: int, memory_limit: int | None = None) -> DaskCluster:
    """Start ``workers`` single-threaded worker processes behind a TLS-only scheduler on 127.0.0.1.

    Args:
        workers: number of worker processes (at least 1).
        memory_limit: per-worker limit in bytes (default :func:`default_worker_memory`).
    """
    import dask
    from distributed import Client, LocalCluster
    from distributed.security import Security

    limit = memory_limit or default_worker_memory(workers)
    security = Security.temporary()
    # read later, when a worker is lost or a replacement worker starts: set for the process, not just this block
    dask.config.set({"distributed.deploy.lost-worker-timeout": LOST_WORKER_TIMEOUT, "distributed.worker.http.routes": [],
                     "distributed.nanny.pre-spawn-environ": dict(WORKER_ENVIRON),
                     "distributed.admin.system-monitor.interval": SYSTEM_MONITOR_INTERVAL,
                     "distributed.worker.profile.enabled": False})  # its 10 ms stack sampler only feeds a dashboard
    with dask.config.set(DASK_SETTINGS):
        cluster = LocalCluster(n_workers=workers, threads_per_worker=1, processes=True, host="127.0.0.1",
                               dashboard_address=None, protocol="tls://", security=security, memory_limit=limit)
        client = Client(cluster, set_as_default=False)
    _log.info("Started a local dask cluster with %d worker(s) at %s (TLS, temporary certificates; %.0f MiB per "
              "worker)", workers, cluster.scheduler_address, limit / 2**20)
    return DaskCluster(client=client, cluster=cluster, workers=workers, memory_limit=limit)


def connect(address: str) -> DaskCluster:
    """A client of the external scheduler at ``address`` (securing that cluster is its operator's job)."""
    from distributed import Client

    _log.info("Connecting to dask scheduler %s", address)
    if address.startswith("tcp://"):
        _log.warning("Dask scheduler %s is plain TCP: any process that can reach it can run code on its workers",
                     address)
    return DaskCluster(client=Client(address, set_as_default=False))
