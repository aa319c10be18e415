"""``s1ndvi loso --protocol P3S,P3C``: the shift scenarios (issue 18) on each held-out site, per class.

For each held-out site a fold model (pretrained without the site) is loaded from ``--models`` (``without_<site>.npz``
written by ``s1ndvi loso --save-models``; the sample site ``flanders_2017`` falls back to the embedded fold model),
or pretrained as in :func:`comparison.loso.run.run_fold` when ``--pretrain`` is given. Each of the site's sets is
scored under:

- **P3S** (gridded sets only: needs pixel positions): every sequence of alternate ``block``-px blocks loses all its
  NDVI; the other blocks keep theirs;
- **P3C**: for each class with ≥ ``class_min_size`` sequences, every sequence of that class loses all its NDVI.
  Classes: the embedded WorldCereal labels for the sample patch, the point table's crop codes for point sets,
  seeded k-means of S1 signatures for other gridded sets.

Methods: DL (the fold model through :func:`udf.evaluation.validation.predict_set`, S1-only map and std self-calibrated on the
set's visible sequences, as the UDF does on a cube), DateMean and Regression5
(:mod:`comparison.compare.regression_baselines`, fitted on the visible sequences of the same dates). Reported per site,
protocol family, method and class: n, bias, MAE, R², ±1σ/±2σ. The held-out site is read whole (its reserved test
blocks included: the fold model never saw the site), so a scenario covers the whole tile as in ``s1ndvi compare``.
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Optional

import numpy as np

from comparison.compare.regression_baselines import date_mean, regression5
from udf.evaluation.land_cover import NO_CLASS, LandCover, kmeans, labels_on_grid, point_classes, sample_label_file
from udf.evaluation.metrics import score
from udf.evaluation.shift_protocols import checker_blocks
from udf.model import FusionNet
from udf.preprocess import to_db
from udf.training.corpus.series import SeriesSet

if TYPE_CHECKING:
    from udf.training.loop import TrainConfig

_log = logging.getLogger(__name__)

__all__ = ["ShiftLosoOptions", "fold_model", "set_classes", "shift_hidden", "score_shift_set", "run_shift_loso",
           "shift_loso_markdown"]


@dataclass(frozen=True)
class ShiftLosoOptions:
    """What ``s1ndvi loso --protocol P3S,P3C`` does."""

    protocols: tuple[str, ...] = ("P3S", "P3C")
    checker_block: int = 8
    """P3S block edge (pixels)."""
    class_min_size: int = 20
    """Fewest sequences of a class that gets its own P3C scenario."""
    clusters: int = 4
    """k of the S1 k-means for gridded sets without labels."""
    seed: int = 0


def fold_model(site: str, models: Optional[Path]) -> tuple[FusionNet, dict, str]:
    """The model pretrained without ``site``: ``models/without_<site>.npz``, or the embedded one for the sample site.

    Raises:
        FileNotFoundError: no fold model for the site (the message gives the command that writes it).
    """
    from udf.weights import DEMO_ZERO_SHOT_NAME, load_checkpoint

    if models is not None and (models / f"without_{site}.npz").exists():
        path = models / f"without_{site}.npz"
    elif site == "flanders_2017":
        path = Path(__file__).resolve().parents[1] / "udf" / "data" / DEMO_ZERO_SHOT_NAME
    else:
        raise FileNotFoundError(f"No fold model for held-out site {site!r} in {models}: write it with `s1ndvi loso "
                                f"--data DIR --out {models or 'DIR'} --sites {site} --save-models` (pretraining) or "
                                "add --pretrain.")
    model, meta = load_checkpoint(path)
    held = meta.get("training_data", {}).get("sites", [])
    if site in held:  # "sites" lists the sites trained on
        raise ValueError(f"'{path}' was pretrained on {site!r} (sites {held}): not a leave-one-site-out model.")
    return model, meta, str(path)


def _grid_index(xy: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Row and column of each sequence from its map coordinates and the pixel spacing (y decreasing downwards).

    Uses the spacing, not the rank of the coordinates, so that rows or columns missing from the set (e.g. the
    corpus' reserved test blocks) do not shift the blocks of the pixels after them.
    """
    def index(v: np.ndarray) -> np.ndarray:
        u = np.unique(np.round(v, 3))
        step = float(np.diff(u).min()) if len(u) > 1 else 1.0
        return np.round((v - u[0]) / step).astype(np.int64)

    return index(-xy[:, 1]), index(xy[:, 0])


def _series_clusters(s1: np.ndarray, k: int, seed: int) -> np.ndarray:
    nt = s1.shape[1]
    feats = np.concatenate([to_db(s1[:, :, 0]), to_db(s1[:, :, 1])], axis=1).astype(np.float64)
    keep = np.isfinite(feats).any(0)
    feats = feats[:, keep]
    ok = np.isfinite(feats).any(1)
    out = np.full(len(feats), NO_CLASS, dtype=np.int64)
    if ok.sum() < k or nt == 0:
        return out
    mean = np.nanmean(feats[ok], 0)
    f = np.where(np.isfinite(feats), feats, mean)[ok]
    sd = f.std(0)
    out[ok] = kmeans((f - mean) / np.where(sd > 0, sd, 1.0), k, seed)
    return out


def set_classes(s: SeriesSet, data: Optional[Path], opts: ShiftLosoOptions) -> LandCover:
    """Classes of a set's sequences (labels, crop codes or S1 clusters; see the module docstring)."""
    from udf.training.corpus.sites import SOURCES, wide_rows

    if s.xy is not None and s.source.startswith("WorldCereal 31UDS"):
        xs, ys = np.unique(s.xy[:, 0]), np.unique(s.xy[:, 1])[::-1]
        grid = labels_on_grid(sample_label_file(), xs, ys)
        iy, ix = _grid_index(s.xy)
        return LandCover(grid.classes[iy, ix].astype(np.int64), grid.names, grid.source)
    if s.xy is None and data is not None:
        for src in SOURCES:
            if src.site == s.site and Path(src.path).name == s.source and (data / src.path).exists():
                rows = None
                if src.reader in ("wide_tropics", "wide_extratropics"):
                    rows = wide_rows(data / src.path, src.reader == "wide_tropics")
                land = point_classes(data / src.path, rows)
                if len(land.classes) != s.n:
                    raise ValueError(f"{s.source}: {len(land.classes)} crop codes for {s.n} sequences.")
                return land
    if s.xy is not None:
        cls = _series_clusters(s.s1, opts.clusters, opts.seed)
        return LandCover(cls, {j: f"S1 cluster {j}" for j in range(opts.clusters)},
                         f"k-means of S1 signatures (k={opts.clusters}, seed={opts.seed})")
    return LandCover(np.full(s.n, NO_CLASS, dtype=np.int64), {}, "no classes")


def shift_hidden(s: SeriesSet, land: LandCover, opts: ShiftLosoOptions) -> dict[str, np.ndarray]:
    """Scenario name → ``(N,)`` bool sequences that lose all their NDVI (scenarios without NDVI on both sides left out)."""
    has = np.isfinite(s.ndvi).any(1)
    out: dict[str, np.ndarray] = {}
    if "P3S" in opts.protocols and s.xy is not None:
        iy, ix = _grid_index(s.xy)
        blocks = checker_blocks((int(iy.max()) + 1, int(ix.max()) + 1), opts.checker_block)
        out["P3S"] = blocks[iy, ix]
    if "P3C" in opts.protocols:
        sizes = {c: int((has & (land.classes == c)).sum()) for c in land.sizes()}
        for c in sorted((c for c, n in sizes.items() if n >= opts.class_min_size), key=lambda c: (-sizes[c], c)):
            out[f"P3C:{land.name(c)}"] = land.classes == c
    return {k: v for k, v in out.items() if (v & has).any() and (~v & has).any()}


def _by_days(days: np.ndarray) -> list[np.ndarray]:
    _, inverse = np.unique(days, axis=0, return_inverse=True)
    inverse = inverse.ravel()
    return [np.flatnonzero(inverse == k) for k in range(int(inverse.max()) + 1)]


def score_shift_set(model: FusionNet, s: SeriesSet, land: LandCover, opts: ShiftLosoOptions) -> list[dict]:
    """Every scenario of :func:`shift_hidden` on one set: records of hidden pred/truth/std/class per method."""
    from udf.evaluation.validation import predict_set

    out = []
    for name, hide in shift_hidden(s, land, opts).items():
        kept = np.where(hide[:, None], np.nan, s.ndvi).astype(np.float32)
        hidden = hide[:, None] & np.isfinite(s.ndvi)
        idx = np.flatnonzero(hide)
        t0 = time.perf_counter()
        mean_h, std_h, cal = predict_set(model, s.s1[idx], kept[idx], s.days[idx], self_calibration=True,
                                         seed=opts.seed, calibrate_on=s.subset(np.flatnonzero(~hide)))
        dl_mean, dl_std = np.full(s.ndvi.shape, np.nan), np.full(s.ndvi.shape, np.nan)
        dl_mean[idx], dl_std[idx] = mean_h, std_h
        preds = {"DL": (dl_mean, dl_std, time.perf_counter() - t0, cal.std_scale is not None)}
        dm, ds = np.full(s.ndvi.shape, np.nan), np.full(s.ndvi.shape, np.nan)
        rm, rs = np.full(s.ndvi.shape, np.nan), np.full(s.ndvi.shape, np.nan)
        t0 = time.perf_counter()
        for rows in _by_days(s.days):
            fit = date_mean(kept[rows].T)
            dm[rows], ds[rows] = fit.mean[None], fit.std[None]
            m, sd, _ = regression5(to_db(s.s1[rows, :, 0]).T, to_db(s.s1[rows, :, 1]).T, kept[rows].T)
            rm[rows], rs[rows] = m.T, sd.T
        secs = time.perf_counter() - t0
        preds["DateMean"], preds["Regression5"] = (dm, ds, secs / 2, True), (rm, rs, secs / 2, True)
        cls = np.broadcast_to(land.classes[:, None], s.ndvi.shape)[hidden]
        for method, (pm, ps, seconds, calibrated) in preds.items():
            out.append({"site": s.site, "source": s.source, "grid": s.grid, "protocol": name, "method": method,
                        "pred": pm[hidden].astype(np.float32), "truth": s.ndvi[hidden], "std": ps[hidden],
                        "class": np.asarray(cls), "class_names": {str(k): v for k, v in land.names.items()},
                        "classes_source": land.source, "seconds": seconds, "std_calibrated": calibrated,
                        "sequences": int(hide.sum())})
    return out


def _record(pred: np.ndarray, truth: np.ndarray, std: np.ndarray) -> dict:
    rec = score(pred, truth, np.ones(pred.shape, bool))
    z = np.abs(pred - truth) / std
    z = z[np.isfinite(z)]
    rec.update(within_1std=float((z <= 1).mean()) if z.size else float("nan"),
               within_2std=float((z <= 2).mean()) if z.size else float("nan"))
    return rec


def summarise_shift(records: list[dict]) -> dict:
    """Site → protocol family (P3S, P3C) → method → {"all": metrics, "classes": class name → metrics}."""
    table: dict = {}
    for r in records:
        fam = r["protocol"].split(":")[0]
        table.setdefault(r["site"], {}).setdefault(fam, {}).setdefault(r["method"], []).append(r)
    out: dict = {}
    for site, fams in table.items():
        for fam, methods in fams.items():
            for method, rs in methods.items():
                pred = np.concatenate([r["pred"] for r in rs])
                truth = np.concatenate([r["truth"] for r in rs])
                std = np.concatenate([r["std"] for r in rs])
                cls = np.concatenate([r["class"] for r in rs])
                names = {**{k: v for r in rs for k, v in r["class_names"].items()}}
                classes = {}
                for c in np.unique(cls):
                    m = cls == c
                    classes[names.get(str(int(c)), "no class")] = _record(pred[m], truth[m], std[m])
                out.setdefault(site, {}).setdefault(fam, {})[method] = {
                    "all": _record(pred, truth, std), "classes": classes,
                    "sets": sorted({f"{r['source']} ({r['grid']}; classes: {r['classes_source']})" for r in rs})}
    return out


def _f(v: float, d: int = 3) -> str:
    return "–" if not np.isfinite(v) else f"{v:.{d}f}"


def shift_loso_markdown(summary: dict) -> str:
    """Per site and scenario: R², MAE, bias and ±1σ/±2σ of each method, then per class."""
    lines = ["| held-out site | scenario | class | method | n | bias | MAE | R² | ±1σ | ±2σ |",
             "|---|---|---|---|---:|---:|---:|---:|---:|---:|"]
    for site, fams in summary.items():
        for fam, methods in fams.items():
            rows = [("all", m, rec["all"]) for m, rec in methods.items()]
            rows += [(c, m, r) for m, rec in methods.items() for c, r in rec["classes"].items()]
            for c, m, r in rows:
                lines.append(f"| {site} | {fam} | {c} | {m} | {r['n']} | {_f(r['bias'])} | {_f(r['mae'])} | "
                             f"{_f(r['r2'], 2)} | {_f(r['within_1std'], 2)} | {_f(r['within_2std'], 2)} |")
    return "\n".join(lines)


def run_shift_loso(corpus: dict[str, list[SeriesSet]], opts: ShiftLosoOptions, out: Path,
                   data: Optional[Path] = None, models: Optional[Path] = None,
                   sites: Optional[tuple[str, ...]] = None,
                   progress: Optional[Callable[[str], None]] = None,
                   pretrain_cfg: Optional["TrainConfig"] = None) -> Path:
    """Score the shift scenarios on each held-out site with its fold model; writes ``loso_shift.json`` and ``.md``.

    A site without a fold model (:func:`fold_model`) is an error unless ``pretrain_cfg`` is given: then it is
    pretrained without the site and saved as ``out/without_<site>.npz`` (reused by the next run with
    ``models=out``).
    """
    from comparison.loso.run import evaluation_sets
    from udf.training.corpus.sites import load_site

    records: list[dict] = []
    used: dict[str, str] = {}
    for site in sites or tuple(sorted(corpus)):
        try:
            model, _, path = fold_model(site, models)
        except FileNotFoundError:
            if pretrain_cfg is None:
                raise
            from udf.training.pretrain import pretrain
            from udf.weights import save_checkpoint

            model, meta = pretrain(corpus, pretrain_cfg, holdout=(site,))
            path = str(save_checkpoint(model, meta, out / f"without_{site}.npz"))
        used[site] = path
        # the whole tile: the fold model never saw the site, so its reserved test blocks need not be left out
        sets = load_site(site, data) if data is not None else corpus[site]
        for s in evaluation_sets(sets):
            land = set_classes(s, data, opts)
            records += score_shift_set(model, s, land, opts)
        if progress:
            progress(site)
    summary = summarise_shift(records)
    out.mkdir(parents=True, exist_ok=True)
    payload = {"options": {"protocols": list(opts.protocols), "checker_block": opts.checker_block,
                           "class_min_size": opts.class_min_size, "clusters": opts.clusters, "seed": opts.seed},
               "fold_models": used, "sites": summary}
    (out / "loso_shift.json").write_text(json.dumps(payload, indent=1, default=float))
    path = out / "loso_shift.md"
    path.write_text("# Leave-one-site-out: shift scenarios (P3S, P3C)\n\nFold models: "
                    + ", ".join(f"{k}: `{v}`" for k, v in used.items()) + "\n\n" + shift_loso_markdown(summary) + "\n")
    _log.info("Wrote %s", path)
    return path
