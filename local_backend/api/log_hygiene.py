"""Quiet start-up of ``s1ndvi serve``: dask's and openeo-processes-dask's start-up messages at DEBUG, not on screen.

* openeo-processes-dask warns at import that its ``ml``/``experimental`` processes are missing and suggests
  ``pip install openeo-processes-dask[implementations, ml]`` (which cannot be installed next to this backend): the
  record is shown at DEBUG only (``-vv``).
* distributed logs about 15 INFO lines per start (scheduler, nannies, workers): its loggers, and through
  ``DASK_LOGGING__DISTRIBUTED`` those of the worker processes, log WARNING and above unless the server runs at DEBUG;
  its "Port 8787 is already in use" warning (another dask on the machine) is not shown.
* A tile whose UDF raised (a mistyped context key, a bug in the user's code) is the client's error, answered 400 and
  logged by the server as one INFO line: :class:`QuietUdfFailures` keeps the worker's ERROR record and traceback
  out of the log (at DEBUG with ``-vv``).
"""

import logging
import os
import warnings

__all__ = ["DemoteToDebug", "QuietUdfFailures", "quiet_startup_logs", "quiet_worker_udf_failures"]

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
    warnings.filterwarnings("ignore", message=r"Port \d+ is already in use", category=UserWarning)
    for name in ("distributed", "distributed.scheduler", "distributed.nanny", "distributed.worker",
                 "distributed.core", "distributed.http.proxy"):
        logging.getLogger(name).setLevel(logging.DEBUG if debug else logging.WARNING)


class QuietUdfFailures(logging.Filter):
    """Drop distributed's ``Compute Failed`` ERROR record (with traceback) of a tile whose UDF raised.

    A UDF error is the client's (the server answers 400 ``UdfError`` and logs it as one INFO line); the worker's
    record is kept at DEBUG when the worker logs at DEBUG. Other task failures keep their ERROR record.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        """Demote a UDF failure record; keep every other record."""
        args = record.args if isinstance(record.args, tuple) else ()
        if not (str(record.msg).startswith("Compute Failed") and any("UdfRuntimeError" in str(a) for a in args)):
            return True
        record.levelno, record.levelname = logging.DEBUG, "DEBUG"
        record.msg, record.args = "UDF tile failed (answered as a 4xx): %s", (args[3] if len(args) > 3 else "",)
        return logging.getLogger("distributed.worker").isEnabledFor(logging.DEBUG)


def _install_worker_filter(dask_worker: object = None) -> None:
    logger = logging.getLogger("distributed.worker")
    if not any(isinstance(f, QuietUdfFailures) for f in logger.filters):
        logger.addFilter(QuietUdfFailures())


def quiet_worker_udf_failures(client: object) -> None:
    """Install :class:`QuietUdfFailures` in every current and future worker of ``client`` (a distributed Client)."""
    from distributed.diagnostics.plugin import WorkerPlugin

    class _Plugin(WorkerPlugin):
        name = "s1ndvi-quiet-udf-failures"

        def setup(self, worker: object) -> None:
            _install_worker_filter(worker)

    client.register_plugin(_Plugin())  # type: ignore[attr-defined]
