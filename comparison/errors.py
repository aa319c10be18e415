"""Errors of the comparison harness: one class per failure, each message naming what was asked and what exists."""

from __future__ import annotations

from udf.errors import GridMismatch  # one definition (udf.errors); re-exported: comparison raises it too

__all__ = [
    "USER_ERRORS",
    "OptionalDependencyMissing",
    "MOGPRInputError",
    "BandNotFound",
    "UnknownResultLayout",
    "NoMatchingDates",
    "GridMismatch",
    "NoOverlap",
]


class OptionalDependencyMissing(ImportError):
    """An optional dependency (GPy, FuseTS, ...) is not installed; the message holds the install recipe."""


class MOGPRInputError(ValueError):
    """Arrays given to MOGPR have inconsistent shapes, non-finite times or unknown options."""


class BandNotFound(KeyError):
    """A band asked for is not in the cube or file; the message lists the bands that exist."""

    def __str__(self) -> str:  # KeyError quotes its message; keep it readable.
        return str(self.args[0]) if self.args else ""


class UnknownResultLayout(ValueError):
    """A peer result file has a band/variable layout that no reader recognises; the message lists what it holds."""


class NoMatchingDates(ValueError):
    """Two time series to be scored against each other share no date; the message gives both date ranges."""


class NoOverlap(ValueError):
    """A cube's valid S1 and S2 observations do not overlap in time (or one is empty); the message gives both ranges."""


USER_ERRORS: tuple[type[Exception], ...] = (OptionalDependencyMissing, MOGPRInputError, BandNotFound,
                                            UnknownResultLayout, NoMatchingDates, GridMismatch, NoOverlap)
"""Errors caused by the user's input or setup: the ``s1ndvi`` command line prints them on one line (exit status 2)."""
