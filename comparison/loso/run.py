"""Leave-one-site-out evaluation of the pretrained model against linear interpolation, Whittaker and MOGPR.

For each site of the corpus a model is pretrained on all *other* sites (:func:`udf.training.pretrain.pretrain` with
``holdout``) and scored on the held-out site's sequences under P1, P2_60, P2_90 and P3, with the same hidden values
for every method. Whittaker's λ is chosen on the training sites. MOGPR fits each scored sequence on its own kept
observations (RVI + NDVI). The predictive std is calibrated across sites: the scale applied to fold ``k`` is the one
that makes the *other* folds' held-out residuals cover 68.3 % (so the reported coverage of a site never used that
site), and the shipped weights get the scale computed from all folds.
"""

from __future__ import annotations

import logging
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable, Optional

import numpy as np
import torch

from udf.evaluation.baselines import WHITTAKER_LAMBDAS, whittaker
from udf.evaluation.metrics import score
from udf.evaluation.protocols import PROTOCOLS
from udf.evaluation.validation import MaskedSet, mask_sets, predict_set
from udf.features import interpolate_kept
from udf.model import FusionNet
from udf.preprocess import rvi
from udf.training.corpus.regrid import composite_days, regular_edges
from udf.training.corpus.series import SeriesSet
from udf.training.loop import TrainConfig
from udf.training.pretrain import pretrain

_log = logging.getLogger(__name__)

__all__ = ["LosoOptions", "cross_site_scale", "evaluation_sets", "load_folds", "loso_payload", "run_fold", "run_loso",
           "save_fold", "score_methods"]


@dataclass(frozen=True)
class LosoOptions:
    """What a leave-one-site-out run does."""

    train: TrainConfig = field(default_factory=TrainConfig)
    """Pretraining of each fold."""
    protocols: tuple[str, ...] = PROTOCOLS
    """Protocols scored."""
    max_sequences: int = 300
    """Scored sequences per held-out set (a seeded subsample, the same for every method)."""
    mogpr: bool = True
    """Also run local MOGPR (P1/P2 only: without NDVI it predicts nothing)."""
    mogpr_restarts: int = 3
    """MOGPR starts per sequence."""
    seed: int = 0
    """Seed of subsamples and protocols."""
    models_dir: Optional[str] = None
    """Folder where each fold's model is saved as ``without_<site>.npz`` (None: not saved)."""


def evaluation_sets(sets: list[SeriesSet]) -> list[SeriesSet]:
    """A held-out site's sets as scored: native grids, plus 10-day composites of per-acquisition series."""
    out = []
    for s in sets:
        out.append(s)
        if s.grid == "acquisition":
            first, last = float(s.days[0, 0]), float(s.days[0, -1])
            out.append(composite_days(s, regular_edges(first, last, 10), "10D"))
    return out


def _by_days(days: np.ndarray) -> list[np.ndarray]:
    """Row indices grouped by identical time axes."""
    _, inverse = np.unique(days, axis=0, return_inverse=True)
    return [np.flatnonzero(inverse.ravel() == k) for k in range(int(inverse.max()) + 1)]


def linear_rows(ndvi: np.ndarray, days: np.ndarray) -> np.ndarray:
    """Linear interpolation of kept NDVI ``(N, T)`` per row (constant beyond the ends; NaN with none kept)."""
    interp, _, _ = interpolate_kept(torch.from_numpy(ndvi.astype(np.float64)), torch.from_numpy(days))
    out = interp.numpy().astype(np.float32)
    out[~np.isfinite(ndvi).any(1)] = np.nan
    return out


def whittaker_rows(ndvi: np.ndarray, days: np.ndarray, lam: float) -> np.ndarray:
    """Whittaker smoother per row, rows with the same dates solved together."""
    out = np.full(ndvi.shape, np.nan, dtype=np.float32)
    for rows in _by_days(days):
        out[rows] = whittaker(ndvi[rows].T, days[rows[0]], lam).T
    return out


def mogpr_rows(s1: np.ndarray, ndvi: np.ndarray, days: np.ndarray, restarts: int,
               progress: Optional[Callable[[int, int], None]] = None) -> tuple[np.ndarray, np.ndarray]:
    """MOGPR (RVI + NDVI) per row at the row's own dates: NDVI mean and std ``(N, T)``."""
    from comparison.mogpr import fit_predict

    mean, std = np.full(ndvi.shape, np.nan), np.full(ndvi.shape, np.nan)
    for rows in _by_days(days):
        values = np.stack([rvi(s1[rows, :, 0], s1[rows, :, 1]), ndvi[rows]], axis=-1).astype(np.float64)
        res = fit_predict(days[rows[0]], values, days[rows[0]], n_restarts=restarts, progress=progress)
        mean[rows], std[rows] = res.mean[:, :, 1], res.std[:, :, 1]
    return mean, std


def choose_lambda(sets: list[SeriesSet], seed: int, lambdas: tuple[float, ...] = WHITTAKER_LAMBDAS,
                  max_sequences: int = 200) -> float:
    """Whittaker λ with the lowest mean MAE (P1, P2_60, P2_90) over training sets, each set weighted equally."""
    masked = mask_sets(sets, ("P1", "P2_60", "P2_90"), seed=seed + 1000, max_sequences=max_sequences)
    maes = {lam: float(np.nanmean([score(whittaker_rows(m.kept_ndvi(), m.series.days, lam), m.series.ndvi,
                                         m.hidden)["mae"] for m in masked])) for lam in lambdas}
    return min(maes, key=lambda k: maes[k])


def _s1_only_cross_halves(model: FusionNet, m: MaskedSet, seed: int) -> tuple[np.ndarray, np.ndarray, bool, dict]:
    """P3 as on a cube where other pixels keep their S2 (each half of the sequences calibrated on the other's NDVI).

    Each half is predicted from S1 alone, its S1-only map self-calibrated (:mod:`udf.selfcal`) on the other half's
    NDVI. The flag says whether both halves got a calibrated S1-only std (otherwise the std is the model's, unscaled).
    """
    half = np.random.default_rng([seed, 3]).permutation(m.series.n) % 2 == 0
    mean = np.full(m.series.ndvi.shape, np.nan, dtype=np.float32)
    std = np.full_like(mean, np.nan)
    cals = []
    for rows in (half, ~half):
        idx = np.flatnonzero(rows)
        other = m.series.subset(np.flatnonzero(~rows))
        mm, ss, cal = predict_set(model, m.series.s1[idx], m.kept_ndvi()[idx], m.series.days[idx],
                                  self_calibration=True, calibrate_on=other)
        mean[idx], std[idx] = mm, ss
        cals.append(cal)
    calibrated = all(c.s1_only_std_scale is not None for c in cals)
    return mean, std, calibrated, {"halves": [c.describe() for c in cals]}


def score_methods(model: FusionNet, sets: list[SeriesSet], opts: LosoOptions, lam: float,
                  progress: Optional[Callable[[int, int], None]] = None) -> list[dict]:
    """Every method on every protocol of the held-out sets; per (set, protocol, method) hidden pred/truth/std.

    P3 (no NDVI on the scored sequences) is scored twice for DL: ``P3`` with the S1-only map calibrated on the other
    half of the set's sequences (a cube where some pixels have S2, as in ``s1ndvi compare``), and ``P3_alone`` with
    no S2 anywhere (nothing to calibrate on: the model's output as is, with the checkpoint's std scale).
    """
    out = []
    for m in mask_sets(sets, opts.protocols, seed=opts.seed, max_sequences=opts.max_sequences):
        kept, truth, days = m.kept_ndvi(), m.series.ndvi, m.series.days
        preds: dict[str, tuple[str, np.ndarray, Optional[np.ndarray], float, bool, dict]] = {}
        t0 = time.perf_counter()
        mean, std, cal = predict_set(model, m.series.s1, kept, days, self_calibration=True)  # as the UDF does
        calibrated = cal.std_scale is not None
        if m.protocol == "P3":
            preds["DL alone"] = ("P3_alone", mean, std, time.perf_counter() - t0, calibrated, cal.describe())
            t0 = time.perf_counter()
            mean, std, calibrated, info = _s1_only_cross_halves(model, m, opts.seed)
            preds["DL"] = ("P3", mean, std, time.perf_counter() - t0, calibrated, info)
        else:
            preds["DL"] = (m.protocol, mean, std, time.perf_counter() - t0, calibrated, cal.describe())
        preds["Linear"] = (m.protocol, linear_rows(kept, days), None, 0.0, False, {})
        preds["Whittaker"] = (m.protocol, whittaker_rows(kept, days, lam), None, 0.0, False, {})
        if opts.mogpr and m.protocol != "P3":
            t0 = time.perf_counter()
            mm, ms = mogpr_rows(m.series.s1, kept, days, opts.mogpr_restarts, progress)
            preds["MOGPR"] = (m.protocol, mm, ms, time.perf_counter() - t0, False, {})
        for method, (protocol, pred, sd, seconds, std_cal, info) in preds.items():
            out.append({"site": m.site, "source": m.series.source, "grid": m.series.grid, "protocol": protocol,
                        "method": "DL" if method.startswith("DL") else method, "pred": pred[m.hidden],
                        "truth": truth[m.hidden], "std": None if sd is None else sd[m.hidden], "seconds": seconds,
                        "sequences": m.series.n, "std_calibrated": method.startswith("DL") and std_cal,
                        "self_calibration": info if method.startswith("DL") else None})
    return out


def run_fold(corpus: dict[str, list[SeriesSet]], site: str, opts: LosoOptions,
             progress: Optional[Callable[[str], None]] = None, reserved: Optional[list[dict]] = None) -> dict:
    """Pretrain without ``site``, then score every method on it. Returns the raw per-set records and the fold info."""
    t0 = time.perf_counter()
    model, meta = pretrain(corpus, opts.train, holdout=(site,), reserved=reserved)
    if opts.models_dir:
        from udf.weights import save_checkpoint

        save_checkpoint(model, meta, Path(opts.models_dir) / f"without_{site}.npz")
    others = [s for k, v in corpus.items() if k != site for s in v]
    lam = choose_lambda(others, opts.seed)
    if progress:
        progress(f"{site}: trained ({len(meta['history'])} epochs), λ={lam:g}")
    records = score_methods(model, evaluation_sets(corpus[site]), opts, lam)
    return {"site": site, "records": records, "whittaker_lambda": lam, "epochs": len(meta["history"]),
            "train_minutes": (time.perf_counter() - t0) / 60, "std_scale_in_site": meta["std_scale_in_site"]}


def _z(records: list[dict]) -> np.ndarray:
    """Residuals in units of the uncalibrated std, where the std was not self-calibrated (P3: no NDVI)."""
    z = np.concatenate([np.abs(r["pred"] - r["truth"]) / r["std"] for r in records
                        if r["method"] == "DL" and r["std"] is not None and not r["std_calibrated"]] or [np.zeros(0)])
    return z[np.isfinite(z)]


def cross_site_scale(folds: list[dict], exclude: Optional[str] = None) -> float:
    """Std scale making the held-out residuals of the folds (except ``exclude``) cover 68.3 %, sites weighted equally.

    Only residuals whose std was not self-calibrated count (mostly P3, S1 only): that is where the UDF falls back
    on the checkpoint's scale.
    """
    zs = [_z(f["records"]) for f in folds if f["site"] != exclude]
    zs = [z for z in zs if z.size]
    if not zs:
        return 1.0
    n = min(z.size for z in zs)
    rng = np.random.default_rng(0)
    return float(np.quantile(np.concatenate([rng.choice(z, n, replace=False) for z in zs]), 0.683))


def summarise(folds: list[dict]) -> dict:
    """Per held-out site, protocol and method: pooled metrics; DL coverage with the scale of the other folds."""
    table: dict = {}
    for f in folds:
        scale = cross_site_scale(folds, exclude=f["site"]) if len(folds) > 1 else 1.0
        site: dict = {}
        keys = sorted({(r["protocol"], r["method"]) for r in f["records"]})
        for protocol, method in keys:
            rs = [r for r in f["records"] if r["protocol"] == protocol and r["method"] == method]
            pred, truth = np.concatenate([r["pred"] for r in rs]), np.concatenate([r["truth"] for r in rs])
            rec = score(pred, truth, np.ones(pred.shape, bool))
            if method == "DL":
                std = np.concatenate([r["std"] * (1.0 if r["std_calibrated"] else scale) for r in rs])
                z = np.abs(pred - truth) / std
                z = z[np.isfinite(z)]
                rec.update(within_1std=float((z <= 1).mean()), within_2std=float((z <= 2).mean()), std_scale=scale)
            rec["seconds"] = float(sum(r["seconds"] for r in rs))
            site.setdefault(protocol, {})[method] = rec
        table[f["site"]] = {"metrics": site, "whittaker_lambda": f["whittaker_lambda"], "epochs": f["epochs"],
                            "train_minutes": f["train_minutes"],
                            "sets": sorted({f"{r['source']} ({r['grid']})" for r in f["records"]})}
    return table


def save_fold(fold: dict, folder: Path) -> Path:
    """Write one fold's records as ``fold_<site>.npz`` (arrays) with a JSON header, no pickle."""
    import json

    folder.mkdir(parents=True, exist_ok=True)
    arrays: dict[str, np.ndarray] = {}
    header = {k: v for k, v in fold.items() if k != "records"}
    header["records"] = []
    for i, r in enumerate(fold["records"]):
        for key in ("pred", "truth", "std"):
            if r[key] is not None:
                arrays[f"{i}/{key}"] = np.asarray(r[key], dtype=np.float32)
        header["records"].append({k: v for k, v in r.items() if k not in ("pred", "truth", "std")})
    arrays["__header__"] = np.array(json.dumps(header, default=float))
    path = folder / f"fold_{fold['site']}.npz"
    np.savez_compressed(path, **arrays)  # type: ignore[arg-type]
    return path


def load_folds(folder: Path) -> list[dict]:
    """Every ``fold_<site>.npz`` in ``folder`` (see :func:`save_fold`), in site order."""
    import json

    folds = []
    for path in sorted(folder.glob("fold_*.npz")):
        with np.load(path, allow_pickle=False) as npz:
            header = json.loads(str(npz["__header__"]))
            for i, r in enumerate(header["records"]):
                for key in ("pred", "truth", "std"):
                    r[key] = np.array(npz[f"{i}/{key}"]) if f"{i}/{key}" in npz.files else None
            folds.append(header)
    return folds


def loso_payload(folds: list[dict], opts: LosoOptions) -> dict:
    """The JSON-ready payload of a set of folds: table, cross-site std scale, options."""
    return {"options": {**asdict(opts), "train": opts.train.to_dict()}, "sites": summarise(folds),
            "std_scale_cross_site": cross_site_scale(folds)}


def run_loso(corpus: dict[str, list[SeriesSet]], opts: LosoOptions, sites: Optional[tuple[str, ...]] = None,
             progress: Optional[Callable[[str], None]] = None, reserved: Optional[list[dict]] = None,
             folder: Optional[Path] = None) -> dict:
    """Run the folds of ``sites`` (default all) and return the payload of every fold in ``folder``.

    Each fold is saved in ``folder`` as it finishes, so that folds can run in separate processes (different
    ``sites``) and the last one to finish summarises them all.
    """
    folds = []
    for site in sites or tuple(sorted(corpus)):
        fold = run_fold(corpus, site, opts, progress, reserved)
        if folder is not None:
            save_fold(fold, folder)
        folds.append(fold)
    return loso_payload(load_folds(folder) if folder is not None else folds, opts)
