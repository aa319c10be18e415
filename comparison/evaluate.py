"""Run every method on the same hidden values of every protocol and score them."""

import logging
import time
from typing import Callable

import numpy as np
import xarray as xr

from comparison.methods import Method
from comparison.metrics import by_distance, by_range, distance_to_kept, score
from comparison.protocols import Protocol
from udf.preprocess import times_to_days

_log = logging.getLogger(__name__)

__all__ = ["evaluate"]


def evaluate(cube: xr.DataArray, protocols: dict[str, Protocol], methods: dict[str, Method],
             progress: Callable[[str], None] | None = None) -> tuple[dict, dict]:
    """Apply each protocol once and run every method on the same masked cube.

    Args:
        cube: ``(t, bands[VV, VH, NDVI], y, x)`` with linear S1 and all observed NDVI (the truth).
        protocols: hidden observations per protocol.
        methods: name → method.
        progress: called with a ``"protocol/method"`` label after each run.

    Returns:
        ``metrics`` (protocol → method → scores, by range, by distance, wall time, pixels/s) and ``predictions``
        (protocol → method → (mean, std)) for plots.
    """
    truth = cube.sel(bands="NDVI").values
    days = times_to_days(cube["t"].values)
    n_pixels = truth.shape[1] * truth.shape[2]
    metrics: dict = {}
    predictions: dict = {}
    for pname, prot in protocols.items():
        masked = cube.copy(data=cube.values.copy())
        kept = prot.apply(truth)
        masked.loc[{"bands": "NDVI"}] = kept
        dist = distance_to_kept(days, np.isfinite(kept))
        metrics[pname], predictions[pname] = {}, {}
        for mname, method in methods.items():
            t0 = time.perf_counter()
            mean, std = method(masked)
            seconds = time.perf_counter() - t0
            rec = score(mean, truth, prot.hidden)
            rec.update(by_range=by_range(mean, truth, prot.hidden), by_distance=by_distance(mean, truth, prot.hidden, dist),
                       seconds=seconds, pixels_per_s=n_pixels / seconds if seconds > 0 else float("inf"),
                       n_pixels=n_pixels)
            if std is not None:
                z = np.abs(mean - truth)[prot.hidden] / std[prot.hidden]
                z = z[np.isfinite(z)]
                rec["within_1std"] = float((z <= 1).mean()) if z.size else float("nan")
                rec["within_2std"] = float((z <= 2).mean()) if z.size else float("nan")
            metrics[pname][mname] = rec
            predictions[pname][mname] = (mean, std)
            _log.info("%s/%s: MAE %.4f R² %.3f (%d NaN of %d) in %.2f s", pname, mname, rec["mae"], rec["r2"],
                      rec["n_nan"], rec["n"], seconds)
            if progress is not None:
                progress(f"{pname}/{mname}")
    return metrics, predictions
