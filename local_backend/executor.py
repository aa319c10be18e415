"""Evaluate a process graph: openeo-pg-parser-networkx over the registry of :mod:`local_backend.graph`.

:func:`evaluate_graph` is shared by synchronous ``POST /result`` and batch jobs; :class:`LocalProcessing` plugs it
into openeo-driver and turns the written file into the HTTP response.
"""

import functools
import hashlib
import io
import json
import logging
import shutil
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import flask
import numpy as np
import xarray as xr
from openeo_driver.backend import Processing
from openeo_driver.errors import OpenEOApiException, ProcessGraphInvalidException
from openeo_driver.utils import EvalEnv

from local_backend import graph
from local_backend.api.input_checks import check_graph_arguments
from local_backend.callback_params import resolve_nested_parameters
from local_backend.context import Execution, activate, deactivate
from local_backend.cubes.collections import LocalCollectionCatalog
from local_backend.guards import guard_process
from local_backend.limits import Guard, Limits, socket_probe
from local_backend.processes.argument_schemas import check_required
from local_backend.processes.errors_map import input_errors
from local_backend.processes.save import MEDIA_TYPES, save_result

_log = logging.getLogger(__name__)


@dataclass
class Runtime:
    """What every evaluation of this server shares."""

    catalog: LocalCollectionCatalog
    """Collections served."""
    work_dir: Path
    """Scratch folder for synchronous results."""
    client: Any = None
    """``distributed.Client`` for UDF tiles (None: run them in the request thread)."""
    max_sync_bytes: int = 512 * 2**20
    """Largest cube a synchronous request may load or write."""
    tile_size: int = 128
    """Default spatial tile (pixels) for UDF work."""
    dask: Any = None
    """The :class:`~local_backend.jobs.cluster.DaskCluster` behind ``client`` (None: no cluster)."""
    limits: Limits = field(default_factory=Limits)
    """Size and time limits (see :mod:`local_backend.limits`)."""
    resolver: Any = None
    """:class:`~local_backend.api.udp.resolve.ProcessResolver` for user-defined processes (None: none)."""

    def execution(self, output_dir: Path, sync: bool, log: logging.Logger = _log, guard: Guard | None = None,
                  job_id: str | None = None, tile_dir: Path | None = None,
                  progress: Callable[[float], None] | None = None, user_id: str | None = None) -> Execution:
        """A fresh :class:`Execution` writing into ``output_dir``.

        ``guard`` defaults to one from :attr:`limits`; tiled UDF steps keep their tiles in ``tile_dir`` (see
        :class:`Execution`) and report the percentage of tiles done to ``progress``; calls to user-defined
        processes are resolved for ``user_id``.
        """
        expand = None if self.resolver is None else functools.partial(self.resolver.expand, user_id=user_id)
        return Execution(catalog=self.catalog, output_dir=output_dir, sync=sync, max_sync_bytes=self.max_sync_bytes,
                         client=self.client, tile_size=self.tile_size, log=log,
                         guard=guard or self.limits.guard(sync), job_id=job_id, dask=self.dask, tile_dir=tile_dir,
                         progress=progress, expand=expand)


def _api_error(exc: Exception) -> OpenEOApiException:
    """Translate an exception raised while evaluating into an openEO API error."""
    from openeo_processes_dask.process_implementations.exceptions import OpenEOException
    from pydantic import ValidationError

    if isinstance(exc, OpenEOApiException):
        return exc
    if isinstance(exc, OpenEOException):
        return OpenEOApiException(message=str(exc), code=type(exc).__name__, status_code=400)
    if isinstance(exc, ValidationError):
        return ProcessGraphInvalidException(message=f"Invalid process graph: {exc}")
    _log.exception("Unexpected error while evaluating a process graph")
    return OpenEOApiException(message=f"Evaluation failed: {type(exc).__name__}: {exc}", code="Internal",
                              status_code=500)


def _parse(flat_graph: dict[str, Any]) -> Any:
    from openeo_pg_parser_networkx import OpenEOProcessGraph

    graph.check_processes(flat_graph, set(graph.implementations()))
    check_graph_arguments(flat_graph)
    check_required(flat_graph)
    try:
        return OpenEOProcessGraph({"process_graph": graph.prepare(flat_graph)})
    except Exception as exc:  # noqa: BLE001 - the parser raises many types for a malformed graph
        raise ProcessGraphInvalidException(message=f"Invalid process graph: {type(exc).__name__}: {exc}") from exc


def _expanded(flat_graph: Any, expand: Callable[[dict[str, Any]], dict[str, Any]] | None) -> dict[str, Any]:
    """``flat_graph`` checked to be a non-empty object, with user-defined process calls inlined by ``expand``."""
    if not isinstance(flat_graph, dict) or not flat_graph:
        raise ProcessGraphInvalidException(message="The process graph must be a non-empty object of nodes.")
    if expand is None:
        return flat_graph
    try:
        return expand(flat_graph)
    except Exception as exc:  # noqa: BLE001 - translated for the API
        raise _api_error(exc) from exc


def check_graph(flat_graph: Any, expand: Callable[[dict[str, Any]], dict[str, Any]] | None = None) -> None:
    """Everything ``POST /result`` checks before it runs a graph (``POST /jobs`` checks the same at creation).

    ``expand`` inlines calls to user-defined processes first (as :func:`evaluate_graph` does).

    Raises:
        OpenEOApiException: (4xx) for a malformed graph, an unknown process or an invalid argument.
    """
    _parse(_expanded(flat_graph, expand))


def evaluate_graph(flat_graph: dict[str, Any], execution: Execution) -> Any:
    """Run a flat process graph; the result is written by ``save_result`` (implicitly as netCDF when absent).

    Returns:
        The graph's result value (``True`` after ``save_result``); files are listed in ``execution.outputs``.

    Raises:
        OpenEOApiException: for every failure, with the openEO code and HTTP status to report.
    """
    flat_graph = _expanded(flat_graph, execution.expand)
    execution.graph_digest = hashlib.sha256(json.dumps(flat_graph, sort_keys=True, default=str).encode()).hexdigest()
    token = activate(execution)
    try:
        registry = graph.execution_registry()
        registry.add_wrap_func(resolve_nested_parameters)
        registry.add_wrap_func(guard_process)
        registry.add_wrap_func(input_errors)
        result = _parse(flat_graph).to_callable(process_registry=registry)()
        if not execution.outputs and isinstance(result, xr.DataArray):
            save_result(result, format="netCDF")
        return result
    except Exception as exc:  # noqa: BLE001 - translated for the API, the server keeps serving
        raise _api_error(exc) from exc
    finally:
        deactivate(token)


def _jsonable(value: Any) -> Any:
    if isinstance(value, (np.generic, np.ndarray)):
        return value.tolist()
    if isinstance(value, xr.DataArray):
        return value.values.tolist()
    return value


class LocalProcessing(Processing):
    """openeo-driver ``Processing`` service: synchronous evaluation and the process listing."""

    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime

    def get_process_registry(self, api_version: Any) -> Any:
        """Specs of every public process (``GET /processes``)."""
        return graph.listing_registry()

    def validate(self, process_graph: dict, env: EvalEnv | None = None) -> list[dict]:
        """Errors of a graph without running it (``POST /validation``)."""
        from local_backend.api.udp.service import request_user_id
        from local_backend.api.validation import validate_process_graph

        expand = None if self.runtime.resolver is None else functools.partial(
            self.runtime.resolver.expand, user_id=request_user_id())
        return validate_process_graph(process_graph, self.runtime.catalog, expand=expand)

    def evaluate(self, process_graph: dict, env: EvalEnv | None = None) -> flask.Response:
        """Run a graph synchronously and answer with the file it wrote (or its JSON value)."""
        out_dir = self.runtime.work_dir / f"sync-{uuid.uuid4().hex}"
        probe = socket_probe(flask.request.environ.get("werkzeug.socket")) if flask.has_request_context() else None
        user = env.get("user") if env is not None else None
        execution = self.runtime.execution(out_dir, sync=True, guard=self.runtime.limits.guard(True, probe),
                                           user_id=getattr(user, "user_id", None))
        try:
            result = evaluate_graph(dict(process_graph), execution)
            if not execution.outputs:
                return flask.Response(json.dumps(_jsonable(result)), mimetype="application/json")
            if len(execution.outputs) > 1:
                names = [p.name for p in execution.outputs]
                raise OpenEOApiException(message=f"The graph wrote {len(names)} files {names}; a synchronous "
                                         f"request returns one: use a batch job.", code="ProcessGraphInvalid",
                                         status_code=400)
            path = execution.outputs[0]
            media = MEDIA_TYPES["netCDF" if path.suffix == ".nc" else "GTiff"]
            return flask.send_file(io.BytesIO(path.read_bytes()), mimetype=media, download_name=path.name)
        finally:
            shutil.rmtree(out_dir, ignore_errors=True)
