"""Array processes on JSON arrays (plain lists), as the openEO specification defines them.

Differences from processes-dask for JSON arrays: ``null`` elements are skipped by ``first``/``last`` (default
``ignore_nodata: true``) and kept apart by ``order``/``sort``/``array_find``; an index outside the array is an
``ArrayElementNotAvailable`` error (or ``null`` with ``return_nodata``), negative ones included; ``array_find``
compares strictly and returns ``null`` for no match; ``array_concat`` keeps each element's type; ``text_concat``
joins JSON text representations with the default separator ``""``. Arrays and cubes go to processes-dask (see
:func:`~local_backend.processes.json_values.json_values`).
"""

import json
from typing import Any, Callable

import numpy as np
from openeo_processes_dask.process_implementations import arrays as dask_arrays
from openeo_processes_dask.process_implementations import math as dask_math
from openeo_processes_dask.process_implementations import text as dask_text
from openeo_processes_dask.process_implementations.exceptions import (
    ArrayElementNotAvailable,
    ArrayElementParameterConflict,
    ArrayElementParameterMissing,
    ArrayNotLabeled,
)

from local_backend.errors import ProcessParameterInvalid
from local_backend.processes.json_values import is_number, json_values, numbers

__all__ = ["IMPLEMENTATIONS", "array_append", "array_concat", "array_element", "array_find",
           "array_interpolate_linear", "array_labels", "constant", "count", "first", "last", "order", "sort", "text_concat"]


def _array(process: str, data: Any, parameter: str = "data") -> list[Any]:
    if not isinstance(data, list):
        raise ProcessParameterInvalid(process, parameter, f"an array is expected, got {type(data).__name__}")
    return data


def _unlabeled(process: str, label: Any) -> None:
    if label is not None:
        raise ArrayNotLabeled(f"{process}: a label ({label!r}) was given but the array has no labels.")


@json_values(dask_arrays.array_element)
def array_element(data: list[Any], index: int | None = None, label: Any = None,
                  return_nodata: bool = False) -> Any:
    """``array_element``: the element at ``index`` (labels need a labelled array)."""
    data = _array("array_element", data)
    if index is None and label is None:
        raise ArrayElementParameterMissing("array_element: give either 'index' or 'label'.")
    if index is not None and label is not None:
        raise ArrayElementParameterConflict("array_element: give only one of 'index' and 'label'.")
    _unlabeled("array_element", label)
    if 0 <= index < len(data):  # type: ignore[operator]
        return data[index]  # type: ignore[index]
    if return_nodata:
        return None
    raise ArrayElementNotAvailable(f"array_element: no element at index {index} in an array of {len(data)}.")


@json_values(dask_arrays.array_append)
def array_append(data: list[Any], value: Any, label: Any = None) -> list[Any]:
    """``array_append``: ``data`` with ``value`` added at the end."""
    _unlabeled("array_append", label)
    return [*_array("array_append", data), value]


@json_values(dask_arrays.array_concat)
def array_concat(array1: list[Any], array2: list[Any]) -> list[Any]:
    """``array_concat``: both arrays one after the other, each element as it was."""
    return [*_array("array_concat", array1, "array1"), *_array("array_concat", array2, "array2")]


@json_values(dask_math.constant)
def constant(x: Any) -> Any:
    """``constant``: ``x`` as given (an empty array stays an empty array)."""
    return x


@json_values(dask_arrays.array_labels)
def array_labels(data: list[Any]) -> list[int]:
    """``array_labels``: the indices ``0 .. n-1`` of an unlabelled array."""
    return list(range(len(_array("array_labels", data))))


def _same(x: Any, y: Any) -> bool:
    if is_number(x) and is_number(y):
        return bool(x == y)
    return type(x) is type(y) and isinstance(x, (str, bool)) and x == y


@json_values(dask_arrays.array_find)
def array_find(data: list[Any], value: Any, reverse: bool = False) -> int | None:
    """``array_find``: index of the first (last with ``reverse``) element equal to ``value`` as ``eq`` says, or null.

    ``null``, arrays and objects never match (``eq`` is ``null`` or undefined for them).
    """
    data = _array("array_find", data)
    positions = range(len(data) - 1, -1, -1) if reverse else range(len(data))
    return next((i for i in positions if _same(data[i], value)), None)


@json_values(dask_arrays.array_interpolate_linear)
def array_interpolate_linear(data: list[float | None]) -> list[float | None]:
    """``array_interpolate_linear``: ``null`` between two numbers interpolated by index; leading/trailing kept."""
    values = numbers("array_interpolate_linear", "data", _array("array_interpolate_linear", data))
    known = [i for i, v in enumerate(values) if v is not None]
    out = list(values)
    for left, right in zip(known, known[1:]):
        for i in range(left + 1, right):
            w = (i - left) / (right - left)
            out[i] = values[left] * (1 - w) + values[right] * w  # type: ignore[operator]
    return out


def _end(process: str, data: list[Any], ignore_nodata: bool, from_end: bool) -> Any:
    values = _array(process, data)[::-1] if from_end else _array(process, data)
    if not values:
        return None
    if not ignore_nodata:
        return values[0]
    return next((v for v in values if v is not None), None)


@json_values(dask_arrays.first)
def first(data: list[Any], ignore_nodata: bool = True) -> Any:
    """``first``: the first element (the first non-``null`` one by default); ``null`` for an empty array."""
    return _end("first", data, ignore_nodata, from_end=False)


@json_values(dask_arrays.last)
def last(data: list[Any], ignore_nodata: bool = True) -> Any:
    """``last``: the last element (the last non-``null`` one by default); ``null`` for an empty array."""
    return _end("last", data, ignore_nodata, from_end=True)


def _sortable(process: str, data: Any) -> list[Any]:
    values = _array(process, data)
    kinds = {"number" if is_number(v) else type(v).__name__ for v in values if v is not None}
    if len(kinds) > 1 or kinds - {"number", "str"}:
        raise ProcessParameterInvalid(process, "data", f"numbers or strings of one kind are expected, got {kinds}")
    return values


def _indices(values: list[Any], asc: bool, nodata: bool | None) -> list[int]:
    valid = sorted((i for i, v in enumerate(values) if v is not None), key=lambda i: values[i], reverse=not asc)
    missing = [i for i, v in enumerate(values) if v is None]
    if nodata is None:
        return valid
    return valid + missing if nodata else missing + valid


@json_values(dask_arrays.order)
def order(data: list[Any], asc: bool = True, nodata: bool | None = None) -> list[int]:
    """``order``: indices that sort ``data`` (stable); ``null`` dropped, or put last/first with ``nodata`` true/false."""
    return _indices(_sortable("order", data), asc, nodata)


@json_values(dask_arrays.sort)
def sort(data: list[Any], asc: bool = True, nodata: bool | None = None) -> list[Any]:
    """``sort``: the sorted elements, ``null`` handled as in ``order``."""
    values = _sortable("sort", data)
    return [values[i] for i in _indices(values, asc, nodata)]


def _vector(values: list[Any]) -> np.ndarray:
    """``values`` as a numpy array for a vectorised callback: numbers as float with NaN for ``null``."""
    if all(v is None or is_number(v) for v in values):
        return np.array([np.nan if v is None else v for v in values], dtype=float)
    return np.array(values, dtype=object)


@json_values(dask_arrays.count)
def count(data: list[Any], condition: Any = None, context: Any = None) -> int:
    """``count``: valid elements (``is_valid``) by default, all with ``condition: true``, else where it is true.

    A callback ``condition`` is called once with ``x`` holding the whole array (numbers as floats, ``null`` as
    NaN), as processes-dask calls callbacks; elements where it returns ``true`` are counted.
    """
    values = _array("count", data)
    if condition is None:
        return sum(1 for v in values if v is not None and not (is_number(v) and not np.isfinite(v)))
    if isinstance(condition, bool):
        return len(values) if condition else 0
    if not callable(condition):
        raise ProcessParameterInvalid("count", "condition", f"null, a boolean or a process is expected, got "
                                      f"{type(condition).__name__}")
    if not values:
        return 0
    result = condition(named_parameters={"x": _vector(values), "context": context})
    return int(np.count_nonzero(np.asarray(result) == True))  # noqa: E712 - element-wise, null/NaN not counted


def _text(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value)


@json_values(dask_text.text_concat)
def text_concat(data: list[Any], separator: Any = "") -> str:
    """``text_concat``: the elements' text (``null``, ``true``, ``1.5`` as JSON writes them) joined by ``separator``."""
    return _text(separator).join(_text(v) for v in _array("text_concat", data))


IMPLEMENTATIONS: dict[str, Callable[..., Any]] = {
    "array_element": array_element, "array_append": array_append, "array_concat": array_concat,
    "array_labels": array_labels, "array_find": array_find, "array_interpolate_linear": array_interpolate_linear,
    "first": first, "last": last, "order": order, "sort": sort, "text_concat": text_concat, "count": count,
    "constant": constant}
"""Process id -> implementation."""
