"""The shift scenarios in ``s1ndvi compare`` (issue 18): P3S / P3C protocols, their baselines, per-class scores.

- :func:`resolve_land_cover` picks the classes of a cube (the embedded WorldCereal labels where the cube lies on
  them, a label file, or seeded k-means clusters of S1 signatures);
- :func:`shift_protocols` draws P3S and one P3C per class (:mod:`udf.evaluation.shift_protocols`);
- :func:`run_s1_only_baselines` runs DateMean and Regression5 (:mod:`comparison.compare.regression_baselines`) on the S1-only
  protocols only (P3, P3S, P3C);
- :func:`per_class_metrics` / :func:`per_class_table`: bias, MAE, R², ±1σ/±2σ coverage per class and protocol.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Optional

import numpy as np
import xarray as xr

from comparison.caveats import IN_SAMPLE
from comparison.compare.evaluate import mask_cube, score_prediction
from comparison.compare.methods import Method, Prediction
from comparison.compare.regression_baselines import date_mean_method, regression5_method
from udf.evaluation.land_cover import NO_CLASS, LandCover, labels_on_grid, s1_clusters, sample_label_file
from udf.evaluation.metrics import distance_to_kept, score
from udf.evaluation.protocols import Protocol
from udf.evaluation.shift_protocols import class_protocols, hide_checker
from udf.preprocess import times_to_days

_log = logging.getLogger(__name__)

__all__ = ["S1_ONLY", "TRAINED_ON_CUBE", "flag_in_sample", "is_s1_only", "per_class_metrics", "per_class_table",
           "resolve_land_cover", "run_s1_only_baselines", "shift_protocols", "trained_on_cube"]

S1_ONLY = ("P3", "P3S", "P3C")
"""Protocol families where the scored pixels have no NDVI at all (the S1-only baselines run there)."""

TRAINED_ON_CUBE = ("SeedMLP", "DL adapted", "DL trained here")
"""Methods trained on this cube's training-block NDVI: for P3S/P3C those blocks overlap the hidden area."""


def is_s1_only(protocol: str) -> bool:
    """Whether ``protocol`` (``P3``, ``P3S`` or ``P3C:<class>``) hides all NDVI of its scored pixels."""
    return protocol.split(":")[0] in S1_ONLY


def _overlaps_sample(cube: xr.DataArray) -> bool:
    with xr.open_dataset(sample_label_file()) as ds:
        lx, ly = ds["x"].values, ds["y"].values
        epsg = str(ds.attrs.get("epsg", ""))
    crs = str(cube.attrs.get("crs", ""))
    if crs and epsg and epsg not in crs:
        return False
    x, y = cube["x"].values, cube["y"].values
    return bool(x.min() <= lx.max() and lx.min() <= x.max() and y.min() <= ly.max() and ly.min() <= y.max())


def resolve_land_cover(cube: xr.DataArray, spec: str = "auto", clusters: int = 4, seed: int = 0) -> LandCover:
    """The classes of the cube's pixels.

    Args:
        cube: model cube.
        spec: ``auto`` (the embedded WorldCereal labels when the cube lies on the sample patch, else clusters),
            ``labels`` (the embedded labels; error if the cube is elsewhere), ``clusters`` (k-means of S1
            signatures), or a WorldCereal ``OUTPUT_POLY`` label file (variables LC, CT on the cube's CRS).
        clusters: k of the k-means.
        seed: k-means seed.
    """
    if spec in ("auto", "labels"):
        if _overlaps_sample(cube):
            return labels_on_grid(sample_label_file(), cube["x"].values, cube["y"].values)
        if spec == "labels":
            raise ValueError("--classes labels: the cube does not lie on the embedded WorldCereal label patch "
                             "(31UDS, EPSG:32631); give a label file or use --classes clusters.")
        return s1_clusters(cube, clusters, seed)
    if spec == "clusters":
        return s1_clusters(cube, clusters, seed)
    if not Path(spec).is_file():
        raise FileNotFoundError(f"--classes {spec!r} is neither auto, labels, clusters nor an existing label file.")
    return labels_on_grid(spec, cube["x"].values, cube["y"].values)


def shift_protocols(cube: xr.DataArray, names: tuple[str, ...], land: Optional[LandCover], checker_block: int = 8,
                    class_min_size: int = 20) -> dict[str, Protocol]:
    """P3S and/or one P3C per class large enough, on the cube's valid NDVI (deterministic)."""
    ndvi = cube.sel(bands="NDVI").values
    out: dict[str, Protocol] = {}
    if "P3S" in names:
        out["P3S"] = hide_checker(ndvi, checker_block)
    if "P3C" in names:
        if land is None:
            raise ValueError("P3C needs land-cover classes (--classes).")
        out.update(class_protocols(ndvi, land, class_min_size))
    return out


def run_s1_only_baselines(cube: xr.DataArray, protocols: dict[str, Protocol], pixels: np.ndarray,
                          names: tuple[str, ...] = ("DateMean", "Regression5")) -> tuple[dict, dict]:
    """DateMean and Regression5 on the S1-only protocols; ``(metrics, predictions)`` as :func:`evaluate`."""
    methods: dict[str, Method] = {}
    if "DateMean" in names:
        methods["DateMean"] = date_mean_method()
    if "Regression5" in names:
        methods["Regression5"] = regression5_method()
    truth = cube.sel(bands="NDVI").values
    days = times_to_days(cube["t"].values)
    metrics: dict = {}
    predictions: dict = {}
    for pname, prot in protocols.items():
        if not is_s1_only(pname) or not methods:
            continue
        masked = mask_cube(cube, prot)
        dist = distance_to_kept(days, np.isfinite(masked.sel(bands="NDVI").values))
        px = prot.pixels if prot.pixels is not None else pixels
        metrics[pname], predictions[pname] = {}, {}
        for mname, method in methods.items():
            t0 = time.perf_counter()
            pred = method(masked, px)
            rec = score_prediction(pred, truth, prot.hidden, dist, px, time.perf_counter() - t0)
            metrics[pname][mname], predictions[pname][mname] = rec, pred
            _log.info("%s/%s: MAE %.4f R² %.3f", pname, mname, rec["mae"], rec["r2"])
    return metrics, predictions


def trained_on_cube(meta: dict, cube: xr.DataArray) -> bool:
    """Whether a checkpoint trained on pixels of this cube's grid (any of them, reserved test blocks or not).

    True for a model trained or adapted on the cube, and for a corpus model whose gridded sources cover it (the
    shipped weights on the embedded sample); False for a leave-one-site-out fold model of the cube's site.
    """
    from udf.training.fit import grid_fingerprint, grids_overlap

    here = grid_fingerprint(cube)
    data = meta.get("training_data", {})
    if data.get("kind") == "multi-site corpus":
        return any(grids_overlap({**g, "dx": here["dx"], "dy": here["dy"]}, here) for g in data.get("grids", []))
    return bool(data.get("grid")) and grids_overlap(data["grid"], here)


def flag_in_sample(metrics: dict, trained: tuple[str, ...] = ()) -> None:
    """Mark methods trained on this cube's NDVI as in-sample on P3S/P3C (their training pixels lie in the hidden area).

    ``trained`` adds method names to :data:`TRAINED_ON_CUBE` (e.g. ``DL zero-shot`` with a checkpoint for which
    :func:`trained_on_cube` holds: the shipped weights on the embedded sample).
    """
    trained = tuple(TRAINED_ON_CUBE) + tuple(trained)
    for pname, by in metrics.items():
        if pname.split(":")[0] not in ("P3S", "P3C"):
            continue
        for mname in trained:
            if mname in by:
                by[mname]["note"] = (f"{IN_SAMPLE} for {pname.split(':')[0]}: trained on this cube's training-block "
                                     "NDVI, which includes pixels of the hidden area" +
                                     (f"; {by[mname]['note']}" if by[mname].get("note") else ""))


def _class_record(pred: Prediction, truth: np.ndarray, mask: np.ndarray) -> dict:
    rec = score(pred.mean, truth, mask)
    if pred.std is not None:
        m = mask & np.isfinite(truth)
        z = np.abs(pred.mean[m] - truth[m]) / pred.std[m]
        z = z[np.isfinite(z)]
        rec["within_1std"] = float((z <= 1).mean()) if z.size else float("nan")
        rec["within_2std"] = float((z <= 2).mean()) if z.size else float("nan")
    return rec


def per_class_metrics(truth: np.ndarray, protocols: dict[str, Protocol], predictions: dict, land: LandCover,
                      min_obs: int = 1) -> dict:
    """Protocol → method → class name → :func:`udf.evaluation.metrics.score` (+ ±1σ/±2σ coverage) on the hidden observations.

    Only S1-only protocols (P3, P3S, P3C) are broken down; classes with fewer than ``min_obs`` hidden
    observations are left out (the class sizes are in the payload's ``classes``).
    """
    out: dict = {}
    for pname, prot in protocols.items():
        if not is_s1_only(pname):
            continue
        out[pname] = {}
        for mname, pred in predictions.get(pname, {}).items():
            hidden = prot.hidden if pred.dates is None else prot.hidden & pred.dates[:, None, None]
            by: dict = {}
            for cls in land.sizes():
                mask = hidden & (land.classes == cls)[None]
                if mask.sum() >= min_obs:
                    by[land.name(cls)] = _class_record(pred, truth, mask)
            unc = hidden & (land.classes == NO_CLASS)[None]
            if unc.sum() >= min_obs:
                by["no class"] = _class_record(pred, truth, unc)
            out[pname][mname] = by
    return out


def _f(v: object, d: int = 3) -> str:
    return "–" if v is None or not np.isfinite(float(v)) else f"{float(v):.{d}f}"  # type: ignore[arg-type]


def per_class_table(per_class: dict, classes: dict) -> str:
    """Markdown: protocol × method × class with n, bias, MAE, R², ±1σ / ±2σ.

    Args:
        per_class: :func:`per_class_metrics`.
        classes: ``{"source": str, "pixels": {class name: pixels}}`` (the compare payload's ``classes``).
    """
    lines = [f"Classes: {classes['source']}; pixels per class: "
             + ", ".join(f"{c} {n}" for c, n in sorted(classes["pixels"].items(), key=lambda kv: -kv[1]))
             + ". Scored: the hidden observations of each class (P3: the test blocks; P3S: the hidden blocks; "
             "P3C:X: all of class X).", "", "| protocol | method | class | n | NaN | bias | MAE | R² | ±1σ | ±2σ |",
             "|---|---|---|---:|---:|---:|---:|---:|---:|---:|"]
    for pname, by_m in per_class.items():
        for mname, by_c in by_m.items():
            if all(r["n_nan"] == r["n"] for r in by_c.values()):
                continue  # predicts nothing without NDVI (Linear, Whittaker, MOGPR): in the main table
            for cname, r in by_c.items():
                lines.append(f"| {pname} | {mname} | {cname} | {r['n']} | {r['n_nan']} | {_f(r['bias'])} | "
                             f"{_f(r['mae'])} | {_f(r['r2'], 2)} | {_f(r.get('within_1std'), 2)} | "
                             f"{_f(r.get('within_2std'), 2)} |")
    return "\n".join(lines)
