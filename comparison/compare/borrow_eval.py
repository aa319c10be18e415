"""Land-cover shift scenarios for similar-pixel borrowing (issue 18): the UDF with and without :mod:`udf.borrow`.

Scenarios on a real cube (the embedded WorldCereal sample with its crop-type labels, or any cube with S1-signature
clusters as classes):

- ``P3C:<class>``: every NDVI of one class hidden, the other classes keep theirs; scored on the hidden class.
- ``P3S``: every NDVI hidden on alternate 8 × 8 px blocks; scored on the hidden blocks, per class.

Each reports per class: bias, MAE, R², ±1σ/±2σ coverage of NDVI_STD. Baselines fitted on the visible pixels: the
per-date mean of the visible NDVI and the five-term least-squares fit on VV, VH, VH−VV (dB) and that per-date mean.

Usage: python -m comparison.compare.borrow_eval [--cube FILE] [--clusters 4] [--tile N] [--out FILE.json]
"""

import argparse
import json
import logging
from pathlib import Path

import numpy as np
import xarray as xr

from udf.inference import predict_cube
from udf.preprocess import detect_s1_units, s1_to_linear
from udf.weights import load_checkpoint

_log = logging.getLogger(__name__)

LABELS = Path("/work/shared/data/worldcereal_31UDS_2017") / \
    "OUTPUT_POLY-110_10m_00002806639B424A_32631_2017-08-01_2018-11-30.nc"


def sample_classes(cube: xr.DataArray, labels: Path = LABELS) -> np.ndarray:
    """``(y, x)`` crop-type code of each cube pixel (mode of the 10 m labels inside it; -1 unlabelled)."""
    lab = xr.open_dataset(labels)["CT"]
    ct = lab.sel(y=cube["y"].values, x=cube["x"].values, method="nearest").values
    return np.where(np.isfinite(ct), ct, -1).astype(int)


def signature_classes(cube: xr.DataArray, k: int, seed: int = 0) -> np.ndarray:
    """``(y, x)`` k-means clusters of the pixels' S1 dB series (classes where no labels exist)."""
    units = detect_s1_units(cube.sel(bands="VV").values, cube.sel(bands="VH").values, dtype=cube.dtype)
    feats = []
    for b in ("VV", "VH"):
        db = 10 * np.log10(s1_to_linear(cube.sel(bands=b).values, units, check=False))
        db = np.where(np.isfinite(db), db, np.nanmean(db, axis=0, keepdims=True))
        feats.append(db.reshape(db.shape[0], -1).T)
    x = np.nan_to_num(np.concatenate(feats, 1))
    x = (x - x.mean(0)) / (x.std(0) + 1e-6)
    rng = np.random.default_rng(seed)
    centres = x[rng.choice(len(x), k, replace=False)]
    for _ in range(30):
        label = ((x[:, None] - centres[None]) ** 2).sum(-1).argmin(1)
        centres = np.stack([x[label == c].mean(0) if (label == c).any() else centres[c] for c in range(k)])
    return label.reshape(cube.sizes["y"], cube.sizes["x"])


def _baselines(cube: xr.DataArray, hidden: np.ndarray) -> dict[str, np.ndarray]:
    """Per-date mean of the visible NDVI and the five-term regression, fitted on the visible pixels."""
    nd = cube.sel(bands="NDVI").values.astype(np.float64)
    units = detect_s1_units(cube.sel(bands="VV").values, cube.sel(bands="VH").values, dtype=cube.dtype)
    vv = 10 * np.log10(s1_to_linear(cube.sel(bands="VV").values, units, check=False)).astype(np.float64)
    vh = 10 * np.log10(s1_to_linear(cube.sel(bands="VH").values, units, check=False)).astype(np.float64)
    visible = np.where(hidden[None], np.nan, nd)
    with np.errstate(all="ignore"):
        date_mean = np.nanmean(visible.reshape(nd.shape[0], -1), 1)
    date_mean = np.where(np.isfinite(date_mean), date_mean, np.nanmean(visible))
    dm = np.broadcast_to(date_mean[:, None, None], nd.shape)
    terms = np.stack([np.ones_like(vv), vv, vh, vh - vv, dm], -1)
    ok = np.isfinite(visible) & np.isfinite(terms).all(-1)
    coef = np.linalg.lstsq(terms[ok], visible[ok], rcond=None)[0]
    return {"per-date mean": dm.copy(), "five-term": terms @ coef}


def _metrics(pred: np.ndarray, std: np.ndarray | None, truth: np.ndarray) -> dict:
    ok = np.isfinite(pred) & np.isfinite(truth)
    p, t = pred[ok], truth[ok]
    if t.size < 10:
        return {"n": int(t.size)}
    res = p - t
    out = {"n": int(t.size), "bias": float(res.mean()), "mae": float(np.abs(res).mean()),
           "r2": float(1 - (res ** 2).sum() / ((t - t.mean()) ** 2).sum())}
    if std is not None:
        s = std[ok]
        out["cov1"] = float((np.abs(res) <= s).mean())
        out["cov2"] = float((np.abs(res) <= 2 * s).mean())
    return out


def _predict(cube: xr.DataArray, model, meta: dict, borrowing: bool, tile: int | None) -> tuple:  # type: ignore[no-untyped-def]
    ny, nx = cube.sizes["y"], cube.sizes["x"]
    tile = tile or max(ny, nx)
    out = None
    for y0 in range(0, ny, tile):
        for x0 in range(0, nx, tile):
            part = cube.isel(y=slice(y0, y0 + tile), x=slice(x0, x0 + tile))
            res = predict_cube(part, model, meta, include_uncertainty=True, device="cpu", borrowing=borrowing)
            if out is None:
                out = np.full((2, cube.sizes["t"], ny, nx), np.nan, np.float32)
            out[0, :, y0:y0 + tile, x0:x0 + tile] = res.sel(bands="NDVI").values
            out[1, :, y0:y0 + tile, x0:x0 + tile] = res.sel(bands="NDVI_STD").values
    assert out is not None
    return out[0], out[1]


def evaluate(cube: xr.DataArray, classes: np.ndarray, min_class_px: int = 15, tile: int | None = None,
             weights: str | None = None) -> dict:
    """All scenarios on ``cube`` with ``classes`` ``(y, x)``; returns nested dict scenario → method → class → metrics."""
    model, meta = load_checkpoint(weights)
    model.eval()
    nd = cube.sel(bands="NDVI").values
    names, counts = np.unique(classes, return_counts=True)
    big = [int(c) for c, n in zip(names, counts) if n >= min_class_px]
    yy, xx = np.mgrid[:cube.sizes["y"], :cube.sizes["x"]]
    scenarios = {f"P3C:{c}": classes == c for c in big}
    scenarios["P3S"] = ((yy // 8) + (xx // 8)) % 2 == 1
    report: dict = {}
    for name, hidden in scenarios.items():
        masked = cube.copy()
        masked.loc[{"bands": "NDVI"}] = np.where(hidden[None], np.nan, nd)
        preds = {f"udf{' +borrow' if b else ''}": _predict(masked, model, meta, b, tile) for b in (False, True)}
        preds.update({k: (v, None) for k, v in _baselines(masked, hidden).items()})
        report[name] = {}
        for method, (p, s) in preds.items():
            per = {}
            for c in big:
                sel = hidden & (classes == c)
                if sel.sum() >= min_class_px:
                    per[str(c)] = _metrics(p[:, sel], None if s is None else s[:, sel], nd[:, sel])
            per["all"] = _metrics(p[:, hidden], None if s is None else s[:, hidden], nd[:, hidden])
            report[name][method] = per
        _log.info("%s done", name)
    return report


def format_report(report: dict) -> str:
    """Markdown table rows: scenario, class, method, n, bias, MAE, R², ±1σ, ±2σ."""
    lines = ["| scenario | class | method | n | bias | MAE | R² | ±1σ | ±2σ |", "|---|---|---|---|---|---|---|---|---|"]
    for scen, methods in report.items():
        classes = list(next(iter(methods.values())).keys())
        for c in classes:
            for method, per in methods.items():
                m = per.get(c, {})
                if "mae" not in m:
                    continue
                cov = (f"{m['cov1']:.0%} | {m['cov2']:.0%}" if "cov1" in m else "– | –")
                lines.append(f"| {scen} | {c} | {method} | {m['n']} | {m['bias']:+.3f} | {m['mae']:.3f} | "
                             f"{m['r2']:.2f} | {cov} |")
    return "\n".join(lines)


def main() -> None:
    """Command line (see the module docstring)."""
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--cube", help="openEO-export netCDF with S1 and S2 B04/B08 (default: the embedded WorldCereal "
                   "sample with its crop-type labels)")
    p.add_argument("--clusters", type=int, default=4, help="S1-signature clusters as classes for --cube")
    p.add_argument("--tile", type=int, default=None, help="predict in tiles of this many px (default: whole cube)")
    p.add_argument("--weights", default=None)
    p.add_argument("--out", default=None, help="write the JSON report here")
    args = p.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    if args.cube:
        from udf.ingest.base import build_cube, load_s1, load_s2_ndvi

        s1 = load_s1(args.cube)
        cube = build_cube(s1, load_s2_ndvi(args.cube, s1, use_scl=False), period=None)
        classes = signature_classes(cube, args.clusters)
    else:
        from udf.ingest.base import load_sample_cube

        cube = load_sample_cube()
        classes = sample_classes(cube)
    report = evaluate(cube, classes, tile=args.tile, weights=args.weights)
    print(format_report(report))  # noqa: T201 - the script's output
    if args.out:
        Path(args.out).write_text(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
