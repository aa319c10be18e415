"""Outputs of ``s1ndvi loso``: ``loso.json``, a Markdown table (docs/results.md's) and a bar figure per protocol."""

from __future__ import annotations

import json
import logging
import math
from pathlib import Path

import numpy as np

_log = logging.getLogger(__name__)

__all__ = ["loso_figure", "loso_markdown", "write_loso"]

METHODS = ("DL", "Linear", "Whittaker", "MOGPR")
PROTOCOLS = ("P1", "P2_60", "P2_90", "P3", "P3_alone")
LABELS = {"P3": "P3 (S2 elsewhere)", "P3_alone": "P3 (no S2 at all)"}
"""Row labels: P3 with the S1-only map calibrated on the site's other sequences, and with no S2 on the cube at all."""


def _cell(rec: dict | None) -> str:
    if not rec or not math.isfinite(rec.get("mae", math.nan)):
        return "–"
    return f"{rec['mae']:.3f} / {rec['r2']:.2f}"


def loso_markdown(payload: dict) -> str:
    """One row per held-out site and protocol: MAE / R² of each method, DL ±1σ/±2σ coverage, the best marked."""
    lines = ["| held-out site | protocol | DL (this) | linear | Whittaker | MOGPR | DL ±1σ / ±2σ |",
             "|---|---|---|---|---|---|---|"]
    for site, rec in payload["sites"].items():
        for p in PROTOCOLS:
            row = rec["metrics"].get(p)
            if not row:
                continue
            cells = [_cell(row.get(m)) for m in METHODS]
            maes = {m: row[m]["mae"] for m in METHODS if m in row and math.isfinite(row[m].get("mae", math.nan))}
            if maes:
                best = min(maes, key=lambda m: maes[m])
                cells[METHODS.index(best)] = f"**{cells[METHODS.index(best)]}**"
            dl = row.get("DL", {})
            cov = (f"{100 * dl['within_1std']:.0f} % / {100 * dl['within_2std']:.0f} %"
                   if "within_1std" in dl else "–")
            lines.append(f"| {site} | {LABELS.get(p, p)} | " + " | ".join(cells) + f" | {cov} |")
    return "\n".join(lines)


def _pooled_coverage(payload: dict) -> tuple[float, float]:
    c1 = [r["DL"]["within_1std"] for s in payload["sites"].values() for r in s["metrics"].values() if "DL" in r
          and "within_1std" in r["DL"]]
    c2 = [r["DL"]["within_2std"] for s in payload["sites"].values() for r in s["metrics"].values() if "DL" in r
          and "within_2std" in r["DL"]]
    return (float(np.mean(c1)) if c1 else math.nan, float(np.mean(c2)) if c2 else math.nan)


def loso_figure(payload: dict, path: Path) -> Path:
    """MAE of each method per held-out site, one panel per protocol, P3's two variants in one panel (lower is better)."""
    import matplotlib.pyplot as plt

    from comparison.figures.style import colour, save  # sets the Agg backend

    sites = list(payload["sites"])
    panels = [(p, [(p, m, m) for m in METHODS]) for p in PROTOCOLS[:3]]
    panels.append(("P3: S1 only (DL)", [("P3", "DL", LABELS["P3"]), ("P3_alone", "DL", LABELS["P3_alone"])]))
    colours = {**{m: colour(m) for m in METHODS}, LABELS["P3"]: colour("DL"), LABELS["P3_alone"]: "mistyrose"}
    fig, axes = plt.subplots(1, len(panels), figsize=(4.2 * len(panels), 4.2), sharey=True)
    for ax, (title, bars) in zip(axes, panels):
        width = 0.8 / len(bars)
        for k, (protocol, method, label) in enumerate(bars):
            vals = [payload["sites"][s]["metrics"].get(protocol, {}).get(method, {}).get("mae", np.nan) for s in sites]
            ax.bar(np.arange(len(sites)) + (k - (len(bars) - 1) / 2) * width, vals, width, label=label,
                   color=colours[label], edgecolor=colour("DL") if label == LABELS["P3_alone"] else None)
        ax.set_title(title)
        ax.set_xticks(np.arange(len(sites)))
        ax.set_xticklabels(sites, rotation=60, ha="right", fontsize=8)
        ax.grid(axis="y", alpha=0.3)
        if len(bars) != len(METHODS):
            ax.legend(fontsize=8, frameon=False)
    axes[0].set_ylabel("MAE on hidden NDVI (held-out site)")
    fig.legend(*axes[0].get_legend_handles_labels(), loc="upper center", ncol=len(METHODS), frameon=False)
    fig.tight_layout(rect=(0, 0, 1, 0.92))
    return save(fig, path)


def write_loso(payload: dict, out: Path) -> Path:
    """Write ``loso.json``, ``loso.md`` and ``loso.png`` into ``out``; returns the Markdown path."""
    out.mkdir(parents=True, exist_ok=True)
    (out / "loso.json").write_text(json.dumps(payload, indent=1, default=float), encoding="utf-8")
    loso_figure(payload, out / "loso.png")
    c1, c2 = _pooled_coverage(payload)
    text = ("# Leave-one-site-out evaluation\n\nEach row: a model pretrained on every *other* site, scored on the "
            "held-out site's sequences with the same hidden values for every method (MAE / R², best in bold). "
            "DL coverage uses the std scale calibrated on the other folds' held-out residuals "
            f"(cross-site scale shipped: {payload['std_scale_cross_site']:.2f}; mean coverage ±1σ {100 * c1:.0f} %, "
            f"±2σ {100 * c2:.0f} %). P3 hides all NDVI of the scored sequences: \"S2 elsewhere\" calibrates the "
            "S1-only output on the NDVI of the site's other sequences (one half on the other's, as the UDF does on a "
            "cube's cloud-free pixels); \"no S2 at all\" is the output as is.\n\n" + loso_markdown(payload) +
            "\n\n![MAE per held-out site](loso.png)\n\nThe figure shows the same MAEs as bars: lower is better; "
            "compare the red bar (DL) with the grey one (linear interpolation) in each panel.\n")
    path = out / "loso.md"
    path.write_text(text, encoding="utf-8")
    _log.info("LOSO report %s", path)
    return path
