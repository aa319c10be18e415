"""Checks of request input that would otherwise fail deep inside the stack with an HTTP 500.

Each check raises an openEO error (4xx) that names the field and what was expected.
"""

import json
from typing import Any

from local_backend.errors import InputInvalid, JobMetadataInvalid, ProcessParameterInvalid
from local_backend.processes.argument_schemas import check_argument_types

__all__ = [
    "JOB_FIELDS", "MAX_JSON_DEPTH", "check_graph_arguments", "check_job_metadata", "check_json_body", "json_depth",
]

MAX_JSON_DEPTH = 100
"""Deepest nesting of arrays/objects accepted in a request body (a process graph with callbacks needs ~20)."""

JOB_FIELDS: dict[str, tuple[tuple[type, ...], str]] = {
    "title": ((str,), "a string or null"),
    "description": ((str,), "a string or null"),
    "plan": ((str,), "a string or null"),
    "budget": ((int, float), "a number or null"),
}
"""Optional fields of a batch-job request -> (accepted Python types besides None, what the API expects)."""


def json_depth(value: Any) -> int:
    """Nesting depth of a parsed JSON value, without recursion (a scalar has depth 0)."""
    deepest, stack = 0, [(value, 1)]
    while stack:
        item, depth = stack.pop()
        children = item.values() if isinstance(item, dict) else item if isinstance(item, list) else None
        if children is None:
            continue
        deepest = max(deepest, depth)
        stack.extend((child, depth + 1) for child in children)
    return deepest


def check_json_body(data: bytes, max_depth: int = MAX_JSON_DEPTH) -> None:
    """Refuse a JSON body nested deeper than ``max_depth`` or holding a lone UTF-16 surrogate.

    Malformed JSON is left to the normal parser. A lone surrogate decodes in Python but cannot be stored or
    logged as UTF-8 (a job title holding one failed with a 500).

    Raises:
        InputInvalid: for a body too deeply nested to parse or deeper than ``max_depth``.
    """
    try:
        parsed = json.loads(data)
    except RecursionError:
        raise InputInvalid(message=f"The JSON body is nested too deeply (more than {max_depth} levels).") from None
    except ValueError:
        return
    depth = json_depth(parsed)
    if depth > max_depth:
        raise InputInvalid(message=f"The JSON body is nested {depth} levels deep; at most {max_depth} are accepted.")
    bad = _lone_surrogate(parsed)
    if bad is not None:
        raise InputInvalid(message=f"The JSON body holds the string {bad!r} with a lone UTF-16 surrogate, which is "
                                   f"not valid Unicode: send text as valid UTF-8.")


def _lone_surrogate(value: Any) -> str | None:
    """The first string (value or key) of a parsed JSON value that cannot be encoded as UTF-8 (None: all can)."""
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
        elif isinstance(item, str):
            try:
                item.encode("utf-8")
            except UnicodeEncodeError:
                return item[:80]
    return None


def _nodes(flat_graph: Any) -> list[dict[str, Any]]:
    found, stack = [], [flat_graph]
    while stack:
        graph = stack.pop()
        if not isinstance(graph, dict):
            continue
        for node in graph.values():
            if not isinstance(node, dict):
                continue
            found.append(node)
            arguments = node.get("arguments")
            for value in arguments.values() if isinstance(arguments, dict) else ():
                if isinstance(value, dict) and isinstance(value.get("process_graph"), dict):
                    stack.append(value["process_graph"])
    return found


def check_graph_arguments(flat_graph: dict[str, Any]) -> None:
    """Refuse arguments of the wrong JSON type that the process implementations do not check.

    Literal arguments are checked against their parameter's schema
    (:func:`~local_backend.processes.argument_schemas.check_argument_types`).

    Raises:
        ProcessParameterInvalid: e.g. for a ``load_collection`` ``id`` that is not a string.
    """
    for node in _nodes(flat_graph):
        arguments = node.get("arguments")
        if not isinstance(arguments, dict):
            raise ProcessParameterInvalid(str(node.get("process_id")), "arguments",
                                          f"expected an object of arguments, got {type(arguments).__name__}")
        if node.get("process_id") == "load_collection":
            collection_id = arguments.get("id")
            if not isinstance(collection_id, str):
                raise ProcessParameterInvalid("load_collection", "id",
                                              f"expected a collection id string, got {json.dumps(collection_id)[:80]}")
    check_argument_types(flat_graph)


def check_job_metadata(metadata: dict[str, Any]) -> None:
    """Refuse a job ``title``/``description``/``plan`` that is not a string, a ``budget`` that is not a number.

    ``None`` is always allowed (SQLite failed with a 500 on a dict or list).

    Raises:
        JobMetadataInvalid: naming the field, what was expected and what was received.
    """
    for field, (types, expected) in JOB_FIELDS.items():
        value = metadata.get(field)
        if value is not None and (not isinstance(value, types) or isinstance(value, bool)):
            raise JobMetadataInvalid(field, value, expected)
