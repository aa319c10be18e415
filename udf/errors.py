"""Errors raised by the fusion core, one class per failure.

Every message names what was asked for and what was found, so that a user can fix the input.
"""

__all__ = [
    "BandNotAvailable",
    "CheckpointMismatch",
    "CloudMaskMissing",
    "CorpusError",
    "CubeError",
    "CubeTooSmall",
    "DatesNotFound",
    "DeviceNotAvailable",
    "DimensionNotAvailable",
    "GridMismatch",
    "InvalidContext",
    "InvalidValues",
    "NotEnoughNDVI",
    "OrbitsNotComparable",
    "S1UnitsError",
    "TooFewTimeSteps",
    "USER_ERRORS",
    "UnreadableFile",
    "UnsupportedLayout",
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


class CubeTooSmall(CubeError):
    """A cube has too few pixels for the asked spatial split into training, validation and test blocks."""


class NotEnoughNDVI(CubeError):
    """A cube holds too few valid NDVI observations on the pixels a model would be trained or validated on."""


class UnreadableFile(ValueError):
    """A file exists but cannot be read in the expected format (e.g. not netCDF)."""


class InvalidContext(ValueError):
    """A UDF context key is unknown or has an invalid value."""


class CheckpointMismatch(ValueError):
    """A checkpoint does not fit the cube or the code (bands, units, features, format version)."""


class UnsupportedLayout(CubeError):
    """An input file or folder is in none of the layouts ``s1ndvi cube`` reads (band names, files, folders)."""


class DatesNotFound(CubeError):
    """The acquisition or period dates of an input cannot be determined (no sidecar, no date in ids or names)."""


class CloudMaskMissing(CubeError):
    """Sentinel-2 input carries no cloud information (SCL, QA60, probability) and ``--no-cloud-mask`` was not given."""


class GridMismatch(CubeError):
    """Rasters are not on the same pixel grid (CRS, transform, size); the message describes both.

    Input files of an ingest, or a peer result and the cube (:mod:`comparison` raises it too and re-exports it).
    """


class OrbitsNotComparable(CubeError):
    """Sentinel-1 orbits cannot be normalised to each other (orbit labels partly missing, too few close pairs)."""


class CorpusError(ValueError):
    """A training corpus folder or site that does not exist or holds no usable source."""


class DeviceNotAvailable(RuntimeError):
    """A torch device was asked for (e.g. ``cuda``) that this machine does not have."""


USER_ERRORS: tuple[type[Exception], ...] = (CubeError, InvalidContext, CheckpointMismatch, UnreadableFile,
                                             DeviceNotAvailable, CorpusError)
"""Errors caused by the user's input: the ``s1ndvi`` command line prints their message on one line (exit status 2)
instead of a traceback."""
