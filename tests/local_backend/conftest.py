"""Fixtures: a real ``s1ndvi serve`` subprocess on a free loopback port, a user, and the stock openeo client."""

import json
import os
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import pytest

REPO = Path(__file__).resolve().parents[2]
if str(REPO) not in sys.path:  # the package may not be installed (pip install -e .) in a fresh checkout
    sys.path.insert(0, str(REPO))

UDF_CODE = Path(__file__).with_name("udf_code")
USER, PASSWORD = "tester", "correct horse battery staple"
MAX_SYNC_MB = 4.0
"""Small enough that loading the whole SENTINEL2_L2A sample synchronously (5.8 MiB) is refused."""



def _project_udf_ready() -> bool:
    """The project's UDF and its default weights (shipped in udf/data) exist."""
    if not (REPO / "udf" / "s1_ndvi_udf.py").exists():
        return False
    return any((REPO / "udf" / "data").glob("*.npz"))


requires_project_udf = pytest.mark.skipif(
    not _project_udf_ready(), reason="udf.UDF_PATH or its default weights (udf/data/*.npz) are not in the repo yet")


@dataclass
class Server:
    """A running server subprocess."""

    url: str
    state: Path
    data: Path
    users: Path
    process: subprocess.Popen
    log: Path

    def stop(self) -> None:
        """Stop with SIGTERM (clean shutdown) and wait."""
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()

    def kill(self) -> None:
        """Kill without any shutdown (as a crash or power cut would)."""
        self.process.kill()
        self.process.wait()


def _wait_ready(url: str, process: subprocess.Popen, log: Path, timeout: float = 90.0) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"Server exited with {process.returncode}:\n{log.read_text()[-3000:]}")
        try:
            with urllib.request.urlopen(f"{url}/.well-known/openeo", timeout=2) as resp:
                if resp.status == 200:
                    return
        except OSError:
            time.sleep(0.3)
    raise RuntimeError(f"Server not ready after {timeout} s:\n{log.read_text()[-3000:]}")


def start_server(state: Path, data: Path, users: Path, workers: int = 0, extra: tuple[str, ...] = (),
                 env: dict[str, str] | None = None) -> Server:
    """Start ``s1ndvi serve`` on a free port and wait until it answers (``env``: extra environment variables)."""
    from local_backend.api.server import free_port

    port = free_port()
    log = state / f"server-{port}.log"
    state.mkdir(parents=True, exist_ok=True)
    cmd = [sys.executable, "-m", "udf.cli", "-v", "serve", "--host", "127.0.0.1", "--port", str(port),
           "--data", str(data), "--state", str(state), "--users", str(users), "--max-sync-mb", str(MAX_SYNC_MB),
           *(() if "--dask-scheduler" in extra else ("--workers", str(workers))), *extra]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]), **(env or {})}
    handle = log.open("w")
    process = subprocess.Popen(cmd, cwd=REPO, env=env, stdout=handle, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    _wait_ready(url, process, log)
    return Server(url=url, state=state, data=data, users=users, process=process, log=log)


@pytest.fixture(scope="session")
def sample_data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The embedded sample written as SENTINEL1_GRD, SENTINEL2_L2A and S1NDVI_SAMPLE_CUBE."""
    from local_backend.cubes.sample_data import write_sample_collections

    target = tmp_path_factory.mktemp("data")
    write_sample_collections(target)
    return target


@pytest.fixture(scope="session")
def users_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A users file with one user (:data:`USER`, :data:`PASSWORD`)."""
    from local_backend.api.users import UsersFile

    path = tmp_path_factory.mktemp("users") / "users.json"
    UsersFile(path).add(USER, PASSWORD)
    return path


@pytest.fixture(scope="session")
def server(tmp_path_factory: pytest.TempPathFactory, sample_data: Path, users_file: Path) -> Iterator[Server]:
    """One server for the session, with one local dask worker (so UDF tiles really cross processes)."""
    srv = start_server(tmp_path_factory.mktemp("state"), sample_data, users_file, workers=1)
    yield srv
    srv.stop()


@pytest.fixture
def connection(server: Server) -> "openeo.Connection":  # type: ignore[name-defined]  # noqa: F821
    """The stock openeo client, authenticated."""
    import openeo

    return openeo.connect(server.url).authenticate_basic(USER, PASSWORD)


def read_json(url: str) -> dict:
    """GET a JSON document without authentication."""
    with urllib.request.urlopen(url, timeout=10) as resp:
        return dict(json.loads(resp.read()))
