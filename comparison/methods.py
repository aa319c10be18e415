"""Gap-filling methods behind one interface: a masked cube in, NDVI mean (and std where the method has one) out.

A method is a callable ``(cube) -> (mean, std | None)`` where ``cube`` is ``(t, bands[VV, VH, NDVI], y, x)`` with
linear S1 and the protocol's hidden NDVI set to NaN, and ``mean``/``std`` are ``(t, y, x)`` arrays.
"""

from typing import Callable

import numpy as np
import xarray as xr

from comparison.baselines import linear_interpolation, whittaker
from comparison.seed_mlp import SeedMLP
from udf.inference import predict_cube
from udf.model import FusionNet
from udf.preprocess import times_to_days, to_db

Method = Callable[[xr.DataArray], tuple[np.ndarray, np.ndarray | None]]

__all__ = ["Method", "dl_method", "linear_method", "seed_mlp_method", "whittaker_method"]


def _ndvi_days(cube: xr.DataArray) -> tuple[np.ndarray, np.ndarray]:
    return cube.sel(bands="NDVI").values, times_to_days(cube["t"].values)


def dl_method(model: FusionNet, meta: dict, batch_size: int = 4096) -> Method:
    """The fusion network through the UDF's inference path (CPU, deterministic)."""
    def run(cube: xr.DataArray) -> tuple[np.ndarray, np.ndarray | None]:
        pred = predict_cube(cube, model, meta, s1_units="linear", include_uncertainty=True, batch_size=batch_size,
                            device="cpu")
        return pred.sel(bands="NDVI").values, pred.sel(bands="NDVI_STD").values
    return run


def linear_method() -> Method:
    """Linear interpolation of the kept NDVI."""
    def run(cube: xr.DataArray) -> tuple[np.ndarray, np.ndarray | None]:
        return linear_interpolation(*_ndvi_days(cube)), None
    return run


def whittaker_method(lam: float) -> Method:
    """Whittaker smoother with a fixed λ (choose it on training pixels)."""
    def run(cube: xr.DataArray) -> tuple[np.ndarray, np.ndarray | None]:
        return whittaker(*_ndvi_days(cube), lam), None
    return run


def seed_mlp_method(mlp: SeedMLP) -> Method:
    """The seed's S1-only pixel MLP (ignores NDVI)."""
    def run(cube: xr.DataArray) -> tuple[np.ndarray, np.ndarray | None]:
        return mlp.predict(to_db(cube.sel(bands="VV").values), to_db(cube.sel(bands="VH").values)), None
    return run

