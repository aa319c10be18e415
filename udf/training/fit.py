"""From one cube to a calibrated checkpoint: split, training (fresh or pretrained), std calibration, held-out metrics.

``s1ndvi train`` trains a fresh model on a cube's training blocks; ``s1ndvi adapt`` fine-tunes the pretrained model
the same way (:mod:`udf.training.adapt`). Validation blocks stop training and calibrate the std; test blocks are scored once,
at the end, for the metadata.
"""

import logging
from typing import Callable

import numpy as np
import xarray as xr

from udf.errors import NotEnoughNDVI
from udf.evaluation.protocols import PROTOCOLS, SpatialSplit
from udf.evaluation.validation import calibrate_std, coverage, mask_sets, score_masked
from udf.ingest.compositing import composite_ndvi, composite_s1, regular_grid
from udf.model import FusionNet
from udf.preprocess import NDVI_BAND, S1_UNITS, check_cube, check_ndvi, detect_s1_units, s1_to_linear
from udf.training.corpus.rasters import cube_series
from udf.training.corpus.regrid import training_variants
from udf.training.corpus.series import SeriesSet
from udf.training.loop import TrainConfig, train

_log = logging.getLogger(__name__)

__all__ = ["EVAL_PERIOD", "check_training_ndvi", "cube_acquisitions", "eval_cube", "fit",
           "grid_fingerprint", "grids_overlap", "model_cube", "split_series"]

EVAL_PERIOD = 10
"""Composite period (days) of the grid on which validation and held-out metrics are computed."""
MIN_TRAIN_PIXELS, MIN_OBS_PER_PIXEL, MIN_VAL_PIXELS = 32, 4, 8
"""Defaults of :func:`check_training_ndvi`: training pixels with at least ``MIN_OBS_PER_PIXEL`` valid NDVI
observations, and validation pixels with at least 2 (so that one can be hidden and one kept)."""


def check_training_ndvi(ndvi: np.ndarray, train: np.ndarray, val: np.ndarray | None = None,
                        min_pixels: int = MIN_TRAIN_PIXELS, min_per_pixel: int = MIN_OBS_PER_PIXEL,
                        min_val_pixels: int = MIN_VAL_PIXELS) -> dict[str, int]:
    """Refuse to train on too little NDVI: the model learns S1 → NDVI only from NDVI observations it can hide.

    Training without NDVI labels still runs and writes a checkpoint, but one whose predictions are meaningless, so
    this check runs first (``fit`` calls it; an adaptation of a trained model can call it with smaller minima).

    Args:
        ndvi: ``(t, y, x)`` NDVI, NaN where not observed (all NaN for a cube without an NDVI band).
        train: ``(y, x)`` training pixels.
        val: ``(y, x)`` validation pixels used for early stopping and the std calibration, or None.
        min_pixels: training pixels that must have ``min_per_pixel`` valid observations or more.
        min_per_pixel: valid NDVI observations that make a training pixel usable.
        min_val_pixels: validation pixels that must have two valid observations or more.

    Returns:
        The counts: ``train_pixels``, ``usable_train_pixels``, ``train_observations``, ``usable_val_pixels``.

    Raises:
        NotEnoughNDVI: the message gives the counts found and the minima.
    """
    count = np.isfinite(ndvi).sum(axis=0)
    found = {"train_pixels": int(train.sum()), "usable_train_pixels": int((train & (count >= min_per_pixel)).sum()),
             "train_observations": int(count[train].sum()),
             "usable_val_pixels": int((val & (count >= 2)).sum()) if val is not None else 0}
    need = (f"training needs ≥ {min_pixels} training pixels with ≥ {min_per_pixel} valid NDVI observations each"
            + (f" and ≥ {min_val_pixels} validation pixels with ≥ 2" if val is not None else ""))
    short_train = found["usable_train_pixels"] < min_pixels
    short_val = val is not None and found["usable_val_pixels"] < min_val_pixels
    if short_train or short_val:
        what = "no valid NDVI at all (no NDVI band, or all NaN)" if not np.isfinite(ndvi).any() else (
            f"{found['train_observations']} valid NDVI observations on its {found['train_pixels']} training pixels, "
            f"{found['usable_train_pixels']} of them with ≥ {min_per_pixel}"
            + (f"; {found['usable_val_pixels']} validation pixels with ≥ 2" if val is not None else ""))
        raise NotEnoughNDVI(f"The cube has {what}: {need}. Build the cube with S2 NDVI (`s1ndvi cube --s2 ...`), "
                            "over a longer period or a larger area.")
    return found


def cube_acquisitions(cube: xr.DataArray, s1_units: str = "auto") -> tuple[np.ndarray, np.ndarray]:
    """S1 as linear power ``(t, 2, y, x)`` and NDVI ``(t, y, x)`` from a model cube (NDVI all-NaN if absent)."""
    cube = check_cube(cube)
    vv, vh = cube.sel(bands="VV").values, cube.sel(bands="VH").values
    units = detect_s1_units(vv, vh, dtype=cube.dtype) if s1_units == "auto" else s1_units
    s1 = np.stack([s1_to_linear(vv, units), s1_to_linear(vh, units)], axis=1)
    bands = [str(b) for b in cube["bands"].values]
    ndvi = check_ndvi(cube.sel(bands=NDVI_BAND).values) if NDVI_BAND in bands else np.full(vv.shape, np.nan, "f4")
    return s1, ndvi


def model_cube(cube: xr.DataArray, s1_units: str = "auto") -> xr.DataArray:
    """The cube with linear S1 (float32) and an NDVI band (all NaN when absent), labels and attributes kept."""
    s1, ndvi = cube_acquisitions(cube, s1_units)
    vals = np.concatenate([s1, ndvi[:, None]], axis=1)
    return xr.DataArray(vals, dims=("t", "bands", "y", "x"),
                        coords={"t": cube["t"].values, "bands": ["VV", "VH", NDVI_BAND], "y": cube["y"].values,
                                "x": cube["x"].values}, attrs=dict(cube.attrs))


def eval_cube(cube: xr.DataArray, period: int = EVAL_PERIOD) -> xr.DataArray:
    """Composite a cube (per acquisition or finer grid) onto a regular ``period``-day grid (linear S1)."""
    s1, ndvi = cube_acquisitions(cube)
    t = cube["t"].values
    start = np.datetime64(str(t.min())[:10], "D")
    edges = regular_grid(start, np.datetime64(str(t.max())[:10], "D") + np.timedelta64(1, "D"), period)
    vals = np.concatenate([composite_s1(s1, t, edges), composite_ndvi(ndvi, t, edges)[:, None]], axis=1)
    return xr.DataArray(vals, dims=("t", "bands", "y", "x"),
                        coords={"t": edges[:-1], "bands": ["VV", "VH", NDVI_BAND], "y": cube["y"].values,
                                "x": cube["x"].values}, attrs={**cube.attrs, "composite_period": f"{period}D"})


def split_series(cube: xr.DataArray, split: SpatialSplit, site: str = "cube") -> dict[str, SeriesSet]:
    """The cube's ``train``, ``val`` and ``test`` pixels as sequences (linear S1), per the spatial split."""
    grid = str(cube.attrs.get("composite_period", "unknown"))
    whole = cube_series(model_cube(cube), site, str(cube.attrs.get("source", site)), block=split.block, grid=grid)
    return {name: whole.subset(getattr(split, name).ravel()) for name in ("train", "val", "test")}


def fit(cube: xr.DataArray, split: SpatialSplit, cfg: TrainConfig, init: FusionNet | None = None,
        scoring_cube: xr.DataArray | None = None, protocols: tuple[str, ...] = PROTOCOLS, score_test: bool = True,
        max_train: int = 50_000, progress: Callable[[int, dict], None] | None = None) -> tuple[FusionNet, dict]:
    """Train on the split's training pixels, stop early on its validation pixels, calibrate, score the test pixels.

    Args:
        cube: model cube (any grid; a per-acquisition cube is also composited onto 5–16-day grids for training).
        split: spatial hold-out blocks.
        cfg: training hyper-parameters.
        init: a pretrained model to fine-tune (``s1ndvi adapt``), or None to train from scratch.
        scoring_cube: the cube validation and test pixels are scored on (default: ``cube``), e.g. the 10-day
            composites of a per-acquisition cube.
        protocols: protocols of validation and test scoring.
        score_test: score the test pixels into ``heldout_metrics`` (False when the caller scores them itself).
        max_train: training sequences kept (a seeded subsample of a large cube's training blocks).
        progress: per-epoch callback.

    Returns:
        The model and its checkpoint metadata (with held-out metrics and the std calibration).

    Raises:
        NotEnoughNDVI: too few NDVI observations on the training or validation pixels (:func:`check_training_ndvi`).
    """
    check_training_ndvi(model_cube(cube).sel(bands=NDVI_BAND).values, split.train, split.val)
    parts = split_series(cube, split)
    if parts["train"].n > max_train:
        parts["train"] = parts["train"].subset(np.sort(np.random.default_rng(cfg.seed).permutation(
            parts["train"].n)[:max_train]))
    scored = split_series(scoring_cube, split) if scoring_cube is not None else parts
    val = mask_sets([scored["val"]], protocols, seed=cfg.seed + 1)

    def val_score(model: FusionNet) -> float:
        return float(np.nanmean([r["metrics"]["mae"] for r in score_masked(model, val)]))

    model, history = train({"cube": training_variants(parts["train"])}, val_score, cfg, init=init,
                           progress=progress)
    val_res = score_masked(model, val)
    scale = calibrate_std(val_res)
    test_res = score_masked(model, mask_sets([scored["test"]], protocols, seed=cfg.seed + 2), scale) \
        if score_test else []
    t = cube["t"].values
    meta = {
        "std_scale": scale, "training": cfg.to_dict(), "split": split.describe(), "history": history,
        "heldout_metrics": {r["protocol"]: r["metrics"] for r in test_res},
        "heldout_std_coverage": coverage(test_res), "validation_std_coverage": coverage(val_res, scale),
        "s1_units_accepted": list(S1_UNITS),
        "training_data": {"cube_steps": int(cube.sizes["t"]), "cube_shape": [int(cube.sizes["y"]),
                                                                              int(cube.sizes["x"])],
                          "period": cube.attrs.get("composite_period", "unknown"),
                          "time_range": [str(t.min())[:10], str(t.max())[:10]], "grid": grid_fingerprint(cube)},
    }
    return model, meta


def grid_fingerprint(cube: xr.DataArray) -> dict:
    """What identifies a cube's pixels: CRS, shape, first pixel centre, pixel size and bounding box of the centres."""
    x, y = cube["x"].values.astype(np.float64), cube["y"].values.astype(np.float64)
    return {"crs": str(cube.attrs.get("crs", ""))[:2000], "shape": [int(y.size), int(x.size)],
            "x0": float(x[0]), "y0": float(y[0]), "dx": float(x[1] - x[0]) if x.size > 1 else 0.0,
            "dy": float(y[1] - y[0]) if y.size > 1 else 0.0,
            "bbox": [float(x.min()), float(y.min()), float(x.max()), float(y.max())]}


def grids_overlap(a: dict, b: dict) -> bool:
    """Whether two grid fingerprints share ground: same CRS and intersecting extents (half a pixel of tolerance)."""
    if not a.get("crs") or not b.get("crs") or "bbox" not in a or "bbox" not in b:
        return False
    from pyproj import CRS

    if not CRS.from_user_input(a["crs"]).equals(CRS.from_user_input(b["crs"])):
        return False
    tol = max(abs(a.get("dx", 0)), abs(b.get("dx", 0)), abs(a.get("dy", 0)), abs(b.get("dy", 0))) / 2
    (ax0, ay0, ax1, ay1), (bx0, by0, bx1, by1) = a["bbox"], b["bbox"]
    return ax0 <= bx1 + tol and bx0 <= ax1 + tol and ay0 <= by1 + tol and by0 <= ay1 + tol
