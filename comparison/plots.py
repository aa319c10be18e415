"""Evaluation figures: density scatter per protocol, residuals per method, time-series panels of sample pixels."""

import logging
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402  (backend must be chosen first)
import numpy as np  # noqa: E402

_log = logging.getLogger(__name__)

__all__ = ["evaluation_figure"]

_COLOURS = {"DL": "tab:red", "MOGPR": "tab:blue", "Whittaker": "tab:green", "Linear": "tab:gray",
            "SeedMLP": "tab:purple", "CropSAR": "tab:orange"}


def _colour(name: str) -> str:
    return _COLOURS.get(name, "black")


def _scatter(ax: plt.Axes, pred: np.ndarray, truth: np.ndarray, title: str) -> None:
    ok = np.isfinite(pred) & np.isfinite(truth)
    ax.hexbin(truth[ok], pred[ok], gridsize=40, extent=(-0.1, 1, -0.1, 1), mincnt=1, cmap="viridis", bins="log")
    ax.plot([-0.1, 1], [-0.1, 1], "k--", lw=0.8)
    ax.set(title=title, xlabel="observed NDVI (hidden)", ylabel="predicted NDVI", xlim=(-0.1, 1), ylim=(-0.1, 1))


def _pick_pixel(hidden: np.ndarray) -> tuple[int, int]:
    counts = hidden.sum(axis=0)
    iy, ix = np.unravel_index(int(np.argmax(counts)), counts.shape)
    return int(iy), int(ix)


def _series(ax: plt.Axes, times: np.ndarray, truth: np.ndarray, hidden: np.ndarray, preds: dict, title: str) -> None:
    iy, ix = _pick_pixel(hidden)
    obs, hid = truth[:, iy, ix], hidden[:, iy, ix]
    for name, (mean, std) in preds.items():
        ax.plot(times, mean[:, iy, ix], color=_colour(name), lw=1.4 if name in ("DL", "MOGPR") else 0.9, label=name)
        if std is not None:
            ax.fill_between(times, mean[:, iy, ix] - std[:, iy, ix], mean[:, iy, ix] + std[:, iy, ix],
                            color=_colour(name), alpha=0.15)
    ax.plot(times[~hid], obs[~hid], "ko", ms=3, label="S2 kept")
    ax.plot(times[hid], obs[hid], "o", mfc="none", mec="crimson", ms=5, label="S2 hidden")
    ax.set(title=f"{title}: pixel (y={iy}, x={ix})", ylabel="NDVI", ylim=(-0.1, 1.05))
    ax.tick_params(axis="x", labelrotation=30)


def evaluation_figure(times: np.ndarray, truth: np.ndarray, hidden: dict[str, np.ndarray], predictions: dict,
                      metrics: dict, out: str | Path, focus: str = "DL") -> Path:
    """Write a PNG: scatter of ``focus`` per protocol, residual histograms per method, one time-series per protocol.

    Args:
        times: ``(t,)`` datetime64 labels.
        truth: ``(t, y, x)`` observed NDVI.
        hidden: protocol → ``(t, y, x)`` hidden mask.
        predictions: protocol → method → (mean, std or None).
        metrics: protocol → method → scores (for titles).
        out: PNG path.
        focus: method shown in the scatter row.
    """
    names = list(hidden)
    fig, axes = plt.subplots(3, len(names), figsize=(4.2 * len(names), 11), squeeze=False)
    for k, p in enumerate(names):
        m = metrics[p][focus]
        _scatter(axes[0, k], predictions[p][focus][0][hidden[p]], truth[hidden[p]],
                 f"{focus} {p}: R² {m['r2']:.2f}, MAE {m['mae']:.3f}")
        ax = axes[1, k]
        for name, (mean, _) in predictions[p].items():
            res = (mean - truth)[hidden[p]]
            res = res[np.isfinite(res)]
            if res.size:
                ax.hist(res, bins=np.linspace(-0.6, 0.6, 49), histtype="step", color=_colour(name),
                        label=f"{name} MAE {metrics[p][name]['mae']:.3f}", density=True)
        ax.set(title=f"{p}: residuals (pred − obs)", xlabel="NDVI residual")
        ax.legend(fontsize=7)
        _series(axes[2, k], times, truth, hidden[p], predictions[p], p)
    axes[2, 0].legend(fontsize=7, loc="lower left")
    fig.tight_layout()
    out = Path(out)
    fig.savefig(out, dpi=110)
    plt.close(fig)
    _log.info("Wrote figure %s", out)
    return out
