"""Comparison processes on JSON values, as the openEO specification defines them.

Results are booleans (processes-dask returns ``1.0``/``0.0`` for JSON numbers), ``null`` if an operand is ``null``
(processes-dask raises), and types are checked strictly: ``gt(2, "1")`` is ``false`` (processes-dask raises a
``TypeError``), ``eq(1, "1")`` and ``eq(0, false)`` are ``false``, temporal strings are plain strings. Arrays and
cubes go to processes-dask (see :func:`~local_backend.processes.json_values.json_values`).
"""

from typing import Any, Callable

from openeo_processes_dask.process_implementations import comparison as dask_comparison

from local_backend.processes.json_values import is_number, json_values

__all__ = ["IMPLEMENTATIONS", "between", "eq", "gt", "gte", "lt", "lte", "neq"]


def _equal(x: Any, y: Any, delta: float | None, case_sensitive: bool) -> bool:
    if is_number(x) and is_number(y):
        return bool(abs(x - y) <= delta) if delta is not None else bool(x == y)
    if isinstance(x, str) and isinstance(y, str):
        return x == y if case_sensitive else x.casefold() == y.casefold()
    if isinstance(x, bool) and isinstance(y, bool):
        return x == y
    return False


@json_values(dask_comparison.eq)
def eq(x: Any, y: Any, delta: float | None = None, case_sensitive: bool = True) -> bool | None:
    """``eq``: strict equality (numbers within ``delta``, strings optionally case-insensitive); ``null`` if either is."""
    if x is None or y is None:
        return None
    return _equal(x, y, delta, case_sensitive)


@json_values(dask_comparison.neq)
def neq(x: Any, y: Any, delta: float | None = None, case_sensitive: bool = True) -> bool | None:
    """``neq``: the negation of ``eq``; ``null`` if either operand is ``null``."""
    if x is None or y is None:
        return None
    return not _equal(x, y, delta, case_sensitive)


def _order(x: Any, y: Any, test: Callable[[Any, Any], bool]) -> bool | None:
    if x is None or y is None:
        return None
    return bool(test(x, y)) if is_number(x) and is_number(y) else False


@json_values(dask_comparison.gt)
def gt(x: Any, y: Any) -> bool | None:
    """``gt``: ``x > y`` for numbers, ``false`` for other types, ``null`` if either is ``null``."""
    return _order(x, y, lambda a, b: a > b)


@json_values(dask_comparison.gte)
def gte(x: Any, y: Any) -> bool | None:
    """``gte``: ``x >= y`` for numbers, ``false`` for other types, ``null`` if either is ``null``."""
    return _order(x, y, lambda a, b: a >= b)


@json_values(dask_comparison.lt)
def lt(x: Any, y: Any) -> bool | None:
    """``lt``: ``x < y`` for numbers, ``false`` for other types, ``null`` if either is ``null``."""
    return _order(x, y, lambda a, b: a < b)


@json_values(dask_comparison.lte)
def lte(x: Any, y: Any) -> bool | None:
    """``lte``: ``x <= y`` for numbers, ``false`` for other types, ``null`` if either is ``null``."""
    return _order(x, y, lambda a, b: a <= b)


@json_values(dask_comparison.between)
def between(x: Any, min: float, max: float, exclude_max: bool = False) -> bool | None:  # noqa: A002 - spec names
    """``between``: ``min <= x <= max`` (``< max`` with ``exclude_max``); ``false`` for non-numbers, ``null`` for null."""
    if x is None:
        return None
    if not is_number(x):
        return False
    return bool(min <= x < max) if exclude_max else bool(min <= x <= max)


IMPLEMENTATIONS: dict[str, Callable[..., Any]] = {
    "eq": eq, "neq": neq, "gt": gt, "gte": gte, "lt": lt, "lte": lte, "between": between}
"""Process id -> implementation."""
