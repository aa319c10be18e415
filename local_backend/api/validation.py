"""``POST /validation``: check a process graph without running it (openEO API: always 200 with a list of errors).

Checked: the graph is a non-empty object of nodes; every process exists here; argument types the process
implementations do not check themselves (:func:`~local_backend.api.input_checks.check_graph_arguments`); every argument
name is a parameter of the process and every required parameter is given (against the process's openEO spec); the
graph parses (references, callbacks, one result node); collections named literally in ``load_collection`` exist.
Parameters a graph leaves unresolved (``from_parameter`` of a user-defined process) are not errors, as the API
requires.
"""

import logging
from typing import Any, Callable

from openeo_driver.errors import (
    OpenEOApiException,
    ProcessGraphInvalidException,
    ProcessParameterRequiredException,
    ProcessParameterUnsupportedException,
)

from local_backend import graph
from local_backend.api.input_checks import check_graph_arguments
from local_backend.cubes.collections import LocalCollectionCatalog

_log = logging.getLogger(__name__)

__all__ = ["validate_process_graph"]


def _error(exc: OpenEOApiException) -> dict[str, str]:
    return {"code": exc.code, "message": str(exc)}


def _argument_errors(flat_graph: dict[str, Any]) -> list[dict[str, str]]:
    errors = []
    for node in graph.all_nodes(flat_graph):
        process_id = str(node.get("process_id"))
        spec = graph.load_spec(process_id)
        if spec is None:
            continue
        arguments = node.get("arguments") or {}
        known = {p["name"]: p for p in spec.get("parameters", [])}
        errors += [_error(ProcessParameterUnsupportedException(process_id, name)) for name in arguments
                   if name not in known]
        errors += [_error(ProcessParameterRequiredException(process_id, name)) for name, p in known.items()
                   if not p.get("optional") and name not in arguments]
    return errors


def _collection_errors(flat_graph: dict[str, Any], catalog: LocalCollectionCatalog) -> list[dict[str, str]]:
    errors = []
    for node in graph.all_nodes(flat_graph):
        collection_id = (node.get("arguments") or {}).get("id")
        if node.get("process_id") == "load_collection" and isinstance(collection_id, str):
            try:
                catalog.get(collection_id)
            except OpenEOApiException as exc:
                errors.append(_error(exc))
    return errors


def validate_process_graph(flat_graph: Any, catalog: LocalCollectionCatalog,
                           expand: Callable[[dict[str, Any]], dict[str, Any]] | None = None) -> list[dict[str, str]]:
    """The errors of a flat process graph (``[]`` when it is valid), each ``{"code", "message"}``.

    ``expand`` inlines calls to user-defined processes first (their errors are reported like the others).
    """
    from openeo_pg_parser_networkx import OpenEOProcessGraph

    if not isinstance(flat_graph, dict) or not flat_graph or not all(isinstance(n, dict)
                                                                     for n in flat_graph.values()):
        return [_error(ProcessGraphInvalidException(message="The process graph must be a non-empty object of nodes."))]
    try:
        if expand is not None:
            flat_graph = expand(flat_graph)
        graph.check_processes(flat_graph, set(graph.implementations()))
        check_graph_arguments(flat_graph)  # arguments that are not an object, a collection id that is not a string
    except OpenEOApiException as exc:
        return [_error(exc)]
    errors = _argument_errors(flat_graph)
    try:
        OpenEOProcessGraph({"process_graph": graph.prepare(flat_graph)})
    except Exception as exc:  # noqa: BLE001 - the parser raises many types for a malformed graph
        errors.append(_error(ProcessGraphInvalidException(message=f"Invalid process graph: {type(exc).__name__}: "
                                                                  f"{exc}")))
    errors += _collection_errors(flat_graph, catalog)
    _log.info("Validated a process graph of %d node(s): %d error(s)", len(flat_graph), len(errors))
    return errors
