"""Keep the dask workers alive and make UDF tiles stoppable.

:class:`WorkerSupervisor` restores the configured number of local workers. A nanny restarts a worker process that
died, but dask's ``LocalCluster`` closes a nanny for good when its worker is not back within
``distributed.deploy.lost-worker-timeout`` (a UDF killing its worker twice could leave the server with none, and every
UDF request then hung); the supervisor notices and starts a replacement.

:func:`collect` submits a step's tiles (a bounded number in flight) and waits for them while checking the
request's :class:`~local_backend.limits.Guard` (deadline, cancel, client disconnect) and the per-tile time limit;
when it has to stop it cancels the tiles in flight and restarts the workers still running them (a running Python
thread cannot be interrupted otherwise), so the next request does not queue behind abandoned work.
"""

import logging
import threading
import time
from typing import Any, Callable, Iterable

from local_backend.errors import ProcessingTimeout, UdfError, WorkersUnavailable
from local_backend.jobs.cluster import DaskCluster
from local_backend.limits import Guard

__all__ = ["WorkerSupervisor", "collect", "wait_for_workers"]

_log = logging.getLogger(__name__)

_POLL_S = 0.25
_TILE_CHECK_S = 5.0
"""Seconds between two checks of the per-tile time limit: each asks the scheduler which worker runs what (a
round trip through the scheduler's event loop, which at every :data:`_POLL_S` cost the server several % of a core
while the workers computed; the limit is minutes). A limit under 50 s is checked every tenth of it."""


class WorkerSupervisor:
    """A daemon thread that brings a local cluster back to its configured number of workers."""

    def __init__(self, dask: DaskCluster, interval_s: float = 1.0) -> None:
        self.dask, self.interval_s = dask, interval_s
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="s1ndvi-worker-supervisor", daemon=True)
        self.restored = 0
        """How many times missing workers were started again."""

    def start(self) -> "WorkerSupervisor":
        """Start watching (no-op for an external scheduler)."""
        if self.dask.local:
            self._thread.start()
        return self

    def stop(self) -> None:
        """Stop watching (before the cluster is closed)."""
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=5)

    def check_once(self) -> bool:
        """Start replacements when the cluster holds fewer workers than configured; True when it did."""
        cluster = self.dask.cluster
        if cluster is None or self._stop.is_set():
            return False
        missing = self.dask.workers - len(cluster.workers)
        if missing <= 0:
            return False
        _log.warning("%d of %d dask worker(s) lost (a UDF may have killed its process): starting replacements",
                     missing, self.dask.workers)
        cluster.scale(self.dask.workers)
        self.restored += 1
        return True

    def _loop(self) -> None:
        while not self._stop.wait(self.interval_s):
            try:
                self.check_once()
            except Exception:  # noqa: BLE001 - the supervisor must outlive a failed attempt; it tries again
                _log.exception("Could not restore the dask workers; trying again in %.0f s", self.interval_s)


def _running_workers(client: Any) -> int:
    info = client.scheduler_info(n_workers=-1)
    return sum(1 for w in info.get("workers", {}).values() if w.get("status", "running") == "running")


def wait_for_workers(client: Any, guard: Guard) -> None:
    """Return when at least one worker runs; fail fast when none does within ``guard.worker_wait_s``.

    Raises:
        WorkersUnavailable: no worker within the wait.
    """
    deadline = time.monotonic() + guard.worker_wait_s
    while _running_workers(client) == 0:
        guard.check()
        if time.monotonic() > deadline:
            raise WorkersUnavailable(
                message=f"No dask worker is available to run the UDF (waited {guard.worker_wait_s:g} s). A local "
                        f"worker that died is restarted automatically: try again shortly; with --dask-scheduler, "
                        f"check that workers are connected to the scheduler.")
        time.sleep(_POLL_S)


def _stop(dask: DaskCluster, futures: list[Any], guard: Guard) -> None:
    """Cancel ``futures`` and restart the local workers that are still running one of them."""
    keys = {f.key for f in futures}
    try:
        busy = [w for w, running in dask.client.processing().items() if keys & set(running)]
    except Exception:  # noqa: BLE001 - the scheduler may be gone at shutdown; cancelling is still attempted
        busy = []
    try:
        dask.client.cancel(futures)
    except Exception as exc:  # noqa: BLE001 - closed client at shutdown
        _log.debug("Could not cancel %d tile(s): %s", len(futures), exc)
        return
    if busy and dask.local and not guard.shutting_down:
        _log.info("Restarting %d worker(s) to stop tiles that are no longer wanted", len(busy))
        try:
            dask.client.restart_workers(busy, timeout=60, raise_for_error=False)
        except Exception as exc:  # noqa: BLE001 - the supervisor replaces a worker that did not come back
            _log.warning("Could not restart worker(s) %s: %s", busy, exc)
    elif busy:
        _log.warning("%d tile(s) keep running on external dask workers until they finish", len(busy))


def _tile_error(dask: DaskCluster, future: Any, number: int, total: int) -> Exception:
    from distributed.scheduler import KilledWorker

    if future.status == "cancelled":
        return WorkersUnavailable(message=f"UDF tile {number}/{total} was cancelled by the dask cluster (it was "
                                          f"closing or restarting); try again.")
    exc = future.exception()
    if isinstance(exc, KilledWorker):
        limit = f" of {dask.memory_limit / 2**20:.0f} MiB" if dask.memory_limit else ""
        attempts = exc.allowed_failures + 1
        return UdfError(f"the worker process running tile {number}/{total} died ({attempts} attempts): the UDF "
                        f"exited, crashed or went over the per-worker memory limit{limit}. The worker was restarted.")
    return exc


def _check_tile_times(dask: DaskCluster, keys: dict[Any, int], started: dict[Any, tuple[str, float]], guard: Guard,
                      total: int) -> None:
    """Raise when a tile has run on one worker for longer than the tile limit (a retry elsewhere starts afresh)."""
    if guard.tile_timeout_s is None:
        return
    now = time.monotonic()
    for worker, running in dask.client.processing().items():
        for key in running:
            if key in keys and started.get(key, ("", 0.0))[0] != worker:
                started[key] = (worker, now)
    for key, (_, since) in started.items():
        if now - since > guard.tile_timeout_s:
            raise ProcessingTimeout(f"UDF tile {keys[key]}/{total} ran longer than the tile time limit "
                                    f"({guard.tile_timeout_s:g} s, --tile-timeout) and was stopped; its worker "
                                    f"was restarted.")


def collect(dask: DaskCluster, submit: Callable[[Any], Any], tasks: Iterable[tuple[int, Any]], total: int,
            guard: Guard, in_flight: int, on_done: Callable[[Any], None]) -> None:
    """Run ``tasks`` on the cluster, at most ``in_flight`` at a time, under the guard and the per-tile time limit.

    Tasks are submitted as earlier ones finish, so neither the scheduler nor the workers hold more than
    ``in_flight`` tiles of an evaluation, whatever its area.

    Args:
        dask: the cluster the tasks run on.
        submit: submits one task, returns its ``distributed.Future``.
        tasks: ``(number, task)`` pairs: the tile's 1-based number (named in messages) and what ``submit`` takes.
        total: number of tiles of the step (named in messages).
        guard: the evaluation's limits and stop signals.
        in_flight: most tiles submitted and not yet finished.
        on_done: called with each tile's result, in the order they finish (may raise to stop the run).

    Raises:
        UdfError: a tile's worker died; the UDF's own exception is re-raised as it came.
        ProcessingTimeout, ExecutionCanceled, ClientDisconnected: from the guard or the per-tile limit.
    """
    waiting = iter(tasks)
    running: dict[Any, tuple[Any, int]] = {}
    started: dict[Any, tuple[str, float]] = {}
    checked = 0.0

    def top_up() -> None:
        while len(running) < in_flight:
            item = next(waiting, None)
            if item is None:
                return
            future = submit(item[1])
            running[future.key] = (future, item[0])

    try:
        top_up()
        while running:
            guard.check()
            done = [(key, future, number) for key, (future, number) in running.items() if future.done()]
            if not done:
                time.sleep(_POLL_S)
            for key, future, number in done:
                del running[key]
                started.pop(key, None)
                if future.status != "finished":
                    guard.check()
                    raise _tile_error(dask, future, number, total)
                on_done(future.result())
            top_up()
            if time.monotonic() - checked >= min(_TILE_CHECK_S, (guard.tile_timeout_s or _TILE_CHECK_S) / 10) or done:
                checked = time.monotonic()
                _check_tile_times(dask, {key: number for key, (_, number) in running.items()}, started, guard,
                                  total)
    except BaseException:
        _stop(dask, [future for future, _ in running.values()], guard)
        raise
