"""Matched-season phenology evaluation on dense real series (issue 23): gapped, linear, Whittaker, DL, per gap length.

For every sequence of a dense site (S2 every ≤ :data:`MAX_STEP_DAYS` days on the sequence's grid), the reference is
the phenology (:mod:`udf.phenology`, default parameters) of the **full** S2 series. One window of 30, 60 or 90 days
is hidden per sequence (:func:`udf.masking.hide_window`, seeded); the candidates are the phenology of

- ``Gapped``: the series with the window missing, as is (the phenology copes with gaps itself);
- ``Linear``: its linear interpolation; ``Whittaker``: its Whittaker smoothing (λ as in ``s1ndvi loso``);
- ``DL``: the fusion model's mean and predictive std (self-calibrated as the UDF does), with each phenology
  configuration given (std-weighted smoothing, ``k_sigma``);
- ``DL+obs``: the kept observations where there are any, the model's mean in the gap (and its std throughout);

each restricted to the reference's span. Seasons are matched one to one per sequence by the overlap of their extents
(IoU ≥ 0.5) or, failing that, by the nearest peak (≤ 45 days, :func:`comparison.phenology.evaluate.match_seasons`), never
by slot number. Per (site, gap, method): the share of (sequence, farming year) pairs whose season count agrees, the
share of reference seasons matched, false seasons (candidate seasons matched to none, per reference season), and
median / p90 |ΔSOS|, |ΔPOS|, |ΔEOS| over matched seasons, for all seasons and for the seasons in the gap (a hidden
observation between the reference season's two minima).
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Callable, Optional

import numpy as np

from comparison.loso.run import choose_lambda, evaluation_sets, linear_rows, whittaker_rows
from comparison.phenology.evaluate import PEAK_DAYS, match_seasons, touched_seasons
from udf.masking import hide_window
from udf.phenology import PhenologyConfig, farming_years, pixel_seasons, year_counts
from udf.seasons import Seasons
from udf.training.corpus.series import SeriesSet

_log = logging.getLogger(__name__)

__all__ = ["DENSE_SITES", "GAPS", "MAX_STEP_DAYS", "EvalOptions", "choice_score", "choose_leave_one_site_out",
           "config_grid", "dense_sets", "evaluate_site", "save", "summarise", "table_markdown"]

GAPS = (30, 60, 90)
"""Gap lengths (days) hidden per sequence."""
DENSE_SITES = ("flanders_2017", "belgium_2020-22", "france_west_2022-23")
"""Corpus sites with S2 series on a grid of ≤ 16 days."""
MAX_STEP_DAYS = 16.0
"""A set is dense when the median step of its grid is at most this."""
MIN_VALID_SHARE = 0.4
"""Sequences with S2 on fewer steps than this share are not scored (the reference would itself be gap-filled)."""
DATES = ("SOS", "POS", "EOS")


@dataclass(frozen=True)
class EvalOptions:
    """What :func:`evaluate_site` runs."""

    gaps: tuple[int, ...] = GAPS
    configs: dict[str, PhenologyConfig] = field(default_factory=lambda: {"default": PhenologyConfig()})
    """Phenology configurations applied to the DL series (the reference and the std-less baselines use the first)."""
    max_sequences: int = 400
    """Scored sequences per set (seeded subsample)."""
    seed: int = 0


def dense_sets(sets: list[SeriesSet], reserved_only: bool = False) -> list[SeriesSet]:
    """The dense sets of a site (acquisition series as their 10-day composites) and their well-covered sequences.

    Args:
        sets: a site's sets (:func:`udf.training.corpus.sites.load_site`).
        reserved_only: keep only the pixels never seen in pretraining (the embedded cubes' reserved test blocks).
    """
    out = []
    for s in evaluation_sets(sets):
        if s.grid == "acquisition" or float(np.median(np.diff(s.days, axis=1))) > MAX_STEP_DAYS:
            continue
        keep = np.isfinite(s.ndvi).mean(1) >= MIN_VALID_SHARE
        if reserved_only:
            keep &= _reserved_rows(s)
        if keep.any():
            out.append(s.subset(keep))
    return out


def _reserved_rows(s: SeriesSet) -> np.ndarray:
    from udf.training.corpus.reserved import drop_reserved, reserved_grids

    if s.xy is None:
        return np.zeros(s.n, dtype=bool)
    tagged = replace(s, group=np.arange(s.n))
    kept, _ = drop_reserved(tagged, reserved_grids())
    out = np.ones(s.n, dtype=bool)
    out[kept.group] = False
    return out


def _seasons(values: np.ndarray, std: Optional[np.ndarray], days: np.ndarray, span: tuple[np.ndarray, np.ndarray],
             config: PhenologyConfig) -> tuple[Seasons, np.ndarray]:
    inside = (days[None, :] >= span[0][:, None]) & (days[None, :] <= span[1][:, None])
    values = np.where(inside, values, np.nan).astype(np.float64)
    std = None if std is None else np.where(inside, std, np.nan).astype(np.float64)
    seasons = pixel_seasons(values, days, std, config)
    return seasons, year_counts(seasons, farming_years(days[0], days[-1], config.year_start), config)


def _score(ref: Seasons, got: Seasons, ref_counts: np.ndarray, got_counts: np.ndarray, touched: np.ndarray) -> dict:
    """Raw per-season errors and counts (pooled over sets by :func:`summarise`)."""
    match = match_seasons(ref, got, peak_days=PEAK_DAYS)
    rows = np.arange(ref.amp.shape[0])[:, None]
    rec: dict = {"reference": int(ref.present.sum()), "matched": int((match >= 0).sum()),
                 "false": int(got.present.sum() - (match >= 0).sum()),
                 "in_gap": int(touched.sum()), "in_gap_matched": int((touched & (match >= 0)).sum())}
    for name in DATES:
        a = getattr(ref, name.lower())
        b = np.where(match >= 0, getattr(got, name.lower())[rows, np.clip(match, 0, None)], np.nan)
        err = np.abs(b - a)
        ok = np.isfinite(err)
        rec[name] = err[ok].tolist()
        rec[name + "_in_gap"] = err[ok & touched].tolist()
        spread = getattr(got, name.lower() + "_std")
        if spread is not None:  # uncertainty bands: |error| in units of the predicted date std
            sd = spread[rows, np.clip(match, 0, None)]
            with np.errstate(invalid="ignore", divide="ignore"):
                rec[name + "_z"] = (err / sd)[ok & np.isfinite(sd) & (sd > 0)].tolist()
    years = np.isfinite(ref_counts)
    rec["pixel_years"] = int(years.sum())
    rec["count_agree"] = int((years & (got_counts == ref_counts)).sum())
    return rec


def _candidates(s: SeriesSet, kept: np.ndarray, model, lam: float) -> dict[str, tuple[np.ndarray, Optional[np.ndarray]]]:
    out: dict[str, tuple[np.ndarray, Optional[np.ndarray]]] = {
        "Gapped": (kept, None), "Linear": (linear_rows(kept, s.days), None),
        "Whittaker": (whittaker_rows(kept, s.days, lam), None)}
    if model is not None:
        from udf.evaluation.validation import predict_set

        mean, std, _ = predict_set(model, s.s1, kept, s.days, self_calibration=True)
        out["DL"] = (mean, std)
        obs = np.isfinite(kept)
        out["DL+obs"] = (np.where(obs, kept, mean), std)  # the kept values with the model's std there
    return out


def evaluate_site(site: str, sets: list[SeriesSet], opts: EvalOptions, model=None, lam: Optional[float] = None,
                  progress: Optional[Callable[[str], None]] = None) -> list[dict]:
    """Raw records ``{site, gap, method, config, …}`` of every method on every gap of a site's dense sets.

    Args:
        site: site name (for the records).
        sets: the site's dense sets (:func:`dense_sets`).
        opts: gaps, DL phenology configurations, subsample.
        model: the fusion network (None: baselines only).
        lam: Whittaker λ (None: chosen on these sets, :func:`comparison.loso.run.choose_lambda`).
        progress: called with a line per finished (set, gap).
    """
    base = next(iter(opts.configs.values()))
    lam = choose_lambda(sets, opts.seed) if lam is None else lam
    records = []
    for k, s in enumerate(sets):
        if s.n > opts.max_sequences:
            s = s.subset(np.sort(np.random.default_rng([opts.seed, k]).permutation(s.n)[:opts.max_sequences]))
        for rows in _groups(s.days):
            sub = s.subset(rows)
            days = sub.days[0]
            truth = sub.ndvi.astype(np.float64)
            seen = np.isfinite(truth)
            span = (np.where(seen, days, np.inf).min(1), np.where(seen, days, -np.inf).max(1))
            ref, ref_counts = _seasons(truth, None, days, span, base)
            for gap in opts.gaps:
                hidden = hide_window(seen, days, float(gap), np.random.default_rng([opts.seed, k, gap]))
                kept = np.where(hidden, np.nan, truth).astype(np.float32)
                touched = touched_seasons(ref, hidden, days)
                for method, (mean, std) in _candidates(sub, kept, model, lam).items():
                    configs = opts.configs if std is not None else {"default": base}
                    for cname, cfg in configs.items():
                        got, counts = _seasons(mean, std, days, span, cfg)
                        rec = _score(ref, got, ref_counts, counts, touched)
                        records.append({"site": site, "set": f"{s.source}:{s.grid}", "gap": gap, "method": method,
                                        "config": cname, **rec})
                if progress:
                    progress(f"{site} {s.grid} gap {gap} d: {sub.n} sequences")
    return records


def _groups(days: np.ndarray) -> list[np.ndarray]:
    _, inverse = np.unique(days, axis=0, return_inverse=True)
    return [np.flatnonzero(inverse.ravel() == g) for g in range(int(inverse.max()) + 1)]


def _q(values: list, q: float) -> float:
    return float(np.percentile(values, q)) if values else float("nan")


def summarise(records: list[dict]) -> list[dict]:
    """Pool raw records per (site, gap, method, config) into the table's rows (``site`` ``"all"`` pools sites)."""
    keys: dict[tuple, list[dict]] = {}
    for r in records:
        for site in (r["site"], "all"):
            keys.setdefault((site, r["gap"], r["method"], r["config"]), []).append(r)
    rows = []
    for (site, gap, method, config), recs in sorted(keys.items(), key=lambda kv: tuple(map(str, kv[0]))):
        tot = {k: sum(r[k] for r in recs) for k in ("reference", "matched", "false", "in_gap", "in_gap_matched",
                                                   "pixel_years", "count_agree")}
        row = {"site": site, "gap": gap, "method": method, "config": config, **tot,
               "count_agreement": tot["count_agree"] / max(tot["pixel_years"], 1),
               "matched_share": tot["matched"] / max(tot["reference"], 1),
               "false_per_reference": tot["false"] / max(tot["reference"], 1),
               "in_gap_matched_share": tot["in_gap_matched"] / max(tot["in_gap"], 1)}
        for name in DATES:
            for part in ("", "_in_gap"):
                vals = [v for r in recs for v in r[name + part]]
                row[f"{name}{part}_median"], row[f"{name}{part}_p90"] = _q(vals, 50), _q(vals, 90)
            z = np.asarray([v for r in recs for v in r.get(name + "_z", [])])
            if z.size:
                row[f"{name}_std_dates"] = int(z.size)
                row[f"{name}_within_1std"], row[f"{name}_within_2std"] = float((z <= 1).mean()), float((z <= 2).mean())
        rows.append(row)
    return rows


def table_markdown(rows: list[dict], site: str = "all") -> str:
    """Markdown table of the summary rows of one site (or ``all``)."""
    head = ("| gap | method | config | count agrees | matched | false / ref | in-gap matched | |ΔSOS| med / p90 | "
            "|ΔPOS| med / p90 | |ΔEOS| med / p90 | |ΔSOS| in gap p90 | |ΔEOS| in gap p90 |")
    lines = [head, "|" + "---|" * 12]
    for r in (r for r in rows if r["site"] == site):
        lines.append(
            f"| {r['gap']} | {r['method']} | {r['config']} | {100 * r['count_agreement']:.1f} % | "
            f"{100 * r['matched_share']:.1f} % | {r['false_per_reference']:.3f} | "
            f"{100 * r['in_gap_matched_share']:.1f} % | "
            + " | ".join(f"{r[f'{n}_median']:.1f} / {r[f'{n}_p90']:.1f}" for n in DATES)
            + f" | {r['SOS_in_gap_p90']:.1f} | {r['EOS_in_gap_p90']:.1f} |")
    return "\n".join(lines)


def config_grid(noise_stds: tuple[float, ...], k_sigmas: tuple[float, ...]) -> dict[str, PhenologyConfig]:
    """Phenology configurations ``noise<n>_k<k>`` for a sweep of the std weighting and ``k_sigma``."""
    return {f"noise{n:g}_k{k:g}": PhenologyConfig(noise_std=n, k_sigma=k) for n in noise_stds for k in k_sigmas}


def choice_score(row: dict) -> float:
    """What a configuration is chosen by: count agreement + matched share − false seasons per reference season."""
    return row["count_agreement"] + row["matched_share"] - row["false_per_reference"]


def choose_leave_one_site_out(rows: list[dict], method: str = "DL", gaps: tuple[int, ...] = (60, 90)) -> dict:
    """Per held-out site, the configuration of ``method`` with the best mean score on the *other* sites.

    Scores are :func:`choice_score` averaged over ``gaps``; the held-out site's own scores never decide its choice.

    Returns:
        ``{"scores": {config: {site: score}}, "chosen": {held-out site: config}}``.
    """
    sites = sorted({r["site"] for r in rows if r["site"] != "all"})
    scores: dict[str, dict[str, float]] = {}
    for r in rows:
        if r["method"] == method and r["gap"] in gaps and r["site"] != "all":
            scores.setdefault(r["config"], {}).setdefault(r["site"], 0.0)
            scores[r["config"]][r["site"]] += choice_score(r) / len(gaps)
    chosen = {}
    for site in sites:
        others = [o for o in sites if o != site]
        if others:
            chosen[site] = max(scores, key=lambda c: float(np.mean([scores[c].get(o, -np.inf) for o in others])))
    return {"scores": scores, "chosen": chosen}


def save(records: list[dict], out: Path) -> Path:
    """Write raw records (``phenology_records.json``) and the summary (``phenology_eval.json``) to ``out``."""
    out.mkdir(parents=True, exist_ok=True)
    (out / "phenology_records.json").write_text(json.dumps(records), encoding="utf-8")
    path = out / "phenology_eval.json"
    path.write_text(json.dumps(summarise(records), indent=1), encoding="utf-8")
    return path
