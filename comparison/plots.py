"""Evaluation figures: density scatter per method and protocol, residuals, accuracy by NDVI range and by gap length.

Every figure takes ``predictions`` as protocol → method → :class:`comparison.methods.Prediction` and the hidden
masks, and scores exactly what :func:`comparison.evaluate.evaluate` scores (hidden observations on covered dates).
"""

from __future__ import annotations

import logging
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402  (backend must be chosen first)
import numpy as np  # noqa: E402

_log = logging.getLogger(__name__)

__all__ = ["colour", "scatter_figure", "residual_figure", "breakdown_figure", "scored_mask"]

_COLOURS = {"DL": "tab:red", "MOGPR": "tab:blue", "Whittaker": "tab:green", "Linear": "tab:gray",
            "SeedMLP": "tab:purple", "CropSAR": "tab:orange", "MOGPR-GPy": "tab:cyan", "MOGPR-file": "navy"}


def colour(name: str) -> str:
    """Fixed colour of a method (black for unknown names)."""
    return _COLOURS.get(name, "black")


def scored_mask(pred: object, hidden: np.ndarray) -> np.ndarray:
    """Hidden observations on the dates a prediction covers."""
    dates = getattr(pred, "dates", None)
    return hidden if dates is None else hidden & dates[:, None, None]


def _save(fig: plt.Figure, out: str | Path, rect: tuple[float, float, float, float] = (0, 0, 1, 1)) -> Path:
    out = Path(out)
    fig.tight_layout(rect=rect)
    fig.savefig(out, dpi=110)
    plt.close(fig)
    _log.info("Wrote figure %s", out)
    return out


def _methods(predictions: dict) -> list[str]:
    names: list[str] = []
    for by_method in predictions.values():
        names += [m for m in by_method if m not in names]
    return names


def scatter_figure(truth: np.ndarray, hidden: dict[str, np.ndarray], predictions: dict, metrics: dict,
                   out: str | Path) -> Path:
    """Density scatter (log-count hexbins) of predicted vs hidden observed NDVI: rows methods, columns protocols."""
    protos, methods = list(hidden), _methods(predictions)
    fig, axes = plt.subplots(len(methods), len(protos), figsize=(3.3 * len(protos), 3.1 * len(methods)),
                             squeeze=False)
    for i, name in enumerate(methods):
        for k, p in enumerate(protos):
            ax = axes[i, k]
            pred = predictions[p].get(name)
            m = metrics[p].get(name, {})
            if pred is None or not np.isfinite(m.get("mae", np.nan)):
                ax.text(0.5, 0.5, "no prediction", ha="center", va="center", transform=ax.transAxes)
                ax.set(title=f"{name} {p}", xticks=[], yticks=[])
                continue
            mask = scored_mask(pred, hidden[p])
            x, y = truth[mask], pred.mean[mask]
            ok = np.isfinite(x) & np.isfinite(y)
            ax.hexbin(x[ok], y[ok], gridsize=30, extent=(-0.1, 1, -0.1, 1), mincnt=1, cmap="viridis", bins="log")
            ax.plot([-0.1, 1], [-0.1, 1], "k--", lw=0.8)
            ax.set(title=f"{name} {p}: R² {m['r2']:.2f} MAE {m['mae']:.3f}", xlim=(-0.1, 1), ylim=(-0.1, 1))
            ax.title.set_fontsize(9)
            if i == len(methods) - 1:
                ax.set_xlabel("observed NDVI (hidden)")
            if k == 0:
                ax.set_ylabel("predicted NDVI")
    return _save(fig, out)


def residual_figure(truth: np.ndarray, hidden: dict[str, np.ndarray], predictions: dict, metrics: dict,
                    out: str | Path) -> Path:
    """Histogram of residuals (prediction − observation) of every method, one panel per protocol."""
    protos = list(hidden)
    fig, axes = plt.subplots(1, len(protos), figsize=(4.2 * len(protos), 3.4), squeeze=False)
    bins = np.linspace(-0.6, 0.6, 49)
    for k, p in enumerate(protos):
        ax = axes[0, k]
        for name, pred in predictions[p].items():
            res = (pred.mean - truth)[scored_mask(pred, hidden[p])]
            res = res[np.isfinite(res)]
            if res.size:
                ax.hist(res, bins=bins, histtype="step", color=colour(name), density=True,
                        label=f"{name} MAE {metrics[p][name]['mae']:.3f}")
        ax.axvline(0, color="k", lw=0.6)
        ax.set(title=f"{p}: residuals", xlabel="predicted − observed NDVI")
        ax.legend(fontsize=7)
    return _save(fig, out)


def breakdown_figure(metrics: dict, key: str, out: str | Path, xlabel: str) -> Path:
    """Grouped bars of MAE per bin (``key``: ``"by_range"`` or ``"by_distance"``), one panel per protocol.

    Bars are annotated with the number of scored observations in the bin for the first method.
    """
    protos = list(metrics)
    fig, axes = plt.subplots(1, len(protos), figsize=(4.2 * len(protos), 3.4), squeeze=False)
    for k, p in enumerate(protos):
        ax = axes[0, k]
        methods = [m for m in metrics[p] if np.isfinite(metrics[p][m].get("mae", np.nan))]
        if not methods:
            ax.set(title=f"{p}: no prediction")
            continue
        bins = list(metrics[p][methods[0]][key])
        width = 0.8 / len(methods)
        for j, name in enumerate(methods):
            vals = [metrics[p][name][key][b]["mae"] for b in bins]
            xs = np.arange(len(bins)) + (j - (len(methods) - 1) / 2) * width
            ax.bar(xs, np.nan_to_num(np.asarray(vals, dtype=float), nan=0.0), width, color=colour(name), label=name)
        for i, b in enumerate(bins):
            ax.text(i, 0, f"n={metrics[p][methods[0]][key][b]['n']}", ha="center", va="bottom", fontsize=6)
        ax.set_xticks(np.arange(len(bins)), bins, fontsize=8)
        ax.set(title=f"{p}: MAE {key.replace('_', ' ')}", xlabel=xlabel, ylabel="MAE")
        ax.legend(fontsize=7)
    return _save(fig, out)
