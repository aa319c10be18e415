"""Expand calls to user-defined processes into the flat process graph that runs.

A node whose process is a user-defined process (the caller's own, ``namespace`` null or ``"user"``; or one found
through a URL/file ``namespace``, see :mod:`local_backend.api.udp.namespaces`) is replaced by the nodes of the process's
graph: its result node takes the calling node's key (so references to the call keep working), the other nodes get
``<key>__<node>`` keys, and each ``{"from_parameter": name}`` of the definition becomes the argument given for
``name`` (or the parameter's default). Inside a callback of the definition a parameter of the callback itself (``x``,
``data``, ``context`` ... as the parent process's spec declares them) shadows a process parameter of the same name.

Refused with openEO errors: an argument the process does not declare (``ProcessParameterUnsupported``), a required
parameter without argument (``ProcessParameterRequired``), a literal argument that does not match the parameter's
schema (``ProcessParameterInvalid``), a process that calls itself directly or through others
(``ProcessGraphInvalid``), and a definition that is not a valid process (:func:`check_definition`).
"""

import copy
import logging
import re
from typing import Any, Callable

from openeo_driver.errors import (
    ProcessGraphInvalidException,
    ProcessParameterInvalidException,
    ProcessParameterRequiredException,
    ProcessParameterUnsupportedException,
)

from local_backend import graph
from local_backend.api.udp.namespaces import NamespaceCatalogue
from local_backend.errors import ProcessUnsupported
from local_backend.graph_structure import check_structure

_log = logging.getLogger(__name__)

__all__ = ["MAX_DEPTH", "ProcessResolver", "check_definition"]

MAX_DEPTH = 16
"""Deepest nesting of user-defined process calls."""
_ID = re.compile(r"^\w+$")
_PREDEFINED_NAMESPACES = ("backend", "predefined")

Lookup = Callable[[str], dict[str, Any] | None]


def _is_reference(value: Any, key: str) -> bool:
    return isinstance(value, dict) and set(value) == {key}


def _has_references(value: Any) -> bool:
    if isinstance(value, dict):
        if "from_node" in value or "from_parameter" in value or "process_graph" in value:
            return True
        return any(_has_references(v) for v in value.values())
    if isinstance(value, list):
        return any(_has_references(v) for v in value)
    return False


def _callback_parameters(process_id: str, argument: str) -> set[str]:
    """Names of the parameters a callback argument of a predefined process receives (from its spec)."""
    spec = graph.load_spec(process_id) or {}
    for parameter in spec.get("parameters", []):
        if parameter.get("name") != argument:
            continue
        schemas = parameter.get("schema")
        schemas = schemas if isinstance(schemas, list) else [schemas]
        return {p["name"] for s in schemas if isinstance(s, dict) for p in s.get("parameters") or []}
    return set()


def _parameter_refs(flat_graph: dict[str, Any], shadowed: frozenset[str] = frozenset()) -> set[str]:
    """``from_parameter`` names a flat graph uses that are not parameters of an enclosing callback."""
    found: set[str] = set()

    def walk(value: Any, hidden: frozenset[str]) -> None:
        if _is_reference(value, "from_parameter") and value["from_parameter"] not in hidden:
            found.add(str(value["from_parameter"]))
        elif isinstance(value, dict):
            for v in value.values():
                walk(v, hidden)
        elif isinstance(value, list):
            for v in value:
                walk(v, hidden)

    for node in flat_graph.values():
        for name, value in (node.get("arguments") or {}).items():
            if isinstance(value, dict) and isinstance(value.get("process_graph"), dict):
                inner = shadowed | _callback_parameters(str(node.get("process_id")), name)
                found |= _parameter_refs(value["process_graph"], frozenset(inner))
            else:
                walk(value, shadowed)
    return found


def check_definition(definition: Any, where: str) -> None:
    r"""Raise ``ProcessGraphInvalid`` unless ``definition`` is a usable openEO process.

    Checked: an object with an ``id`` matching ``^\w+$``; ``parameters`` a list of objects with distinct ``name``
    s; ``process_graph`` a non-empty object of nodes each with a ``process_id`` and an ``arguments`` object, exactly
    one ``result`` node; every ``from_node`` names a node; every ``from_parameter`` outside callbacks names a
    declared parameter.
    """
    def invalid(reason: str) -> ProcessGraphInvalidException:
        return ProcessGraphInvalidException(message=f"Invalid user-defined process {where}: {reason}")

    if not isinstance(definition, dict):
        raise invalid("the definition must be a JSON object")
    if not isinstance(definition.get("id"), str) or not _ID.match(definition["id"]):
        raise invalid(f"'id' must be a string matching ^\\w+$ (got {definition.get('id')!r})")
    parameters = definition.get("parameters") or []
    if not isinstance(parameters, list) or not all(isinstance(p, dict) and isinstance(p.get("name"), str)
                                                   for p in parameters):
        raise invalid("'parameters' must be a list of objects with a 'name'")
    names = [p["name"] for p in parameters]
    if len(set(names)) != len(names):
        raise invalid(f"parameter names repeat: {names}")
    flat = definition.get("process_graph")
    if not isinstance(flat, dict) or not flat:
        raise invalid("'process_graph' must be a non-empty object of nodes")
    for key, node in flat.items():
        if not isinstance(node, dict) or not isinstance(node.get("process_id"), str):
            raise invalid(f"node {key!r} must be an object with a 'process_id' string")
        if not isinstance(node.get("arguments", {}), dict):
            raise invalid(f"the 'arguments' of node {key!r} must be an object")
    results = [k for k, n in flat.items() if n.get("result")]
    if len(results) != 1:
        raise invalid(f"the process graph needs exactly one node with 'result': true (found {results})")
    missing_nodes = sorted({str(v["from_node"]) for n in flat.values() for v in _walk_values(n.get("arguments"))
                            if _is_reference(v, "from_node") and v["from_node"] not in flat})
    if missing_nodes:
        raise invalid(f"'from_node' references to missing nodes {missing_nodes}")
    undeclared = sorted(_parameter_refs(flat) - set(names))
    if undeclared:
        raise invalid(f"the graph uses undeclared parameters {undeclared} (declared: {names})")


def _walk_values(value: Any) -> list[Any]:
    """Every value nested in ``value`` outside callbacks (callbacks have their own node namespace)."""
    out = [value]
    if isinstance(value, dict) and not isinstance(value.get("process_graph"), dict):
        for v in value.values():
            out += _walk_values(v)
    elif isinstance(value, list):
        for v in value:
            out += _walk_values(v)
    return out


def _check_schema(process_id: str, parameter: dict[str, Any], value: Any) -> None:
    """Raise ``ProcessParameterInvalid`` when a literal ``value`` matches none of the parameter's schemas."""
    import jsonschema

    schema = parameter.get("schema")
    if schema is None or _has_references(value):
        return
    schemas = schema if isinstance(schema, list) else [schema]
    errors = []
    for candidate in schemas:
        try:
            jsonschema.validate(value, candidate)
            return
        except jsonschema.ValidationError as exc:
            errors.append(exc.message)
        except jsonschema.SchemaError:
            return  # a schema jsonschema cannot read is not the caller's fault
    raise ProcessParameterInvalidException(parameter=parameter["name"], process=process_id,
                                           reason=f"{value!r} does not match its schema ({'; '.join(errors)})")


def _arguments(process_id: str, definition: dict[str, Any], given: dict[str, Any]) -> dict[str, Any]:
    """Parameter name → value for one call: given arguments checked, defaults filled in."""
    parameters = {p["name"]: p for p in definition.get("parameters") or []}
    for name in given:
        if name not in parameters:
            raise ProcessParameterUnsupportedException(process=process_id, parameter=name)
    values = {}
    for name, parameter in parameters.items():
        if name in given:
            _check_schema(process_id, parameter, given[name])
            values[name] = given[name]
        elif "default" in parameter:
            values[name] = copy.deepcopy(parameter["default"])
        elif parameter.get("optional"):
            values[name] = None
        else:
            raise ProcessParameterRequiredException(process=process_id, parameter=name)
    return values


def _substitute(value: Any, values: dict[str, Any], rename: dict[str, str] | None, hidden: frozenset[str],
                parent: str = "", argument: str = "") -> Any:
    """``value`` with parameter references replaced by ``values`` and (top level only) node references renamed."""
    if _is_reference(value, "from_parameter"):
        name = value["from_parameter"]
        return copy.deepcopy(values[name]) if name in values and name not in hidden else value
    if rename is not None and _is_reference(value, "from_node"):
        return {"from_node": rename[value["from_node"]]}
    if isinstance(value, dict) and isinstance(value.get("process_graph"), dict):
        inner = hidden | _callback_parameters(parent, argument)
        nodes = {k: {**n, "arguments": {a: _substitute(v, values, None, frozenset(inner), n.get("process_id"), a)
                                        for a, v in (n.get("arguments") or {}).items()}}
                 for k, n in value["process_graph"].items()}
        return {**value, "process_graph": nodes}
    if isinstance(value, dict):
        return {k: _substitute(v, values, rename, hidden, parent, argument) for k, v in value.items()}
    if isinstance(value, list):
        return [_substitute(v, values, rename, hidden, parent, argument) for v in value]
    return value


def _inline(key: str, node: dict[str, Any], definition: dict[str, Any], taken: set[str]) -> dict[str, Any]:
    """The nodes replacing the call ``key`` → ``node`` of the process ``definition``."""
    process_id = str(definition["id"])
    values = _arguments(process_id, definition, node.get("arguments") or {})
    body = definition["process_graph"]
    result = next(k for k, n in body.items() if n.get("result"))
    rename = {}
    for inner in body:
        if inner == result:
            rename[inner] = key
            continue
        name, n = f"{key}__{inner}", 1
        while name in taken:
            name, n = f"{key}__{inner}_{n}", n + 1
        rename[inner] = name
        taken.add(name)
    out = {}
    for inner, inner_node in body.items():
        new = {k: v for k, v in inner_node.items() if k != "result"}
        new["arguments"] = {a: _substitute(v, values, rename, frozenset(), inner_node["process_id"], a)
                            for a, v in (inner_node.get("arguments") or {}).items()}
        if inner == result and node.get("result"):
            new["result"] = True
        out[rename[inner]] = new
    return out


class ProcessResolver:
    """Looks up user-defined processes (the user's store, namespaces) and expands calls to them."""

    def __init__(self, user_process: Callable[[str, str], dict[str, Any] | None],
                 catalogue: NamespaceCatalogue | None = None) -> None:
        self.user_process = user_process
        self.catalogue = catalogue or NamespaceCatalogue(None)

    def definition(self, node: dict[str, Any], user_id: str | None) -> tuple[str, dict[str, Any]] | None:
        """``(identity, definition)`` of the user-defined process a node calls, None for a predefined process.

        Raises:
            ProcessUnsupported: a user process that does not exist.
            ProcessNamespaceInvalid: a namespace that cannot be resolved.
            ProcessGraphInvalid: a definition that is not a valid process.
        """
        process_id, namespace = str(node.get("process_id")), node.get("namespace")
        if namespace in _PREDEFINED_NAMESPACES:
            return None
        if namespace is None or namespace == "user":
            if namespace is None and process_id in graph.implementations():
                return None
            found = self.user_process(user_id, process_id) if user_id is not None else None
            if found is None:
                raise ProcessUnsupported(process_id, "user" if namespace == "user" else "backend or user")
            identity, where = f"user:{process_id}", f"{process_id!r} of user {user_id!r}"
        else:
            found = self.catalogue.resolve(process_id, str(namespace))
            identity, where = f"{namespace}#{process_id}", f"{process_id!r} from {namespace}"
        check_definition(found, where)
        return identity, found

    def expand(self, flat_graph: dict[str, Any], user_id: str | None, _stack: tuple[str, ...] = ()) -> dict[str, Any]:
        """Copy of ``flat_graph`` (callbacks included) with every user-defined process call inlined.

        The graph's structure is checked first (:func:`local_backend.graph_structure.check_structure`), so a malformed
        node is refused as ``ProcessGraphInvalid`` before any process id is looked up.
        """
        if not _stack:
            check_structure(flat_graph)
        out: dict[str, Any] = {}
        taken = set(flat_graph)
        for key, node in flat_graph.items():
            if not isinstance(node, dict):
                out[key] = node
                continue
            arguments = {name: self._expand_value(value, user_id, _stack)
                         for name, value in (node.get("arguments") or {}).items()} \
                if isinstance(node.get("arguments"), dict) else node.get("arguments")
            node = {**node, "arguments": arguments} if "arguments" in node else node
            found = self.definition(node, user_id)
            if found is None:
                out[key] = node
                continue
            identity, definition = found
            if identity in _stack:
                chain = " → ".join([*_stack, identity])
                raise ProcessGraphInvalidException(message=f"Recursive user-defined process: {chain}; a process "
                                                           f"may not call itself, directly or through others.")
            if len(_stack) >= MAX_DEPTH:
                raise ProcessGraphInvalidException(message=f"User-defined processes nest deeper than {MAX_DEPTH} "
                                                           f"levels: {' → '.join(_stack)}.")
            _log.debug("Expanding user-defined process %s at node %s", identity, key)
            inlined = _inline(key, node, definition, taken)
            out.update(self.expand(inlined, user_id, (*_stack, identity)))
        return out

    def _expand_value(self, value: Any, user_id: str | None, stack: tuple[str, ...]) -> Any:
        if isinstance(value, dict) and isinstance(value.get("process_graph"), dict):
            return {**value, "process_graph": self.expand(value["process_graph"], user_id, stack)}
        if isinstance(value, dict):
            return {k: self._expand_value(v, user_id, stack) for k, v in value.items()}
        if isinstance(value, list):
            return [self._expand_value(v, user_id, stack) for v in value]
        return value
