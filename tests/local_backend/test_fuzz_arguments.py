"""No HTTP 5xx from input (issue 22): every argument of every advertised process, given wrong JSON types.

Each test posts raw HTTP to the session's running server (``conftest.server``, loopback). A graph is a small
``load_collection`` and one node of the process under test whose data-cube parameters reference it and whose fuzzed
argument holds a value of the wrong JSON type: an object, an array (of objects), a string, a number, ``null`` or a
string with a lone UTF-16 surrogate. Every answer must be 2xx or 4xx, and a 4xx must not carry the code
``Internal``. The walk covers every (process, parameter) pair once, cycling through the kinds of values; hypothesis
then draws further combinations. Both are bounded (a few hundred requests).
"""

import json
from typing import Any

import pytest
import requests
from conftest import PASSWORD, USER, Server
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

LOAD = {"process_id": "load_collection",
        "arguments": {"id": "S1NDVI_SAMPLE_CUBE", "spatial_extent": None,
                      "temporal_extent": ["2018-05-01", "2018-06-01"]}}
WRONG_VALUES: list[Any] = [{"wrong": {"nested": 1}}, [{"a": 1}], "x\ud800y", "notadict", 12345.5, None, [],
                           {"process_graph": "nope"}, True, ["2018-05-01"], {"from_parameter": 3}]
"""Wrong JSON values: object, array of objects, lone surrogate, string, number, null, empty array, a callback
without a graph, a boolean, a one-item array, a malformed reference."""


@pytest.fixture(scope="module")
def session(server: Server) -> requests.Session:
    """A logged-in ``requests`` session (keep-alive) against the shared server."""
    http = requests.Session()
    login = http.get(f"{server.url}/openeo/1.2/credentials/basic", auth=(USER, PASSWORD), timeout=30)
    http.headers["Authorization"] = f"Bearer basic//{login.json()['access_token']}"
    return http


@pytest.fixture(scope="module")
def parameters(server: Server) -> list[tuple[str, str, bool]]:
    """(process id, parameter name, takes a data cube) of every advertised process."""
    listing = requests.get(f"{server.url}/openeo/1.2/processes", timeout=30).json()["processes"]
    found = []
    for process in listing:
        for parameter in process.get("parameters", []):
            found.append((process["id"], parameter["name"], "datacube" in json.dumps(parameter.get("schema"))))
    assert len(found) > 200, f"only {len(found)} parameters advertised"
    return found


def _graph(process_id: str, cube_parameters: list[str], name: str, value: Any) -> dict[str, Any]:
    arguments = {p: {"from_node": "lc"} for p in cube_parameters}
    arguments[name] = value
    return {"lc": LOAD, "n": {"process_id": process_id, "arguments": arguments, "result": True}}


def _post(session: requests.Session, server: Server, path: str, body: Any) -> requests.Response:
    data = json.dumps(body).encode()  # ensure_ascii: a lone surrogate travels as "\ud800", as a client would send it
    return session.post(f"{server.url}/openeo/1.2{path}", data=data, timeout=120,
                        headers={"Content-Type": "application/json"})


def _problem(response: requests.Response, what: str) -> str | None:
    if response.status_code >= 500 or (response.status_code >= 400 and response.json().get("code") == "Internal"):
        return f"{what}: {response.status_code} {response.text[:300]}"
    return None


def _check(response: requests.Response, what: str) -> None:
    problem = _problem(response, what)
    assert problem is None, problem


def _cube_parameters(parameters: list[tuple[str, str, bool]], process_id: str) -> list[str]:
    return [name for pid, name, cube in parameters if pid == process_id and cube]


def test_every_argument_of_every_process_with_a_wrong_type(server: Server, session: requests.Session,
                                                           parameters: list[tuple[str, str, bool]]) -> None:
    problems = []
    for i, (process_id, name, _) in enumerate(parameters):
        value = WRONG_VALUES[i % len(WRONG_VALUES)]
        graph = _graph(process_id, _cube_parameters(parameters, process_id), name, value)
        path = ("/result", "/validation", "/jobs")[i % 3]
        body = graph if path == "/validation" else {"process": {"process_graph": graph}}
        problems.append(_problem(_post(session, server, path, body), f"{path} {process_id}.{name}={value!r}"))
    problems = [p for p in problems if p]
    assert not problems, "\n".join(problems)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                   HealthCheck.too_slow])
@given(data=st.data())
def test_random_wrong_arguments(server: Server, session: requests.Session, parameters: list[tuple[str, str, bool]],
                                data: st.DataObject) -> None:
    process_id, name, _ = data.draw(st.sampled_from(parameters))
    scalar = st.one_of(st.none(), st.booleans(), st.integers(-10**6, 10**6), st.floats(allow_nan=False),
                       st.text(max_size=8), st.sampled_from(["\ud800", "a\udfffb", "2018-05-01", "9999-12-31"]))
    value = data.draw(st.recursive(scalar, lambda inner: st.one_of(st.lists(inner, max_size=3),
                                                                   st.dictionaries(st.text(max_size=4), inner,
                                                                                   max_size=3)), max_leaves=6))
    graph = _graph(process_id, _cube_parameters(parameters, process_id), name, value)
    _check(_post(session, server, "/result", {"process": {"process_graph": graph}}), f"{process_id}.{name}={value!r}")


@pytest.mark.parametrize("path", ["/processes/u:nobody", "/jobs/j-0000000000000000/logs?offset=abc",
                                  "/jobs/j-0000000000000000/results/items/nope"])
def test_odd_paths_are_not_5xx(server: Server, session: requests.Session, path: str) -> None:
    _check(session.get(f"{server.url}/openeo/1.2{path}", timeout=30), path)


def test_finished_job_logs_end_with_duration_and_unknown_items_are_404(server: Server,
                                                                      session: requests.Session) -> None:
    import openeo

    connection = openeo.connect(server.url).authenticate_basic(USER, PASSWORD)
    job = connection.create_job({"lc": {**LOAD, "result": True}}, title="small")
    job.start_and_wait(print=lambda *a: None, max_poll_interval=1)
    last = job.logs()[-1]
    assert last["level"] == "info" and last["message"].startswith("Job finished in "), last
    response = session.get(f"{server.url}/openeo/1.2/jobs/{job.job_id}/results/items/nope", timeout=30)
    _check(response, "results/items/nope")
    assert response.status_code == 404, response.text


def test_failed_job_logs_end_with_an_error_line(server: Server) -> None:
    import openeo

    connection = openeo.connect(server.url).authenticate_basic(USER, PASSWORD)
    graph = {"lc": LOAD, "u": {"process_id": "run_udf", "result": True, "arguments": {
        "data": {"from_node": "lc"}, "runtime": "Python", "udf": "def apply_datacube(cube, context):\n  raise "
                                                                 "ValueError('on purpose')\n"}}}
    job = connection.create_job(graph)
    job.start()
    for _ in range(120):
        if job.status() in ("error", "finished"):
            break
        __import__("time").sleep(0.5)
    last = job.logs()[-1]
    assert job.status() == "error" and last["level"] == "error" and "ended with an error after" in last["message"]


def test_post_jobs_refuses_what_result_refuses(server: Server, session: requests.Session) -> None:
    graph = {"a": {"process_id": {"x": 1}, "arguments": {}, "result": True}}
    for path in ("/jobs", "/result"):
        response = _post(session, server, path, {"process": {"process_graph": graph}})
        assert response.status_code == 400 and response.json()["code"] == "ProcessGraphInvalid", response.text
    dates = {"lc": {**LOAD, "arguments": {**LOAD["arguments"], "temporal_extent": ["1000-01-01", "9999-12-31"]},
                    "result": True}}
    response = _post(session, server, "/jobs", {"process": {"process_graph": dates}})
    assert response.status_code == 400 and response.json()["code"] == "TemporalExtentInvalid"
    assert "1678-01-01 to 2261-12-31" in response.json()["message"]
