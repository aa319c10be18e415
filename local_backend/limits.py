"""Bounds of one evaluation: size of every intermediate cube, wall-clock deadline, cancellation, client disconnect.

Every process implementation is wrapped (:func:`local_backend.guards.guard_process`) so that each intermediate
result is measured before it is computed (processes-dask returns lazy dask-backed cubes, whose size is known from
shape and dtype), and a dask callback (:func:`local_backend.guards.install_dask_callback`) checks the same stop
signals before each task of a local dask computation, so a request past its deadline, a canceled job or a request
whose client went away stops between tasks.
"""

import logging
import select
import socket
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Callable

from local_backend.errors import ClientDisconnected, CubeTooLarge, ExecutionCanceled, ProcessingTimeout

__all__ = ["Guard", "Limits", "socket_probe"]

_log = logging.getLogger(__name__)

_PROBE_INTERVAL_S = 0.5


@dataclass(frozen=True)
class Limits:
    """Server-wide bounds (``s1ndvi serve`` options)."""

    max_sync_bytes: int = 512 * 2**20
    """Largest cube (load, intermediate or result) of a synchronous request."""
    max_batch_bytes: int = 8 * 2**30
    """Largest cube of a batch job."""
    request_timeout_s: float = 900.0
    """Wall-clock limit of a synchronous request (0: none)."""
    job_timeout_s: float = 24 * 3600.0
    """Wall-clock limit of a batch job (0: none)."""
    tile_timeout_s: float = 600.0
    """Longest a single UDF tile may run (0: none)."""
    worker_wait_s: float = 30.0
    """How long a UDF request waits for a dask worker before failing with ``WorkersUnavailable``."""

    def guard(self, sync: bool, disconnected: Callable[[], bool] | None = None) -> "Guard":
        """A fresh :class:`Guard` for one request (``sync``) or batch job."""
        timeout = self.request_timeout_s if sync else self.job_timeout_s
        return Guard(sync=sync, max_bytes=self.max_sync_bytes if sync else self.max_batch_bytes,
                     timeout_s=timeout or None, tile_timeout_s=self.tile_timeout_s or None,
                     worker_wait_s=self.worker_wait_s, disconnected=disconnected)


@dataclass
class Guard:
    """Limits and stop signals of one evaluation (shared by its request or job thread and its tile loop)."""

    sync: bool = True
    """A synchronous request (else a batch job): names the limit in messages."""
    max_bytes: int | None = None
    """Largest cube any process may produce (None: no limit)."""
    timeout_s: float | None = None
    """Wall-clock limit of the whole evaluation (None: none)."""
    tile_timeout_s: float | None = None
    """Longest a single UDF tile may run (None: none)."""
    worker_wait_s: float = 30.0
    """How long to wait for a dask worker before failing."""
    disconnected: Callable[[], bool] | None = None
    """Probe telling whether the HTTP client went away (synchronous requests)."""
    started: float = field(default_factory=time.monotonic)
    """``time.monotonic()`` at creation."""
    cancel_event: threading.Event = field(default_factory=threading.Event)
    """Set by :meth:`cancel` (job canceled, server shutting down)."""
    cancel_reason: str = ""
    """Why :meth:`cancel` was called."""
    shutting_down: bool = False
    """The server is stopping: do not restart workers to stop tiles (the cluster is closed anyway)."""
    _next_probe: float = 0.0

    def cancel(self, reason: str, shutting_down: bool = False) -> None:
        """Ask the evaluation to stop at its next check."""
        self.cancel_reason, self.shutting_down = reason, shutting_down
        self.cancel_event.set()

    def remaining_s(self) -> float | None:
        """Seconds left before the deadline (None: no deadline)."""
        return None if self.timeout_s is None else self.timeout_s - (time.monotonic() - self.started)

    def check(self) -> None:
        """Raise when the evaluation must stop.

        Raises:
            ExecutionCanceled: after :meth:`cancel`.
            ProcessingTimeout: past the wall-clock limit.
            ClientDisconnected: when the HTTP client closed its connection.
        """
        if self.cancel_event.is_set():
            raise ExecutionCanceled(self.cancel_reason or "canceled")
        remaining = self.remaining_s()
        if remaining is not None and remaining <= 0:
            what, option = ("synchronous request", "--request-timeout") if self.sync else ("batch job", "--job-timeout")
            raise ProcessingTimeout(f"The {what} ran longer than its time limit ({self.timeout_s:g} s, {option}) "
                                    f"and was stopped." + (" Use a batch job for long work." if self.sync else ""))
        now = time.monotonic()
        if self.disconnected is not None and now >= self._next_probe:
            self._next_probe = now + _PROBE_INTERVAL_S
            if self.disconnected():
                raise ClientDisconnected("The client closed the connection; the request was stopped.")

    def check_size(self, process_id: str, value: Any) -> None:
        """Raise :class:`CubeTooLarge` when ``value`` (a cube or array) is larger than :attr:`max_bytes`."""
        nbytes = getattr(value, "nbytes", None)
        if self.max_bytes is None or not isinstance(nbytes, (int, float)) or not hasattr(value, "shape"):
            return
        if nbytes > self.max_bytes:
            raise CubeTooLarge(process_id, int(nbytes), self.max_bytes, sync=self.sync,
                               shape=dict(getattr(value, "sizes", {})) or tuple(value.shape))


def socket_probe(sock: socket.socket | None) -> Callable[[], bool] | None:
    """A probe telling whether the peer of ``sock`` closed the connection (readable with nothing to read)."""
    if sock is None:
        return None

    def closed() -> bool:
        try:
            readable, _, _ = select.select([sock], [], [], 0)
            if not readable:
                return False
            return sock.recv(1, socket.MSG_PEEK | socket.MSG_DONTWAIT) == b""
        except BlockingIOError:
            return False
        except (OSError, ValueError):
            return True

    return closed
