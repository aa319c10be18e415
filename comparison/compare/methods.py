"""Gap-filling methods behind one interface: a masked cube and the pixels to score in, a :class:`Prediction` out.

A method is a callable ``(cube, pixels) -> Prediction`` where ``cube`` is ``(t, bands[VV, VH, NDVI], y, x)`` with
linear S1 and the protocol's hidden NDVI set to NaN, and ``pixels`` is the ``(y, x)`` bool mask of the pixels that
will be scored. Cheap methods predict every pixel; expensive ones (MOGPR) only the scored pixels, NaN elsewhere.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Callable, Optional

import numpy as np
import xarray as xr

from comparison.compare.seed_mlp import SeedMLP
from udf.evaluation.baselines import linear_interpolation, whittaker
from udf.inference import predict_cube
from udf.model import FusionNet
from udf.preprocess import rvi, times_to_days, to_db

if TYPE_CHECKING:
    from comparison.mogpr import MOGPRResult

__all__ = ["Method", "Prediction", "dl_method", "linear_method", "mogpr_method", "mogpr_prediction",
           "seed_mlp_method", "whittaker_method"]

Progress = Callable[[int, int], None]


@dataclass
class Prediction:
    """What a method returns for one masked cube."""

    mean: np.ndarray
    """NDVI ``(t, y, x)``; NaN where the method gives nothing."""
    std: Optional[np.ndarray] = None
    """Predictive standard deviation ``(t, y, x)`` where the method has one."""
    n_pixels: int = 0
    """Pixels the method computed (for pixels per second); 0 for results read from files (no speed to report)."""
    failed: Optional[np.ndarray] = None
    """``(y, x)`` bool: pixels the method tried and could not fit (e.g. MOGPR with < 2 NDVI values)."""
    dates: Optional[np.ndarray] = None
    """``(t,)`` bool: dates the method covers (peer result files); None = all."""
    note: str = ""
    """Caveat shown in the report (e.g. 'in-sample: the service saw the hidden values')."""


Method = Callable[[xr.DataArray, np.ndarray], Prediction]


def _ndvi_days(cube: xr.DataArray) -> tuple[np.ndarray, np.ndarray]:
    return cube.sel(bands="NDVI").values, times_to_days(cube["t"].values)


def _all_pixels(cube: xr.DataArray) -> int:
    return int(cube.sizes["y"] * cube.sizes["x"])


def dl_method(model: FusionNet, meta: dict, batch_size: int = 4096, device: str = "cpu", borrowing: bool = True,
              tile: Optional[int] = None, s1_units: str = "linear") -> Method:
    """The fusion network through the UDF's inference path (CPU: deterministic), as users get it.

    Args:
        model: the network.
        meta: its checkpoint metadata.
        batch_size: pixels per forward pass.
        device: ``cpu`` (deterministic), ``cuda`` or ``auto``.
        borrowing: similar-pixel borrowing for pixels without kept NDVI (:mod:`udf.borrow`; the UDF's default, on).
        tile: predict independent ``tile × tile`` px chunks, as an openEO ``apply_neighborhood`` without overlap
            would (borrowing searches analogs inside the chunk only); None: the whole cube at once.
        s1_units: units of the cube's S1 bands (the harness hands linear power).
    """
    def run(cube: xr.DataArray, pixels: np.ndarray) -> Prediction:
        ny, nx = cube.sizes["y"], cube.sizes["x"]
        step = tile or max(ny, nx)
        mean = np.full((cube.sizes["t"], ny, nx), np.nan, np.float32)
        std = np.full_like(mean, np.nan)
        for y0 in range(0, ny, step):
            for x0 in range(0, nx, step):
                part = cube.isel(y=slice(y0, y0 + step), x=slice(x0, x0 + step))
                pred = predict_cube(part, model, meta, s1_units=s1_units, include_uncertainty=True,
                                    batch_size=batch_size, device=device, borrowing=borrowing)
                mean[:, y0:y0 + step, x0:x0 + step] = pred.sel(bands="NDVI").values
                std[:, y0:y0 + step, x0:x0 + step] = pred.sel(bands="NDVI_STD").values
        return Prediction(mean, std, _all_pixels(cube))
    return run


def linear_method() -> Method:
    """Linear interpolation of the kept NDVI."""
    def run(cube: xr.DataArray, pixels: np.ndarray) -> Prediction:
        return Prediction(linear_interpolation(*_ndvi_days(cube)), None, _all_pixels(cube))
    return run


def whittaker_method(lam: float) -> Method:
    """Whittaker smoother with a fixed λ (choose it on training pixels)."""
    def run(cube: xr.DataArray, pixels: np.ndarray) -> Prediction:
        return Prediction(whittaker(*_ndvi_days(cube), lam), None, _all_pixels(cube))
    return run


def seed_mlp_method(mlp: SeedMLP) -> Method:
    """The seed's S1-only pixel MLP (ignores NDVI)."""
    def run(cube: xr.DataArray, pixels: np.ndarray) -> Prediction:
        mean = mlp.predict(to_db(cube.sel(bands="VV").values), to_db(cube.sel(bands="VH").values))
        return Prediction(mean, None, _all_pixels(cube))
    return run


def mogpr_inputs(cube: xr.DataArray, pixels: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """MOGPR inputs of the ``pixels`` of a model cube: ``(days (T,), values (N, T, 2) [RVI, NDVI], flat index (N,))``.

    RVI = 4·VH/(VV + VH) on linear power; RVI first, NDVI second (the ``mogpr_s1_s2`` merge order).
    """
    r = rvi(cube.sel(bands="VV").values, cube.sel(bands="VH").values)
    ndvi, days = _ndvi_days(cube)
    nt = len(days)
    idx = np.flatnonzero(pixels.ravel())
    values = np.stack([r.reshape(nt, -1)[:, idx], ndvi.reshape(nt, -1)[:, idx]], axis=-1).transpose(1, 0, 2)
    return days, values.astype(np.float64), idx


def mogpr_method(engine: str = "local", n_restarts: int = 3, device: str = "cpu",
                 progress: Optional[Progress] = None) -> Method:
    """MOGPR on RVI + NDVI of the scored pixels, predicted at the cube's dates.

    Args:
        engine: ``"local"`` (batched torch, :func:`comparison.mogpr.fit_predict`) or ``"gpy"`` (FuseTS' GPy
            model pixel by pixel, optional dependency; one start, as FuseTS).
        n_restarts: starting points per pixel for ``local`` (restart 0 is GPy's own start).
        device: torch device for ``local``.
        progress: ``progress(done, total)`` pixels.
    """
    if engine not in ("local", "gpy"):
        raise ValueError(f"MOGPR engine {engine!r} unknown; expected 'local' or 'gpy' (or a result file).")

    def run(cube: xr.DataArray, pixels: np.ndarray) -> Prediction:
        days, values, idx = mogpr_inputs(cube, pixels)
        if engine == "local":
            from comparison.mogpr import fit_predict

            res = fit_predict(days, values, days, n_restarts=n_restarts, device=device, progress=progress)
        else:
            from comparison.mogpr.gpy import fit_predict_gpy

            res = fit_predict_gpy(days, values, days, progress=progress)
        return mogpr_prediction(res, 1, idx, (len(days), cube.sizes["y"], cube.sizes["x"]))
    return run


def mogpr_prediction(res: "MOGPRResult", output: int, idx: np.ndarray, shape: tuple[int, int, int]) -> Prediction:
    """One output of a MOGPR fit of the flat pixels ``idx`` as a prediction on the ``(t, y, x)`` grid ``shape``.

    Pixels not fitted are NaN and flagged in ``failed``; pixels not in ``idx`` are NaN and not flagged.
    """
    nt, ny, nx = shape
    mean, std = np.full((nt, ny * nx), np.nan), np.full((nt, ny * nx), np.nan)
    mean[:, idx], std[:, idx] = res.mean[:, :, output].T, res.std[:, :, output].T
    failed = np.zeros(ny * nx, dtype=bool)
    failed[idx] = res.failed
    return Prediction(mean.reshape(shape), std.reshape(shape), len(idx), failed.reshape(ny, nx))
