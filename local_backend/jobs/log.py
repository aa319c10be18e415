"""One hook for user-facing progress lines: a batch job's log (``GET /jobs/{id}/logs``), or the server log.

The batch-job service registers where job logs go (:func:`set_job_log_sink`); code that runs inside an evaluation
(the UDF tile runner) calls :func:`job_log` with the evaluation's ``job_id`` (None for a synchronous request) and does
not need to know about the job store.
"""

import logging
from typing import Callable

__all__ = ["job_log", "progress_step", "set_job_log_sink"]

_log = logging.getLogger(__name__)

_sink: Callable[[str, str, str], None] | None = None

_LEVELS = {"debug": logging.DEBUG, "info": logging.INFO, "warning": logging.WARNING, "error": logging.ERROR}


def set_job_log_sink(sink: Callable[[str, str, str], None] | None) -> None:
    """Send job log lines to ``sink(job_id, level, message)`` (e.g. ``JobStore.append_log``); None to stop."""
    global _sink
    _sink = sink


def job_log(job_id: str | None, message: str, level: str = "info") -> None:
    """Add ``message`` to the log of job ``job_id``; without a job (or sink), log it on the server log.

    Progress of a synchronous request (``job_id`` None) is logged at DEBUG; warnings and errors keep their level.
    """
    if job_id is not None and _sink is not None:
        _sink(job_id, level, message)
        _log.debug("job %s: %s", job_id, message)
    else:
        _log.log(logging.DEBUG if level == "info" else _LEVELS.get(level, logging.WARNING), "%s", message)


def progress_step(total: int, lines: int = 50) -> int:
    """Log every this many items of ``total`` so that a job log gets at most about ``lines`` progress lines."""
    return max(1, -(-total // lines))
