"""Sentinel-2 cloud masks and NDVI from reflectance, as numpy rules applied block by block.

Mask bands understood:

- ``SCL`` (L2A scene classification): classes 4 (vegetation), 5 (bare soil), 6 (water) are clear;
- ``QA60`` (L1C/L2A bit mask): bit 10 (opaque cloud) or bit 11 (cirrus) set is cloudy. ESA left it empty for
  scenes from 2022-01-25 on (processing baseline 04.00), so it then flags nothing;
- ``probability`` (s2cloudless, Earth Engine ``COPERNICUS/S2_CLOUD_PROBABILITY``) or ``MSK_CLDPRB`` (Sen2Cor):
  cloud probability in percent; above the threshold is cloudy.

Reflectance may be scaled (×10000 or 0–1): NDVI does not depend on the scale, but it does on an additive offset,
which is removed first (Sentinel-2 L2A from processing baseline 04.00 adds 1000 unless harmonised).
"""

import numpy as np

from udf.errors import CloudMaskMissing
from udf.ingest.base import dilate, scl_clear
from udf.ingest.decode import ndvi_from_reflectance

__all__ = ["MASK_BANDS", "choose_mask", "clear_sky", "describe_mask", "ndvi_block"]

MASK_BANDS = {"scl": ("SCL",), "probability": ("probability", "MSK_CLDPRB"), "qa60": ("QA60",)}
"""Mask kind → band names that carry it, in order of preference."""
_QA60_CLOUD_BITS = (1 << 10) | (1 << 11)


def choose_mask(bands: list[str], requested: str, no_cloud_mask: bool, where: str) -> tuple[str, str | None]:
    """Pick the mask kind and band for an S2 input.

    Args:
        bands: band names present in the input.
        requested: ``auto`` (SCL, then probability, then QA60) or one of ``scl``, ``probability``, ``qa60``.
        no_cloud_mask: the user accepts S2 without a mask (``--no-cloud-mask``).
        where: the input, for messages.

    Returns:
        ``(kind, band)``; ``("none", None)`` when ``no_cloud_mask``.

    Raises:
        CloudMaskMissing: the requested mask (or, for ``auto``, any mask) is absent and ``no_cloud_mask`` is False.
    """
    if no_cloud_mask:
        return "none", None
    kinds = list(MASK_BANDS) if requested == "auto" else [requested]
    if requested != "auto" and requested not in MASK_BANDS:
        raise ValueError(f"Unknown S2 mask {requested!r}; expected auto, {', '.join(MASK_BANDS)}.")
    for kind in kinds:
        for band in MASK_BANDS[kind]:
            if band in bands:
                return kind, band
    wanted = [b for k in kinds for b in MASK_BANDS[k]]
    raise CloudMaskMissing(
        f"S2 input {where} has no cloud information: bands {sorted(bands)}, expected one of {wanted}. Without a "
        "mask, clouds enter the NDVI as low values (an L1C TOA series without a mask peaked near 0.6 over rice). "
        "Export SCL (L2A), QA60 or the s2cloudless 'probability' band; or pass --no-cloud-mask to accept it, and "
        "the cube will say that its NDVI may be cloud-contaminated."
    )


def describe_mask(kind: str, band: str | None, threshold: float, dilation: int) -> str:
    """The ``ndvi_cloud_mask`` attribute of the cube."""
    grown = f", clouds grown by {dilation} px" if dilation else ""
    if kind == "scl":
        return f"SCL classes 4, 5, 6 kept{grown}"
    if kind == "qa60":
        return f"QA60 bits 10 (opaque) and 11 (cirrus) removed{grown}"
    if kind == "probability":
        return f"{band} cloud probability <= {threshold:g} % kept{grown}"
    return "none"


def clear_sky(kind: str, mask: np.ndarray | None, threshold: float, dilation: int) -> np.ndarray | None:
    """Boolean clear-sky mask ``(t, y, x)`` of a block (None for kind ``none``); NaN mask values are not clear."""
    if kind == "none" or mask is None:
        return None
    if kind == "scl":
        return scl_clear(mask, dilation)
    finite = np.isfinite(mask)
    if kind == "qa60":
        cloudy = (np.nan_to_num(mask, nan=0).astype(np.int64) & _QA60_CLOUD_BITS) != 0
    elif kind == "probability":
        cloudy = np.nan_to_num(mask, nan=0) > threshold
    else:
        raise ValueError(f"Unknown mask kind {kind!r}.")
    if dilation > 0:
        cloudy = dilate(cloudy, dilation)
    return finite & ~cloudy


def ndvi_block(red: np.ndarray, nir: np.ndarray, mask: np.ndarray | None, kind: str, threshold: float,
               dilation: int, offset: np.ndarray) -> np.ndarray:
    """NDVI = (NIR − red)/(NIR + red) of one block, NaN where cloudy or without a positive reflectance.

    Args:
        red: ``(t, y, x)`` B04 as stored (NaN = no data).
        nir: ``(t, y, x)`` B08 as stored.
        mask: ``(t, y, x)`` mask band values, or None.
        kind: ``scl``, ``qa60``, ``probability`` or ``none``.
        threshold: cloud probability threshold in percent (kind ``probability``).
        dilation: pixels by which clouds are grown.
        offset: ``(t,)`` additive offset removed from both bands first (1000 for un-harmonised baseline-04.00 L2A).

    Returns:
        float32 ``(t, y, x)`` NDVI in [-1, 1] (computed in float32: reflectance needs no more).
    """
    off = offset.astype(np.float32)[:, None, None]
    r = red.astype(np.float32) - off
    n = nir.astype(np.float32) - off
    ndvi = ndvi_from_reflectance(r, n)
    clear = clear_sky(kind, mask, threshold, dilation)
    if clear is not None:
        ndvi[~clear] = np.nan
    return ndvi
