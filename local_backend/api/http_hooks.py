"""Request hooks on the openeo-driver Flask app: close side doors, bound request bodies, limit logins, quiet 4xx logs.

* ``/_debug/*`` routes (openeo-driver's echo, which returns the request headers including ``Authorization``, and
  its error generators) answer 404 unless the server runs with ``--debug-routes``, and then only with a valid login.
* Signed result URLs (``.../results/<user>/<signature>/...``) answer 404: this backend issues no signed URLs
  (openeo-driver crashed on them with a 500 when no URL signer is configured).
* JSON bodies: larger than the limit → 413, nested deeper than :data:`~local_backend.api.input_checks.MAX_JSON_DEPTH`
  → 400 (a body nested 100,000 deep crashed the parser with a ``RecursionError``).
* ``GET /credentials/basic``: the header is parsed by :func:`~local_backend.api.credentials.parse_basic` (the parser
  the authenticator uses too; a malformed header is refused with 401 and counted against the address); failed
  logins are counted per canonical user name and per client address (:class:`~local_backend.api.ratelimit.LoginLimiter`;
  the address is ``X-Forwarded-For`` only from trusted proxies, see :mod:`local_backend.api.proxies`);
  a locked name or address gets 429 with ``Retry-After``.
* openeo-driver logs every error response at ERROR with a traceback; a filter turns client errors (4xx) into one
  INFO/WARNING line without traceback, server errors (5xx) keep theirs.
"""

import logging
import re
from typing import Any

import flask

from local_backend.api.credentials import parse_basic
from local_backend.api.input_checks import check_json_body
from local_backend.api.ratelimit import LoginLimiter
from local_backend.errors import CredentialsMalformed, InputInvalid, TooManyRequests

__all__ = ["ClientErrorLogFilter", "install"]

_log = logging.getLogger(__name__)

_STATUS = re.compile(r"status_code=(\d{3})")
_WARN_STATUSES = {401, 403, 429}


class ClientErrorLogFilter(logging.Filter):
    """Rewrite openeo-driver's ERROR+traceback records of 4xx responses into INFO (WARNING for auth) lines."""

    def filter(self, record: logging.LogRecord) -> bool:
        """Lower a 4xx record in place; every record passes."""
        match = _STATUS.search(str(record.msg))
        if record.levelno >= logging.ERROR and match and 400 <= int(match.group(1)) < 500:
            level = logging.WARNING if int(match.group(1)) in _WARN_STATUSES else logging.INFO
            record.levelno, record.levelname = level, logging.getLevelName(level)
            record.exc_info, record.exc_text, record.stack_info = None, None, None
        return True


def _not_found(message: str) -> Exception:
    from openeo_driver.errors import OpenEOApiException

    return OpenEOApiException(message=message, code="NotFound", status_code=404)


def _endpoint_name() -> str:
    return (flask.request.endpoint or "").rsplit(".", 1)[-1]


def _check_route(app: flask.Flask, debug: bool) -> None:
    name = _endpoint_name()
    if name.startswith("debug_"):
        if not debug:
            raise _not_found(f"'{flask.request.path}' does not exist (debug routes need `s1ndvi serve --debug-routes`).")
        app.extensions["auth_handler"].get_user_from_bearer_token(flask.request)
    namespace = str((flask.request.view_args or {}).get("namespace", ""))
    if name in ("processes_from_namespace", "processes_details") and ":" in namespace and not (
            namespace.startswith("u:") and app.extensions.get("s1ndvi_udps")):
        raise _not_found(f"Process namespace {namespace[:80]!r} does not exist (openeo-driver answered 500).")
    if name.endswith("_signed"):
        raise _not_found("Signed result URLs are not issued by this backend: download results with an authenticated "
                         "request (GET /jobs/{job_id}/results).")


def _check_body(max_bytes: int) -> None:
    request = flask.request
    if request.method not in ("POST", "PUT", "PATCH"):
        return
    if request.content_length is not None and request.content_length > max_bytes:
        raise InputInvalid(message=f"The request body ({request.content_length / 2**20:.1f} MiB) is larger than the "
                                   f"limit of {max_bytes / 2**20:.0f} MiB.", status_code=413)
    if request.is_json:
        check_json_body(request.get_data(cache=True))


def _check_login(limiter: LoginLimiter) -> None:
    if _endpoint_name() != "credentials_basic" or flask.request.method == "OPTIONS":  # CORS preflight: no credentials
        return
    address = flask.request.remote_addr or "?"
    try:
        user: str | None = parse_basic(flask.request.headers.get("Authorization")).user
        malformed = None
    except CredentialsMalformed as exc:
        user, malformed = None, exc
    flask.g.s1ndvi_login = (user, address)
    wait = limiter.retry_after(user, address)
    if wait:
        _log.warning("Login for user %r from %s refused: too many failed logins (retry in %d s)", user, address, wait)
        flask.g.s1ndvi_retry_after = wait
        raise TooManyRequests(f"Too many failed logins for this user or from this address; try again in {wait} s.",
                              retry_after=wait)
    if malformed is not None:
        _log.warning("Login from %s refused: %s", address, malformed.message)
        raise malformed


def _record_login(limiter: LoginLimiter, response: flask.Response) -> flask.Response:
    login = flask.g.pop("s1ndvi_login", None)
    if login is not None and response.status_code in (401, 403):
        limiter.failed(*login)
    elif login is not None and response.status_code == 200:
        limiter.succeeded(login[0])
    retry_after = flask.g.pop("s1ndvi_retry_after", None)
    if response.status_code == 429 and retry_after:
        response.headers["Retry-After"] = str(retry_after)
    return response


def install(app: flask.Flask, limiter: LoginLimiter, debug: bool = False, max_body_bytes: int = 64 * 2**20) -> None:
    """Register the hooks on ``app`` (built by openeo-driver's ``build_app``)."""

    def before() -> Any:
        _check_route(app, debug)
        _check_body(max_body_bytes)
        _check_login(limiter)
        return None

    app.before_request_funcs.setdefault(None, []).insert(0, before)  # before openeo-driver's hook reads the body
    app.after_request(lambda response: _record_login(limiter, response))
    error_logger = logging.getLogger("openeo_driver.views.error")
    if not any(isinstance(f, ClientErrorLogFilter) for f in error_logger.filters):
        error_logger.addFilter(ClientErrorLogFilter())
