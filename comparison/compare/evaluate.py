"""Run every method on the same hidden values of every protocol and score them."""

from __future__ import annotations

import logging
import time
from typing import Callable, Optional

import numpy as np
import xarray as xr

from comparison.compare.methods import Method, Prediction
from udf.evaluation.metrics import by_distance, by_range, distance_to_kept, score
from udf.evaluation.protocols import Protocol
from udf.preprocess import times_to_days

_log = logging.getLogger(__name__)

__all__ = ["evaluate", "mask_cube", "score_prediction"]


def mask_cube(cube: xr.DataArray, prot: Protocol) -> xr.DataArray:
    """The cube a protocol hands to every method: a copy with the hidden NDVI set to NaN."""
    masked = cube.copy(data=cube.values.copy())
    masked.loc[{"bands": "NDVI"}] = prot.apply(cube.sel(bands="NDVI").values)
    return masked


def score_prediction(pred: Prediction, truth: np.ndarray, hidden: np.ndarray, dist: np.ndarray,
                     pixels: np.ndarray, seconds: float) -> dict:
    """Metrics of one prediction on the hidden observations (restricted to the dates the method covers).

    Args:
        pred: the method's output.
        truth: ``(t, y, x)`` observed NDVI.
        hidden: ``(t, y, x)`` observations hidden from the method (the ones scored).
        dist: ``(t, y, x)`` days to the nearest kept observation.
        pixels: ``(y, x)`` scored pixels.
        seconds: wall time of the method.

    Returns:
        :func:`udf.evaluation.metrics.score` plus ``by_range``, ``by_distance``, ``seconds``, ``n_pixels``,
        ``pixels_per_s``, ``n_failed_pixels`` (scored pixels the method could not fit), ``within_1std`` /
        ``within_2std`` (methods with a std), ``dates_scored`` and ``note``.
    """
    mask = hidden if pred.dates is None else hidden & pred.dates[:, None, None]
    rec = score(pred.mean, truth, mask)
    failed = pred.failed if pred.failed is not None else np.zeros(pixels.shape, dtype=bool)
    rec.update(by_range=by_range(pred.mean, truth, mask), by_distance=by_distance(pred.mean, truth, mask, dist),
               seconds=seconds, n_pixels=pred.n_pixels,
               pixels_per_s=pred.n_pixels / seconds if seconds > 0 and pred.n_pixels else float("nan"),
               n_failed_pixels=int((failed & pixels & hidden.any(0)).sum()),
               dates_scored=int(hidden.shape[0] if pred.dates is None else pred.dates.sum()), note=pred.note)
    if pred.std is not None:
        z = np.abs(pred.mean - truth)[mask] / pred.std[mask]
        z = z[np.isfinite(z)]
        rec["within_1std"] = float((z <= 1).mean()) if z.size else float("nan")
        rec["within_2std"] = float((z <= 2).mean()) if z.size else float("nan")
    return rec


def evaluate(cube: xr.DataArray, protocols: dict[str, Protocol], methods: dict[str, Method],
             pixels: np.ndarray, progress: Optional[Callable[[str], None]] = None) -> tuple[dict, dict]:
    """Apply each protocol once and run every method on the same masked cube.

    Args:
        cube: ``(t, bands[VV, VH, NDVI], y, x)`` with linear S1 and all observed NDVI (the truth).
        protocols: hidden observations per protocol (only on ``pixels``).
        methods: name → method.
        pixels: ``(y, x)`` bool, the scored pixels (expensive methods compute only these).
        progress: called with a ``"protocol/method"`` label after each run.

    Returns:
        ``metrics`` (protocol → method → record of :func:`score_prediction`) and ``predictions``
        (protocol → method → :class:`Prediction`) for plots.
    """
    truth = cube.sel(bands="NDVI").values
    days = times_to_days(cube["t"].values)
    metrics: dict = {}
    predictions: dict = {}
    for pname, prot in protocols.items():
        masked = mask_cube(cube, prot)
        dist = distance_to_kept(days, np.isfinite(masked.sel(bands="NDVI").values))
        metrics[pname], predictions[pname] = {}, {}
        px = prot.pixels if prot.pixels is not None else pixels  # P3S/P3C score their own hidden area
        for mname, method in methods.items():
            t0 = time.perf_counter()
            pred = method(masked, px)
            rec = score_prediction(pred, truth, prot.hidden, dist, px, time.perf_counter() - t0)
            metrics[pname][mname], predictions[pname][mname] = rec, pred
            _log.info("%s/%s: MAE %.4f R² %.3f (%d NaN of %d, %d pixels not fitted) in %.2f s", pname, mname,
                      rec["mae"], rec["r2"], rec["n_nan"], rec["n"], rec["n_failed_pixels"], rec["seconds"])
            if progress is not None:
                progress(f"{pname}/{mname}")
    return metrics, predictions
