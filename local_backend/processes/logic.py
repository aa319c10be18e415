"""Logical processes on JSON values: booleans out, three-valued logic with ``null`` as the openEO spec defines it.

processes-dask returns ``1.0``/``0.0`` for JSON booleans, ``NaN`` where ``null`` is due (``if`` without ``reject``)
and raises on ``null`` (``xor``). Here ``and(false, null)`` is ``false``, ``or(true, null)`` is ``true``, otherwise a
``null`` operand gives ``null``; ``all``/``any`` skip ``null`` unless ``ignore_nodata`` is false; ``is_nan`` is true
for everything that is not a number. Arrays and cubes go to processes-dask (see
:func:`~local_backend.processes.json_values.json_values`).
"""

import math
from typing import Any, Callable

from openeo_processes_dask.process_implementations import comparison as dask_comparison
from openeo_processes_dask.process_implementations import logic as dask_logic

from local_backend.errors import ProcessParameterInvalid
from local_backend.processes.json_values import is_number, json_values

__all__ = ["IMPLEMENTATIONS", "all_", "and_", "any_", "if_", "is_nan", "is_valid", "not_", "or_", "xor"]


def _booleans(process: str, **values: Any) -> None:
    for name, value in values.items():
        if value is not None and not isinstance(value, bool):
            raise ProcessParameterInvalid(process, name, f"{value!r} is not a boolean or null")


@json_values(dask_logic._and)
def and_(x: bool | None, y: bool | None) -> bool | None:
    """``and``: ``false`` if either is ``false``, else ``null`` if either is ``null``, else ``true``."""
    _booleans("and", x=x, y=y)
    if x is False or y is False:
        return False
    return None if x is None or y is None else True


@json_values(dask_logic._or)
def or_(x: bool | None, y: bool | None) -> bool | None:
    """``or``: ``true`` if either is ``true``, else ``null`` if either is ``null``, else ``false``."""
    _booleans("or", x=x, y=y)
    if x is True or y is True:
        return True
    return None if x is None or y is None else False


@json_values(dask_logic.xor)
def xor(x: bool | None, y: bool | None) -> bool | None:
    """``xor``: ``null`` if either is ``null``, else whether exactly one is ``true``."""
    _booleans("xor", x=x, y=y)
    return None if x is None or y is None else x != y


@json_values(dask_logic._not)
def not_(x: bool | None) -> bool | None:
    """``not``: the negation; ``null`` stays ``null``."""
    _booleans("not", x=x)
    return None if x is None else not x


def _elements(process: str, data: list[Any], ignore_nodata: bool) -> list[bool | None] | None:
    """The booleans to combine, or None when the answer is ``null`` (no values at all)."""
    if not isinstance(data, list):
        raise ProcessParameterInvalid(process, "data", f"an array of booleans is expected, got {data!r}")
    for i, value in enumerate(data):
        if value is not None and not isinstance(value, bool):
            raise ProcessParameterInvalid(process, "data", f"element {i} is {value!r}, not a boolean or null")
    values = [v for v in data if v is not None] if ignore_nodata else list(data)
    return values or None


@json_values(dask_logic._all)
def all_(data: list[bool | None], ignore_nodata: bool = True) -> bool | None:
    """``all``: ``false`` if any is ``false``, ``null`` for no values or a kept ``null``, else ``true``."""
    values = _elements("all", data, ignore_nodata)
    if values is None:
        return None
    if False in values:
        return False
    return None if None in values else True


@json_values(dask_logic._any)
def any_(data: list[bool | None], ignore_nodata: bool = True) -> bool | None:
    """``any``: ``true`` if any is ``true``, ``null`` for no values or a kept ``null``, else ``false``."""
    values = _elements("any", data, ignore_nodata)
    if values is None:
        return None
    if True in values:
        return True
    return None if None in values else False


@json_values(dask_logic._if)
def if_(value: bool | None, accept: Any, reject: Any = None) -> Any:
    """``if``: ``accept`` when ``value`` is ``true``, otherwise ``reject`` (default ``null``, not ``NaN``)."""
    _booleans("if", value=value)
    return accept if value is True else reject


@json_values(dask_comparison.is_nan)
def is_nan(x: Any) -> bool:
    """``is_nan``: ``true`` for NaN and for everything that is not a number (``null``, strings, booleans, ...)."""
    return math.isnan(x) if is_number(x) else True


@json_values(dask_comparison.is_valid)
def is_valid(x: Any) -> bool:
    """``is_valid``: ``false`` for ``null``, NaN and infinity, ``true`` for every other value (arrays included)."""
    if x is None:
        return False
    return math.isfinite(x) if is_number(x) else True


IMPLEMENTATIONS: dict[str, Callable[..., Any]] = {
    "and": and_, "or": or_, "xor": xor, "not": not_, "all": all_, "any": any_, "if": if_, "is_nan": is_nan,
    "is_valid": is_valid}
"""Process id -> implementation."""
