"""Wire user-defined processes into the openeo-driver app.

The store's PUT validation, the resolver, and a ``PUT /process_graphs/{id}`` view that answers 400 (not 500) for a
body that is not a JSON object.
"""

import logging
from pathlib import Path
from typing import Any

import flask
from openeo_driver.errors import OpenEOApiException, ProcessGraphInvalidException, ProcessGraphMissingException

from local_backend import graph
from local_backend.api.udp.namespaces import NamespaceCatalogue
from local_backend.api.udp.resolve import ProcessResolver, check_definition
from local_backend.api.udp.store import UdpStore

_log = logging.getLogger(__name__)

__all__ = ["PredefinedProcessExists", "install", "request_user_id", "validator"]


class PredefinedProcessExists(OpenEOApiException):
    """A user-defined process may not take the id of a predefined one (calls by id would be ambiguous)."""

    status_code = 400
    code = "PredefinedProcessExists"


def request_user_id() -> str | None:
    """The logged-in user of the current request, None without a (valid) bearer token or outside a request."""
    if not flask.has_request_context() or not flask.request.headers.get("Authorization"):
        return None
    try:
        user = flask.current_app.extensions["auth_handler"].get_user_from_bearer_token(flask.request)
    except OpenEOApiException:
        return None
    return str(user.user_id)


def _unsupported_arguments(flat_graph: dict[str, Any]) -> None:
    from openeo_driver.errors import ProcessParameterUnsupportedException

    for node in graph.all_nodes(flat_graph):
        spec = graph.load_spec(str(node.get("process_id")))
        if spec is None:
            continue
        known = {p["name"] for p in spec.get("parameters", [])}
        for name in node.get("arguments") or {}:
            if name not in known:
                raise ProcessParameterUnsupportedException(process=str(node["process_id"]), parameter=name)


def validator(resolver: ProcessResolver) -> Any:
    """The check run on ``PUT /process_graphs/{id}`` before a definition is stored.

    Refused: a malformed definition (:func:`~local_backend.api.udp.resolve.check_definition`), the id of a predefined
    process, a call to itself (directly or through other user processes), unknown processes, arguments a predefined
    process does not have. Missing required arguments are reported when the process is called (the conformance
    suite stores ``absolute()`` without ``x``).
    """
    def validate(user_id: str, spec: dict[str, Any]) -> None:
        process_id = str(spec.get("id"))
        check_definition(spec, repr(process_id))
        if process_id in graph.implementations():
            raise PredefinedProcessExists(message=f"{process_id!r} is a predefined process of this backend: "
                                                  f"choose another id for the user-defined process.")
        with_new = ProcessResolver(lambda user, pid: spec if pid == process_id else resolver.user_process(user, pid),
                                   resolver.catalogue)  # calls to the new version itself, to find cycles through it
        expanded = with_new.expand(spec["process_graph"], user_id, (f"user:{process_id}",))
        graph.check_processes(expanded, set(graph.implementations()))
        _unsupported_arguments(expanded)
        for parameter in spec.get("parameters") or []:
            if "schema" in parameter and not isinstance(parameter["schema"], (dict, list)):
                raise ProcessGraphInvalidException(message=f"The schema of parameter {parameter['name']!r} must be "
                                                           f"an object or a list of objects.")

    return validate


def user_processes(state_dir: Path, catalogue_dir: Path | None, runtime: Any) -> UdpStore:
    """The store of user-defined processes under ``state_dir``, with its PUT validation.

    Sets ``runtime.resolver`` to resolve calls to them (and to namespaces, with ``catalogue_dir`` as the offline
    catalogue).
    """
    store = UdpStore(state_dir)
    catalogue = NamespaceCatalogue(catalogue_dir)
    if catalogue_dir is not None:
        _log.info("UDP catalogue %s: %s", catalogue_dir, catalogue.entries())
    resolver = ProcessResolver(lambda user_id, process_id: store.spec(user_id, process_id), catalogue)
    store.validate = validator(resolver)
    runtime.resolver = resolver
    return store


def _no_default_job_options(process_graph: Any, processing_mode: str = "batch_job") -> None:
    """This backend reads no default job options from process definitions."""
    return None


def install(app: flask.Flask, store: UdpStore) -> None:
    """Replace openeo-driver's ``PUT /process_graphs/{id}`` view by one that checks the body is a JSON object.

    Also stops openeo-driver from fetching every ``namespace`` URL of a submitted graph itself (to read default job
    options, which this backend does not use): that fetch ignored ``--udp-catalogue`` and failed offline before the
    graph reached :class:`~local_backend.api.udp.resolve.ProcessResolver`.
    """
    import openeo_driver.views

    openeo_driver.views.extract_default_job_options_from_process_graph = _no_default_job_options
    auth = app.extensions["auth_handler"]
    from openeo_driver.users import User

    @auth.requires_bearer_auth
    def udp_store(process_graph_id: str, user: User) -> flask.Response:
        import re

        if not re.match(r"^\w+$", process_graph_id):
            raise OpenEOApiException(code="InvalidId", status_code=400,
                                     message=f"Invalid process identifier {process_graph_id!r}: it must match ^\\w+$ "
                                             f"(letters, digits, underscore).")
        spec = flask.request.get_json(silent=True)
        if not isinstance(spec, dict):
            raise OpenEOApiException(code="BadRequest", status_code=400,
                                     message="The body of PUT /process_graphs/{id} must be a JSON object (the process "
                                             "with 'process_graph' and 'parameters').")
        if "process_graph" not in spec:
            raise ProcessGraphMissingException()
        store.save(user_id=user.user_id, process_id=process_graph_id, spec=spec)
        return flask.make_response("", 200)

    for endpoint in ("openeo.udp_store", "openeo_old.udp_store"):
        if endpoint in app.view_functions:
            app.view_functions[endpoint] = udp_store
