"""Regenerate the GPy MOGPR reference fixture (``reference.npz`` + ``reference.json``) — slow (tens of minutes).

Runs FuseTS' MOGPR model with GPy 1.15 exactly as ``fusets.mogpr.mogpr_1D`` (FuseTS 2.0.1) builds it:
per-output z-normalisation (``np.std``), ``GPCoregionalizedRegression(X, Y, kernel=LCM(input_dim=1, num_outputs=O,
kernels_list=[Matern32(input_dim=1)] * O, W_rank=1).copy())``, ``model.optimize()`` (L-BFGS-B), ``model.predict``
with ``Y_metadata`` output indices. ``np.random.seed(seed)`` is called before building each model (GPy draws ``W``
from the global numpy generator). Time is the proleptic ordinal of the date, as FuseTS uses.

Inputs:
- ``fields``: the two FuseTS workshop field series (``BIDS_demo``, ``BIDS_workshop``; outputs NDVI, RVI_DESC,
  RVI_ASC), fitted with seed 0.
- ``pixels``: 16 pixels of the embedded WorldCereal sample (outputs RVI = 4·VH/(VV+VH) on linear power, NDVI from
  B04/B08 averaged 2×2 to 20 m, SCL 4/5/6 valid), seed 0; times are the union of S1 and S2 dates.

Environment (outside the repo; see ``comparison/mogpr/gpy.py`` for the recipe): ``/work/gpy-venv``.
Run from the repository root: ``/work/gpy-venv/bin/python tests/data/mogpr_reference/make_data.py``.
"""

from __future__ import annotations

import datetime as dt
import json
import time
from pathlib import Path

import numpy as np
import pandas as pd
import xarray as xr

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[2]
SAMPLE = REPO / "udf" / "data" / "sample" / "worldcereal_31UDS_2017"
FIELDS = ("BIDS_demo", "BIDS_workshop")
FIELD_OUTPUTS = ("NDVI", "RVI_DESC", "RVI_ASC")
N_PIXELS, PIXEL_SEED, FIELD_SEEDS = 16, 0, (0,)


def _ordinals(ds: xr.Dataset) -> np.ndarray:
    """Proleptic ordinal date of each ``timestamp`` (seconds since the ``units`` origin)."""
    origin = pd.Timestamp(ds["timestamp"].attrs["units"].split("since", 1)[1].strip())
    stamps = origin + pd.to_timedelta(ds["timestamp"].values.astype(np.int64), unit="s")
    return np.array([s.to_pydatetime().toordinal() for s in stamps], dtype=np.float64)


def _decode(da: xr.DataArray) -> np.ndarray:
    """Scaled float values, NaN at the fill value."""
    raw = da.values
    out = raw.astype(np.float64) * float(da.attrs.get("scale_factor", 1.0))
    return np.where(raw == da.attrs["_FillValue"], np.nan, out)


def load_sample_cube() -> tuple[np.ndarray, np.ndarray]:
    """Whole sample as ``(times (T,) ordinal days, cube (T, 2, 32, 32) [RVI, NDVI])`` on the 20 m grid."""
    s1 = xr.open_dataset(next(SAMPLE.glob("S1_GRD-ASCENDING_20m_*.nc")), decode_cf=False)
    s2 = xr.open_dataset(next(SAMPLE.glob("S2_L2A_10m_*.nc")), decode_cf=False)
    scl = xr.open_dataset(next(SAMPLE.glob("S2_L2A_20m_*.nc")), decode_cf=False)
    vv, vh = 10 ** (_decode(s1["VV"]) / 10), 10 ** (_decode(s1["VH"]) / 10)
    rvi = 4 * vh / (vv + vh)
    b4, b8 = _decode(s2["B04"]), _decode(s2["B08"])
    t2, ny, nx = b4.shape
    b4 = b4.reshape(t2, ny // 2, 2, nx // 2, 2).mean((2, 4))  # NaN if any 10 m cell is fill
    b8 = b8.reshape(t2, ny // 2, 2, nx // 2, 2).mean((2, 4))
    ndvi = np.where(np.isin(scl["SCL"].values, (4, 5, 6)), (b8 - b4) / (b8 + b4), np.nan)
    d1, d2 = _ordinals(s1), _ordinals(s2)
    times = np.union1d(d1, d2)
    cube = np.full((len(times), 2, ny // 2, nx // 2), np.nan)
    for k, (d, arr) in enumerate(((d1, rvi), (d2, ndvi))):
        idx = np.searchsorted(times, d)
        for i in range(len(d)):  # same-date duplicates: keep the first valid value
            cube[idx[i], k] = np.where(np.isnan(cube[idx[i], k]), arr[i], cube[idx[i], k])
    return times, cube


def load_sample(n_pixels: int = N_PIXELS, seed: int = PIXEL_SEED) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Sample pixels as ``(times (T,) ordinal days, values (n, T, 2) [RVI, NDVI], yx (n, 2))``."""
    times, cube = load_sample_cube()
    n_ndvi = np.isfinite(cube[:, 1]).sum(0)
    cand = np.argwhere(n_ndvi >= 8)
    pick = cand[np.sort(np.random.RandomState(seed).choice(len(cand), n_pixels, replace=False))]
    values = np.stack([cube[:, :, y, x] for y, x in pick])
    return times, values, pick


def load_field(name: str) -> tuple[np.ndarray, np.ndarray]:
    """FuseTS field series as ``(times (T,) ordinal days, values (1, T, 3) [NDVI, RVI_DESC, RVI_ASC])``."""
    df = pd.read_csv(REPO / "comparison" / "data" / "fusets_field_2019" / f"{name}_mogpr_input.csv")
    times = np.array([pd.Timestamp(d).to_pydatetime().toordinal() for d in df["date"]], dtype=np.float64)
    return times, df[list(FIELD_OUTPUTS)].to_numpy(dtype=np.float64)[None]


def gpy_fit(times: np.ndarray, series: np.ndarray, t_pred: np.ndarray, seed: int) -> dict:
    """One pixel ``series (T, O)``: fit as FuseTS does; normalised predictions for every output at ``t_pred``."""
    from GPy.kern import Matern32
    from GPy.models import GPCoregionalizedRegression
    from GPy.util.multioutput import LCM

    xs, ys = [], []
    for o in range(series.shape[1]):
        ok = np.isfinite(series[:, o])
        v = series[ok, o]
        xs.append(times[ok, None])
        ys.append(((v - np.mean(v)) / np.std(v))[:, None])
    np.random.seed(seed)
    kern = LCM(input_dim=1, num_outputs=len(ys), kernels_list=[Matern32(input_dim=1)] * len(ys), W_rank=1)
    model = GPCoregionalizedRegression(xs, ys, kernel=kern.copy())
    start = model.param_array.copy()
    t0 = time.perf_counter()
    model.optimize()
    seconds = time.perf_counter() - t0
    mean, var = [], []
    for o in range(len(ys)):
        new_x = np.hstack([t_pred[:, None], np.full((len(t_pred), 1), o)])
        m, v = model.predict(new_x, Y_metadata={"output_index": new_x[:, 1:].astype(int)})
        mean.append(m[:, 0])
        var.append(v[:, 0])
    return {"start": start, "params": model.param_array.copy(), "log_likelihood": float(model.log_likelihood()),
            "mean": np.stack(mean, -1), "var": np.stack(var, -1), "seconds": seconds}


def _run(times: np.ndarray, values: np.ndarray, seeds: tuple[int, ...]) -> dict[str, np.ndarray]:
    t_pred = np.arange(times.min(), times.max(), 5.0)  # FuseTS' output grid
    fits = [[gpy_fit(times, px, t_pred, s) for s in seeds] for px in values]
    out = {"times": times, "values": values, "predict_times": t_pred, "seeds": np.asarray(seeds)}
    for key in ("start", "params", "log_likelihood", "mean", "var", "seconds"):
        out[key] = np.array([[f[key] for f in row] for row in fits])  # (N, n_seeds, ...)
    return out


def main() -> None:
    """Fit everything and write ``reference.npz`` (arrays, prefixed by case) and ``reference.json`` (summary)."""
    import GPy

    arrays: dict[str, np.ndarray] = {}
    summary: dict[str, object] = {"gpy": GPy.__version__, "numpy": np.__version__,
                                  "created": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")}
    for name in FIELDS:
        res = _run(*load_field(name), FIELD_SEEDS)
        arrays.update({f"{name}/{k}": v for k, v in res.items()})
        summary[name] = {"log_likelihood": res["log_likelihood"].tolist(), "seconds": res["seconds"].tolist()}
        print(name, res["log_likelihood"])
    times, values, yx = load_sample()
    res = _run(times, values, (PIXEL_SEED,))
    arrays.update({f"pixels/{k}": v for k, v in res.items()})
    arrays["pixels/yx"] = yx
    summary["pixels"] = {"n": len(values), "seconds_mean": float(res["seconds"].mean()),
                         "log_likelihood": res["log_likelihood"][:, 0].tolist()}
    np.savez_compressed(HERE / "reference.npz", **arrays)
    (HERE / "reference.json").write_text(json.dumps(summary, indent=1) + "\n")


if __name__ == "__main__":
    main()
