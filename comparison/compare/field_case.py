"""Second real case: the two FuseTS workshop fields (Castilla y León, 2019) — MOGPR vs CropSAR vs Whittaker.

Data (``comparison/data/fusets_field_2019``, see its ATTRIBUTION.md): per-pixel S2 NDVI over each field (10 m,
cloud-masked), the field-mean S1 RVI series of FuseTS' workshop (``RVI_DESC``, ``RVI_ASC``; FuseTS computed them as
2·VH/(VV+VH)), and VITO's CropSAR NDVI on the same grid. MOGPR fuses, per pixel, the pixel's NDVI with the two
field-mean RVI series — the three outputs of the workshop's MOGPR — and predicts at the S2 dates.

The DL model cannot run here: it needs per-pixel VV and VH backscatter, and these fields come with field-mean RVI
only (no S1 band can be recovered from a ratio). CropSAR ran on every S2 observation (in-sample, said in its note).
Protocols P1 / P2_60 / P2_90 hide observations of test-block pixels; Whittaker's λ is chosen on training blocks.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Callable, Optional

import numpy as np
import pandas as pd
import xarray as xr

from comparison.compare.core import scored_pixels
from comparison.compare.evaluate import evaluate
from comparison.compare.methods import Method, Prediction, linear_method, mogpr_prediction, whittaker_method
from comparison.peers import cropsar_method, file_crs
from comparison.result_files import FIELD_DATA
from udf.evaluation.baselines import choose_whittaker_lambda
from udf.evaluation.protocols import make_protocols, spatial_block_split
from udf.preprocess import times_to_days

_log = logging.getLogger(__name__)

__all__ = ["FIELDS", "RVI_OUTPUTS", "field_truth", "field_rvi", "field_mogpr_method", "run_field_case"]

FIELDS = ("BIDS_demo", "BIDS_workshop")
RVI_OUTPUTS = ("RVI_DESC", "RVI_ASC")
Progress = Callable[[int, int], None]


def field_truth(name: str, data: Path = FIELD_DATA) -> xr.DataArray:
    """The field's S2 NDVI as a cube ``(t, bands=[NDVI], y, x)`` with the file's CRS in ``attrs['crs']``."""
    path = data / f"{name}_raw_s2_ndvi_field.nc"
    if not path.exists():
        raise FileNotFoundError(f"FuseTS field file '{path}' not found; fields: {FIELDS}")
    with xr.open_dataset(path) as ds:
        ndvi = ds["NDVI"].load()
    ndvi = ndvi.rename(time="t") if "time" in ndvi.dims else ndvi
    cube = ndvi.transpose("t", "y", "x").expand_dims(bands=["NDVI"], axis=1).astype(np.float32)
    cube.attrs = {"crs": file_crs(path), "source": str(path.name)}
    return cube


def field_rvi(name: str, data: Path = FIELD_DATA) -> pd.DataFrame:
    """Field-mean RVI series (``RVI_DESC``, ``RVI_ASC``) indexed by day (days since 1970-01-01)."""
    path = data / f"{name}_mogpr_input.csv"
    table = pd.read_csv(path)
    missing = [c for c in ("date",) + RVI_OUTPUTS if c not in table.columns]
    if missing:
        raise KeyError(f"'{path}' lacks columns {missing}; it has {list(table.columns)}")
    days = times_to_days(pd.to_datetime(table["date"], utc=True).dt.tz_localize(None).values)
    return pd.DataFrame({c: table[c].to_numpy(dtype=np.float64) for c in RVI_OUTPUTS}, index=days)


def field_mogpr_method(rvi: pd.DataFrame, n_restarts: int = 3, device: str = "cpu",
                       progress: Optional[Progress] = None) -> Method:
    """MOGPR per pixel on (pixel NDVI, field-mean RVI_DESC, RVI_ASC), S2 and RVI dates merged; predicts at S2 dates."""
    from comparison.mogpr import fit_predict

    def run(cube: xr.DataArray, pixels: np.ndarray) -> Prediction:
        ndvi = cube.sel(bands="NDVI").values
        s2_days = times_to_days(cube["t"].values)
        days = np.union1d(np.floor(s2_days), rvi.index.to_numpy())
        idx = np.flatnonzero(pixels.ravel())
        values = np.full((len(idx), len(days), 3), np.nan)
        values[:, np.searchsorted(days, np.floor(s2_days)), 0] = ndvi.reshape(len(s2_days), -1)[:, idx].T
        for k, col in enumerate(RVI_OUTPUTS):
            values[:, np.searchsorted(days, rvi.index.to_numpy()), k + 1] = rvi[col].to_numpy()[None, :]
        res = fit_predict(days, values, s2_days, n_restarts=n_restarts, device=device, progress=progress)
        return mogpr_prediction(res, 0, idx, ndvi.shape)
    return run


def run_field_case(name: str, max_pixels: Optional[int] = 24, seed: int = 0, n_restarts: int = 3,
                   device: str = "cpu", data: Path = FIELD_DATA, progress: Optional[Callable[[str], None]] = None,
                   pixel_progress: Optional[Progress] = None) -> tuple[dict, dict, dict, xr.DataArray]:
    """Score MOGPR, CropSAR, Whittaker and linear interpolation on one field under P1, P2_60 and P2_90.

    Returns:
        ``payload`` (setup + metrics), ``predictions``, ``protocols`` and the truth cube (for figures).
    """
    cube = field_truth(name, data)
    ndvi, days = cube.sel(bands="NDVI").values, times_to_days(cube["t"].values)
    split = spatial_block_split((cube.sizes["y"], cube.sizes["x"]), block=8, seed=seed)
    pixels = scored_pixels(split.test & (np.isfinite(ndvi).sum(0) >= 8), ndvi, max_pixels, seed)
    protocols = make_protocols(ndvi, days, pixels, names=("P1", "P2_60", "P2_90"), seed=seed + 2)
    lam, _ = choose_whittaker_lambda(ndvi, days, split.train & np.isfinite(ndvi).any(0), seed=seed)
    methods: dict[str, Method] = {
        "MOGPR": field_mogpr_method(field_rvi(name, data), n_restarts, device, pixel_progress),
        "CropSAR": cropsar_method(data / f"{name}_cropsar_ndvi.nc", cube),
        "Whittaker": whittaker_method(lam), "Linear": linear_method()}
    metrics, predictions = evaluate(cube, protocols, methods, pixels, progress=progress)
    payload = {"field": name, "grid": {k: int(v) for k, v in cube.sizes.items()},
               "dates": [str(cube["t"].values[0])[:10], str(cube["t"].values[-1])[:10]],
               "field_pixels": int(np.isfinite(ndvi).any(0).sum()), "scored_pixels": int(pixels.sum()),
               "whittaker_lambda": lam, "metrics": metrics,
               "dl": "not run: these fields come with field-mean RVI only, the DL model needs per-pixel VV and VH"}
    return payload, predictions, protocols, cube
