"""Input checks and Sentinel-1 decoding (the model's features are built in torch: :mod:`udf.features`).

Pure numpy/xarray rules, no I/O; float32 throughout, so that decoding a block never copies it to float64. The cube
contract is docs/DESIGN.md §1: dims ``t``, ``bands``, ``y``, ``x``; S1 bands ``VV`` and ``VH`` in one of three encodings
(linear power, dB, uint16 "compressed dB"); optional ``NDVI`` band.
"""

import logging

import numpy as np
import xarray as xr

from udf.errors import BandNotAvailable, DimensionNotAvailable, InvalidValues, S1UnitsError, TooFewTimeSteps

_log = logging.getLogger(__name__)

RasterCube = xr.DataArray
CUBE_DIMS = ("t", "bands", "y", "x")
S1_BANDS = ("VV", "VH")
NDVI_BAND = "NDVI"
S1_UNITS = ("auto", "db", "linear", "uint16_db")
_SAMPLE_VALUES = 1_000_000
"""Values sampled (evenly strided) to decide or check S1 units: bounded work and memory whatever the cube size."""

_UINT16_NODATA = 65535
_DB_RANGE = (-60.0, 30.0)
_LINEAR_RANGE = (0.0, 30.0)


def check_cube(cube: RasterCube, min_steps: int = 2) -> RasterCube:
    """Check dims and bands of a model cube and return it in ``(t, bands, y, x)`` order.

    Args:
        cube: the input cube; must have exactly the dims ``t``, ``bands``, ``y``, ``x``.
        min_steps: the fewest time steps accepted.

    Raises:
        DimensionNotAvailable: a dim is missing or an extra one is present.
        BandNotAvailable: ``VV`` or ``VH`` is missing.
        TooFewTimeSteps: fewer than ``min_steps`` labels along ``t``.
    """
    missing = [d for d in CUBE_DIMS if d not in cube.dims]
    extra = [d for d in cube.dims if d not in CUBE_DIMS]
    if missing or extra:
        raise DimensionNotAvailable(
            f"Cube dims {tuple(cube.dims)} do not match the expected {CUBE_DIMS}: "
            f"missing {missing}, unexpected {extra}."
        )
    bands = [str(b) for b in cube.coords["bands"].values] if "bands" in cube.coords else []
    absent = [b for b in S1_BANDS if b not in bands]
    if absent:
        raise BandNotAvailable(f"Band(s) {absent} not found in the cube's bands {bands}; the model needs VV and VH.")
    if cube.sizes["t"] < min_steps:
        raise TooFewTimeSteps(
            f"The cube has {cube.sizes['t']} time step(s) along 't'; the temporal model needs at least {min_steps}."
        )
    return cube.transpose(*CUBE_DIMS)


def sample_values(values: np.ndarray, limit: int = _SAMPLE_VALUES) -> np.ndarray:
    """An evenly strided sample of at most ``limit`` finite, non-zero values (float64), without copying the array."""
    flat = np.asarray(values).reshape(-1)
    step = max(1, flat.size // limit)
    picked = flat[::step].astype(np.float64)
    return picked[np.isfinite(picked) & (picked != 0)]


def detect_s1_units(vv: np.ndarray, vh: np.ndarray, dtype: np.dtype | None = None) -> str:
    """Decide the encoding of S1 values from their dtype and range.

    Args:
        vv: VV values, any shape.
        vh: VH values, same shape.
        dtype: the original dtype when the values were cast (openEO casts cubes to float64).

    Returns:
        ``"linear"``, ``"db"`` or ``"uint16_db"``.

    Raises:
        S1UnitsError: no valid value, or the range fits none of the encodings.
    """
    vals = np.concatenate([sample_values(vv), sample_values(vh)])
    if vals.size == 0:
        raise S1UnitsError("VV and VH hold no valid value (all NaN, zero or infinite): cannot decide s1_units.")
    dtype = np.dtype(dtype) if dtype is not None else np.asarray(vv).dtype
    lo, med, hi = np.percentile(vals, [0.5, 50, 99.5])
    integral = bool(np.all(vals == np.round(vals)))
    if (np.issubdtype(dtype, np.integer) or integral) and lo >= 1 and hi <= _UINT16_NODATA and med > 100:
        units = "uint16_db"
    elif _LINEAR_RANGE[0] < lo and hi <= _LINEAR_RANGE[1] and med < 1.0:
        units = "linear"
    elif _DB_RANGE[0] <= lo and hi <= _DB_RANGE[1] and med < 0:
        units = "db"
    else:
        raise S1UnitsError(
            f"S1 values (0.5/50/99.5 percentiles {lo:.4g}/{med:.4g}/{hi:.4g}, dtype {dtype}) fit none of the known "
            "encodings: linear power (0..30, median < 1), dB (-60..30, median < 0) or uint16 compressed dB "
            "(integers 1..65534). Set context 's1_units' explicitly or fix the input."
        )
    _log.info("s1_units=auto decided %r (percentiles %.4g/%.4g/%.4g, dtype %s)", units, lo, med, hi, dtype)
    return units


def _check_declared_units(vals: np.ndarray, units: str) -> None:
    if vals.size == 0:
        return
    lo, med, hi = np.percentile(vals, [0.5, 50, 99.5])
    if units == "linear" and lo < 0:
        raise S1UnitsError(
            f"s1_units='linear' but S1 holds negative values (0.5 percentile {lo:.4g}): these look like dB."
        )
    if units == "db" and lo > 0 and med < 1.0:
        raise S1UnitsError(
            f"s1_units='db' but all S1 values are positive with median {med:.4g}: these look like linear power."
        )
    if units == "db" and (lo < _DB_RANGE[0] or hi > _DB_RANGE[1]):
        raise S1UnitsError(f"s1_units='db' but S1 values span {lo:.4g}..{hi:.4g}, outside {_DB_RANGE} dB.")
    if units == "uint16_db" and (lo < 0 or hi > _UINT16_NODATA or not np.all(vals == np.round(vals))):
        raise S1UnitsError(
            f"s1_units='uint16_db' but S1 values span {lo:.4g}..{hi:.4g} or are not integers; expected 1..65534."
        )


def check_s1_units(vv: np.ndarray, vh: np.ndarray, units: str) -> None:
    """Raise :class:`S1UnitsError` when a sample of the values contradicts the declared ``units``."""
    if units not in S1_UNITS or units == "auto":
        raise S1UnitsError(f"Unknown S1 units {units!r}; expected one of {S1_UNITS[1:]}.")
    vals = np.concatenate([sample_values(vv), sample_values(vh)])
    if units == "uint16_db":
        vals = vals[vals < _UINT16_NODATA]
    _check_declared_units(vals, units)


def s1_to_linear(values: np.ndarray, units: str, check: bool = True) -> np.ndarray:
    """Convert S1 backscatter to linear power (float32), with NaN for no-data.

    Zeros, ±inf, NaN and (for ``uint16_db``) 65535 are no-data, never backscatter.

    Args:
        values: backscatter in ``units``, any shape and dtype.
        units: ``"linear"``, ``"db"`` or ``"uint16_db"`` (dB = 20·log10(v) − 83).
        check: check a sample of the values against ``units`` first (skip when checked once for a whole cube).

    Returns:
        float32 linear power, same shape, NaN where no data.
    """
    if units not in S1_UNITS or units == "auto":
        raise S1UnitsError(f"Unknown S1 units {units!r}; expected one of {S1_UNITS[1:]}.")
    if check:
        check_s1_units(values, values[:0], units)
    v = np.asarray(values, dtype=np.float32)
    bad = ~np.isfinite(v) | (v == 0)
    if units == "uint16_db":
        bad |= v >= _UINT16_NODATA
    v = np.where(bad, np.float32(np.nan), v)
    with np.errstate(divide="ignore", invalid="ignore"):
        if units == "db":
            lin = np.power(np.float32(10.0), v / np.float32(10.0))
        elif units == "uint16_db":
            lin = np.square(v) * np.float32(10.0 ** -8.3)  # 10^((20·log10(v) − 83)/10) = v²·10^-8.3
        else:
            lin = v
    return lin.astype(np.float32, copy=False)


def check_ndvi(ndvi: np.ndarray, tolerance: float = 1e-3) -> np.ndarray:
    """Return NDVI as float32 with NaN kept; raise if any finite value is outside [-1, 1].

    Raises:
        InvalidValues: NDVI outside [-1, 1] (e.g. reflectance or scaled integers passed as NDVI).
    """
    arr = np.asarray(ndvi, dtype=np.float32)
    finite = arr[np.isfinite(arr)]
    if finite.size and (finite.min() < -1 - tolerance or finite.max() > 1 + tolerance):
        raise InvalidValues(
            f"Band NDVI spans {finite.min():.4g}..{finite.max():.4g}; expected values in [-1, 1] (NaN where cloudy)."
        )
    arr = np.where(np.isinf(arr), np.nan, arr)
    return np.clip(arr, -1.0, 1.0)


def to_db(linear: np.ndarray) -> np.ndarray:
    """10·log10 of linear power; NaN stays NaN."""
    with np.errstate(divide="ignore", invalid="ignore"):
        return (10.0 * np.log10(linear)).astype(np.float32)


def rvi(vv_lin: np.ndarray, vh_lin: np.ndarray) -> np.ndarray:
    """Radar vegetation index 4·VH/(VV + VH) on **linear** power (never on dB); NaN where either is missing."""
    with np.errstate(invalid="ignore", divide="ignore"):
        out = 4.0 * vh_lin / (vv_lin + vh_lin)
    return np.where(np.isfinite(out), out, np.nan).astype(np.float32)


def times_to_days(labels: np.ndarray) -> np.ndarray:
    """Convert ``t`` labels (datetime64 or date strings) to float days since 1970-01-01."""
    t = np.asarray(labels)
    if not np.issubdtype(t.dtype, np.datetime64):
        try:
            t = t.astype("datetime64[ns]")
        except (ValueError, TypeError) as exc:
            raise InvalidValues(f"Labels of dimension 't' are not dates: {t[:3].tolist()}...") from exc
    return (t.astype("datetime64[s]").astype(np.int64) / 86400.0).astype(np.float64)


def check_times(days: np.ndarray) -> np.ndarray:
    """Return ``days`` ``(T,)`` (float64) if strictly increasing; raise :class:`InvalidValues` otherwise."""
    days = np.asarray(days, dtype=np.float64)
    if days.size > 1 and np.any(np.diff(days) <= 0):
        bad = int(np.flatnonzero(np.diff(days) <= 0)[0])
        raise InvalidValues(f"Time labels along 't' must be strictly increasing; step {bad + 1} "
                            f"({np.datetime64(int(days[bad + 1] * 86400), 's')}) does not follow step {bad} "
                            f"({np.datetime64(int(days[bad] * 86400), 's')}).")
    return days
