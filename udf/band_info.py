"""Units and long names of the bands the project writes (CF ``units`` / ``long_name`` attributes).

The fusion UDF's bands (``NDVI``, ``NDVI_STD``), the phenology UDF's (``SOS_k`` … ``N_SEASONS``, ``CONF_k`` …,
``SOS_FLOOD_k``) and a model cube's (``VV``, ``VH`` in the cube's S1 units, ``NDVI``). NDVI and ratios are
dimensionless: CF's unit ``"1"``. Dates (``SOS_k`` …) are counts of days since 1970-01-01: unit ``"day"`` with the
epoch in the long name. Not the CF time unit ``"days since 1970-01-01"`` and not ``"days"``: xarray would decode
those bands into datetime64 / timedelta64 on reading, and a band cube read back would lose them.
"""

import re

__all__ = ["BAND_INFO", "PER_SEASON", "band_attrs", "band_info"]

BAND_INFO: dict[str, tuple[str, str]] = {
    "NDVI": ("1", "NDVI (normalised difference vegetation index)"),
    "NDVI_STD": ("1", "predictive standard deviation of NDVI (±1σ)"),
    "N_SEASONS": ("1", "number of growing seasons in the farming year"),
}
"""Band → (units, long name), for bands without a season number."""

PER_SEASON: dict[str, tuple[str, str]] = {
    "SOS": ("day", "start of season {k} (days since 1970-01-01)"),
    "POS": ("day", "peak of season {k} (days since 1970-01-01)"),
    "EOS": ("day", "end of season {k} (days since 1970-01-01)"),
    "LOS": ("day", "length of season {k}"),
    "PEAK": ("1", "smoothed NDVI at the peak of season {k}"),
    "AMP": ("1", "NDVI amplitude of season {k}"),
    "CONF": ("1", "confidence of season {k} (probability that it is real)"),
    "SOS_STD": ("day", "standard deviation of the start of season {k}"),
    "POS_STD": ("day", "standard deviation of the peak of season {k}"),
    "EOS_STD": ("day", "standard deviation of the end of season {k}"),
    "SOS_FLOOD": ("day", "start of season {k} from field flooding, Sentinel-1 (days since 1970-01-01)"),
}
"""Per-season band stem → (units, long name with ``{k}`` the season slot), for bands named ``STEM_k``."""

_S1_UNITS = {"linear": "1", "db": "dB"}
_SEASON_BAND = re.compile(r"^(?P<stem>[A-Z_]+?)_(?P<k>\d+)$")


def band_info(band: str, s1_units: str | None = None) -> dict[str, str] | None:
    """``{"units": …, "long_name": …}`` of a band, or None for a band this project does not define.

    Args:
        band: the band name (``NDVI``, ``SOS_1``, ``VV`` …).
        s1_units: the S1 encoding of ``VV``/``VH`` (``linear`` or ``db``; other values leave them without units).
    """
    if band in BAND_INFO:
        units, name = BAND_INFO[band]
        return {"units": units, "long_name": name}
    if band in ("VV", "VH"):
        s1 = _S1_UNITS.get(str(s1_units).lower())
        scale = {"1": "linear power", "dB": "dB"}.get(s1 or "", "units as read")
        info = {"long_name": f"Sentinel-1 {band} backscatter ({scale})"}
        return {**info, "units": s1} if s1 else info
    match = _SEASON_BAND.match(band)
    if match and match.group("stem") in PER_SEASON:
        units, name = PER_SEASON[match.group("stem")]
        return {"units": units, "long_name": name.format(k=match.group("k"))}
    return None


def band_attrs(bands: list[str], s1_units: str | None = None) -> dict[str, str]:
    """DataArray attributes of a multi-band output: ``units`` when every band shares one, and per-band lists.

    An openEO cube is one array over a ``bands`` dimension, so per-band metadata travel as attributes listing each
    band's units and long name in band order (``band_units``, ``band_long_names``, ``;``-separated); the netCDF
    writer (:func:`udf.ingest.cube_io.cube_to_dataset`) puts them on each band's variable.
    """
    infos = [band_info(b, s1_units) or {} for b in bands]
    units = [i.get("units", "") for i in infos]
    out = {"band_units": ";".join(units), "band_long_names": ";".join(i.get("long_name", "") for i in infos)}
    if len(set(units)) == 1 and units[0]:
        out["units"] = units[0]
    return out
