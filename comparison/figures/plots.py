"""Evaluation figures: density scatter per method and protocol, residuals, accuracy by NDVI range and by gap length.

Every figure takes ``predictions`` as protocol → method → :class:`comparison.compare.methods.Prediction` and the hidden
masks, and scores exactly what :func:`comparison.compare.evaluate.evaluate` scores (hidden observations on covered dates).
``draw_*`` functions return the figure; ``*_figure`` functions write it. In-sample methods are labelled and drawn
apart, and values beyond an axis are drawn on its edge and counted (:mod:`comparison.figures.style`).
"""

from __future__ import annotations

import re
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402  (backend must be chosen first)
import numpy as np  # noqa: E402
from matplotlib.collections import PolyCollection  # noqa: E402
from matplotlib.colors import LogNorm  # noqa: E402
from matplotlib.ticker import FormatStrFormatter, NullFormatter  # noqa: E402

from comparison.caveats import in_sample_tag  # noqa: E402
from comparison.figures.style import (  # noqa: E402
    NDVI_LIMITS,
    bar_style,
    colour,
    label,
    line_style,
    mark_outside,
    outside_text,
    save,
)

__all__ = ["bin_label", "breakdown_figure", "colour", "draw_breakdown", "draw_residuals", "draw_scatter", "residual_figure",
           "scatter_figure", "scored_mask"]

RESIDUAL_LIMIT = 0.6
"""Residual histograms span ±this; residuals beyond are counted in the end bins and said in the legend."""


def scored_mask(pred: object, hidden: np.ndarray) -> np.ndarray:
    """Hidden observations on the dates a prediction covers."""
    dates = getattr(pred, "dates", None)
    return hidden if dates is None else hidden & dates[:, None, None]


def _methods(predictions: dict) -> list[str]:
    names: list[str] = []
    for by_method in predictions.values():
        names += [m for m in by_method if m not in names]
    return names


def _scatter_panel(ax: plt.Axes, x: np.ndarray, y: np.ndarray, title: str, in_sample: bool) -> PolyCollection:
    lo, hi = NDVI_LIMITS
    counts = {"obs.": mark_outside(ax, x, np.clip(y, lo, hi), NDVI_LIMITS, "crimson", axis="x"),
              "pred.": mark_outside(ax, np.clip(x, lo, hi), y, NDVI_LIMITS, "crimson")}
    art = ax.hexbin(np.clip(x, lo, hi), np.clip(y, lo, hi), gridsize=30, extent=(lo, hi, lo, hi), mincnt=1,
                    cmap="viridis", norm=LogNorm())
    ax.plot([lo, hi], [lo, hi], "k--", lw=0.8)
    extra = outside_text(counts, NDVI_LIMITS)
    ax.set(xlim=NDVI_LIMITS, ylim=NDVI_LIMITS)
    ax.set_title(title + (f"\n{extra}" if extra else ""), fontsize=8)
    if in_sample:
        ax.set_facecolor("0.92")
    return art


def draw_scatter(truth: np.ndarray, hidden: dict[str, np.ndarray], predictions: dict, metrics: dict) -> plt.Figure:
    """Density scatter (hexbins, one log colour scale for every panel) of predicted vs hidden observed NDVI.

    Rows are methods, columns protocols; in-sample methods have a grey panel and say so in the title.
    """
    protos, methods = list(hidden), _methods(predictions)
    fig, axes = plt.subplots(len(methods), len(protos), figsize=(3.3 * len(protos) + 1.0, 3.2 * len(methods)),
                             squeeze=False, layout="constrained")
    arts: list[PolyCollection] = []
    for i, name in enumerate(methods):
        for k, p in enumerate(protos):
            ax, pred, m = axes[i, k], predictions[p].get(name), metrics[p].get(name, {})
            if pred is None or not np.isfinite(m.get("mae", np.nan)):
                ax.text(0.5, 0.5, "no prediction", ha="center", va="center", transform=ax.transAxes)
                ax.set(xticks=[], yticks=[])
                ax.set_title(f"{label(name, m.get('note'))} {p}", fontsize=8.5)
                continue
            mask = scored_mask(pred, hidden[p])
            x, y = truth[mask], pred.mean[mask]
            ok = np.isfinite(x) & np.isfinite(y)
            title = f"{label(name, m.get('note'))} {p}: R² {m['r2']:.2f} MAE {m['mae']:.3f}"
            arts.append(_scatter_panel(ax, x[ok], y[ok], title, bool(in_sample_tag(m.get("note")))))
            if i == len(methods) - 1:
                ax.set_xlabel("observed NDVI (hidden)")
            if k == 0:
                ax.set_ylabel("predicted NDVI")
    if arts:
        vmax = max(float(np.nanmax(np.asarray(a.get_array()), initial=1.0)) for a in arts)
        for a in arts:
            a.set_norm(LogNorm(vmin=1, vmax=max(vmax, 2.0)))
        top = max(vmax, 2.0)
        ticks = [v for v in (1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000, 10000) if v <= top]
        bar = fig.colorbar(arts[0], ax=axes, shrink=0.6 if len(methods) > 2 else 0.9, aspect=25, ticks=ticks,
                           label="hidden observations per hexagon (log scale)")
        bar.ax.yaxis.set_major_formatter(FormatStrFormatter("%d"))
        bar.ax.yaxis.set_minor_formatter(NullFormatter())
    return fig


def scatter_figure(truth: np.ndarray, hidden: dict[str, np.ndarray], predictions: dict, metrics: dict,
                   out: str | Path) -> Path:
    """Write :func:`draw_scatter` to ``out``."""
    return save(draw_scatter(truth, hidden, predictions, metrics), out)


def draw_residuals(truth: np.ndarray, hidden: dict[str, np.ndarray], predictions: dict, metrics: dict) -> plt.Figure:
    """Histogram of residuals (prediction − observation) of every method, one panel per protocol.

    Residuals beyond ±:data:`RESIDUAL_LIMIT` fall into the end bins and their count is given in the legend, which
    sits under each panel (never on the bars).
    """
    protos = list(hidden)
    n_methods = max(len(by) for by in predictions.values()) if predictions else 1
    fig, axes = plt.subplots(1, len(protos), figsize=(4.2 * len(protos), 3.4 + 0.16 * n_methods), squeeze=False,
                             layout="constrained")
    edge = RESIDUAL_LIMIT
    bins = np.linspace(-edge, edge, 49)
    for k, p in enumerate(protos):
        ax = axes[0, k]
        for name, pred in predictions[p].items():
            res = (pred.mean - truth)[scored_mask(pred, hidden[p])]
            res = res[np.isfinite(res)]
            if not res.size:
                continue
            n_out = int((np.abs(res) > edge).sum())
            style = line_style(name, metrics[p][name].get("note"))
            style["label"] += f" MAE {metrics[p][name]['mae']:.3f}" + (f", {n_out} beyond ±{edge:g}" if n_out else "")
            ax.hist(np.clip(res, -edge, edge), bins=bins, histtype="step", density=True, **style)
        ax.axvline(0, color="k", lw=0.6)
        ax.set(title=f"{p}: residuals", xlabel="predicted − observed NDVI", ylabel="density")
        ax.legend(fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.2), ncol=1, frameon=False)
    return fig


def residual_figure(truth: np.ndarray, hidden: dict[str, np.ndarray], predictions: dict, metrics: dict,
                    out: str | Path) -> Path:
    """Write :func:`draw_residuals` to ``out``."""
    return save(draw_residuals(truth, hidden, predictions, metrics), out)


def bin_label(text: str) -> str:
    """A short tick label for a breakdown bin: ``">=60d or none kept"`` → ``"≥ 60 d"`` over ``"or none kept"``."""
    text = re.sub(r"^>=\s*", "≥ ", text)
    text = re.sub(r"(\d)d\b", r"\1 d", text)
    text = re.sub(r"(\d)-(\d)", r"\1–\2", text).replace("..", " to ")
    return text.replace(" or ", "\nor ")


def draw_breakdown(metrics: dict, key: str, xlabel: str) -> plt.Figure:
    """Grouped bars of MAE per bin (``key``: ``"by_range"`` or ``"by_distance"``), one panel per protocol.

    Tick labels give each bin and its number of scored observations (of the first method); the legend sits above the
    panels; in-sample methods are hatched; a method without a value in a bin has no bar there.
    """
    protos = list(metrics)
    fig, axes = plt.subplots(1, len(protos), figsize=(4.4 * len(protos), 3.8), squeeze=False, layout="constrained")
    handles: dict[str, plt.Artist] = {}
    for k, p in enumerate(protos):
        ax = axes[0, k]
        methods = [m for m in metrics[p] if np.isfinite(metrics[p][m].get("mae", np.nan))]
        if not methods:
            ax.set(title=f"{p}: no prediction", xticks=[], yticks=[])
            continue
        bins = list(metrics[p][methods[0]][key])
        width = 0.8 / len(methods)
        for j, name in enumerate(methods):
            vals = np.asarray([metrics[p][name][key][b]["mae"] for b in bins], dtype=float)
            xs = np.arange(len(bins)) + (j - (len(methods) - 1) / 2) * width
            bars = ax.bar(xs, vals, width, **bar_style(name, metrics[p][name].get("note")))
            handles.setdefault(bars.get_label(), bars)
        ticks = [f"{bin_label(b)}\nn={metrics[p][methods[0]][key][b]['n']}" for b in bins]
        ax.set_xticks(np.arange(len(bins)), ticks, fontsize=7.5)
        ax.set(title=f"{p}: MAE {key.replace('_', ' ')}", xlabel=xlabel, ylabel="MAE")
    if handles:
        fig.legend(list(handles.values()), list(handles), loc="outside upper center", ncol=min(len(handles), 8),
                   fontsize=8, frameon=False)
    return fig


def breakdown_figure(metrics: dict, key: str, out: str | Path, xlabel: str) -> Path:
    """Write :func:`draw_breakdown` to ``out``."""
    return save(draw_breakdown(metrics, key, xlabel), out)
