"""openEO API endpoints openeo-driver leaves unimplemented or answers off-spec, registered on the built app.

* ``PATCH /jobs/{id}``: change ``title``, ``description``, ``process``, ``job_options`` (``plan``, ``budget``,
  ``log_level`` accepted and ignored: no billing here) of a job that is not queued or running (400 ``JobLocked``
  otherwise); 204, also for an empty object.
* ``GET /jobs/{id}/estimate``: :mod:`local_backend.jobs.estimate`.
* ``GET /service_types``: ``{}``, this backend offers no secondary web services.
* ``GET /credentials/oidc``: 404 ``NotFound`` naming basic auth: this backend has no OpenID Connect provider, so the
  endpoint is not offered (not listed in the capabilities; the response schema needs at least one provider, so an
  empty list would be invalid, and a 5xx would report a server fault where there is none).
* ``POST /validation``: a JSON object without ``process_graph`` answers 200 with a ``ProcessGraphMissing`` error in
  the list, as the API says validation reports errors (openeo-driver: 400); no JSON object at all stays a 400.
"""

import logging
from typing import Any

import flask
from openeo_driver.errors import (
    JobNotFoundException,
    OpenEOApiException,
    ProcessGraphMissingException,
)

from local_backend.api.input_checks import check_job_metadata
from local_backend.jobs.estimate import estimate
from local_backend.jobs.store import JobStore

_log = logging.getLogger(__name__)

__all__ = ["install"]

_PATCHABLE = ("title", "description", "process", "job_options")
_IGNORED = ("plan", "budget", "log_level")


class JobLocked(OpenEOApiException):
    """A queued or running job cannot be modified."""

    status_code = 400
    code = "JobLocked"


def _own_job(store: JobStore, job_id: str, user_id: str) -> dict[str, Any]:
    record = store.get(job_id)
    if record is None or record["user_id"] != user_id:
        raise JobNotFoundException(job_id=job_id)
    return record


def _patch(store: JobStore, job_id: str, user_id: str, body: Any) -> None:
    if not isinstance(body, dict):
        raise OpenEOApiException(code="BadRequest", status_code=400,
                                 message="The body of PATCH /jobs/{job_id} must be a JSON object.")
    record = _own_job(store, job_id, user_id)
    unknown = sorted(set(body) - set(_PATCHABLE) - set(_IGNORED))
    if unknown:
        raise OpenEOApiException(code="BadRequest", status_code=400,
                                 message=f"PATCH /jobs/{{job_id}} cannot change {unknown}; it changes {_PATCHABLE}.")
    if record["status"] in ("queued", "running"):
        raise JobLocked(message=f"Job {job_id} is {record['status']}: cancel it (DELETE /jobs/{job_id}/results) "
                                f"before modifying it.")
    changes = {k: body[k] for k in _PATCHABLE if k in body}
    if "process" in changes and not (isinstance(changes["process"], dict)
                                     and isinstance(changes["process"].get("process_graph"), dict)):
        raise OpenEOApiException(code="ProcessGraphMissing", status_code=400,
                                 message="'process' must be an object with a 'process_graph' object.")
    check_job_metadata({k: body[k] for k in ("title", "description", "plan", "budget") if k in body})
    if changes:
        import json

        store.update(job_id, **{k: json.dumps(v) if k in ("process", "job_options") else v
                                for k, v in changes.items()})
        _log.info("Job %s modified: %s", job_id, sorted(changes))


def install(app: flask.Flask, store: JobStore, catalog: Any, processing: Any) -> None:
    """Register the endpoints of this module's docstring on ``app``."""
    from openeo_driver.users import User

    auth = app.extensions["auth_handler"]

    @auth.requires_bearer_auth
    def modify_job(job_id: str, user: User) -> flask.Response:
        _patch(store, job_id, user.user_id, flask.request.get_json(silent=True))
        return flask.make_response("", 204)

    @auth.requires_bearer_auth
    def job_estimate(job_id: str, user: User) -> flask.Response:
        return flask.jsonify(estimate(_own_job(store, job_id, user.user_id), store, catalog))

    def validation() -> flask.Response:
        body = flask.request.get_json(silent=True)
        if not isinstance(body, dict):
            raise ProcessGraphMissingException()
        if "process_graph" not in body:
            return flask.jsonify({"errors": [{"code": "ProcessGraphMissing", "message": "The body has no "
                                              "'process_graph' to validate."}]})
        return flask.jsonify({"errors": processing.validate(body["process_graph"])})

    for name, view in (("modify_job", modify_job), ("job_estimate", job_estimate), ("validation", validation)):
        for endpoint in (f"openeo.{name}", f"openeo_old.{name}"):
            if endpoint in app.view_functions:
                app.view_functions[endpoint] = view

    def service_types(version: str | None = None) -> flask.Response:
        return flask.jsonify({})

    def credentials_oidc(version: str | None = None) -> flask.Response:
        # answered, not raised: openeo-driver logs every raised 5xx at ERROR with a traceback
        error = OpenEOApiException(message="This backend has no OpenID Connect provider: log in with HTTP basic "
                                           "authentication (GET /credentials/basic).", code="NotFound", status_code=404)
        response = flask.jsonify(error.to_dict())
        response.status_code = error.status_code
        return response

    for prefix in ("/openeo/<version>", "/openeo"):
        if f"{prefix}/service_types" not in {r.rule for r in app.url_map.iter_rules()}:
            app.add_url_rule(f"{prefix}/service_types", f"s1ndvi_service_types{prefix.count('<')}", service_types)
        if f"{prefix}/credentials/oidc" not in {r.rule for r in app.url_map.iter_rules()}:
            app.add_url_rule(f"{prefix}/credentials/oidc", f"s1ndvi_credentials_oidc{prefix.count('<')}",
                             credentials_oidc)

