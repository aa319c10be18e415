"""Errors raised by the fusion core, one class per failure.

Every message names what was asked for and what was found, so that a user can fix the input.
"""

__all__ = [
    "BandNotAvailable",
    "CheckpointMismatch",
    "CubeError",
    "DimensionNotAvailable",
    "InvalidContext",
    "InvalidValues",
    "NotEnoughNDVI",
    "S1UnitsError",
    "TooFewTimeSteps",
]


class CubeError(ValueError):
    """Base class of every problem found in an input cube."""


class DimensionNotAvailable(CubeError):
    """The cube lacks a required dimension (``t``, ``bands``, ``y`` or ``x``) or has unexpected ones."""


class BandNotAvailable(CubeError):
    """A required band (``VV``, ``VH``) is missing from the ``bands`` dimension."""


class TooFewTimeSteps(CubeError):
    """The cube has fewer time steps than a temporal model can use."""


class S1UnitsError(CubeError):
    """Sentinel-1 values fit none of the known encodings, or contradict the declared ``s1_units``."""


class InvalidValues(CubeError):
    """Values outside their physical range (e.g. NDVI outside [-1, 1])."""


class InvalidContext(ValueError):
    """A UDF context key is unknown or has an invalid value."""


class CheckpointMismatch(ValueError):
    """A checkpoint does not fit the cube or the code (bands, units, features, format version)."""


class NotEnoughNDVI(CubeError):
    """A cube holds too few valid NDVI observations to train or adapt a model on it."""
