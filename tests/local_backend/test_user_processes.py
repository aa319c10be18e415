"""User-defined processes through the stock openeo client and raw HTTP: store, list, call, namespaces, errors."""

import json
from pathlib import Path

import openeo
import pytest
import requests
from conftest import PASSWORD, USER, Server, start_server

SCALE = {
    "process_graph": {"m": {"process_id": "multiply", "arguments": {"x": {"from_parameter": "x"},
                                                                  "y": {"from_parameter": "factor"}},
                            "result": True}},
    "parameters": [{"name": "x", "description": "value", "schema": {"type": "number"}},
                   {"name": "factor", "description": "factor", "schema": {"type": "number"}, "optional": True,
                    "default": 2}],
}
SCALE_ALL = {  # the callback's own parameter x shadows nothing; factor comes from the process parameter
    "process_graph": {"a": {"process_id": "array_apply", "arguments": {
        "data": {"from_parameter": "data"},
        "process": {"process_graph": {"m": {"process_id": "multiply", "arguments": {
            "x": {"from_parameter": "x"}, "y": {"from_parameter": "factor"}}, "result": True}}}}, "result": True}},
    "parameters": [{"name": "data", "description": "numbers", "schema": {"type": "array"}},
                   {"name": "factor", "description": "factor", "schema": {"type": "number"}}],
}


def _call(process_id: str, namespace: str | None = None, **arguments: object) -> dict:
    """A flat graph of one node calling ``process_id``."""
    node = {"process_id": process_id, "arguments": arguments, "result": True}
    if namespace is not None:
        node["namespace"] = namespace
    return {"call": node}


def _post(server: Server, connection: openeo.Connection, body: dict) -> requests.Response:
    return requests.post(f"{server.url}/openeo/1.2/result", json={"process": {"process_graph": body}}, timeout=60,
                         headers={"Authorization": f"Bearer {connection.auth.bearer}"})


def _put(server: Server, connection: openeo.Connection, process_id: str, spec: object) -> requests.Response:
    return requests.put(f"{server.url}/openeo/1.2/process_graphs/{process_id}", json=spec, timeout=30,
                        headers={"Authorization": f"Bearer {connection.auth.bearer}"})


def test_store_list_call_delete(server: Server, connection: openeo.Connection) -> None:
    udp = connection.save_user_defined_process("scale", SCALE["process_graph"], parameters=SCALE["parameters"])
    assert udp.describe()["parameters"][1]["default"] == 2
    assert "scale" in {p["id"] for p in connection.list_user_defined_processes()}
    assert connection.execute(_call("scale", x=3)) == 6  # default factor
    assert connection.execute(_call("scale", x=3, factor=10)) == 30
    assert connection.execute(_call("scale", namespace="user", x=1.5)) == 3
    udp.delete()
    assert "scale" not in {p["id"] for p in connection.list_user_defined_processes()}
    response = _post(server, connection, _call("scale", x=3))
    assert response.status_code == 400 and response.json()["code"] == "ProcessUnsupported"
    gone = requests.delete(f"{server.url}/openeo/1.2/process_graphs/scale", timeout=30,
                           headers={"Authorization": f"Bearer {connection.auth.bearer}"})
    assert gone.status_code == 404 and gone.json()["code"] == "ProcessGraphNotFound"


def test_nesting(server: Server, connection: openeo.Connection) -> None:
    connection.save_user_defined_process("scale3", SCALE["process_graph"], parameters=SCALE["parameters"])
    outer = {"process_graph": {"s": {"process_id": "scale3", "arguments": {"x": {"from_parameter": "v"}, "factor": 10}},
                               "a": {"process_id": "add", "arguments": {"x": {"from_node": "s"}, "y": 1},
                                     "result": True}},
             "parameters": [{"name": "v", "description": "a number", "schema": {"type": "number"}}]}
    connection.save_user_defined_process("scale_plus", outer["process_graph"], parameters=outer["parameters"])
    assert connection.execute(_call("scale_plus", v=3)) == 31


def test_callback_parameters_shadow_process_parameters() -> None:
    """Inside a callback, the callback's own ``x`` is kept; ``factor`` (a process parameter) is substituted."""
    from local_backend.api.udp.resolve import ProcessResolver

    definition = {"id": "scale_all", **SCALE_ALL}
    definition["parameters"] = [*SCALE_ALL["parameters"], {"name": "x", "description": "clash", "optional": True,
                                                            "default": 99}]
    resolver = ProcessResolver(lambda user, process_id: definition if process_id == "scale_all" else None)
    caller = {"load": {"process_id": "constant", "arguments": {"x": [1, 2]}},
              "call": {"process_id": "scale_all", "arguments": {"data": {"from_node": "load"}, "factor": 3},
                       "result": True}}
    expanded = resolver.expand(caller, "alice")
    assert set(expanded) == {"load", "call"} and expanded["call"]["process_id"] == "array_apply"
    assert expanded["call"]["arguments"]["data"] == {"from_node": "load"} and expanded["call"]["result"] is True
    inner = expanded["call"]["arguments"]["process"]["process_graph"]["m"]["arguments"]
    assert inner == {"x": {"from_parameter": "x"}, "y": 3}


@pytest.mark.parametrize(("arguments", "code"), [({"x": 3, "bogus": 1}, "ProcessParameterUnsupported"),
                                                 ({"factor": 3}, "ProcessParameterRequired"),
                                                 ({"x": "three"}, "ProcessParameterInvalid")])
def test_bad_arguments(server: Server, connection: openeo.Connection, arguments: dict, code: str) -> None:
    assert _put(server, connection, "scale2", SCALE).status_code == 200
    response = _post(server, connection, _call("scale2", **arguments))
    assert response.status_code == 400, response.text
    assert response.json()["code"] == code


def test_put_refuses_recursion_and_bad_definitions(server: Server, connection: openeo.Connection) -> None:
    itself = {"process_graph": {"r": {"process_id": "loop", "arguments": {}, "result": True}}, "parameters": []}
    response = _put(server, connection, "loop", itself)
    assert response.status_code == 400 and "Recursive" in response.json()["message"]
    first = {"process_graph": {"r": {"process_id": "absolute", "arguments": {"x": -1}, "result": True}}}
    assert _put(server, connection, "ping", first).status_code == 200
    assert _put(server, connection, "pong", {"process_graph": {"r": {"process_id": "ping", "arguments": {},
                                                                     "result": True}}}).status_code == 200
    cycle = _put(server, connection, "ping", {"process_graph": {"r": {"process_id": "pong", "arguments": {},
                                                                      "result": True}}})
    assert cycle.status_code == 400 and "ping" in cycle.json()["message"] and "pong" in cycle.json()["message"]
    assert connection.execute(_call("pong")) == 1  # the refused PUT left the stored ping unchanged
    undeclared = {"process_graph": {"r": {"process_id": "absolute", "arguments": {"x": {"from_parameter": "y"}},
                                          "result": True}}, "parameters": []}
    assert _put(server, connection, "undeclared", undeclared).json()["code"] == "ProcessGraphInvalid"
    assert _put(server, connection, "absolute", first).json()["code"] == "PredefinedProcessExists"
    assert _put(server, connection, "nolist", ["not", "an", "object"]).status_code == 400
    assert _put(server, connection, "unknown", {"process_graph": {"r": {"process_id": "nope", "arguments": {},
                                                                        "result": True}}}).status_code == 400


def test_private_to_owner(tmp_path: Path) -> None:
    from local_backend.api.udp.store import UdpStore

    store = UdpStore(tmp_path)
    store.save("alice", "mine", {"process_graph": SCALE["process_graph"], "parameters": SCALE["parameters"]})
    assert store.get("bob", "mine") is None and store.get_for_user("bob") == []
    assert [u.id for u in store.get_for_user("alice")] == ["mine"]
    reopened = UdpStore(tmp_path)  # persisted with the server state
    assert reopened.spec("alice", "mine")["parameters"][1]["default"] == 2


def test_namespaces(tmp_path: Path, sample_data: Path, users_file: Path) -> None:
    """A file path, a URL resolved through --udp-catalogue (logged), and an unreachable URL."""
    catalogue = tmp_path / "catalogue"
    catalogue.mkdir()
    (catalogue / "scale.json").write_text(json.dumps({"id": "scale", **SCALE}))
    elsewhere = tmp_path / "listing.json"
    elsewhere.write_text(json.dumps({"processes": [{"id": "scale_all", **SCALE_ALL}]}))
    server = start_server(tmp_path / "state", sample_data, users_file, workers=0,
                          extra=("--udp-catalogue", str(catalogue)))
    try:
        connection = openeo.connect(server.url).authenticate_basic(USER, PASSWORD)
        url = "https://example.invalid/algorithms/scale.json"
        assert connection.execute(_call("scale", namespace=url, x=4)) == 8
        assert "resolved to the catalogue entry" in server.log.read_text()
        assert connection.execute(_call("scale", namespace=str(catalogue), x=1, factor=5)) == 5
        assert connection.execute(_call("scale_all", namespace=str(elsewhere), data=[1], factor=3)) == [3]
        missing = _post(server, connection, _call("other", namespace="https://example.invalid/other.json"))
        assert missing.status_code == 400 and missing.json()["code"] == "ProcessNamespaceInvalid"
        assert "--udp-catalogue" in missing.json()["message"]
        wrong_id = _post(server, connection, _call("nope", namespace=url))
        assert wrong_id.json()["code"] == "ProcessNamespaceInvalid" and "'scale'" in wrong_id.json()["message"]
    finally:
        server.stop()
