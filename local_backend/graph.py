"""Process graphs: the execution registry (processes-dask + this backend), UDF-callback rewriting, id checks.

Execution uses openeo-pg-parser-networkx (``OpenEOProcessGraph.to_callable``) over a registry holding every
process openeo-processes-dask implements, with this backend's implementations of ``load_collection``,
``sar_backscatter``, ``save_result``, ``run_udf`` and ``apply_neighborhood`` on top, and the ``s1ndvi_udf_*``
processes that UDF callbacks are rewritten into. The math, comparison, logic, array and statistics processes of
:mod:`local_backend.processes.conformance` replace processes-dask's for JSON values (numbers, booleans, ``null``,
plain arrays) and hand arrays and cubes on to them.
"""

import copy
import functools
import json
import logging
from pathlib import Path
from typing import Any, Callable

from local_backend.errors import ProcessUnsupported
from local_backend.graph_structure import check_structure

_log = logging.getLogger(__name__)

UDF_PARENTS = {
    "apply_dimension": ("process", "s1ndvi_udf_apply_dimension"),
    "reduce_dimension": ("reducer", "s1ndvi_udf_reduce_dimension"),
    "apply_neighborhood": ("process", "s1ndvi_udf_apply_neighborhood"),
}
"""Parent process → (callback argument, process the node is rewritten into when the callback is a lone run_udf)."""
HIDDEN = {target for _, target in UDF_PARENTS.values()}
"""Internal process ids (not listed in ``GET /processes``, refused when sent by a client)."""


def _lone_run_udf(callback: Any) -> dict[str, Any] | None:
    """The ``run_udf`` arguments when ``callback`` is exactly ``run_udf(data=<the callback's data>, ...)``."""
    if not isinstance(callback, dict) or not isinstance(callback.get("process_graph"), dict):
        return None
    nodes = list(callback["process_graph"].values())
    if len(nodes) != 1 or nodes[0].get("process_id") != "run_udf" or nodes[0].get("namespace") not in (None,
                                                                                                       "backend"):
        return None
    args = nodes[0].get("arguments", {})
    literal = all(isinstance(args.get(k), str) for k in ("udf", "runtime"))
    if args.get("data") != {"from_parameter": "data"} or not literal:
        return None
    return dict(args)


def _rewrite_node(node: dict[str, Any]) -> dict[str, Any]:
    parent = node.get("process_id")
    if parent not in UDF_PARENTS or node.get("namespace") not in (None, "backend"):
        return node
    callback_arg, target = UDF_PARENTS[parent]
    args = dict(node.get("arguments", {}))
    udf_args = _lone_run_udf(args.get(callback_arg))
    if udf_args is None:
        return node
    del args[callback_arg]
    udf_context = udf_args.get("context")
    if udf_context == {"from_parameter": "context"}:
        udf_context = args.get("context")
    args.update(udf=udf_args["udf"], runtime=udf_args["runtime"], udf_context=udf_context)
    if udf_args.get("version") is not None:
        args["version"] = udf_args["version"]
    _log.debug("Rewrote %s with a run_udf callback into %s", parent, target)
    return {**node, "process_id": target, "arguments": args}


def rewrite_udf_callbacks(flat_graph: dict[str, Any]) -> dict[str, Any]:
    """Copy of a flat process graph with every lone-``run_udf`` callback turned into an ``s1ndvi_udf_*`` node."""
    out = {}
    for key, node in copy.deepcopy(flat_graph).items():
        node = _rewrite_node(node)
        node["arguments"] = {k: _rewrite_value(v) for k, v in node.get("arguments", {}).items()}
        out[key] = node
    return out


def _rewrite_value(value: Any) -> Any:
    if isinstance(value, dict) and isinstance(value.get("process_graph"), dict):
        return {**value, "process_graph": rewrite_udf_callbacks(value["process_graph"])}
    return value


def prepare(flat_graph: dict[str, Any]) -> dict[str, Any]:
    """The flat graph as it is parsed: literal arguments of JSON-value processes wrapped, UDF callbacks rewritten."""
    from local_backend.processes import conformance
    from local_backend.processes.literals import wrap_literals

    return rewrite_udf_callbacks(wrap_literals(flat_graph, conformance.implementations()))


def all_nodes(flat_graph: dict[str, Any]) -> list[dict[str, Any]]:
    """All nodes of a flat graph including those of callbacks (recursively)."""
    found = []
    for node in flat_graph.values():
        if not isinstance(node, dict):
            continue
        found.append(node)
        for value in node.get("arguments", {}).values():
            if isinstance(value, dict) and isinstance(value.get("process_graph"), dict):
                found.extend(all_nodes(value["process_graph"]))
    return found


def check_processes(flat_graph: dict[str, Any], available: set[str]) -> None:
    """Raise :class:`ProcessUnsupported` for the first node whose process this backend does not have.

    The graph's structure is checked first (:func:`~local_backend.graph_structure.check_structure`).
    """
    check_structure(flat_graph)
    for node in all_nodes(flat_graph):
        process_id, namespace = node.get("process_id"), node.get("namespace")
        if namespace not in (None, "backend", "predefined"):
            raise ProcessUnsupported(str(process_id), str(namespace))
        if process_id not in available or process_id in HIDDEN:
            raise ProcessUnsupported(str(process_id))


def _own_implementations() -> dict[str, Callable[..., Any]]:
    from local_backend.processes import conformance, load, save, temporal, udf

    return {
        **conformance.implementations(),
        "aggregate_temporal_period": temporal.aggregate_temporal_period,
        "load_collection": load.load_collection,
        "sar_backscatter": load.sar_backscatter,
        "save_result": save.save_result,
        "run_udf": udf.run_udf,
        "apply_neighborhood": udf.apply_neighborhood,
        "s1ndvi_udf_apply_dimension": udf.udf_apply_dimension,
        "s1ndvi_udf_reduce_dimension": udf.udf_reduce_dimension,
        "s1ndvi_udf_apply_neighborhood": udf.udf_apply_neighborhood,
    }


def _spec_dirs() -> list[Path]:
    import openeo_driver
    import openeo_processes_dask.specs

    return [Path(openeo_processes_dask.specs.__file__).parent / "openeo-processes",
            Path(openeo_driver.__file__).parent / "specs" / "openeo-processes" / "2.x",
            Path(openeo_driver.__file__).parent / "specs" / "openeo-processes" / "experimental"]


def load_spec(process_id: str) -> dict[str, Any] | None:
    """The openEO spec of a process from processes-dask's or openeo-driver's spec files (None if neither has it)."""
    for folder in _spec_dirs():
        path = folder / f"{process_id}.json"
        if path.is_file():
            return dict(json.loads(path.read_text()))
    return None


@functools.lru_cache(maxsize=1)
def implementations() -> dict[str, Callable[..., Any]]:
    """Process id → implementation: processes-dask's, then this backend's (which take precedence)."""
    from openeo_processes_dask.process_implementations.core import standard_processes

    found: dict[str, Callable[..., Any]] = {f.__name__.strip("_"): f for f in standard_processes}
    found.update(_own_implementations())
    return found


def execution_registry() -> Any:
    """A fresh openeo-pg-parser-networkx ``ProcessRegistry`` (one per evaluation: it is mutated while walking)."""
    from openeo_pg_parser_networkx import ProcessRegistry
    from openeo_pg_parser_networkx.process_registry import Process
    from openeo_processes_dask.process_implementations.core import process

    from local_backend.processes.literals import unwrap_literals

    registry = ProcessRegistry(wrap_funcs=[process, unwrap_literals])
    for name, func in implementations().items():
        registry[("predefined", name)] = Process(spec=load_spec(name) or {}, implementation=func)
    return registry


@functools.lru_cache(maxsize=1)
def listing_registry() -> Any:
    """An openeo-driver ``ProcessRegistry`` with the spec of every public process (for ``GET /processes``)."""
    from openeo_driver.processes import ProcessRegistry

    registry = ProcessRegistry()
    for name in sorted(implementations()):
        spec = None if name in HIDDEN else load_spec(name)
        if spec is not None:
            registry.add_spec(spec)
        elif name not in HIDDEN:
            _log.debug("No openEO spec for implemented process %s: not listed", name)
    return registry
