"""Math processes on JSON numbers: ``null`` passes through (openEO: "The no-data value null is passed through").

processes-dask's math functions compute numbers correctly but raise ``TypeError`` on ``None`` (a 500 for
``add(x=1, y=null)``). Each process here returns ``null`` when one of its data parameters is ``null`` and otherwise
calls processes-dask; ``mod`` also follows the spec for a zero divisor (``±inf``, ``NaN`` for ``mod(0, 0)``).
Arrays and cubes go to processes-dask unchanged (see :func:`~local_backend.processes.json_values.json_values`).
"""

import math
from typing import Any, Callable

from openeo_processes_dask.process_implementations import math as dask_math

from local_backend.processes.json_values import json_values

__all__ = ["IMPLEMENTATIONS", "mod"]

NULL_THROUGH: dict[str, tuple[str, ...]] = {
    **{name: ("x",) for name in (
        "absolute", "arccos", "arcosh", "arcsin", "arctan", "arsinh", "artanh", "ceil", "cos", "cosh", "floor",
        "ln", "sgn", "sin", "sinh", "sqrt", "tan", "tanh", "int", "round", "clip", "linear_scale_range", "log")},
    "exp": ("p",),
    "power": ("base", "p"),
    "arctan2": ("y", "x"),
    **{name: ("x", "y") for name in ("add", "subtract", "multiply", "divide", "normalized_difference")},
}
"""Process id -> parameters whose ``null`` makes the result ``null``."""

_UPSTREAM_NAMES = {"int": "_int", "round": "_round"}


def _null_through(process_id: str, parameters: tuple[str, ...]) -> Callable[..., Any]:
    """The JSON implementation of ``process_id``: ``null`` if any of ``parameters`` is ``null``, else processes-dask."""
    upstream = getattr(dask_math, _UPSTREAM_NAMES.get(process_id, process_id))
    accepted = list(upstream.__code__.co_varnames[:upstream.__code__.co_argcount])

    def implementation(**kwargs: Any) -> Any:
        if any(kwargs.get(p) is None for p in parameters):
            return None
        return upstream(**{k: v for k, v in kwargs.items() if k in accepted})

    implementation.__name__ = implementation.__qualname__ = process_id
    implementation.__doc__ = f"``{process_id}`` with ``null`` passed through ({', '.join(parameters)})."
    return json_values(upstream)(implementation)


@json_values(dask_math.mod)
def mod(x: float | None, y: float | None) -> float | None:
    """``mod``: remainder with the sign of the divisor; ``null`` passes through; ``x / 0`` limits for ``y = 0``."""
    if x is None or y is None:
        return None
    if y == 0:
        return math.nan if x == 0 else math.copysign(math.inf, x)
    return x % y


IMPLEMENTATIONS: dict[str, Callable[..., Any]] = {
    **{pid: _null_through(pid, params) for pid, params in NULL_THROUGH.items()},
    "mod": mod,
}
"""Process id -> implementation."""
