"""UDF isolation (issue 22): with two users a UDF runs in a bubblewrap sandbox that cannot reach the server's secrets.

The probe UDF (``udf_code/probe_sandbox.py``) tries to read the users file, the token key and the jobs database,
write into the state folder, connect to the server's port and get a dask client, and reports what worked in its
error message. Run through the stock client against real servers on loopback.
"""

import re
import subprocess
from pathlib import Path
from typing import Iterator
from urllib.parse import urlparse

import openeo
import pytest
from conftest import PASSWORD, UDF_CODE, USER, Server, start_server
from openeo.rest import OpenEoApiError

from local_backend.tiles.sandbox import bwrap_path


def _bwrap_problem() -> str | None:
    """Why bubblewrap cannot sandbox here (not installed, or user namespaces refused), or None when it can."""
    bwrap = bwrap_path()  # how the server finds it
    if bwrap is None:
        return "bubblewrap (bwrap) is not installed: apt-get install bubblewrap"
    probe = subprocess.run([bwrap, "--unshare-all", "--unshare-user", "--uid", "65534", "--gid", "65534",
                            "--ro-bind", "/", "/", "true"], capture_output=True, text=True, timeout=60)
    if probe.returncode != 0:
        return f"bwrap cannot create its namespaces on this machine: {probe.stderr.strip()[:200]}"
    return None


_BWRAP_PROBLEM = _bwrap_problem()
requires_bwrap = pytest.mark.skipif(_BWRAP_PROBLEM is not None, reason=_BWRAP_PROBLEM or "")


@pytest.fixture(scope="module")
def two_users(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A users file with :data:`USER` and a second user."""
    from local_backend.api.users import UsersFile

    path = tmp_path_factory.mktemp("two-users") / "users.json"
    UsersFile(path).add(USER, PASSWORD)
    UsersFile(path).add("bob", "bob's password")
    return path


def _probe(server: Server) -> dict[str, str]:
    connection = openeo.connect(server.url).authenticate_basic(USER, PASSWORD)
    context = {"state": str(server.state), "users": str(server.users), "port": urlparse(server.url).port}
    udf = openeo.UDF.from_file(UDF_CODE / "probe_sandbox.py", context=context)
    cube = connection.load_collection("S1NDVI_SAMPLE_CUBE", temporal_extent=["2018-05-01", "2018-06-01"])
    with pytest.raises(OpenEoApiError) as info:
        cube.apply_dimension(process=udf, dimension="t").download(format="netCDF")
    assert info.value.code == "UdfError", info.value
    return dict(re.findall(r"(\w+)=(True|False)", info.value.message.split("PROBE", 1)[1]))


@pytest.fixture(scope="module")
def isolated(tmp_path_factory: pytest.TempPathFactory, sample_data: Path, two_users: Path) -> Iterator[Server]:
    """A server with two users, one dask worker and the default ``--udf-isolation auto``."""
    srv = start_server(tmp_path_factory.mktemp("isolated"), sample_data, two_users, workers=1)
    yield srv
    srv.stop()


@requires_bwrap
def test_udf_of_a_multi_user_server_reaches_nothing(isolated: Server) -> None:
    found = _probe(isolated)
    assert found == {"dask_client": "False", "jobs_db": "False", "server_port": "False", "token_key": "False",
                     "users": "False", "write_state": "False"}
    assert not list(isolated.state.rglob("udf-was-here"))


@requires_bwrap
def test_single_user_server_without_isolation_is_as_documented(tmp_path: Path, sample_data: Path,
                                                                users_file: Path) -> None:
    """``auto`` with one user: the UDF runs with the server's rights (the probe must see that, or it proves nothing)."""
    server = start_server(tmp_path / "state", sample_data, users_file, workers=1)
    try:
        found = _probe(server)
    finally:
        server.stop()
    assert found["users"] == "True" and found["token_key"] == "True" and found["server_port"] == "True"


def test_isolation_required_without_bubblewrap_refuses_udfs(tmp_path: Path, sample_data: Path,
                                                             users_file: Path) -> None:
    empty = tmp_path / "empty-path"
    empty.mkdir()
    server = start_server(tmp_path / "state", sample_data, users_file, workers=0,
                          extra=("--udf-isolation", "on"), env={"PATH": str(empty)})
    try:
        connection = openeo.connect(server.url).authenticate_basic(USER, PASSWORD)
        udf = openeo.UDF.from_file(UDF_CODE / "slow.py", context={"seconds": 0})
        cube = connection.load_collection("S1NDVI_SAMPLE_CUBE", temporal_extent=["2018-05-01", "2018-06-01"])
        with pytest.raises(OpenEoApiError) as info:
            cube.apply_dimension(process=udf, dimension="t").download(format="netCDF")
    finally:
        server.stop()
    assert info.value.http_status_code == 503 and "bubblewrap" in info.value.message
