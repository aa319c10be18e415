"""Cross-site check: a model trained on one site, scored on another it never saw (DESIGN §4).

The second site is the embedded Belgian monthly cube (2020-11 → 2021-10, 100 × 100 px). Its grid is monthly, outside
the 5–16-day grids the model was trained on, so this is a stress test of both site and grid transfer. The model is
not retrained; Whittaker's λ is chosen on the site's own training blocks (an advantage the DL model does not get);
all methods are scored on the same test blocks and hidden values.
"""

import logging

import numpy as np
import xarray as xr

from comparison.baselines import choose_whittaker_lambda
from comparison.evaluate import evaluate
from comparison.methods import dl_method, linear_method, whittaker_method
from comparison.protocols import make_protocols, spatial_block_split
from udf.ingest import build_cube, load_s1, load_s2_ndvi
from udf.model import FusionNet
from udf.preprocess import times_to_days
from udf.sample import CROSS_SITE_FILE

_log = logging.getLogger(__name__)

__all__ = ["cross_site_cube", "run_cross_site"]


def cross_site_cube() -> xr.DataArray:
    """The Belgian monthly cube as ``(t, bands[VV, VH, NDVI], y, x)`` with linear S1 (composites, no SCL)."""
    s1 = load_s1(CROSS_SITE_FILE)
    ndvi = load_s2_ndvi(CROSS_SITE_FILE, s1, use_scl=False)
    return build_cube(s1, ndvi, period=None)


def run_cross_site(model: FusionNet, meta: dict, seed: int = 0, max_lambda_pixels: int = 800) -> dict:
    """Score the model, linear interpolation and Whittaker on the second site's test blocks.

    Args:
        model: the trained network (trained elsewhere).
        meta: its checkpoint metadata.
        seed: seed of the split, λ choice and protocols.
        max_lambda_pixels: training pixels used to choose Whittaker's λ (a random subset, for speed).

    Returns:
        Protocol → method → metrics (see :func:`comparison.evaluate.evaluate`), plus the split and λ.
    """
    cube = cross_site_cube()
    ndvi, days = cube.sel(bands="NDVI").values, times_to_days(cube["t"].values)
    split = spatial_block_split((cube.sizes["y"], cube.sizes["x"]), block=20, seed=seed)
    rng = np.random.default_rng(seed)
    lam_pixels = split.train & (rng.random(split.train.shape) < max_lambda_pixels / max(split.train.sum(), 1))
    lam, _ = choose_whittaker_lambda(ndvi, days, lam_pixels, seed=seed)
    methods = {"DL": dl_method(model, meta), "Linear": linear_method(), "Whittaker": whittaker_method(lam)}
    protocols = make_protocols(ndvi, days, split.test, seed=seed + 2)
    metrics, _ = evaluate(cube, protocols, methods)
    return {"site": "Belgium 100x100 px, monthly composites 2020-11..2021-10 (never seen in training)",
            "split": split.describe(), "whittaker_lambda": lam, "metrics": metrics}
