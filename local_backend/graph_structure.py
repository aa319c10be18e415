"""The structure of a process graph: nodes, references and callbacks, checked before anything else.

Shared by :mod:`local_backend.graph` (every graph the backend runs or validates) and
:mod:`local_backend.processes.argument_schemas` (the literal arguments, checked after the structure).
"""

import json
from typing import Any

from openeo_driver.errors import ProcessGraphInvalidException

__all__ = ["REFERENCE_KEYS", "check_structure", "show_value"]

REFERENCE_KEYS = ("from_node", "from_parameter")
"""The keys of an argument that refers to a node's result or to a parameter."""


def show_value(value: Any) -> str:
    """A JSON value as it appears in error messages (at most 80 characters)."""
    return json.dumps(value, default=str)[:80]


def _invalid_graph(message: str) -> ProcessGraphInvalidException:
    return ProcessGraphInvalidException(message=f"Invalid process graph: {message}")


def _check_reference(value: dict[str, Any], where: str) -> None:
    for key in REFERENCE_KEYS:
        if key in value and (len(value) != 1 or not isinstance(value[key], str) or not value[key]):
            raise _invalid_graph(f"{where}: a reference must be {{\"{key}\": \"<name>\"}}, got {show_value(value)}.")


def _walk_value(value: Any, where: str, graphs: list[tuple[Any, str]]) -> None:
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, list):
            stack.extend(item)
        elif isinstance(item, dict):
            _check_reference(item, where)
            if "process_graph" in item:
                graphs.append((item["process_graph"], f"{where} (callback)"))
            else:
                stack.extend(item.values())


def check_structure(flat_graph: Any) -> None:
    """Refuse a graph (including its callbacks) whose nodes, references or callbacks are malformed.

    Raises:
        ProcessGraphInvalidException: naming the node and what was expected.
    """
    graphs: list[tuple[Any, str]] = [(flat_graph, "process graph")]
    while graphs:
        graph, where = graphs.pop()
        if not isinstance(graph, dict) or not graph:
            raise _invalid_graph(f"{where} must be a non-empty object of nodes, got {show_value(graph)}.")
        for key, node in graph.items():
            if not isinstance(node, dict):
                raise _invalid_graph(f"node '{key}' of the {where} must be an object, got {show_value(node)}.")
            if not isinstance(node.get("process_id"), str) or not node["process_id"]:
                raise _invalid_graph(f"node '{key}': 'process_id' must be a non-empty string, got "
                                     f"{show_value(node.get('process_id'))}.")
            if node.get("namespace") is not None and not isinstance(node["namespace"], str):
                raise _invalid_graph(f"node '{key}': 'namespace' must be a string or null, got "
                                     f"{show_value(node['namespace'])}.")
            if not isinstance(node.get("result", False), bool):
                raise _invalid_graph(f"node '{key}': 'result' must be true or false, got {show_value(node['result'])}.")
            arguments = node.get("arguments", {})
            if not isinstance(arguments, dict):
                raise _invalid_graph(f"node '{key}': 'arguments' must be an object, got {show_value(arguments)}.")
            for name, value in arguments.items():
                _walk_value(value, f"argument '{name}' of node '{key}' ({node['process_id']})", graphs)
