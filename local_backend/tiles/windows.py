"""Spatial tiles (with overlap) and running a UDF on one labelled tile; the tiled run is :mod:`local_backend.tiles.jobs`."""

import logging
import traceback
from dataclasses import dataclass

import xarray as xr

from local_backend.errors import UdfRuntimeError

_log = logging.getLogger(__name__)

CUBE_ORDER = ("t", "bands", "y", "x")


@dataclass(frozen=True)
class Window:
    """One tile along one axis: what is read (core plus overlap) and where the core sits in it."""

    read: slice
    """Index range read from the input (core plus overlap, clipped to the cube)."""
    core_offset: int
    """Start of the core inside the read range."""
    core_size: int
    """Length of the core (kept in the output)."""


def windows(n: int, size: int, overlap: int) -> list[Window]:
    """Tile ``n`` pixels into cores of ``size`` with ``overlap`` pixels read on each side."""
    out = []
    for start in range(0, n, max(size, 1)):
        lo, hi = max(0, start - overlap), min(n, start + size + overlap)
        out.append(Window(slice(lo, hi), start - lo, min(size, n - start)))
    return out


def run_udf_on_array(cube: xr.DataArray, code: str, context: dict | None) -> xr.DataArray:
    """Run UDF ``code`` on one labelled cube exactly as openEO's UDF runtime does (``run_udf_code``).

    Raises:
        UdfRuntimeError: whatever the UDF raised, as text (exception classes defined inside the UDF cannot cross
            process boundaries).
    """
    from openeo.udf import UdfData, XarrayDataCube
    from openeo.udf.run_code import run_udf_code

    order = [d for d in CUBE_ORDER if d in cube.dims] + [d for d in cube.dims if d not in CUBE_ORDER]
    data = UdfData(datacube_list=[XarrayDataCube(cube.transpose(*order))], user_context=dict(context or {}))
    try:
        result = run_udf_code(code=code, data=data)
    except Exception as exc:  # noqa: BLE001 - any UDF failure is reported to the user, with its type and message
        detail = "".join(traceback.format_exception_only(type(exc), exc)).strip()
        raise UdfRuntimeError(detail) from None
    cubes = result.get_datacube_list() or []
    if len(cubes) != 1:
        raise UdfRuntimeError(f"the UDF must return exactly one data cube, it returned {len(cubes)}")
    return cubes[0].get_array()
