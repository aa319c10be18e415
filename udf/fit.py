"""From a cube to a calibrated checkpoint: split, training grids, validation, std calibration, held-out metrics."""

import logging
from typing import Callable

import numpy as np
import xarray as xr

from udf.compositing import composite_ndvi, composite_s1, regular_grid
from udf.errors import NotEnoughNDVI
from udf.inference import predict_cube
from udf.metrics import score
from udf.model import FusionNet
from udf.preprocess import NDVI_BAND, check_cube, check_ndvi, detect_s1_units, s1_to_linear, times_to_days
from udf.protocols import PROTOCOLS, SpatialSplit, make_protocols
from udf.training import SeriesSet, TrainConfig, make_series, train

_log = logging.getLogger(__name__)
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


def protocol_scores(model: FusionNet, meta: dict, cube: xr.DataArray, pixels: np.ndarray, seed: int,
                    names: tuple[str, ...] = PROTOCOLS) -> dict[str, dict]:
    """Metrics of the model per protocol on ``pixels`` of a composited cube (with predictions kept for calibration)."""
    ndvi = cube.sel(bands=NDVI_BAND).values
    days = times_to_days(cube["t"].values)
    out = {}
    for name, prot in make_protocols(ndvi, days, pixels, names=names, seed=seed).items():
        masked = cube.copy(data=cube.values.copy())
        masked.loc[{"bands": NDVI_BAND}] = prot.apply(ndvi)
        pred = predict_cube(masked, model, meta, s1_units="linear", include_uncertainty=True, device="cpu")
        out[name] = {"metrics": score(pred.sel(bands=NDVI_BAND).values, ndvi, prot.hidden),
                     "residual": (pred.sel(bands=NDVI_BAND).values - ndvi)[prot.hidden],
                     "std": pred.sel(bands="NDVI_STD").values[prot.hidden]}
    return out


def calibrate_std(results: dict[str, dict]) -> float:
    """Scale such that 68.3 % of hidden residuals fall within ±1 predictive std (pooled over protocols)."""
    z = np.concatenate([np.abs(r["residual"]) / r["std"] for r in results.values()])
    z = z[np.isfinite(z)]
    return float(np.quantile(z, 0.683)) if z.size else 1.0


def coverage(results: dict[str, dict], scale: float) -> dict[str, float]:
    """Share of hidden residuals within ±1 and ±2 calibrated std."""
    z = np.concatenate([np.abs(r["residual"]) / (r["std"] * scale) for r in results.values()])
    z = z[np.isfinite(z)]
    return {"within_1std": float((z <= 1).mean()), "within_2std": float((z <= 2).mean())}


def fit(cube: xr.DataArray, split: SpatialSplit, cfg: TrainConfig,
        progress: Callable[[int, dict], None] | None = None) -> tuple[FusionNet, dict]:
    """Train on the split's training pixels, stop early on its validation pixels, calibrate, score the test pixels.

    Args:
        cube: model cube, ideally per acquisition (``s1ndvi cube --period acquisition``), so every training grid is
            composited from raw dates.
        split: spatial hold-out blocks.
        cfg: training hyper-parameters.
        progress: per-epoch callback.

    Returns:
        The model and its checkpoint metadata (with held-out metrics).

    Raises:
        NotEnoughNDVI: too few NDVI observations on the training or validation pixels (:func:`check_training_ndvi`).
    """
    s1, ndvi = cube_acquisitions(cube)
    check_training_ndvi(ndvi, split.train, split.val)
    t = cube["t"].values
    sets: list[SeriesSet] = [make_series(s1, t, ndvi, t, split.train, p, off) for p in cfg.periods
                             for off in (0, p // 2)]
    ev = eval_cube(cube)
    meta: dict = {"std_scale": 1.0}

    def val_score(model: FusionNet) -> float:
        res = protocol_scores(model, meta, ev, split.val, seed=cfg.seed + 1)
        return float(np.mean([r["metrics"]["mae"] for r in res.values()]))

    model, history = train(sets, val_score, cfg, progress=progress)
    val = protocol_scores(model, meta, ev, split.val, seed=cfg.seed + 1)
    meta["std_scale"] = calibrate_std(val)
    test = protocol_scores(model, meta, ev, split.test, seed=cfg.seed + 2)
    meta.update(
        training=cfg.to_dict(), split=split.describe(), history=history,
        heldout_metrics={k: v["metrics"] for k, v in test.items()},
        heldout_std_coverage=coverage(test, 1.0), eval_period_days=EVAL_PERIOD,
        s1_units_accepted=["auto", "db", "linear", "uint16_db"],
        training_data={"cube_steps": int(cube.sizes["t"]), "cube_shape": [int(cube.sizes["y"]), int(cube.sizes["x"])],
                       "period": cube.attrs.get("composite_period", "unknown"),
                       "time_range": [str(t.min())[:10], str(t.max())[:10]]},
    )
    return model, meta
