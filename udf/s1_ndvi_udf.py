# /// script
# dependencies = ["numpy", "xarray", "torch>=2.2"]
# ///
"""openEO UDF: Sentinel-1 VV/VH (+ optional cloud-masked NDVI) → gap-free NDVI with a predictive std.

Input cube dims ``t``, ``bands``, ``y``, ``x``; bands ``VV``, ``VH`` (linear, dB or uint16 compressed dB) and
optionally ``NDVI``. Output bands ``NDVI`` (+ ``NDVI_STD`` with ``include_uncertainty``) on the same labels.
Context keys: ``weights`` (path of a checkpoint; default: the shipped weights), ``include_uncertainty`` (bool),
``s1_units`` (``auto``/``db``/``linear``/``uint16_db``), ``device`` (``auto``/``cpu``/``cuda``), ``batch_size`` (int),
``self_calibration`` (bool, default true: trust weights, gap map, std and S1-only map calibrated on the cube's own kept
NDVI), ``borrowing`` (bool, default true: pixels without any kept NDVI borrow from clear pixels of the cube whose S1
looks alike, see ``udf/borrow.py``).
"""

import xarray

from udf.errors import InvalidContext
from udf.inference import predict_cube
from udf.preprocess import S1_UNITS, check_cube
from udf.weights import check_cube_against, load_checkpoint

CONTEXT_DEFAULTS = {"weights": None, "include_uncertainty": False, "s1_units": "auto", "device": "auto",
                    "batch_size": 4096, "self_calibration": True, "borrowing": True}


def validate_context(context: dict | None) -> dict:
    """Merge ``context`` over the defaults; unknown keys or bad values raise :class:`InvalidContext`."""
    context = dict(context or {})
    unknown = sorted(set(context) - set(CONTEXT_DEFAULTS))
    if unknown:
        raise InvalidContext(f"Unknown UDF context key(s) {unknown}; known keys: {sorted(CONTEXT_DEFAULTS)}.")
    ctx = {**CONTEXT_DEFAULTS, **context}
    if ctx["s1_units"] not in S1_UNITS:
        raise InvalidContext(f"context 's1_units'={ctx['s1_units']!r}; expected one of {S1_UNITS}.")
    if ctx["device"] not in ("auto", "cpu", "cuda") and not str(ctx["device"]).startswith("cuda:"):
        raise InvalidContext(f"context 'device'={ctx['device']!r}; expected 'auto', 'cpu' or 'cuda'.")
    if not isinstance(ctx["batch_size"], int) or isinstance(ctx["batch_size"], bool) or ctx["batch_size"] < 1:
        raise InvalidContext(f"context 'batch_size'={ctx['batch_size']!r}; expected a positive integer.")
    if not isinstance(ctx["self_calibration"], bool):
        raise InvalidContext(f"context 'self_calibration'={ctx['self_calibration']!r}; expected true/false.")
    if not isinstance(ctx["borrowing"], bool):
        raise InvalidContext(f"context 'borrowing'={ctx['borrowing']!r}; expected true/false.")
    if not isinstance(ctx["include_uncertainty"], bool):
        raise InvalidContext(f"context 'include_uncertainty'={ctx['include_uncertainty']!r}; expected true/false.")
    if ctx["weights"] is not None and not isinstance(ctx["weights"], str):
        raise InvalidContext(f"context 'weights'={ctx['weights']!r}; expected a file path or null.")
    return ctx


def apply_datacube(cube: xarray.DataArray, context: dict) -> xarray.DataArray:
    """OpenEO UDF entry: fuse S1 (+ NDVI) into NDVI for every pixel and time step of ``cube`` (the openEO UDF entry)."""
    ctx = validate_context(context)
    if "time" in cube.dims and "t" not in cube.dims:
        cube = cube.rename({"time": "t"})
    cube = check_cube(cube)
    model, meta = load_checkpoint(ctx["weights"])
    check_cube_against(meta, [str(b) for b in cube.coords["bands"].values], ctx["s1_units"])
    return predict_cube(cube, model, meta, s1_units=ctx["s1_units"], include_uncertainty=ctx["include_uncertainty"],
                        batch_size=ctx["batch_size"], device=ctx["device"],
                        self_calibration=ctx["self_calibration"], borrowing=ctx["borrowing"])
