"""JSON values (numbers, booleans, strings, ``null``, arrays as lists) next to processes-dask's arrays and cubes.

openeo-processes-dask implements the math, logic, comparison and array processes for numpy/dask arrays and data
cubes. Called with plain JSON values, as ``POST /result`` with ``{"process_id": "gt", "arguments": {"x": 1,
"y": 0}}`` does, several of them answer differently from the openEO process specifications: ``null`` raises a
``TypeError`` (a 500), booleans come back as ``1.0``/``0.0``, ``null`` as ``NaN``. The implementations in this
package's family modules (:mod:`~local_backend.processes.arithmetic`, ``comparison``, ``logic``, ``arrays``,
``statistics``) follow the specifications for JSON values and hand arrays and cubes to processes-dask unchanged;
:func:`json_values` does the dispatch.
"""

import functools
import inspect
from typing import Any, Callable, TypeVar

import numpy as np
import xarray as xr

from local_backend.errors import ProcessParameterInvalid

__all__ = ["holds_arrays", "is_number", "json_values", "numbers", "plain"]

F = TypeVar("F", bound=Callable[..., Any])


def holds_arrays(value: Any) -> bool:
    """Whether ``value`` is, or contains (in lists, tuples, dicts), a data cube or a numpy/dask array."""
    if isinstance(value, xr.DataArray):
        return True
    if isinstance(value, np.ndarray):
        return value.ndim > 0
    if type(value).__module__.startswith("dask."):
        return True
    if isinstance(value, (list, tuple)):
        return any(holds_arrays(v) for v in value)
    if isinstance(value, dict):
        return any(holds_arrays(v) for v in value.values())
    return False


def plain(value: Any) -> Any:
    """``value`` with numpy scalars (and 0-d arrays) turned into Python numbers/booleans, recursively."""
    if isinstance(value, np.ndarray) and value.ndim == 0:
        return value.item()
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    if isinstance(value, dict):
        return {k: plain(v) for k, v in value.items()}
    return value


def is_number(value: Any) -> bool:
    """Whether ``value`` is an openEO number (booleans are not numbers)."""
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def numbers(process: str, parameter: str, values: list[Any]) -> list[float | int | None]:
    """Check that ``values`` are numbers or ``null``.

    Raises:
        ProcessParameterInvalid: naming the first element that is neither.
    """
    for i, v in enumerate(values):
        if v is not None and not is_number(v):
            raise ProcessParameterInvalid(process, parameter,
                                          f"element {i} is {v!r} ({type(v).__name__}); numbers or null are expected")
    return values


def json_values(upstream: Callable[..., Any]) -> Callable[[F], F]:
    """Decorate the JSON-value implementation of a process whose arrays and cubes ``upstream`` handles.

    The decorated function runs when no argument holds an array or cube; it receives the arguments its own signature
    names (callback extras such as ``axis`` are dropped; a ``**kwargs`` function gets all) as plain Python values,
    and its result is made plain. Any argument holding an array or cube sends the whole call, unchanged, to
    ``upstream``. The dispatcher exposes
    ``upstream``'s signature, because processes-dask's ``@process`` wrapper drops ``axis``, ``keepdims``,
    ``context`` ... for functions that do not declare them.
    """

    def decorate(func: F) -> F:
        params = inspect.signature(func).parameters
        takes_any = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values())

        @functools.wraps(func)
        def dispatch(*args: Any, **kwargs: Any) -> Any:
            if holds_arrays(args) or holds_arrays(kwargs):
                return upstream(*args, **kwargs)
            return plain(func(*[plain(a) for a in args],
                              **{k: plain(v) for k, v in kwargs.items() if takes_any or k in params}))

        del dispatch.__wrapped__  # inspect.signature must not follow it to ``func``
        dispatch.__signature__ = inspect.signature(upstream)  # type: ignore[attr-defined]
        return dispatch  # type: ignore[return-value]

    return decorate
