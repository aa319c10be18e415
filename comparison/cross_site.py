"""Cross-site check: a model trained on one site, scored on another it never saw (DESIGN §4).

The second site is the embedded Belgian monthly cube (2020-11 → 2021-10, 100 × 100 px). Its grid is monthly, outside
the 5–16-day grids the model was trained on, so this is a stress test of both site and grid transfer. The model is
not retrained; Whittaker's λ is chosen on the site's own training blocks (an advantage the DL model does not get);
MOGPR fits each scored pixel on its own; all methods are scored on the same test pixels and hidden values.
"""

from __future__ import annotations

import logging
from typing import Callable, Optional

import xarray as xr

from comparison.compare import CompareOptions, run_comparison
from comparison.methods import dl_method
from udf.ingest import build_cube, load_s1, load_s2_ndvi
from udf.model import FusionNet
from udf.protocols import spatial_block_split
from udf.sample import CROSS_SITE_FILE

_log = logging.getLogger(__name__)

__all__ = ["cross_site_cube", "run_cross_site"]

SITE = "Belgium 100x100 px, monthly composites 2020-11..2021-10 (never seen in training)"


def cross_site_cube() -> xr.DataArray:
    """The Belgian monthly cube as ``(t, bands[VV, VH, NDVI], y, x)`` with linear S1 (composites, no SCL)."""
    s1 = load_s1(CROSS_SITE_FILE)
    ndvi = load_s2_ndvi(CROSS_SITE_FILE, s1, use_scl=False)
    return build_cube(s1, ndvi, period=None)


def run_cross_site(model: FusionNet, meta: dict, seed: int = 0, max_pixels: Optional[int] = 400,
                   mogpr: bool = True, progress: Optional[Callable[[str], None]] = None,
                   pixel_progress: Optional[Callable[[int, int], None]] = None) -> tuple[dict, dict, dict, xr.DataArray]:
    """Score the model, MOGPR and the baselines on the second site's test blocks.

    Args:
        model: the trained network (trained elsewhere).
        meta: its checkpoint metadata.
        seed: seed of the split, λ choice, subsample and protocols.
        max_pixels: scored test pixels (a seeded subsample, the same for every method).
        mogpr: also run local MOGPR on the scored pixels.
        progress: step callback.
        pixel_progress: MOGPR's ``(done, total)`` pixels.

    Returns:
        ``payload`` (site, split, λ, metrics), predictions, protocols and the cube (for figures).
    """
    cube = cross_site_cube()
    split = spatial_block_split((cube.sizes["y"], cube.sizes["x"]), block=20, seed=seed)
    opts = CompareOptions(mogpr="local" if mogpr else None, max_pixels=max_pixels, block=20, seed=seed,
                          baselines=("Linear", "Whittaker"), extra={"site": SITE})
    payload, predictions, protocols = run_comparison(cube, opts, dl={"DL": dl_method(model, meta)}, split=split,
                                                     progress=progress, pixel_progress=pixel_progress)
    return payload, predictions, protocols, cube
