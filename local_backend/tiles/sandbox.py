"""UDF isolation (``s1ndvi serve --udf-isolation auto|on|off``): UDF code runs in a bubblewrap sandbox.

Without isolation a UDF is Python code run with the server's rights: on a server with several users, one user's UDF
could read ``users.json``, the token key and ``jobs.sqlite``, write the state folder, connect to the server's and
the scheduler's ports and run code inside the server with ``get_client().run_on_scheduler(...)``.

With isolation each tile's UDF runs in a separate process (:mod:`local_backend.tiles.udf_runner`) started by ``bwrap``
(bubblewrap, from the distribution):

* its own user, PID, IPC, UTS and **network** namespaces: no network at all (neither the server's nor the
  scheduler's ports, nor anything else), no other process visible, ``uid`` 65534, all capabilities dropped;
* a file system made of read-only binds of the system (``/usr``, ``/etc`` basics), the Python installation and the
  folders on ``sys.path`` (the code it may import), an empty ``/tmp``, and one writable private folder per sandbox
  holding the UDF, its context and the tiles; the state folder (jobs, results, logs, token key) and the users file
  are hidden even when they lie under a bound folder;
* arrays go in and out as ``.npz`` files read with ``allow_pickle=False`` (:mod:`local_backend.tiles.array_files`):
  nothing from the sandbox is unpickled by the worker or the server;
* the sandbox dies with the worker (``--die-with-parent``), so the per-tile time limit that restarts a worker stops
  it; its address space is limited to the worker's memory limit.

One sandbox serves the tiles of one step of one request (the process stays up between tiles: starting Python and
importing xarray per tile would cost more than most UDFs), so no two requests, and no two users, share one.

``auto`` (the default) isolates when the users file holds more than one user: a single user's UDF runs with the
server's rights, which are that user's own; with two users, one user's UDF must not reach the other's jobs or the
server's secrets.
"""

import hashlib
import json
import logging
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import xarray as xr

from local_backend.errors import UdfRuntimeError, WorkersUnavailable
from local_backend.tiles.array_files import read_array, write_array

_log = logging.getLogger(__name__)

__all__ = ["MODES", "Policy", "SandboxSpec", "bwrap_path", "run_isolated"]

MODES = ("auto", "on", "off")
"""Values of ``--udf-isolation``."""
_SYSTEM = ("/usr", "/etc/ld.so.cache", "/etc/ld.so.conf", "/etc/ld.so.conf.d", "/etc/localtime",
           "/etc/alternatives")
_SYMLINKS = ("/bin", "/lib", "/lib64", "/sbin")


def bwrap_path() -> str | None:
    """The ``bwrap`` executable (None: bubblewrap is not installed)."""
    return shutil.which("bwrap")


@dataclass(frozen=True)
class SandboxSpec:
    """What a worker needs to start a sandbox: the paths to hide (sent with every tile; picklable)."""

    hidden: tuple[str, ...] = ()
    """Folders and files the UDF must not see (state folder, users file), even under a bound folder."""
    memory_bytes: int | None = None
    """Address-space limit of the sandbox (None: the worker's memory limit, when known)."""


@dataclass
class Policy:
    """Whether UDFs of this server run isolated (decided per request: ``auto`` follows the users file)."""

    mode: str = "auto"
    """``auto``, ``on`` or ``off``."""
    count_users: Callable[[], int] = lambda: 1
    """Number of users now (the users file is re-read when it changes)."""
    spec: SandboxSpec = field(default_factory=SandboxSpec)
    """Sent to the workers."""

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise ValueError(f"--udf-isolation must be one of {MODES}, got {self.mode!r}")

    def wanted(self) -> bool:
        """Whether the next UDF must run isolated."""
        return self.mode == "on" or (self.mode == "auto" and self.count_users() > 1)

    def for_request(self) -> SandboxSpec | None:
        """The spec to run the next UDF with (None: not isolated).

        Raises:
            WorkersUnavailable: (503) when isolation is wanted and bubblewrap is not installed here.
        """
        if not self.wanted():
            return None
        if bwrap_path() is None:
            raise WorkersUnavailable(message="UDFs must run isolated on this server (--udf-isolation "
                                             f"{self.mode}, {self.count_users()} users) but bubblewrap is not "
                                             "installed: install it (apt-get install bubblewrap) or start the "
                                             "server with --udf-isolation off (see docs/backend-security.md).")
        return self.spec


_policy = Policy(mode="off")


def configure(policy: Policy) -> None:
    """Set this server's policy (``s1ndvi serve``; the default without it is ``off``: library use, tests)."""
    global _policy
    _policy = policy
    _log.info("UDF isolation: %s (bubblewrap %s)", policy.mode, bwrap_path() or "not installed")


def policy() -> Policy:
    """This server's policy."""
    return _policy


def _readonly_binds() -> list[str]:
    paths = {sys.prefix, sys.base_prefix, str(Path(os.path.realpath(sys.executable)).parent.parent)}
    paths.update(p for p in sys.path if p and os.path.isdir(p))
    args: list[str] = []
    for path in sorted(paths):
        if not any(path.startswith(s + "/") for s in _SYSTEM) and path not in _SYSTEM:
            args += ["--ro-bind-try", path, path]
    return args


def _command(folder: Path, spec: SandboxSpec, bwrap: str) -> list[str]:
    args = [bwrap, "--unshare-all", "--unshare-user", "--uid", "65534", "--gid", "65534", "--die-with-parent",
            "--new-session", "--cap-drop", "ALL", "--proc", "/proc", "--dev", "/dev", "--tmpfs", "/tmp"]
    for path in _SYSTEM:
        args += ["--ro-bind-try", path, path]
    for link in _SYMLINKS:
        target = os.readlink(link) if os.path.islink(link) else None
        args += ["--symlink", target, link] if target else ["--ro-bind-try", link, link]
    args += _readonly_binds()
    for hidden in spec.hidden:
        if os.path.isdir(hidden):
            args += ["--tmpfs", hidden, "--remount-ro", hidden]
        elif os.path.exists(hidden):
            args += ["--ro-bind", "/dev/null", hidden]
    args += ["--bind", str(folder), "/sandbox", "--chdir", "/sandbox", "--clearenv",
             "--setenv", "PATH", "/usr/bin:/bin", "--setenv", "HOME", "/tmp", "--setenv", "PYTHONDONTWRITEBYTECODE",
             "1", "--setenv", "PYTHONPATH", os.pathsep.join(p for p in sys.path if p and os.path.isdir(p))]
    for name in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "LANG"):
        if name in os.environ:
            args += ["--setenv", name, os.environ[name]]
    return [*args, sys.executable, "-P", "-m", "local_backend.tiles.udf_runner", "/sandbox"]


def _memory_limit(spec: SandboxSpec) -> int | None:
    if spec.memory_bytes:
        return spec.memory_bytes
    try:
        from distributed import get_worker

        return int(get_worker().memory_manager.memory_limit or 0) or None
    except (ImportError, ValueError, AttributeError):
        return None


class Sandbox:
    """One sandboxed UDF process and its private folder; :meth:`run` sends it tiles one at a time."""

    def __init__(self, code: str, context: dict | None, spec: SandboxSpec) -> None:
        bwrap = bwrap_path()
        if bwrap is None:
            raise UdfRuntimeError("UDF isolation is on but bubblewrap (bwrap) is not installed on this worker")
        self.folder = Path(tempfile.mkdtemp(prefix="s1ndvi-udf-"))
        (self.folder / "udf-code.txt").write_text(code)
        (self.folder / "udf-context.json").write_text(json.dumps(context or {}, default=str))
        limit = _memory_limit(spec)

        def limits() -> None:
            if limit:
                resource.setrlimit(resource.RLIMIT_AS, (limit, limit))

        self.process = subprocess.Popen(_command(self.folder, spec, bwrap), stdin=subprocess.PIPE,
                                        stdout=subprocess.PIPE, text=True, preexec_fn=limits)
        self.count = 0
        self.lock = threading.Lock()

    def run(self, tile: xr.DataArray) -> xr.DataArray:
        """The UDF's output for ``tile``.

        Raises:
            UdfRuntimeError: what the UDF raised, or that the sandbox process ended.
        """
        with self.lock:
            self.count += 1
            source, target = self.folder / f"in-{self.count}.npz", self.folder / f"out-{self.count}.npz"
            write_array(tile, source)
            try:
                assert self.process.stdin is not None and self.process.stdout is not None
                self.process.stdin.write(json.dumps({"input": source.name, "output": target.name}) + "\n")
                self.process.stdin.flush()
                answer = self.process.stdout.readline()
            except (BrokenPipeError, OSError):
                answer = ""
            source.unlink(missing_ok=True)
            if not answer:
                code = self.process.wait(timeout=10)
                raise UdfRuntimeError(f"the UDF's sandbox process ended (exit code {code}) while running a tile")
            reply = json.loads(answer)
            if "error" in reply:
                raise UdfRuntimeError(str(reply["error"]))
            try:
                return read_array(target)
            except (OSError, ValueError, KeyError) as exc:
                raise UdfRuntimeError(f"the UDF's output could not be read: {exc}") from None
            finally:
                target.unlink(missing_ok=True)

    def close(self) -> None:
        """Stop the process and remove the folder."""
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()
        shutil.rmtree(self.folder, ignore_errors=True)


_sandboxes: dict[tuple[str, int], Sandbox] = {}
_sandboxes_lock = threading.Lock()
MAX_SANDBOXES = 4
"""Sandboxes kept per worker process (oldest stopped first)."""


def run_isolated(tile: xr.DataArray, code: str, context: dict | None, owner: str, spec: SandboxSpec) -> xr.DataArray:
    """Run the UDF on one tile in the sandbox of ``owner`` (one step of one request) and this thread."""
    digest = hashlib.sha256(json.dumps([owner, code, context], sort_keys=True, default=str).encode()).hexdigest()
    key = (digest, threading.get_ident())
    with _sandboxes_lock:
        sandbox = _sandboxes.get(key)
        if sandbox is None or sandbox.process.poll() is not None:
            if sandbox is not None:
                sandbox.close()
            while len(_sandboxes) >= MAX_SANDBOXES:
                _sandboxes.pop(next(iter(_sandboxes))).close()
            sandbox = _sandboxes[key] = Sandbox(code, context, spec)
    return sandbox.run(tile)


def close_all() -> None:
    """Stop every sandbox of this process."""
    with _sandboxes_lock:
        while _sandboxes:
            _sandboxes.popitem()[1].close()

