"""Statistics over JSON arrays of numbers: ``null`` skipped by default, ``null`` for no values, as the spec defines.

processes-dask answers ``max([])`` with a 500 (the pg parser hands it a ``TemporalIntervals``; see
:mod:`~local_backend.processes.literals`) and ``max([5, null])`` with a ``TypeError``. Here each reducer drops
``null`` unless ``ignore_nodata`` is false (then a ``null`` makes the result ``null``) and returns ``null`` when no
value is left; ``sd``/``variance`` are the sample statistics; ``quantiles`` is type 7 (numpy's default). Arrays and
cubes go to processes-dask (see :func:`~local_backend.processes.json_values.json_values`).
"""

import math
import statistics as stats
from typing import Any, Callable

from openeo_processes_dask.process_implementations import math as dask_math
from openeo_processes_dask.process_implementations.exceptions import (
    QuantilesParameterConflict,
    QuantilesParameterMissing,
)

from local_backend.errors import ProcessParameterInvalid
from local_backend.processes.json_values import json_values, numbers

__all__ = ["IMPLEMENTATIONS", "extrema", "quantiles"]

Reducer = Callable[[list[float]], float | None]


def _values(process: str, data: Any, ignore_nodata: bool) -> list[float] | None:
    """The numbers to reduce, or None when the result is ``null`` (a kept ``null``, or nothing left)."""
    if not isinstance(data, list):
        raise ProcessParameterInvalid(process, "data", f"an array of numbers is expected, got {type(data).__name__}")
    values = numbers(process, "data", data)
    if not ignore_nodata and None in values:
        return None
    kept = [v for v in values if v is not None]
    return kept or None


def _sample_variance(values: list[float]) -> float | None:
    return stats.variance(values) if len(values) > 1 else None


def _sample_sd(values: list[float]) -> float | None:
    return stats.stdev(values) if len(values) > 1 else None


REDUCERS: dict[str, tuple[Reducer, Callable[..., Any]]] = {
    "max": (max, dask_math._max),
    "min": (min, dask_math._min),
    "mean": (stats.fmean, dask_math.mean),
    "median": (stats.median, dask_math.median),
    "sum": (math.fsum, dask_math._sum),
    "product": (math.prod, dask_math.product),
    "sd": (_sample_sd, dask_math.sd),
    "variance": (_sample_variance, dask_math.variance),
}
"""Process id -> (reduction of a non-empty list of numbers, processes-dask implementation)."""


def _reducer(process_id: str, reduce: Reducer, upstream: Callable[..., Any]) -> Callable[..., Any]:
    def implementation(data: list[float | None], ignore_nodata: bool = True) -> float | None:
        values = _values(process_id, data, ignore_nodata)
        return None if values is None else reduce(values)

    implementation.__name__ = implementation.__qualname__ = process_id
    implementation.__doc__ = f"``{process_id}`` of the numbers in ``data`` (``null`` for none)."
    return json_values(upstream)(implementation)


@json_values(dask_math.extrema)
def extrema(data: list[float | None], ignore_nodata: bool = True) -> list[float | None]:
    """``extrema``: ``[min, max]``, ``[null, null]`` when there is no value (or a kept ``null``)."""
    values = _values("extrema", data, ignore_nodata)
    return [None, None] if values is None else [min(values), max(values)]


def _probabilities(probabilities: Any, q: int | None) -> list[float]:
    if probabilities is not None and q is not None:
        raise QuantilesParameterConflict("quantiles: give either 'probabilities' or 'q', not both.")
    count = probabilities if isinstance(probabilities, int) and not isinstance(probabilities, bool) else q
    if count is not None:
        if count < 2:
            raise ProcessParameterInvalid("quantiles", "probabilities", f"at least 2 intervals needed, got {count}")
        return [i / count for i in range(1, count)]
    if probabilities is None:
        raise QuantilesParameterMissing("quantiles: give 'probabilities' (a list or a number of intervals) or 'q'.")
    values = numbers("quantiles", "probabilities", probabilities if isinstance(probabilities, list) else [None])
    if None in values or not all(0 <= p <= 1 for p in values):  # type: ignore[operator]
        raise ProcessParameterInvalid("quantiles", "probabilities", "a list of numbers between 0 and 1 is expected")
    return [float(p) for p in values]  # type: ignore[arg-type]


def _type7(ordered: list[float], p: float) -> float:
    position = p * (len(ordered) - 1)
    low = math.floor(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (position - low) * (ordered[high] - ordered[low])


@json_values(dask_math.quantiles)
def quantiles(data: list[float | None], probabilities: Any = None, q: int | None = None,
              ignore_nodata: bool = True) -> list[float | None]:
    """``quantiles`` (type 7) at ``probabilities``, or the ``q``-quantiles; ``null`` for each when no value."""
    wanted = _probabilities(probabilities, q)
    values = _values("quantiles", data, ignore_nodata)
    if values is None:
        return [None] * len(wanted)
    ordered = sorted(values)
    return [_type7(ordered, p) for p in wanted]


IMPLEMENTATIONS: dict[str, Callable[..., Any]] = {
    **{pid: _reducer(pid, reduce, upstream) for pid, (reduce, upstream) in REDUCERS.items()},
    "extrema": extrema,
    "quantiles": quantiles,
}
"""Process id -> implementation."""
