"""Where openeo-driver's Flask app answers differently from the openEO API 1.2, found with openeo-test-suite.

:func:`conform_app` registers, on the app :func:`local_backend.api.server.build_backend` builds:

* ``GET /jobs/{id}/results`` of a job in status ``error``: 424 with the job's last error as a log entry (openeo-driver
  answers 400 ``JobNotFinished`` for every unfinished status).
* A method a path does not allow (``TRACE /``): 405 ``MethodNotAllowed`` with an ``Allow`` header (openeo-driver:
  code ``Internal``, no header).

:class:`StacCollectionsListing` keeps ``"type": "Collection"`` in ``GET /collections`` (openeo-driver's listing
keeps a fixed set of keys that lacks it, so the entries are not valid STAC).
"""

import logging
from typing import Any, Callable

import flask
from openeo_driver.backend import CollectionsListing
from openeo_driver.errors import JobNotFinishedException, OpenEOApiException
from werkzeug.exceptions import MethodNotAllowed as WerkzeugMethodNotAllowed

from local_backend.errors import JobFailed, MethodNotAllowed
from local_backend.jobs.store import JobStore

_log = logging.getLogger(__name__)

__all__ = ["StacCollectionsListing", "conform_app"]


class StacCollectionsListing(CollectionsListing):
    """``GET /collections`` whose entries keep ``"type": "Collection"`` (required by STAC)."""

    def to_response_dict(self, normalize: Callable[[dict], dict]) -> dict:
        """openeo-driver's listing with each normalised entry typed as a STAC Collection."""
        listing = super().to_response_dict(normalize)
        listing["collections"] = [{"type": "Collection", **entry} for entry in listing["collections"]]
        return listing


def _json_error(exc: OpenEOApiException, **extra: Any) -> flask.Response:
    response = flask.jsonify({**exc.to_dict(), **extra})
    response.status_code = exc.status_code
    return response


def _method_not_allowed(error: WerkzeugMethodNotAllowed) -> flask.Response:
    allowed = sorted(error.valid_methods or [])
    response = _json_error(MethodNotAllowed(flask.request.method, flask.request.path, allowed))
    response.headers["Allow"] = ", ".join(allowed)
    return response


def _failed_job(app: flask.Flask, store: JobStore, error: JobNotFinishedException) -> flask.Response:
    """424 with the last error of the requesting user's failed job; openeo-driver's answer for every other case."""
    job_id = (flask.request.view_args or {}).get("job_id")
    record = store.get(str(job_id)) if job_id else None
    if record is None or record["status"] != "error":
        return _json_error(error)
    user = app.extensions["auth_handler"].get_user_from_bearer_token(flask.request)
    if user.user_id != record["user_id"]:
        return _json_error(error)
    errors = [e for e in store.logs(record["id"]) if e.get("level") == "error"]
    last = errors[-1] if errors else {"id": "0", "message": record.get("error") or "The job failed."}
    code, _, message = str(record.get("error") or "").partition(": ")  # stored as "<code>: <message>"
    if not (code.isidentifier() and message):
        code, message = "Internal", str(last["message"])
    _log.info("Results of failed job %s requested: 424 %s", record["id"], code)
    return _json_error(JobFailed(code, message, str(last["id"])), level="error",
                       **({"time": last["time"]} if "time" in last else {}))


def conform_app(app: flask.Flask, store: JobStore) -> None:
    """Register the error handlers listed in this module's docstring on ``app``."""
    app.register_error_handler(WerkzeugMethodNotAllowed, _method_not_allowed)
    app.register_error_handler(JobNotFinishedException, lambda error: _failed_job(app, store, error))
