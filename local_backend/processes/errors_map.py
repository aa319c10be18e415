"""Errors of third-party process implementations on bad arguments: 400 naming the process, not 500 ``Internal``.

openeo-processes-dask checks few argument values: a raster cube passed where a vector cube is expected, a band
name that is not in the cube or a ``null`` where a number is needed end in a ``TypeError``, ``ValueError``,
``KeyError``, ``IndexError`` or ``AttributeError`` inside the implementation. Raised by one of its processes (not by
this backend's own, whose bugs must stay visible as ``Internal``), such an exception is an argument the process
cannot use: :func:`input_errors` reports it as ``ProcessParameterInvalid`` with the exception's type and message.
:mod:`local_backend.processes.argument_schemas` refuses most such arguments before anything runs; this is the net behind it.
"""

import functools
import logging
from typing import Any, Callable

from local_backend.errors import ProcessParameterInvalid

_log = logging.getLogger(__name__)

__all__ = ["input_errors"]

ARGUMENT_ERRORS = (TypeError, ValueError, KeyError, IndexError, AttributeError)
"""Exception types that, from a third-party process, mean an argument it cannot use."""


@functools.lru_cache(maxsize=1)
def _own() -> frozenset[str]:
    from local_backend import graph

    return frozenset(graph._own_implementations())


def input_errors(func: Callable[..., Any]) -> Callable[..., Any]:
    """Registry wrapper: a third-party process's :data:`ARGUMENT_ERRORS` become ``ProcessParameterInvalid``."""
    name = getattr(func, "__name__", "process").strip("_")
    if name in _own():
        return func

    @functools.wraps(func)
    def checked(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except ARGUMENT_ERRORS as exc:
            _log.info("Process %s refused its arguments: %s: %s", name, type(exc).__name__, exc)
            raise ProcessParameterInvalid(name, "arguments", f"{type(exc).__name__}: {str(exc)[:300]}") from exc

    return checked
