"""Naming rules of exported S1/S2 files: band names, dates and orbits in ids, file names and sidecar tables.

Pure rules, no pixel I/O. Earth Engine's ``ImageCollection.toBands()`` names bands ``<system:index>_<band>``;
``ee.Image.cat``/``addBands`` of per-period images gives ``VV, VH, ..., VV_1, VH_1, ...`` (a ``_k`` suffix for the
k-th repeat). Sentinel-1 ids (``S1A_IW_GRDH_1SDV_20191103T223012_..._029739_036497_6B3A``) carry the acquisition time
and the absolute orbit; Sentinel-2 ids (``20191105T025549_20191105T025551_T49MDV``) the sensing time.
"""

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np

from udf.errors import DatesNotFound, UnsupportedLayout

__all__ = ["BandRef", "CANONICAL", "SidecarRow", "canonical_band", "orbit_from_text", "parse_datetime",
           "parse_stack_names", "read_sidecar"]

CANONICAL = {"VV": "VV", "VH": "VH", "B4": "B04", "B04": "B04", "B8": "B08", "B08": "B08", "SCL": "SCL",
             "QA60": "QA60", "probability": "probability", "MSK_CLDPRB": "MSK_CLDPRB"}
"""Band names the ingest uses, mapped to the cube's spelling (GEE ``B4``/``B8`` → ``B04``/``B08``)."""
_OTHER_S2 = {f"B{i}" for i in range(1, 13)} | {f"B{i:02d}" for i in range(1, 13)} | {"B8A", "B10", "B11", "B12"}
_BAND_RE = "|".join(sorted((re.escape(b) for b in set(CANONICAL) | _OTHER_S2), key=len, reverse=True))
_SUFFIX = re.compile(rf"^(?P<band>{_BAND_RE})(?:_(?P<k>\d+))?$")
_PREFIX = re.compile(rf"^(?P<key>.+)_(?P<band>{_BAND_RE})$")
_S1_ID = re.compile(r"(?P<mission>S1[A-D])_\w{2}_\w{4}_\w{4}_\d{8}T\d{6}_\d{8}T\d{6}_(?P<orbit>\d{6})_")
_REL_ORBIT_SHIFT = {"S1A": 73, "S1B": 27, "S1C": 172}
"""Relative orbit = (absolute − shift) mod 175 + 1, per mission (ESA's numbering)."""
_DIRECTION = re.compile(r"(?:^|[_\-.])(?P<dir>ASC|DESC)(?:ENDING)?(?:[_\-]?(?P<rel>\d{1,3}))?(?=$|[_\-.])", re.I)
_DATETIME = re.compile(r"(?<!\d)(\d{8})T(\d{6})(?!\d)")
_DATE = re.compile(r"(?<!\d)(\d{4})-?(\d{2})-?(\d{2})(?!\d)")


def canonical_band(name: str) -> str | None:
    """The cube's spelling of a band the ingest uses, or None for any other band."""
    return CANONICAL.get(name)


@dataclass(frozen=True)
class BandRef:
    """One band of a multi-image stack."""

    position: int
    """0-based band index in the file."""
    key: str
    """Image key: the image id (``<id>_VV`` style) or the repeat index as text (``VV_3`` style; ``"0"`` for ``VV``)."""
    band: str
    """Band name as written in the file (``B4``, ``VV``, ``probability``)."""


def parse_stack_names(names: Sequence[str], path: Path) -> tuple[str, list[BandRef]]:
    """Split the band names of a multi-image stack into images and bands.

    Returns:
        The naming style (``"suffix"`` for ``VV, VV_1, ...`` or ``"prefix"`` for ``<id>_VV``) and one
        :class:`BandRef` per recognised S1/S2 band; other bands (ERA5, elevation, ...) are left out.

    Raises:
        UnsupportedLayout: bands without names, no recognised band, or both styles in one file.
    """
    if not names or all(not n or re.fullmatch(r"(?i)band[_ ]?\d+", n) for n in names):
        raise UnsupportedLayout(
            f"'{path}' has {len(names)} bands without names; expected Earth Engine band names (VV, VH, B4, B8, SCL, "
            "... as 'VV', 'VV_1', ... or '<image id>_VV'). A cropharvest stack without names is read with "
            "--layout cropharvest."
        )
    refs: dict[str, list[BandRef]] = {"suffix": [], "prefix": []}
    for pos, name in enumerate(names):
        if m := _SUFFIX.match(name):
            refs["suffix"].append(BandRef(pos, m["k"] or "0", m["band"]))
        elif m := _PREFIX.match(name):
            refs["prefix"].append(BandRef(pos, m["key"], m["band"]))
    if refs["suffix"] and refs["prefix"]:
        raise UnsupportedLayout(
            f"'{path}' mixes band names of two styles ({names[refs['suffix'][0].position]!r} and "
            f"{names[refs['prefix'][0].position]!r}); expected either 'VV, VV_1, ...' or '<image id>_VV' throughout."
        )
    style = "suffix" if refs["suffix"] else "prefix"
    if not refs[style]:
        raise UnsupportedLayout(
            f"No Sentinel-1/2 band in '{path}': band names {_preview(names)}; expected VV, VH, B4/B04, B8/B08 and a "
            "mask band (SCL, QA60, probability), alone, with a '_k' suffix or an '<image id>_' prefix."
        )
    return style, refs[style]


def _preview(names: Sequence[str], n: int = 8) -> str:
    shown = ", ".join(repr(x) for x in names[:n])
    return f"[{shown}{', ...' if len(names) > n else ''}] ({len(names)} bands)"


def parse_datetime(text: str) -> np.datetime64 | None:
    """The first ``YYYYMMDDTHHMMSS`` or ``YYYY-MM-DD``/``YYYYMMDD`` in ``text``, or None."""
    for pattern, fmt in ((_DATETIME, "{0}-{1}-{2}T{3}:{4}:{5}"), (_DATE, "{0}-{1}-{2}")):
        for m in pattern.finditer(text):
            digits = "".join(m.groups())
            parts = (digits[:4], digits[4:6], digits[6:8], digits[8:10], digits[10:12], digits[12:14])
            try:
                return np.datetime64(fmt.format(*parts), "s")
            except ValueError:
                continue
    return None


def orbit_from_text(text: str) -> str | None:
    """Orbit label from a Sentinel-1 product id (``REL032``) or an ``ASC``/``DESC[_NNN]`` token, else None.

    The relative orbit of S1A/S1B/S1C follows ESA's numbering; for other missions the label is the absolute orbit
    modulo 175 (the same track for that mission, not a relative orbit number).
    """
    if m := _S1_ID.search(text):
        absolute = int(m["orbit"])
        shift = _REL_ORBIT_SHIFT.get(m["mission"])
        return f"REL{(absolute - shift) % 175 + 1:03d}" if shift is not None else f"{m['mission']}_TRACK{absolute % 175}"
    if m := _DIRECTION.search(text):
        direction = m["dir"].upper()
        return f"{direction}_{int(m['rel']):03d}" if m["rel"] else direction
    return None


@dataclass(frozen=True)
class SidecarRow:
    """One image or period of a sidecar table."""

    key: str | None
    date: np.datetime64
    orbit: str | None


def read_sidecar(path: str | Path) -> list[SidecarRow]:
    """Read the dates (and ids, orbits) of a stack's images from a CSV or JSON sidecar.

    Columns (CSV header or JSON keys, one row per image in band order): ``date`` (ISO date/time) or
    ``system:time_start`` (ms since 1970); optional ``id`` or ``system:index``; optional ``orbit``, or Earth Engine's
    ``orbitProperties_pass`` with ``relativeOrbitNumber_start``. JSON: a list of rows or ``{"images": [...]}``.

    Raises:
        DatesNotFound: the file is missing, empty, or a row has no readable date.
    """
    path = Path(path)
    if not path.exists():
        raise DatesNotFound(f"Sidecar '{path}' does not exist.")
    rows = _sidecar_rows(path)
    if not rows:
        raise DatesNotFound(f"Sidecar '{path}' lists no image.")
    return [_sidecar_row(r, i, path) for i, r in enumerate(rows)]


def _sidecar_rows(path: Path) -> list[dict]:
    if path.suffix.lower() == ".json":
        content = json.loads(path.read_text(encoding="utf-8"))
        rows = content.get("images") if isinstance(content, dict) else content
        if not isinstance(rows, list) or not all(isinstance(r, dict) for r in rows):
            raise DatesNotFound(f"Sidecar '{path}' is not a list of objects nor {{\"images\": [...]}}.")
        return rows
    import pandas as pd

    return pd.read_csv(path, dtype=str, keep_default_na=False).to_dict("records")


def _sidecar_row(row: dict, i: int, path: Path) -> SidecarRow:
    key = row.get("id", row.get("system:index"))
    if "date" in row and str(row["date"]).strip():
        try:
            date = np.datetime64(str(row["date"]).strip().replace("Z", ""), "s")
        except ValueError as exc:
            raise DatesNotFound(f"Sidecar '{path}' row {i}: date {row['date']!r} is not an ISO date.") from exc
    elif "system:time_start" in row and str(row["system:time_start"]).strip():
        date = np.datetime64(int(float(row["system:time_start"])), "ms").astype("datetime64[s]")
    else:
        raise DatesNotFound(f"Sidecar '{path}' row {i} has no 'date' nor 'system:time_start': {row}.")
    orbit = str(row["orbit"]).strip() if str(row.get("orbit", "")).strip() else None
    if orbit is None and str(row.get("orbitProperties_pass", "")).strip():
        rel = str(row.get("relativeOrbitNumber_start", "")).strip()
        passing = str(row["orbitProperties_pass"]).strip().upper()
        orbit = {"ASCENDING": "ASC", "DESCENDING": "DESC"}.get(passing, passing)
        orbit = f"{orbit}_{int(float(rel)):03d}" if rel else orbit
    return SidecarRow(str(key).strip() if key is not None and str(key).strip() else None, date, orbit)
