"""Pretraining across sites: the shipped weights, and the per-fold models of leave-one-site-out evaluation.

Every site of the corpus (:mod:`udf.training.corpus`) contributes training sequences (its native grid plus coarser
re-composites) and validation sequences (whole spatial groups: blocks of a patch, points), drawn equally often
whatever the site's size. Early stopping watches the mean MAE over the validation sequences of every site and
protocol, each site weighted equally.
"""

import logging
from typing import Callable

import numpy as np

from udf.evaluation.validation import aggregate, calibrate_std, coverage, mask_sets, score_masked
from udf.model import FusionNet
from udf.preprocess import S1_UNITS
from udf.training.corpus.regrid import training_variants
from udf.training.corpus.series import SeriesSet
from udf.training.loop import TrainConfig, train

_log = logging.getLogger(__name__)

__all__ = ["group_split", "pretrain"]


def group_split(ss: SeriesSet, val_fraction: float, seed: int) -> tuple[SeriesSet, SeriesSet]:
    """Split a set into training and validation sequences by whole groups (a seeded share of the groups)."""
    groups = np.unique(ss.group)
    rng = np.random.default_rng(seed)
    n_val = max(1, int(round(val_fraction * groups.size))) if groups.size > 1 else 0
    val_groups = rng.permutation(groups)[:n_val]
    is_val = np.isin(ss.group, val_groups)
    return ss.subset(~is_val), ss.subset(is_val)


def pretrain(corpus: dict[str, list[SeriesSet]], cfg: TrainConfig, holdout: tuple[str, ...] = (),
             val_fraction: float = 0.15, max_val_sequences: int = 400, reserved: list[dict] | None = None,
             progress: Callable[[int, dict], None] | None = None) -> tuple[FusionNet, dict]:
    """Train on every site except ``holdout``; validate on held-out groups of the training sites.

    Args:
        corpus: site → series sets (:func:`udf.training.corpus.load_corpus`).
        cfg: training hyper-parameters.
        holdout: sites left out entirely (leave-one-site-out folds).
        val_fraction: share of each set's groups used for validation.
        max_val_sequences: validation sequences per set (a seeded subsample; bounds the cost of each epoch).
        reserved: descriptions of pixels left out of ``corpus`` (:mod:`udf.training.corpus.reserved`), for the metadata.
        progress: per-epoch callback.

    Returns:
        The model and metadata: training sites and sources, validation metrics per site, the in-site std
        calibration (``std_scale_in_site``); the shipped cross-site ``std_scale`` is set by the leave-one-site-out
        run (:mod:`comparison.loso.run`).
    """
    pool: dict[str, list[SeriesSet]] = {}
    val_sets: list[SeriesSet] = []
    for k, (site, sets) in enumerate(sorted(corpus.items())):
        if site in holdout:
            continue
        for j, s in enumerate(sets):
            tr, va = group_split(s, val_fraction, seed=cfg.seed + 97 * k + j)
            pool.setdefault(site, []).extend(training_variants(tr))
            if va.n:
                val_sets.append(va)
    val = mask_sets(val_sets, seed=cfg.seed + 1, max_sequences=max_val_sequences)

    def val_score(model: FusionNet) -> float:
        per_site: dict[str, list[float]] = {}
        for r in score_masked(model, val):
            per_site.setdefault(r["site"], []).append(r["metrics"]["mae"])
        return float(np.mean([np.nanmean(v) for v in per_site.values()]))

    model, history = train(pool, val_score, cfg, progress=progress)
    res = score_masked(model, val)
    scale = calibrate_std(res)
    meta = {"std_scale": scale, "std_scale_in_site": scale, "training": cfg.to_dict(), "history": history,
            "validation_metrics": aggregate(res), "validation_std_coverage": coverage(res, scale),
            "s1_units_accepted": list(S1_UNITS),
            "training_data": {"kind": "multi-site corpus", "sites": sorted(pool), "held_out_sites": list(holdout),
                              "sources": sorted({f"{s.site}: {s.source} ({s.grid})" for v in corpus.values()
                                                 for s in v if s.site not in holdout}),
                              "sequences": {site: int(sum(s.n for s in v))
                                            for site, v in corpus.items() if site not in holdout},
                              "grids": _grids(corpus, holdout), "reserved": reserved or []}}
    return model, meta


def _grids(corpus: dict[str, list[SeriesSet]], holdout: tuple[str, ...]) -> list[dict]:
    """CRS and extent of every gridded training source (for provenance checks against a scored cube)."""
    out = []
    for site, sets in corpus.items():
        for s in sets:
            if site in holdout or s.xy is None or not s.attrs.get("crs") or not s.n:
                continue
            lo, hi = s.xy.min(0), s.xy.max(0)
            out.append({"site": site, "source": s.source, "crs": str(s.attrs["crs"])[:2000],
                        "bbox": [float(lo[0]), float(lo[1]), float(hi[0]), float(hi[1])]})
    return out
