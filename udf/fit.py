"""From a cube to a calibrated checkpoint: split, training grids, validation, std calibration, held-out metrics."""

import logging
from typing import Callable

import numpy as np
import xarray as xr

from udf.compositing import composite_ndvi, composite_s1, regular_grid
from udf.inference import predict_cube
from udf.metrics import score
from udf.model import FusionNet
from udf.preprocess import NDVI_BAND, check_cube, check_ndvi, detect_s1_units, s1_to_linear, times_to_days
from udf.protocols import PROTOCOLS, SpatialSplit, make_protocols
from udf.training import SeriesSet, TrainConfig, make_series, train

_log = logging.getLogger(__name__)
EVAL_PERIOD = 10
"""Composite period (days) of the grid on which validation and held-out metrics are computed."""


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
    """
    s1, ndvi = cube_acquisitions(cube)
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
