"""Check a process graph's structure and its literal arguments against the processes' openEO schemas.

Without these checks a wrong JSON type reached the process implementations and came back as an HTTP 500 (a
``process_id`` that is an object, ``filter_bands`` with ``[{}]``, ``run_udf`` with a ``context`` string, a callback
without ``process_graph``, dates outside what the cube's time axis can hold, an inverted bounding box in
EPSG:4326, ...). Both run before anything is evaluated, for ``POST /result``, ``POST /jobs`` and
``POST /validation`` alike:

* :func:`local_backend.graph_structure.check_structure` (run first): nodes are objects with a string ``process_id``,
  an object of ``arguments``, references
  ``{"from_node": str}`` / ``{"from_parameter": str}`` and callbacks ``{"process_graph": {...}}`` (code
  ``ProcessGraphInvalid``).
* :func:`check_argument_types`: every literal argument matches its parameter's JSON schema in the process spec
  (``type``, ``enum``, ``items``, ``required``/``properties``, ``anyOf``/``oneOf``, data cubes only by reference);
  dates lie in :data:`DATE_RANGE` and intervals are ordered (``TemporalExtentInvalid``); bounding boxes are ordered
  and within -180..180/-90..90 in EPSG:4326 (code ``ProcessParameterInvalid``). References are not checked here:
  their values are known only while the graph runs.
"""

import datetime as dt
import functools
from typing import Any

from openeo_driver.errors import ProcessParameterRequiredException

from local_backend.errors import ProcessParameterInvalid, TemporalExtentInvalid
from local_backend.graph_structure import REFERENCE_KEYS, show_value

__all__ = ["DATE_RANGE", "check_argument_types", "check_required"]

DATE_RANGE = (dt.datetime(1678, 1, 1), dt.datetime(2261, 12, 31, 23, 59, 59))
"""Dates a cube's time axis can hold (numpy ``datetime64[ns]``: 1677-09-21 to 2262-04-11, whole years kept)."""
_SCALARS = ("number", "integer", "boolean", "string")
_JSON_TYPES: dict[str, tuple[type, ...]] = {"null": (type(None),), "boolean": (bool,), "string": (str,),
                                            "array": (list,), "object": (dict,),
               "number": (int, float), "integer": (int, float)}


BACKEND_SCHEMAS: dict[tuple[str, str], dict[str, Any]] = {
    ("run_udf", "context"): {"type": ["object", "null"]},
}
"""(process, parameter) → schema where this backend accepts less than the spec (a UDF's context is an object)."""


@functools.lru_cache(maxsize=None)
def _parameters(process_id: str) -> dict[str, Any]:
    from local_backend import graph

    spec = graph.load_spec(process_id) or {}
    return {p["name"]: BACKEND_SCHEMAS.get((process_id, p["name"]), p.get("schema", {}))
            for p in spec.get("parameters", [])}


@functools.lru_cache(maxsize=1)
def _null_tolerant() -> frozenset[str]:
    """Processes of :mod:`local_backend.processes.conformance`: they take ``null`` (no-data) for any scalar."""
    from local_backend.processes import conformance

    return frozenset(conformance.implementations())


@functools.lru_cache(maxsize=None)
def _without_default(process_id: str) -> frozenset[str]:
    """Parameters the spec requires and the implementation of ``process_id`` cannot run without (no default)."""
    import inspect

    from local_backend import graph

    spec = graph.load_spec(process_id) or {}
    required = {p["name"] for p in spec.get("parameters", []) if not p.get("optional")}
    implementation = graph.implementations().get(process_id)
    try:
        signature = inspect.signature(implementation) if implementation is not None else None
    except (TypeError, ValueError):
        return frozenset()
    if signature is None:
        return frozenset()
    return frozenset(name for name, p in signature.parameters.items() if p.default is inspect.Parameter.empty
                     and p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY) and name in required)


def _is_reference(value: Any) -> bool:
    return isinstance(value, dict) and any(key in value for key in REFERENCE_KEYS)


def _parse_date(text: str) -> dt.datetime | None:
    try:
        parsed = dt.datetime.fromisoformat(text)
    except ValueError:
        try:
            parsed = dt.datetime.combine(dt.date.fromisoformat(text), dt.time())
        except ValueError:
            return None
    return parsed.replace(tzinfo=None)


def _check_date(text: str, process: str, parameter: str) -> str | None:
    parsed = _parse_date(text)
    if parsed is None:
        return f"{text[:40]!r} is not an ISO 8601 date or date-time"
    if not DATE_RANGE[0] <= parsed <= DATE_RANGE[1]:
        raise TemporalExtentInvalid(f"The date {text[:40]!r} in parameter '{parameter}' of process '{process}' is "
                                    f"outside the supported range {DATE_RANGE[0]:%Y-%m-%d} to "
                                    f"{DATE_RANGE[1]:%Y-%m-%d}.")
    return None


def _type_ok(value: Any, types: list[str]) -> bool:
    for name in types:
        if isinstance(value, _JSON_TYPES.get(name, (object,))) and not (isinstance(value, bool) and name in (
                "number", "integer")):
            if name != "integer" or isinstance(value, int) or (isinstance(value, float) and value.is_integer()):
                return True
    return False


def _mismatch(value: Any, schema: Any, process: str, parameter: str) -> str | None:
    """Why ``value`` does not match ``schema`` (None: it matches or cannot be judged before running)."""
    if _is_reference(value) or not isinstance(schema, (dict, list)):
        return None
    if isinstance(schema, list):
        return _any_of(value, schema, process, parameter)
    for key in ("anyOf", "oneOf"):
        if key in schema and (reason := _any_of(value, schema[key], process, parameter)):
            return reason
    for sub in schema.get("allOf", []):
        if reason := _mismatch(value, sub, process, parameter):
            return reason
    types = schema.get("type")
    if value is None and types in _SCALARS and process in _null_tolerant():  # openEO no-data passes through
        return None
    if types is not None and not _type_ok(value, [types] if isinstance(types, str) else list(types)):
        return f"expected {' or '.join([types] if isinstance(types, str) else types)}, got {show_value(value)}"
    if "enum" in schema and value not in schema["enum"]:
        return f"expected one of {show_value(schema['enum'])}, got {show_value(value)}"
    return _structured_mismatch(value, schema, process, parameter)


def _any_of(value: Any, options: list[Any], process: str, parameter: str) -> str | None:
    reasons = []
    for option in options:
        reason = _mismatch(value, option, process, parameter)
        if reason is None:
            return None
        reasons.append(reason)
    return "; or ".join(dict.fromkeys(reasons))


def _structured_mismatch(value: Any, schema: dict[str, Any], process: str, parameter: str) -> str | None:
    subtype = schema.get("subtype")
    if subtype in ("datacube", "raster-cube", "vector-cube") and isinstance(value, dict):
        return f"expected a data cube (a reference to a node's result), got {show_value(value)}"
    if subtype == "process-graph" and isinstance(value, dict) and not isinstance(value.get("process_graph"), dict):
        return f"expected a callback {{\"process_graph\": {{...}}}}, got {show_value(value)}"
    if subtype in ("date", "date-time") and isinstance(value, str):
        return _check_date(value, process, parameter)
    if isinstance(value, list):
        if len(value) < schema.get("minItems", 0) or len(value) > schema.get("maxItems", len(value)):
            return f"expected {schema.get('minItems', 0)} to {schema.get('maxItems', 'any number of')} items, " \
                   f"got {len(value)}"
        for item in value if isinstance(schema.get("items"), dict) else ():
            if reason := _mismatch(item, schema["items"], process, parameter):
                return f"item {show_value(item)}: {reason}"
    if isinstance(value, dict) and subtype != "process-graph":
        missing = [k for k in schema.get("required", []) if k not in value]
        if missing:
            return f"missing {', '.join(missing)} in {show_value(value)}"
        for key, sub in schema.get("properties", {}).items():
            if key in value and (reason := _mismatch(value[key], sub, process, parameter)):
                return f"'{key}': {reason}"
    return None


def _check_interval(value: Any, process: str, parameter: str) -> None:
    if not (isinstance(value, list) and len(value) == 2 and all(isinstance(v, str) for v in value)):
        return
    start, end = (_parse_date(v) for v in value)
    if start is not None and end is not None and start > end:
        raise TemporalExtentInvalid(f"The interval {show_value(value)} in parameter '{parameter}' of process "
                                    f"'{process}' ends before it starts.")


def _check_bbox(value: Any, process: str, parameter: str) -> None:
    if not isinstance(value, dict) or not all(isinstance(value.get(k), (int, float)) and not isinstance(
            value.get(k), bool) for k in ("west", "east", "south", "north")):
        return
    west, east, south, north = (float(value[k]) for k in ("west", "east", "south", "north"))
    if west > east or south > north:
        raise ProcessParameterInvalid(process, parameter, f"the bounding box {show_value(value)} is inverted: west must "
                                                          f"not exceed east, south must not exceed north")
    if value.get("crs") in (None, 4326, "4326", "EPSG:4326") and not (
            -180 <= west and east <= 180 and -90 <= south and north <= 90):
        raise ProcessParameterInvalid(process, parameter, f"the bounding box {show_value(value)} is in EPSG:4326 "
                                                          f"(degrees) but outside -180..180 / -90..90")


def _schema_subtypes(schema: Any) -> set[str]:
    options: list[Any] = []
    if isinstance(schema, list):
        options = schema
    elif isinstance(schema, dict):
        options = list(schema.get("anyOf") or schema.get("oneOf") or [schema])
    return {str(o["subtype"]) for o in options if isinstance(o, dict) and o.get("subtype")}


def check_argument_types(flat_graph: dict[str, Any]) -> None:
    """Refuse literal arguments that do not match their parameter's schema.

    The graph's structure is checked before (:func:`local_backend.graph_structure.check_structure`).

    Raises:
        ProcessParameterInvalid: naming the process, the parameter, what was expected and what was given.
        TemporalExtentInvalid: for a date outside :data:`DATE_RANGE` or an interval that ends before it starts.
    """
    graphs = [flat_graph]
    while graphs:
        graph = graphs.pop()
        for node in graph.values():
            process = node["process_id"]
            parameters = _parameters(process)
            for name, value in node.get("arguments", {}).items():
                if isinstance(value, dict) and isinstance(value.get("process_graph"), dict):
                    graphs.append(value["process_graph"])
                if name not in parameters:
                    continue
                reason = _mismatch(value, parameters[name], process, name)
                if reason is not None:
                    raise ProcessParameterInvalid(process, name, reason)
                subtypes = _schema_subtypes(parameters[name])
                if "temporal-interval" in subtypes:
                    _check_interval(value, process, name)
                if "bounding-box" in subtypes:
                    _check_bbox(value, process, name)


def check_required(flat_graph: dict[str, Any]) -> None:
    """Refuse a node (callbacks included) that lacks a parameter the spec requires and the code has no default for.

    Only before running (``POST /validation`` lists every missing parameter itself).

    Raises:
        ProcessParameterRequiredException: for the first such parameter.
    """
    graphs = [flat_graph]
    while graphs:
        graph = graphs.pop()
        for node in graph.values():
            arguments = node.get("arguments", {})
            graphs.extend(v["process_graph"] for v in arguments.values()
                          if isinstance(v, dict) and isinstance(v.get("process_graph"), dict))
            for name in sorted(_without_default(node["process_id"]) - set(arguments)):
                raise ProcessParameterRequiredException(process=node["process_id"], parameter=name)
