"""Quiet start-up of ``s1ndvi serve``: dask's and openeo-processes-dask's start-up messages at DEBUG, not on screen.

* openeo-processes-dask warns at import that its ``ml``/``experimental`` processes are missing and suggests
  ``pip install openeo-processes-dask[implementations, ml]`` (which cannot be installed next to this backend): the
  record is shown at DEBUG only (``-vv``).
* distributed logs about 15 INFO lines per start (scheduler, nannies, workers): its loggers, and through
  ``DASK_LOGGING__DISTRIBUTED`` those of the worker processes, log WARNING and above unless the server runs at DEBUG.
"""

import logging
import os

__all__ = ["DemoteToDebug", "quiet_startup_logs"]

_OPTIONAL_PROCESSES = ("Did not load machine learning processes", "Did not load experimental processes")


class DemoteToDebug(logging.Filter):
    """Turn records whose message starts with one of ``prefixes`` into DEBUG records (dropped unless DEBUG is on)."""

    def __init__(self, prefixes: tuple[str, ...]) -> None:
        super().__init__()
        self.prefixes = prefixes

    def filter(self, record: logging.LogRecord) -> bool:
        """Demote a matching record; keep it only when the root logger shows DEBUG."""
        if not str(record.msg).startswith(self.prefixes):
            return True
        record.levelno, record.levelname = logging.DEBUG, "DEBUG"
        return logging.getLogger().isEnabledFor(logging.DEBUG)


def quiet_startup_logs() -> None:
    """Install the filters and levels of this module's docstring (call before openeo-processes-dask is imported)."""
    target = logging.getLogger("openeo_processes_dask.process_implementations")
    if not any(isinstance(f, DemoteToDebug) for f in target.filters):
        target.addFilter(DemoteToDebug(_OPTIONAL_PROCESSES))
    debug = logging.getLogger().isEnabledFor(logging.DEBUG)
    level = "debug" if debug else "warning"
    os.environ.setdefault("DASK_LOGGING__DISTRIBUTED", level)  # read by the worker processes' dask config
    for name in ("distributed", "distributed.scheduler", "distributed.nanny", "distributed.worker",
                 "distributed.core", "distributed.http.proxy"):
        logging.getLogger(name).setLevel(logging.DEBUG if debug else logging.WARNING)
