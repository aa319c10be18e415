"""Keep literal JSON arguments of the JSON-value processes as the client sent them.

openeo-pg-parser-networkx validates every node argument against a pydantic union tried left to right
(``TemporalInterval``, ``TemporalIntervals``, ``Date``, ``DateTime``, ..., ``list``, ``dict``, ``str``): ``[]`` becomes
an empty ``TemporalIntervals`` (so ``max(data=[])`` fails with a 500), ``"2018-01-01T00:00:00Z"`` a ``DateTime``
and ``["2018-01-01", "2018-02-01"]`` a ``TemporalInterval``. Before parsing, :func:`wrap_literals` puts each
reference-free argument of the processes in ``process_ids`` into a one-key object (the parser keeps objects as they
are); :func:`unwrap_literals`, a registry wrapper, takes it out again before the implementation runs. Arguments with
``from_node``/``from_parameter`` references or callbacks are left to the parser.
"""

import copy
import functools
from typing import Any, Callable, Iterable

__all__ = ["LITERAL_KEY", "unwrap_literals", "wrap_literals"]

LITERAL_KEY = "s1ndvi:literal"
"""The key of the object a literal argument travels in through the parser."""

_REFERENCE_KEYS = ("from_node", "from_parameter", "process_graph")


def _is_literal(value: Any) -> bool:
    """Whether ``value`` holds no reference and no callback (at any depth)."""
    if isinstance(value, dict):
        return not any(k in value for k in _REFERENCE_KEYS) and all(_is_literal(v) for v in value.values())
    if isinstance(value, list):
        return all(_is_literal(v) for v in value)
    return True


def _wrap_value(value: Any, process_ids: frozenset[str]) -> Any:
    if isinstance(value, dict) and isinstance(value.get("process_graph"), dict):
        return {**value, "process_graph": wrap_literals(value["process_graph"], process_ids)}
    return value


def wrap_literals(flat_graph: dict[str, Any], process_ids: Iterable[str]) -> dict[str, Any]:
    """Copy of a flat process graph (callbacks included) with the literal arguments of ``process_ids`` wrapped."""
    ids = frozenset(process_ids)
    out = {}
    for key, node in copy.deepcopy(flat_graph).items():
        if isinstance(node, dict) and isinstance(node.get("arguments"), dict):
            wrap = node.get("process_id") in ids and node.get("namespace") in (None, "backend", "predefined")
            node["arguments"] = {
                name: {LITERAL_KEY: value} if wrap and _is_literal(value) else _wrap_value(value, ids)
                for name, value in node["arguments"].items()}
        out[key] = node
    return out


def _unwrap(value: Any) -> Any:
    if isinstance(value, dict) and len(value) == 1 and LITERAL_KEY in value:
        return value[LITERAL_KEY]
    return value


def unwrap_literals(func: Callable[..., Any]) -> Callable[..., Any]:
    """Registry wrapper: pass wrapped literal arguments to ``func`` as the values they wrap."""

    @functools.wraps(func)
    def call(*args: Any, **kwargs: Any) -> Any:
        return func(*(_unwrap(a) for a in args), **{k: _unwrap(v) for k, v in kwargs.items()})

    return call
