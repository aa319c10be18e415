"""``GET /jobs/{id}/results/items/{item}`` for an item the job does not have: 404, not openeo-driver's 500.

openeo-driver's view asserts that exactly one result file starts with the item id (``AssertionError`` → HTTP 500
``Internal``); here the view is wrapped to answer 404 ``NotFound`` naming the job's items first.
"""

import functools
import logging
from typing import Any, Callable

import flask
from openeo_driver.errors import OpenEOApiException

_log = logging.getLogger(__name__)

__all__ = ["install"]

ENDPOINTS = ("get_job_result_item", "get_job_result_item11")


def _wrap(app: flask.Flask, jobs: Any, view: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(view)
    def checked(job_id: str, item_id: str, **kwargs: Any) -> Any:
        user = app.extensions["auth_handler"].get_user_from_bearer_token(flask.request)
        names = list(jobs.get_result_assets(job_id, user.user_id))
        if sum(name.startswith(item_id) for name in names) != 1:
            raise OpenEOApiException(message=f"Job {job_id} has no result item {item_id[:80]!r}; its items: {names}.",
                                     code="NotFound", status_code=404)
        return view(job_id=job_id, item_id=item_id, **kwargs)

    return checked


def install(app: flask.Flask, jobs: Any) -> None:
    """Wrap the result-item views of ``app`` (``jobs``: the :class:`~local_backend.jobs.batch.LocalBatchJobs`)."""
    for endpoint, view in list(app.view_functions.items()):
        if endpoint.rsplit(".", 1)[-1] in ENDPOINTS:
            app.view_functions[endpoint] = _wrap(app, jobs, view)
