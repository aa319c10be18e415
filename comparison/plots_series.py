"""Time-series panels of sample pixels: S2 observations kept and hidden, DL ± std, MOGPR ± std and the others."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402  (backend must be chosen first)
import numpy as np  # noqa: E402

from comparison.plots import _save, colour  # noqa: E402

__all__ = ["pick_pixels", "series_figure"]

_BANDED = ("DL", "MOGPR", "MOGPR-GPy", "MOGPR-file")
"""Methods drawn with a ±1 std band when they have a std."""


def pick_pixels(hidden: np.ndarray, n: int, seed: int = 0) -> list[tuple]:
    """``n`` pixels with hidden observations, spread over the count of hidden values (seeded, reproducible).

    Hidden observations exist only on scored pixels, which every method (MOGPR included) computes.

    Args:
        hidden: ``(t, y, x)`` hidden mask.
        n: how many pixels.
        seed: seed of the draw.
    """
    counts = hidden.sum(0)
    ok = counts > 0
    cand = np.argwhere(ok)
    if len(cand) == 0:
        return []
    order = cand[np.argsort(-counts[ok], kind="stable")]
    step = max(len(order) // max(n, 1), 1)
    start = int(np.random.default_rng(seed).integers(step))
    return [tuple(int(v) for v in yx) for yx in order[start::step][:n]]


def _panel(ax: plt.Axes, times: np.ndarray, truth: np.ndarray, hidden: np.ndarray, preds: dict,
           yx: tuple[int, int]) -> None:
    iy, ix = yx
    for name, pred in preds.items():
        series = pred.mean[:, iy, ix]
        dates = getattr(pred, "dates", None)
        t = times if dates is None else times[dates]
        s = series if dates is None else series[dates]
        ax.plot(t, s, color=colour(name), lw=1.5 if name in _BANDED else 0.9, label=name)
        if pred.std is not None and name in _BANDED:
            sd = pred.std[:, iy, ix] if dates is None else pred.std[dates, iy, ix]
            ax.fill_between(t, s - sd, s + sd, color=colour(name), alpha=0.15, lw=0)
    obs, hid = truth[:, iy, ix], hidden[:, iy, ix]
    ax.plot(times[~hid], obs[~hid], "ko", ms=3, label="S2 kept")
    ax.plot(times[hid], obs[hid], "o", mfc="none", mec="crimson", ms=5, mew=1.3, label="S2 hidden")
    ax.set(ylabel="NDVI", ylim=(-0.1, 1.05), title=f"pixel (y={iy}, x={ix})")
    ax.title.set_fontsize(9)
    ax.tick_params(axis="x", labelrotation=30, labelsize=7)


def series_figure(times: np.ndarray, truth: np.ndarray, hidden: dict[str, np.ndarray], predictions: dict,
                  out: str | Path, n_pixels: int = 3, seed: int = 0) -> Path:
    """Rows: protocols; columns: sample pixels. Each panel: every method's series, ±1 std bands for DL and MOGPR.

    Args:
        times: ``(t,)`` datetime64 labels.
        truth: ``(t, y, x)`` observed NDVI.
        hidden: protocol → hidden mask.
        predictions: protocol → method → prediction.
        out: PNG path.
        n_pixels: panels per protocol.
        seed: seed of the pixel choice.
    """
    protos = list(hidden)
    fig, axes = plt.subplots(len(protos), n_pixels, figsize=(4.6 * n_pixels, 2.9 * len(protos)), squeeze=False)
    for r, p in enumerate(protos):
        pix = pick_pixels(hidden[p], n_pixels, seed=seed + r)
        for c in range(n_pixels):
            ax = axes[r, c]
            if c >= len(pix):
                ax.axis("off")
                continue
            _panel(ax, times, truth, hidden[p], predictions[p], pix[c])
            if c == 0:
                ax.set_ylabel(f"{p}\nNDVI")
    handles, labels = axes[0, 0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="upper center", ncol=min(len(labels), 8), fontsize=8, frameon=False)
    return _save(fig, out, rect=(0, 0, 1, 0.96))
