"""Outputs of a comparison: ``metrics.json``, figures and ``report.md`` (is DL as good as MOGPR, how much faster?)."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Optional

import numpy as np
import xarray as xr

from comparison.caveats import in_sample_tag
from comparison.figures.plots import breakdown_figure, residual_figure, scatter_figure, scored_mask
from comparison.figures.series import series_figure
from comparison.report import breakdown_table, markdown_table, write_metrics, write_report
from udf.evaluation.metrics import paired_difference

_log = logging.getLogger(__name__)

__all__ = ["FIGURE_NOTES", "answer", "figures_markdown", "head_to_head", "site_figures", "write_figures",
           "write_outputs"]


def head_to_head(truth: np.ndarray, protocols: dict, predictions: dict, metrics: dict, a: str = "DL",
                 b: str = "MOGPR", seed: int = 0) -> dict:
    """Per protocol: paired MAE difference ``a − b`` on observations both predicted, and the speed ratio."""
    out = {}
    for p, prot in protocols.items():
        pa, pb = predictions[p].get(a), predictions[p].get(b)
        if pa is None or pb is None:
            continue
        mask = scored_mask(pb, scored_mask(pa, prot.hidden))
        rec = paired_difference(pa.mean, pb.mean, truth, mask, seed=seed)
        ra, rb = metrics[p][a]["pixels_per_s"], metrics[p][b]["pixels_per_s"]
        usable = rec["n"] > 0 and np.isfinite(ra) and np.isfinite(rb) and rb > 0
        rec["speed_ratio"] = ra / rb if usable else float("nan")
        out[p] = rec
    return out


def answer(h2h: dict, a: str = "DL", b: str = "MOGPR") -> str:
    """One Markdown table and a sentence per protocol from :func:`head_to_head`."""
    if not h2h:
        return f"{a} and {b} were not both run: no head-to-head."
    lines = [f"| protocol | obs. both predicted | {a} MAE | {b} MAE | {a} − {b} (95 % CI, pixel bootstrap) | "
             f"{a} speed ÷ {b} speed |", "|---|---:|---:|---:|---|---:|"]
    words = []
    for p, r in h2h.items():
        if not np.isfinite(r["diff"]):
            lines.append(f"| {p} | {r['n']} | – | – | no observation predicted by both | – |")
            continue
        lo, hi = r["ci95"]
        lines.append(f"| {p} | {r['n']} | {r['mae_a']:.4f} | {r['mae_b']:.4f} | {r['diff']:+.4f} "
                     f"({lo:+.4f} … {hi:+.4f}) | {r['speed_ratio']:,.0f}× |")
        verdict = ("better" if hi < 0 else "worse" if lo > 0 else "not distinguishable (CI spans 0)")
        words.append(f"{p}: {a} is {verdict}")
    return "\n".join(lines) + "\n\n" + "; ".join(words) + "."


FIGURE_NOTES = {
    "scatter": ("Predicted against hidden observed NDVI", "per method (rows) and protocol (columns), colour bar = "
                "observations per hexagon: look for points tight on the dashed 1:1 line (values beyond the axes are "
                "drawn as red triangles on the edge and counted in the panel title)."),
    "residuals": ("Residuals", "prediction − observation per protocol: look for a narrow peak centred on 0 (a shifted "
                  "peak is a bias; the legend counts residuals beyond ±0.6)."),
    "by_range": ("MAE by true NDVI range", "n = hidden observations scored per range: look for a method that fails on "
                 "one range only, bare soil below 0.3 or full canopy above 0.6."),
    "by_distance": ("MAE by distance to the nearest kept observation", "look at how fast each method degrades as the "
                    "gap it must bridge grows (P2: 60- and 90-day gaps; P3: no NDVI kept at all)."),
    "series": ("Sample test pixels", "kept (black) and hidden (red circles) S2 NDVI, hidden windows in grey, ±1σ bands "
               "for DL and MOGPR: look at whether each curve passes through the red circles inside the grey windows."),
}
"""Figure key → (title, one sentence on what to look at) for ``report.md``."""


def figures_markdown(files: dict[str, str], metrics: dict) -> str:
    """Every figure as a link and image with the sentence saying what to look at (and an in-sample warning)."""
    blocks = []
    for key, name in files.items():
        title, what = FIGURE_NOTES.get(key, (key, ""))
        blocks.append(f"**{title}** ([{name}]({name})): {what}\n\n![{title}]({name})")
    flagged = sorted({f"{m} ({in_sample_tag(r.get('note'))})" for by in metrics.values() for m, r in by.items()
                      if in_sample_tag(r.get("note"))})
    if flagged:
        blocks.insert(0, f"Drawn dashed, hatched or on grey: {', '.join(flagged)}: these results saw the hidden values "
                         "they are scored on, so their scores are not comparable with those of the held-out methods.")
    return "\n\n".join(blocks)


def site_figures(out: Path, cube: xr.DataArray, protocols: dict, predictions: dict, metrics: dict,
                 prefix: str) -> str:
    """Write a site's figures with ``prefix`` and return their Markdown (:func:`figures_markdown`)."""
    return figures_markdown(write_figures(out, cube, protocols, predictions, metrics, prefix=prefix), metrics)


def write_figures(out: Path, cube: xr.DataArray, protocols: dict, predictions: dict, metrics: dict,
                  prefix: str = "") -> dict[str, str]:
    """Scatter, residuals, by-range and by-distance bars and time-series panels; returns name → file name."""
    truth = cube.sel(bands="NDVI").values
    hidden = {p: prot.hidden for p, prot in protocols.items()}
    files = {"scatter": f"{prefix}scatter.png", "residuals": f"{prefix}residuals.png",
             "by_range": f"{prefix}by_range.png", "by_distance": f"{prefix}by_distance.png",
             "series": f"{prefix}series.png"}
    scatter_figure(truth, hidden, predictions, metrics, out / files["scatter"])
    residual_figure(truth, hidden, predictions, metrics, out / files["residuals"])
    breakdown_figure(metrics, "by_range", out / files["by_range"], "true NDVI range")
    breakdown_figure(metrics, "by_distance", out / files["by_distance"], "days to nearest kept observation")
    series_figure(cube["t"].values, truth, hidden, predictions, out / files["series"])
    return files


def _setup_text(payload: dict) -> str:
    c, sp = payload["cube"], payload["split"]
    lines = [f"- Cube: {c['shape']} ({c['first']} … {c['last']}, period {c.get('period')})"
             + "".join(f"; {k} {c[k]}" for k in ("s2_level", "s1_backscatter") if k in c) + "."]
    if "ndvi_warning" in c:
        lines.append(f"- **Warning: {c['ndvi_warning']}**")
    lines += [f"- Spatial hold-out: {sp['block_px']} px blocks, {sp['train_px']} training / {sp['val_px']} validation "
              f"/ {sp['test_px']} test pixels (buffer {sp['buffer_px']} px, seed {sp['seed']}).",
              f"- Scored pixels: {payload['scored_pixels']}"
              + (" — a seeded random subsample of the test pixels (--max-pixels), the same for every method."
                 if payload.get("subsampled") else " (every test pixel with an NDVI observation).")]
    if "whittaker_lambda" in payload:
        lines.append(f"- Whittaker λ = {payload['whittaker_lambda']} (chosen on training pixels).")
    prov = payload.get("dl_provenance")
    if isinstance(prov, dict):
        lines += [f"- {name}: {text}." for name, text in prov.items()]
    elif prov:
        lines.append(f"- DL model: {prov}.")
    opts = payload.get("options", {})
    if opts.get("mogpr") == "local":
        lines.append(f"- MOGPR: batched torch (this repository), RVI = 4·VH/(VV+VH) on linear power and NDVI, "
                     f"{opts.get('mogpr_restarts')} starts per pixel (start 0 = GPy's), device {opts.get('device')}.")
    return "\n".join(lines)


_NOTES = ("P1: 20 % of each scored pixel's NDVI observations hidden at random; P2_60 / P2_90: every observation "
          "inside one 60- / 90-day window hidden; P3: all NDVI hidden (S1 only). `n` counts hidden observations "
          "scored, `NaN` those a method left empty (never dropped from `n`), `not fitted` scored pixels a method "
          "could not fit (MOGPR needs ≥ 2 NDVI and ≥ 2 RVI values and a non-constant series). Linear, Whittaker and "
          "MOGPR cannot predict without NDVI (P3: NaN, counted). pixels/s = pixels the method computed ÷ its wall "
          "time (MOGPR computes only the scored pixels, the others the whole cube).")


def write_outputs(out: Path, payload: dict, cube: xr.DataArray, protocols: dict, predictions: dict,
                  title: str, extra_sections: Optional[list[tuple[str, str]]] = None) -> Path:
    """Write ``metrics.json``, the figures and ``report.md`` into ``out``; returns the report path."""
    out.mkdir(parents=True, exist_ok=True)
    metrics = payload["metrics"]
    truth = cube.sel(bands="NDVI").values
    present = {m for by in predictions.values() for m in by}
    rival = next((m for m in ("MOGPR", "MOGPR-GPy", "MOGPR-file") if m in present), "MOGPR")
    lead = next((m for m in ("DL adapted", "DL trained here", "DL zero-shot", "DL") if m in present), "DL")
    payload["head_to_head"] = head_to_head(truth, protocols, predictions, metrics, a=lead, b=rival,
                                           seed=payload["split"]["seed"])
    payload["head_to_head_rows"] = [lead, rival]
    files = write_figures(out, cube, protocols, predictions, metrics)
    write_metrics(payload, out / "metrics.json")
    sections = [("Setup", _setup_text(payload)),
                ("Is DL as good as MOGPR, and how much faster?", answer(payload["head_to_head"], a=lead, b=rival)),
                ("Accuracy, failures and speed", markdown_table(metrics)),
                ("MAE by true NDVI range (n scored)", breakdown_table(metrics, "by_range")),
                ("MAE by distance to the nearest kept observation (n scored)", breakdown_table(metrics, "by_distance")),
                ("Figures", figures_markdown(files, metrics)),
                *(extra_sections or []),
                ("Notes", _NOTES)]
    path = write_report(out / "report.md", title, sections)
    _log.info("Report %s", path)
    return path
