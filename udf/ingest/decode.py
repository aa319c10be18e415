"""The one decoder of stored raster values: CF scale/offset, ``_Unsigned``, fill values, no-data, compressed dB, NDVI.

Every reader of the project decodes through :class:`Encoding`: netCDF ingest (:mod:`udf.ingest.base`,
:mod:`udf.ingest.composited`), GeoTIFF ingest (:mod:`udf.ingest.geotiff`) and the backend's lazy window reader
(:mod:`local_backend.cubes.lazy_io`, :mod:`local_backend.cubes.readers`). The same file therefore decodes to the same
array whichever reader opens it (``tests/udf/test_decode.py`` checks this for each encoding).

No-data rules, per encoding (``docs/decoding.md`` has the table and the reasons):

- **Declared fill values** are no-data everywhere: ``_FillValue`` and ``missing_value`` (netCDF, zarr; zarr v2's
  ``fill_value``), the GeoTIFF's ``nodata``. A NaN fill adds nothing (NaN is missing anyway).
- **Non-finite values** (NaN, ±inf) of a float band are no-data everywhere: no band holds an infinite quantity.
- **The largest value of an unsigned integer type** (255, 65535, …; native or through ``_Unsigned = "true"``) is
  no-data in **CF sources** (netCDF, zarr) even when undeclared: it is netCDF's default fill value for those types
  (NUG: ``NC_FILL_UBYTE``, ``NC_FILL_USHORT``, ``NC_FILL_UINT``) and the openEO exporter writes it without declaring it
  (``udf/data/sample/belgium_monthly_2020``: 20 000 pixels of ``S2-L2A-B04``/``B08`` stored as 65535). It is not
  no-data in a **GeoTIFF** unless declared: GDAL has no default no-data value, and a value there is a value.
  The default fills of signed types (−32767, −2147483647) are not applied: they lie inside the range of scaled
  integer data (−3.2767 dB at ×1e-4).
- **Compressed dB** (S1 σ⁰ as uint16 ``v`` with dB = 20·log10(v) − 83): 0 and 65535 are no-data, declared or not
  (:func:`compressed_db_to_linear`; the UDF runtime's :func:`udf.preprocess.s1_to_linear` is the formula).
- **S1 backscatter of 0** in any encoding is no-data (:func:`s1_nodata`): zero power is not a measurement.
"""

import base64
import logging
import struct
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import xarray as xr

from udf.preprocess import s1_to_linear

__all__ = ["Encoding", "compressed_db_to_linear", "crs_wkt", "decode_time", "fill_number", "ndvi_from_reflectance",
           "s1_nodata"]

_log = logging.getLogger(__name__)


def fill_number(value: Any) -> float | None:
    """A fill value as a float (xarray stores float fill values of zarr v3 as base64 of a little-endian double)."""
    if value is None:
        return None
    if isinstance(value, (bytes, str)):
        raw = base64.standard_b64decode(value)
        return float(struct.unpack("<d" if len(raw) == 8 else "<f", raw)[0])
    return float(np.asarray(value).ravel()[0])


@dataclass(frozen=True)
class Encoding:
    """How the stored values of one band decode to floats, with NaN for no data (rules: module docstring)."""

    fills: tuple[float, ...] = ()
    """Stored values that mean "no data" (declared ``_FillValue``, ``missing_value``, GeoTIFF ``nodata``)."""
    scale: float = 1.0
    """``scale_factor`` (GeoTIFF: the band's scale)."""
    offset: float = 0.0
    """``add_offset`` (GeoTIFF: the band's offset)."""
    unsigned: bool = False
    """``_Unsigned = "true"``: signed integers on disk are to be read as unsigned."""
    max_is_nodata: bool = False
    """The largest value of an unsigned integer type is no-data (CF sources: netCDF's default fill)."""

    @classmethod
    def from_cf(cls, attrs: Mapping[str, Any], extra_fill: Any = None) -> "Encoding":
        """The encoding of a netCDF or zarr variable from its attributes (plus a fill kept outside them, zarr v2)."""
        candidates = [attrs.get("_FillValue", extra_fill), attrs.get("missing_value")]
        fills = tuple(v for v in (fill_number(c) for c in candidates) if v is not None and not np.isnan(v))
        return cls(fills=fills, scale=float(attrs.get("scale_factor", 1.0)), offset=float(attrs.get("add_offset", 0.0)),
                   unsigned=str(attrs.get("_Unsigned", "")).lower() == "true", max_is_nodata=True)

    @classmethod
    def from_geotiff(cls, nodata: float | None, scale: float = 1.0, offset: float = 0.0) -> "Encoding":
        """The encoding of one GeoTIFF band: its file's ``nodata`` (None or NaN: none), scale and offset."""
        fills = () if nodata is None or not np.isfinite(nodata) else (float(nodata),)
        return cls(fills=fills, scale=float(scale), offset=float(offset))

    def stored(self, raw: np.ndarray) -> np.ndarray:
        """``raw`` with the ``_Unsigned`` view applied (the values the fills and the no-data rules speak of)."""
        raw = np.asarray(raw)
        if self.unsigned and raw.dtype.kind == "i":
            return raw.view(np.dtype(raw.dtype.str.replace("i", "u")))
        return raw

    def decode(self, raw: np.ndarray, dtype: Any = np.float32) -> np.ndarray:
        """Stored values → ``dtype`` (float32 or float64) with scale and offset applied and NaN for no data.

        Scale and offset are applied in float64 and the result rounded once to ``dtype``, so that a float32 reader
        and a float64 reader of the same file agree to the last bit after rounding.
        """
        raw = self.stored(raw)
        if self.scale != 1.0 or self.offset != 0.0:
            out = (raw.astype(np.float64) * self.scale + self.offset).astype(dtype, copy=False)
        else:
            out = raw.astype(dtype)
        for fill in self.fills:
            out[raw == _as_stored(fill, raw.dtype)] = np.nan
        if raw.dtype.kind == "u" and self.max_is_nodata:
            out[raw == np.iinfo(raw.dtype).max] = np.nan
        elif raw.dtype.kind == "f":
            out[~np.isfinite(raw)] = np.nan
        return out


def _as_stored(fill: float, dtype: np.dtype) -> np.ndarray:
    """A fill value in the stored type (an integral fill wraps like C: -1 declared for an ``_Unsigned`` int16 is 65535)."""
    if dtype.kind in "iu" and float(fill).is_integer():
        return np.asarray(int(fill), dtype=np.int64).astype(dtype)
    return np.asarray(fill).astype(dtype)


def s1_nodata(values: np.ndarray) -> np.ndarray:
    """Decoded S1 backscatter with zeros as NaN (zero power is no measurement, in any encoding); a new array."""
    out = np.array(values, copy=True)
    out[out == 0] = np.nan
    return out


def compressed_db_to_linear(values: np.ndarray) -> np.ndarray:
    """WorldCereal/openEO uint16 "compressed dB" (dB = 20·log10(v) − 83) to float32 linear power.

    0, 65535 (and above), negative and non-finite values are no-data (NaN). The formula is the UDF runtime's
    (:func:`udf.preprocess.s1_to_linear`), so that training data and the exported UDF decode alike.
    """
    v = np.asarray(values, dtype=np.float32)
    return s1_to_linear(np.where(v < 0, np.float32(np.nan), v), "uint16_db", check=False)


def ndvi_from_reflectance(red: np.ndarray, nir: np.ndarray, nodata: float | None = None) -> np.ndarray:
    """NDVI = (NIR − red)/(NIR + red), clipped to [-1, 1], as float32.

    Non-finite or non-positive reflectances (and ``nodata`` when given) give NaN. Computed in float32 when both
    inputs are float32 (reflectance needs no more), otherwise in float64.
    """
    dtype = np.float32 if np.asarray(red).dtype == np.float32 and np.asarray(nir).dtype == np.float32 else np.float64
    r, n = np.asarray(red, dtype=dtype), np.asarray(nir, dtype=dtype)
    bad = ~np.isfinite(r) | ~np.isfinite(n) | ~(r > 0) | ~(n > 0)
    if nodata is not None:
        bad |= (r == nodata) | (n == nodata)
    with np.errstate(divide="ignore", invalid="ignore"):
        ndvi = (n - r) / (n + r)
    return np.where(bad, np.nan, np.clip(ndvi, -1.0, 1.0)).astype(np.float32)


def crs_wkt(variables: Mapping[str, Mapping[str, Any]], attrs: Mapping[str, Any] | None = None) -> str | None:
    """The CRS as WKT: from a grid-mapping variable (``crs``/``spatial_ref``) or else the global ``crs``/``crs_wkt``.

    Args:
        variables: attributes of the file's variables, by name (only ``crs`` and ``spatial_ref`` are looked at).
        attrs: the file's global attributes (a PROJ string or EPSG code there is converted to WKT).
    """
    for name in ("crs", "spatial_ref"):
        if name in variables:
            for key in ("crs_wkt", "spatial_ref"):
                if key in variables[name]:
                    return str(variables[name][key])
    for key in ("crs", "crs_wkt"):
        value = (attrs or {}).get(key)
        if isinstance(value, str) and value:
            from pyproj import CRS

            return str(CRS.from_user_input(value.replace("+init=", "")).to_wkt())
    return None


def decode_time(values: np.ndarray, attrs: Mapping[str, Any], name: str) -> np.ndarray:
    """Time labels stored as numbers with CF ``units``/``calendar`` (or already datetimes) as ``datetime64[ns]``."""
    values = np.asarray(values)
    if np.issubdtype(values.dtype, np.datetime64):
        return values.astype("datetime64[ns]")
    encoded = xr.Variable((name,), values, {k: v for k, v in attrs.items() if k in ("units", "calendar")})
    decoded = xr.decode_cf(xr.Dataset(coords={name: encoded}))
    return np.asarray(decoded[name].values).astype("datetime64[ns]")
