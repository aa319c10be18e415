"""Markdown and figures of the phenology evaluation (:mod:`comparison.phenology.evaluate`)."""

from __future__ import annotations

import math
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402  (backend must be chosen first)
import numpy as np  # noqa: E402
import xarray as xr  # noqa: E402

from comparison.compare.methods import Prediction  # noqa: E402
from comparison.figures.plots import colour  # noqa: E402
from comparison.figures.style import legend_right, save  # noqa: E402
from udf.evaluation.protocols import Protocol  # noqa: E402

__all__ = ["phenology_markdown", "scores_figure", "seasons_figure", "target_sentence"]

DATES = ("SOS", "POS", "EOS")


def _days(q: dict) -> str:
    if q["n"] == 0 or not math.isfinite(q["median"]):
        return "–"
    return f"{q['median']:.0f} / {q['p90']:.0f} ({q['n']})"


def _share(v: float) -> str:
    return "–" if not math.isfinite(v) else f"{100 * v:.0f} %"


def target_sentence(payload: dict, protocol: str = "P2_60", rival: str = "Linear") -> str:
    """The issue's target, checked on the numbers for every DL row (``DL``, ``DL adapted``, ``DL zero-shot``, …).

    Target: median |ΔSOS| and |ΔEOS| ≤ 10 days and ≤ the rival's, and season counts agreeing on ≥ 90 % of
    pixel-years.
    """
    by = payload["protocols"].get(protocol, {})
    rows = [m for m in by if m == "DL" or m.startswith("DL ")]
    if not rows or rival not in by:
        return f"Target not checked: no DL row and {rival} both run under {protocol}."
    return "\n\n".join(_target_row(by, m, rival, protocol) for m in rows)


def _target_row(by: dict, method: str, rival: str, protocol: str) -> str:
    parts, ok = [], True
    for scope in ("touched", "all"):
        for name in ("SOS", "EOS"):
            a, b = by[method][name][scope]["median"], by[rival][name][scope]["median"]
            good = math.isfinite(a) and a <= 10 and (not math.isfinite(b) or a <= b)
            ok &= good
            parts.append(f"{scope} seasons median |Δ{name}| {a:.1f} d vs {rival} {b:.1f} d")
    share = by[method]["count"]["agreement"]
    ok &= math.isfinite(share) and share >= 0.9
    verdict = "met" if ok else "NOT met"
    return (f"Target ({protocol}, {method}: median |ΔSOS| and |ΔEOS| ≤ 10 days and ≤ {rival}; season counts agree "
            f"on ≥ 90 % of pixel-years): **{verdict}** — " + "; ".join(parts)
            + f"; season count agreement {_share(share)} ({rival} {_share(by[rival]['count']['agreement'])}).")


def phenology_markdown(payload: dict) -> str:
    """The report section: setup, target check, tables (touched seasons, all seasons), figures."""
    cfg, ref = payload["config"], payload["reference"]
    lines = [f"Reference: the phenology of the {payload['pixels']} scored pixels' real S2 NDVI with every observation "
             f"({ref['observations']} values; {ref['seasons']} seasons; {ref['pixel_years']} pixel-years that the "
             f"data span, {ref['mean_seasons_per_year']:.2f} seasons per pixel-year). Each method's gap-filled series under "
             "each protocol, cut to the reference's span, goes through the same phenology (`udf.phenology`, the "
             "UDF's defaults: " + ", ".join(f"{k} {v}" for k, v in cfg.items())
             + "); seasons are matched one to one by the overlap of their extents (minimum to minimum, intersection "
             f"over union ≥ {payload['match_overlap']:.1f}). Cells: median / "
             "90th percentile of the absolute error in days (number of matched seasons with both dates). *Touched* "
             "seasons have a hidden observation between their two minima.", "", target_sentence(payload), "",
             "**Seasons touched by hidden data**", "",
             "| protocol | method | touched | \\|ΔSOS\\| | \\|ΔPOS\\| | \\|ΔEOS\\| | missed | extra | season count agrees |",
             "|---|---|---:|---:|---:|---:|---:|---:|---:|"]
    for p, by in payload["protocols"].items():
        for m, r in by.items():
            cnt = r["count"]
            lines.append(f"| {p} | {m} | {r['touched_seasons']} | " + " | ".join(_days(r[d]["touched"])
                                                                               for d in DATES)
                         + f" | {r['missed']} | {r['extra']} | {_share(cnt['agreement'])} "
                           f"({cnt['agree']}/{cnt['pixel_years']}) |")
    lines += ["", "**All reference seasons**", "", "| protocol | method | \\|ΔSOS\\| | \\|ΔPOS\\| | \\|ΔEOS\\| |",
              "|---|---|---:|---:|---:|"]
    for p, by in payload["protocols"].items():
        for m, r in by.items():
            lines.append(f"| {p} | {m} | " + " | ".join(_days(r[d]["all"]) for d in DATES) + " |")
    lines += ["", "Methods without a prediction (Linear, Whittaker, MOGPR under P3) have no seasons: every "
              "reference season is missed and their season counts never agree."]
    lines += [""] + [f"![{f}]({f})" for f in payload.get("figures", [])]
    return "\n".join(lines)


def scores_figure(payload: dict, out: Path) -> Path:
    """Median |Δ| (bars) and 90th percentile (ticks) of SOS/POS/EOS on touched seasons, and count agreement."""
    prots = list(payload["protocols"])
    fig, axes = plt.subplots(2, max(len(prots), 1), figsize=(4.6 * max(len(prots), 1) + 1.8, 7.2), squeeze=False)
    hatches = {"SOS": "", "POS": "..", "EOS": "//"}
    for j, p in enumerate(prots):
        methods = list(payload["protocols"][p])
        x = np.arange(len(methods))
        ax = axes[0, j]
        for k, d in enumerate(DATES):
            med = [payload["protocols"][p][m][d]["touched"]["median"] for m in methods]
            p90 = [payload["protocols"][p][m][d]["touched"]["p90"] for m in methods]
            pos = x + (k - 1) * 0.27
            ax.bar(pos, med, 0.25, color=[colour(m) for m in methods], hatch=hatches[d], edgecolor="black", lw=0.5)
            ax.plot(pos, p90, "_", color="black", ms=12, mew=2)
        for i, m in enumerate(methods):
            if payload["protocols"][p][m]["matched"] == 0:
                ax.text(i, 1, "no seasons", rotation=90, ha="center", va="bottom", fontsize=8)
        ax.set_xticks(x, methods, rotation=30, ha="right")
        ax.set_ylabel("days (seasons touched by hidden data)")
        ax.set_title(p)
        ax2 = axes[1, j]
        share = [100 * payload["protocols"][p][m]["count"]["agreement"] for m in methods]
        ax2.bar(x, share, 0.6, color=[colour(m) for m in methods], edgecolor="black", lw=0.5)
        ax2.axhline(90, color="black", ls="--", lw=1, label="90 % target")
        ax2.set_xticks(x, methods, rotation=30, ha="right")
        ax2.set_ylim(0, 100)
        ax2.set_ylabel("season count agrees (% pixel-years)")
    if prots:
        from matplotlib.lines import Line2D
        from matplotlib.patches import Patch

        keys: list = [Patch(facecolor="white", edgecolor="black", hatch=hatches[d], label=f"median |Δ{d}|")
                      for d in DATES]
        keys.append(Line2D([], [], color="black", marker="_", ms=12, mew=2, ls="", label="90th percentile"))
        axes[0, -1].legend(handles=keys, loc="upper left", bbox_to_anchor=(1.02, 1.0), fontsize=8)
        axes[1, -1].legend(loc="upper left", bbox_to_anchor=(1.02, 1.0), fontsize=8)
    fig.tight_layout()
    return save(fig, out, dpi=100)


def _gantt(ax, seasons, i: int, level: float, color: str, label: str | None) -> None:  # type: ignore[no-untyped-def]
    for s in np.flatnonzero(seasons.present[i]):
        a = seasons.sos[i, s] if np.isfinite(seasons.sos[i, s]) else seasons.start_day[i, s]
        b = seasons.eos[i, s] if np.isfinite(seasons.eos[i, s]) else seasons.end_day[i, s]
        ax.plot([np.datetime64(int(a), "D"), np.datetime64(int(b), "D")], [level, level], "-", color=color, lw=5,
                solid_capstyle="butt", alpha=0.8, label=label)
        if np.isfinite(seasons.pos[i, s]):
            ax.plot(np.datetime64(int(seasons.pos[i, s]), "D"), level, "|", color="black", ms=10)
        label = None


def seasons_figure(cube: xr.DataArray, prot: Protocol, preds: dict[str, Prediction], seasons: dict, protocol: str,
                   out: Path, methods: tuple[str, ...] = ("DL", "MOGPR", "Linear"), n: int = 3) -> Path:
    """Series of ``n`` scored pixels under ``protocol``: S2 kept/hidden, methods' series, seasons as bars below."""
    pixels = seasons["pixels"]
    idx = np.flatnonzero(pixels.ravel())
    hidden = prot.hidden.reshape(prot.hidden.shape[0], -1)[:, idx]
    pick = np.argsort(-hidden.sum(0), kind="stable")[:: max(1, len(idx) // (3 * n))][:n]
    t = cube["t"].values
    truth = cube.sel(bands="NDVI").values.reshape(len(t), -1)[:, idx]
    shown = [m for m in methods if m in preds]
    fig, axes = plt.subplots(len(pick), 1, figsize=(13, 3.0 * len(pick)), squeeze=False)
    for row, k in enumerate(pick):
        ax = axes[row, 0]
        kept = np.isfinite(truth[:, k]) & ~hidden[:, k]
        ax.plot(t[kept], truth[kept, k], "o", color="black", ms=4, label="S2 kept")
        ax.plot(t[hidden[:, k]], truth[hidden[:, k], k], "x", color="tab:red", ms=6, label="S2 hidden")
        for m in shown:
            ax.plot(t, preds[m].mean.reshape(len(t), -1)[:, idx[k]], "-", color=colour(m), lw=1.5, label=m)
        _gantt(ax, seasons["reference"], k, -0.08, "0.4", "reference seasons (SOS → EOS, | POS)")
        for j, m in enumerate(shown):
            _gantt(ax, seasons[protocol][m], k, -0.16 - 0.08 * j, colour(m), f"{m} seasons")
        ax.set_ylim(-0.2 - 0.08 * len(shown), 1.0)
        ax.set_ylabel("NDVI")
        y, x = np.unravel_index(idx[k], pixels.shape)
        ax.set_title(f"{protocol}, pixel y={y}, x={x}", fontsize=9)
        legend_right(ax)
    fig.tight_layout()
    return save(fig, out, dpi=100)
