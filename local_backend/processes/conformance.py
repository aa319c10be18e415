"""Process implementations that make this backend follow the openEO process specifications for JSON values.

The families (:mod:`~local_backend.processes.arithmetic`, :mod:`~local_backend.processes.comparison`,
:mod:`~local_backend.processes.logic`, :mod:`~local_backend.processes.arrays`,
:mod:`~local_backend.processes.statistics`) override processes-dask's implementations of the same ids for
numbers, booleans, strings, ``null`` and plain arrays, and delegate arrays and cubes to them. Their literal
arguments reach them unparsed (:mod:`~local_backend.processes.literals`). Measured with the official
openeo-test-suite: see docs/backend.md.
"""

from typing import Any, Callable

from local_backend.processes import arithmetic, arrays, comparison, logic, statistics

__all__ = ["implementations"]


def implementations() -> dict[str, Callable[..., Any]]:
    """Process id -> implementation, for every process overridden for JSON values."""
    found: dict[str, Callable[..., Any]] = {}
    for family in (arithmetic, comparison, logic, arrays, statistics):
        overlap = set(found) & set(family.IMPLEMENTATIONS)
        if overlap:
            raise RuntimeError(f"Processes {sorted(overlap)} implemented twice (in {family.__name__} too).")
        found.update(family.IMPLEMENTATIONS)
    return found
