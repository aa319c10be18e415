"""The server under test of the area benchmarks: ``s1ndvi serve`` in its own process group, its peak memory and CPU."""

import os
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import psutil

REPO = Path(__file__).resolve().parents[1]


def _vmhwm_kb(pid: int) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


class PeakMemory:
    """Peak resident memory (VmHWM) of a server process and of its descendants, sampled in a thread."""

    def __init__(self, interval: float = 0.5) -> None:
        self.interval = interval
        self.peaks: dict[int, tuple[int, bool, int]] = {}
        """pid -> (server generation, is the server, peak kB)."""
        self.cpu: dict[int, float] = {}
        """pid -> CPU seconds (user + system) at the last sample."""
        self._root: int | None = None
        self._generation = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)
        self._thread.start()

    def watch(self, pid: int) -> None:
        """Follow this server process (and its descendants) from now on (a restarted server: a new generation)."""
        self._root, self._generation = pid, self._generation + 1

    def _note(self, process: "psutil.Process", is_server: bool) -> None:
        import psutil

        pid = process.pid
        kb = max(self.peaks.get(pid, (0, False, 0))[2], _vmhwm_kb(pid))
        self.peaks[pid] = (self._generation, is_server, kb)
        try:
            times = process.cpu_times()
            self.cpu[pid] = max(self.cpu.get(pid, 0.0), times.user + times.system)
        except psutil.Error:
            pass

    def _loop(self) -> None:
        import psutil

        while not self._stop.wait(self.interval):
            root = self._root
            if root is None:
                continue
            try:
                children = psutil.Process(root).children(recursive=True)
            except psutil.Error:
                continue
            self._note(psutil.Process(root), True)
            for child in children:
                self._note(child, False)

    def stop(self) -> dict[str, float]:
        """Stop sampling; peaks in MiB (``total``: the largest server + all its workers of any server run) and the
        CPU seconds of the server and its workers (all runs; sampled every ``interval``)."""
        self._stop.set()
        self._thread.join()
        big = {pid: p for pid, p in self.peaks.items() if p[2] > 20 * 1024}  # not the resource tracker
        servers = [kb for _, is_server, kb in big.values() if is_server]
        workers = [kb for _, is_server, kb in big.values() if not is_server]
        totals = [sum(kb for g, _, kb in big.values() if g == gen) for gen in {g for g, _, _ in big.values()}]
        return {"server_mb": max(servers, default=0) / 1024, "worker_max_mb": max(workers, default=0) / 1024,
                "workers": len(workers), "total_mb": max(totals, default=0) / 1024,
                "cpu_s": sum(self.cpu.values())}


class Server:
    """``s1ndvi serve`` in its own process group (tile time limit 2 h: a loaded machine must not fail the job)."""

    def __init__(self, data: Path, state: Path, users: Path, workers: int) -> None:
        from local_backend.api.server import free_port

        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        cmd = [sys.executable, "-m", "udf.cli", "-v", "serve", "--port", str(self.port), "--data", str(data),
               "--state", str(state), "--users", str(users), "--workers", str(workers), "--tile-timeout", "7200"]
        log = (state.parent / f"server-{self.port}.log").open("w")
        env = {**os.environ, "PYTHONPATH": str(REPO)}
        self.process = subprocess.Popen(cmd, cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT,
                                        start_new_session=True)
        deadline = time.time() + 300
        while time.time() < deadline:
            try:
                urllib.request.urlopen(f"{self.url}/.well-known/openeo", timeout=2)
                return
            except OSError:
                if self.process.poll() is not None:
                    raise RuntimeError(f"server exited with {self.process.returncode}; see {log.name}")
                time.sleep(0.5)
        self.kill()
        raise RuntimeError("server did not start")

    def kill(self) -> None:
        """SIGKILL the whole process group (server and its dask workers), as a crash would."""
        os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait()

    def stop(self) -> None:
        """SIGTERM, then make sure nothing of the group is left."""
        self.process.terminate()
        try:
            self.process.wait(timeout=60)
        finally:
            try:
                os.killpg(self.process.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
