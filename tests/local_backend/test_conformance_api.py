"""openEO API 1.2 behaviour that openeo-test-suite and schemathesis found missing (see ``tools/conformance.sh``)."""

import urllib.error
import urllib.request

import openeo
import pytest
from conftest import Server, read_json
from openeo.rest import OpenEoApiError

ADD = {"add": {"process_id": "add", "arguments": {"x": 1, "y": 2}, "result": True}}


@pytest.mark.parametrize("field, value", [("description", {}), ("title", ["a"]), ("budget", "cheap"),
                                          ("plan", 3)])
def test_job_metadata_types(connection: openeo.Connection, field: str, value: object) -> None:
    with pytest.raises(OpenEoApiError) as info:
        connection.post("/jobs", json={"process": {"process_graph": ADD}, field: value}, expected_status=201)
    assert info.value.http_status_code == 400 and field in info.value.message


def test_job_metadata_null_and_strings_accepted(connection: openeo.Connection) -> None:
    job = connection.create_job(ADD, title="t", description="d", plan=None, budget=1.5)
    assert job.describe()["description"] == "d"
    job.delete()


def test_validation(connection: openeo.Connection) -> None:
    assert connection.validate_process_graph(ADD) == []
    graph = {"a": {"process_id": "add", "arguments": {"x": 1, "z": 2}, "result": True},
             "b": {"process_id": "load_collection", "arguments": {"id": "NOPE", "spatial_extent": None,
                                                                  "temporal_extent": None}},
             "c": {"process_id": "no_such_process", "arguments": {}}}
    codes = [e["code"] for e in connection.validate_process_graph(graph)]
    assert codes == ["ProcessUnsupported"]
    del graph["c"]
    codes = [e["code"] for e in connection.validate_process_graph(graph)]
    assert codes == ["ProcessParameterUnsupported", "ProcessParameterRequired", "CollectionNotFound"]


def test_validation_of_argument_types(connection: openeo.Connection) -> None:
    graph = {"load": {"process_id": "load_collection", "result": True,
                      "arguments": {"id": {"nested": "id"}, "spatial_extent": None, "temporal_extent": None}}}
    errors = connection.validate_process_graph(graph)
    assert [e["code"] for e in errors] == ["ProcessParameterInvalid"] and "'id'" in errors[0]["message"]


def test_validation_of_user_defined_process_parameters(connection: openeo.Connection) -> None:
    """Unresolved ``from_parameter`` references are not errors (the API says so)."""
    graph = {"m": {"process_id": "multiply", "arguments": {"x": {"from_parameter": "red"}, "y": 6}, "result": True}}
    assert connection.validate_process_graph(graph) == []


def test_collections_listing_is_stac(server: Server) -> None:
    listing = read_json(f"{server.url}/openeo/1.2/collections")
    assert listing["collections"] and all(c["type"] == "Collection" for c in listing["collections"])


def test_capabilities_without_null_billing(server: Server) -> None:
    capabilities = read_json(f"{server.url}/openeo/1.2/")
    assert "billing" not in capabilities
    assert "/validation" in {e["path"] for e in capabilities["endpoints"]}


def test_undeclared_method(server: Server) -> None:
    request = urllib.request.Request(f"{server.url}/openeo/1.2/", method="TRACE")
    with pytest.raises(urllib.error.HTTPError) as info:
        urllib.request.urlopen(request, timeout=10)
    assert info.value.code == 405
    assert set(info.value.headers["Allow"].split(", ")) >= {"GET"}
    assert b'"code":"MethodNotAllowed"' in info.value.read().replace(b" ", b"")
