"""Login rate limiting, tokens and jobs across a restart, private state files (issues 13 and 22).

Every test that locks a user name or an address gets its own server (:func:`fresh`), so the tests pass in any
order and alongside the other modules' servers.
"""

import base64
import json
import sqlite3
import time
from pathlib import Path
from typing import Iterator

import openeo
import pytest
import requests
from conftest import PASSWORD, UDF_CODE, USER, Server, start_server

MAX_FAILURES = 3


def _start(tmp_path: Path, sample_data: Path, users_file: Path, *extra: str) -> Server:
    """A server (no dask workers, ``--debug-routes``) that locks logins after 3 failures for 30 s."""
    return start_server(tmp_path / "state", sample_data, users_file, workers=0,
                        extra=("--login-max-failures", str(MAX_FAILURES), "--login-lockout", "30", "--debug-routes", *extra))


@pytest.fixture
def locked_down(tmp_path: Path, sample_data: Path, users_file: Path) -> Iterator[Server]:
    """A fresh server of :func:`_start` for one test (its lockouts do not leak into other tests)."""
    srv = _start(tmp_path, sample_data, users_file)
    yield srv
    srv.stop()


@pytest.fixture
def behind_proxy(tmp_path: Path, sample_data: Path, users_file: Path) -> Iterator[Server]:
    """A fresh server of :func:`_start` that trusts 127.0.0.1 as a reverse proxy."""
    srv = _start(tmp_path, sample_data, users_file, "--trusted-proxy", "127.0.0.1")
    yield srv
    srv.stop()


def _login(server: Server, user: str, password: str, headers: dict[str, str] | None = None) -> requests.Response:
    return requests.get(f"{server.url}/openeo/1.2/credentials/basic", auth=(user, password), headers=headers,
                        timeout=30)


def _raw_login(server: Server, authorization: str, headers: dict[str, str] | None = None) -> requests.Response:
    return requests.get(f"{server.url}/openeo/1.2/credentials/basic",
                        headers={"Authorization": authorization, **(headers or {})}, timeout=30)


def _basic(user: str, password: str) -> str:
    return base64.b64encode(f"{user}:{password}".encode()).decode("ascii")


def test_debug_routes_need_a_login_with_debug(locked_down: Server) -> None:
    echo = f"{locked_down.url}/openeo/1.2/_debug/echo"
    assert requests.get(echo, timeout=10).status_code == 401
    token = _login(locked_down, USER, PASSWORD).json()["access_token"]
    response = requests.get(echo, headers={"Authorization": f"Bearer basic//{token}"}, timeout=10)
    assert response.status_code == 200 and response.json()["path"] == "/openeo/1.2/_debug/echo"


def test_login_rate_limit_per_user_and_per_address(locked_down: Server) -> None:
    for _ in range(MAX_FAILURES):
        assert _login(locked_down, USER, "wrong").status_code == 403
    refused = _login(locked_down, USER, PASSWORD)  # even the right password, while locked
    assert refused.status_code == 429 and refused.json()["code"] == "TooManyRequests"
    assert 0 < int(refused.headers["Retry-After"]) <= 31
    for i in range(4 * MAX_FAILURES):  # name after name from one address: the address is locked
        response = _login(locked_down, f"guess{i}", "wrong")
        assert response.status_code in (403, 429)
    response = _login(locked_down, "someone-new", "wrong")
    assert response.status_code == 429 and int(response.headers["Retry-After"]) > 0
    log = locked_down.log.read_text()
    assert "too many failed logins" in log and "Traceback" not in log


@pytest.mark.parametrize("position", [0, 3, 8, 15])
def test_a_character_outside_base64_is_refused_not_counted_for_another_user(locked_down: Server,
                                                                            position: int) -> None:
    """Issue 22: a locked user logged in with one '!' inserted into the base64 of the Basic header."""
    for _ in range(MAX_FAILURES):
        assert _login(locked_down, USER, "wrong").status_code == 403
    token = _basic(USER, PASSWORD)
    forged = f"Basic {token[:position]}!{token[position:]}"
    response = _raw_login(locked_down, forged)
    assert response.status_code in (401, 429), response.text
    assert "access_token" not in response.text
    assert _login(locked_down, USER, PASSWORD).status_code == 429  # the user stays locked


@pytest.mark.parametrize("header", ["Basic", "Basic !!!!", "Basic " + _basic("tester", "x")[:-1],
                                    "Basic " + base64.b64encode(b"no-colon").decode(),
                                    "Basic " + base64.b64encode("t\u00e9ster:x".encode()).decode(),
                                    "Basic " + base64.b64encode(b"\xff\xfe:x").decode(), "Digest abc"])
def test_malformed_basic_headers_are_401_and_count_for_the_address(locked_down: Server, header: str) -> None:
    response = _raw_login(locked_down, header)
    assert response.status_code == 401 and response.json()["code"] == "AuthenticationRequired", response.text
    for _ in range(4 * MAX_FAILURES):  # malformed headers alone lock the address
        if _raw_login(locked_down, header).status_code == 429:
            break
    assert _login(locked_down, USER, PASSWORD).status_code == 429


def test_x_forwarded_for_is_ignored_without_trusted_proxy(locked_down: Server) -> None:
    """Issue 22: a new X-Forwarded-For per request never met a 429; a locked address logged in with any XFF."""
    codes = [_login(locked_down, f"guess{i}", "wrong", {"X-Forwarded-For": f"10.1.{i}.1"}).status_code
             for i in range(4 * MAX_FAILURES + 2)]
    assert 429 in codes, codes
    assert _login(locked_down, USER, PASSWORD, {"X-Forwarded-For": "10.9.9.9"}).status_code == 429


def test_x_forwarded_for_counts_from_a_trusted_proxy(behind_proxy: Server) -> None:
    for i in range(4 * MAX_FAILURES):  # one client behind the proxy locks its own address ...
        _login(behind_proxy, f"guess{i}", "wrong", {"X-Forwarded-For": "203.0.113.7"})
    assert _login(behind_proxy, "guess-next", "wrong", {"X-Forwarded-For": "203.0.113.7"}).status_code == 429
    # ... not the proxy's other clients; a client-written left-most entry does not pick the address
    assert _login(behind_proxy, USER, PASSWORD, {"X-Forwarded-For": "203.0.113.8"}).status_code == 200
    spoofed = _login(behind_proxy, "guess-spoof", "wrong", {"X-Forwarded-For": "198.51.100.1, 203.0.113.7"})
    assert spoofed.status_code == 429


def _job_state(state: Path, job_id: str) -> tuple[dict, list[str]]:
    with sqlite3.connect(state / "jobs.sqlite") as db:
        db.row_factory = sqlite3.Row
        row = dict(db.execute("SELECT status, error FROM jobs WHERE id = ?", (job_id,)).fetchone())
    lines = (state / "jobs" / job_id / "logs.jsonl").read_text().splitlines()
    return row, [json.loads(line)["message"] for line in lines]


def _private(state: Path) -> list[str]:
    """Paths under ``state`` that group or others can access (the test harness's own server logs aside)."""
    found = [] if state.stat().st_mode & 0o077 == 0 else [str(state)]
    for path in state.rglob("*"):
        if not path.name.startswith("server-") and path.stat().st_mode & 0o077:
            found.append(f"{path} {oct(path.stat().st_mode & 0o777)}")
    return found


def test_restart_keeps_tokens_marks_running_jobs_and_state_is_private(tmp_path: Path, sample_data: Path,
                                                                      users_file: Path) -> None:
    state = tmp_path / "state"
    server = start_server(state, sample_data, users_file, workers=1)
    try:
        conn = openeo.connect(server.url).authenticate_basic(USER, PASSWORD)
        token = conn.auth.bearer  # type: ignore[union-attr]
        udf = openeo.UDF.from_file(UDF_CODE / "slow.py", context={"seconds": 120})
        cube = conn.load_collection("S1NDVI_SAMPLE_CUBE", temporal_extent=["2018-05-01", "2018-06-01"])
        job = cube.apply_dimension(process=udf, dimension="t").create_job(out_format="netCDF")
        job.start()
        deadline = time.time() + 60
        while job.status() != "running" and time.time() < deadline:
            time.sleep(0.3)
        time.sleep(1)
    finally:
        start = time.monotonic()
        server.stop()  # SIGTERM; killed after 30 s
        stop_s = time.monotonic() - start
    assert stop_s < 25
    record, messages = _job_state(state, job.job_id)
    assert record["status"] == "error" and "server stopped while this job was running" in record["error"]
    assert any("server stopped while this job was running" in m for m in messages)
    assert not any("Internal" in m for m in messages), messages
    assert _private(state) == []
    assert (state / "token_key").stat().st_mode & 0o777 == 0o600

    server = start_server(state, sample_data, users_file, workers=0)
    try:
        me = requests.get(f"{server.url}/openeo/1.2/me", headers={"Authorization": f"Bearer {token}"}, timeout=10)
        assert me.status_code == 200 and me.json()["user_id"] == USER
        assert openeo.connect(server.url).authenticate_basic(USER, PASSWORD).job(job.job_id).status() == "error"
    finally:
        server.stop()
