"""Time-series panels of sample pixels: S2 observations kept and hidden, and every method's series.

Hidden windows are shaded, DL and MOGPR get a ±1σ band (labelled as such), in-sample methods are dashed, and values
beyond the axis are drawn on its edge and counted in the panel title.
"""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402  (backend must be chosen first)
import numpy as np  # noqa: E402

from comparison.figures.style import colour, line_style, mark_outside, outside_text, save  # noqa: E402

__all__ = ["SERIES_LIMITS", "draw_series", "hidden_windows", "pick_pixels", "series_figure"]

_BANDED = ("DL", "MOGPR", "MOGPR-GPy", "MOGPR-file")
"""Methods drawn with a ±1σ band when they have a std."""
SERIES_LIMITS = (-0.1, 1.05)
"""NDVI axis of the panels."""
_PAD_DAYS = 3.0
"""Half-width added around each hidden window so that a single hidden date shows as a band."""


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


def hidden_windows(times: np.ndarray, observed: np.ndarray, hidden: np.ndarray) -> list[tuple[int, int]]:
    """Runs of hidden observations of one pixel not interrupted by a kept one, as ``(first, last)`` time indices.

    Args:
        times: ``(t,)`` labels (only their order matters here).
        observed: ``(t,)`` bool, an observation exists.
        hidden: ``(t,)`` bool, the observation was hidden.
    """
    runs: list[tuple[int, int]] = []
    start = last = None
    for k in np.flatnonzero(observed):
        if hidden[k]:
            start = k if start is None else start
            last = k
        elif start is not None:
            runs.append((int(start), int(last)))  # type: ignore[arg-type]
            start = None
    if start is not None:
        runs.append((int(start), int(last)))  # type: ignore[arg-type]
    return runs


def _shade_windows(ax: plt.Axes, times: np.ndarray, obs: np.ndarray, hid: np.ndarray) -> None:
    pad = np.timedelta64(int(_PAD_DAYS * 24), "h")
    for i, (a, b) in enumerate(hidden_windows(times, np.isfinite(obs), hid)):
        ax.axvspan(times[a] - pad, times[b] + pad, color="0.55", alpha=0.18, lw=0,
                   label="hidden window" if i == 0 else "_nolegend_")


def _panel(ax: plt.Axes, times: np.ndarray, truth: np.ndarray, hidden: np.ndarray, preds: dict,
           yx: tuple[int, int]) -> None:
    iy, ix = yx
    obs, hid = truth[:, iy, ix], hidden[:, iy, ix]
    _shade_windows(ax, times, obs, hid)
    counts = {}
    for name, pred in preds.items():
        dates = getattr(pred, "dates", None)
        keep = slice(None) if dates is None else dates
        t, s = times[keep], pred.mean[keep, iy, ix]
        note = getattr(pred, "note", "")
        ax.plot(t, s, **line_style(name, note, width=1.5 if name in _BANDED else 0.9))
        if pred.std is not None and name in _BANDED:
            sd = pred.std[keep, iy, ix]
            ax.fill_between(t, s - sd, s + sd, color=colour(name), alpha=0.15, lw=0, label=f"{name} ±1σ")
        ok = np.isfinite(s)
        below, above = mark_outside(ax, t[ok], s[ok], SERIES_LIMITS, colour(name))
        if below or above:
            counts[name] = (below, above)
    ax.plot(times[~hid], obs[~hid], "ko", ms=3, label="S2 kept")
    ax.plot(times[hid], obs[hid], "o", mfc="none", mec="crimson", ms=5, mew=1.3, label="S2 hidden")
    ax.set(ylabel="NDVI", ylim=SERIES_LIMITS)
    beyond = outside_text(counts, SERIES_LIMITS)
    ax.set_title(f"pixel (y={iy}, x={ix})" + (f"\n{beyond}" if beyond else ""), fontsize=8.5)
    ax.tick_params(axis="x", labelrotation=30, labelsize=7)


def draw_series(times: np.ndarray, truth: np.ndarray, hidden: dict[str, np.ndarray], predictions: dict,
                n_pixels: int = 3, seed: int = 0) -> plt.Figure:
    """Rows: protocols; columns: sample pixels. One legend above the panels for every line, band and marker.

    Args:
        times: ``(t,)`` datetime64 labels.
        truth: ``(t, y, x)`` observed NDVI.
        hidden: protocol → hidden mask.
        predictions: protocol → method → prediction.
        n_pixels: panels per protocol.
        seed: seed of the pixel choice.
    """
    protos = list(hidden)
    fig, axes = plt.subplots(len(protos), n_pixels, figsize=(4.6 * n_pixels, 3.1 * len(protos) + 0.6),
                             squeeze=False, layout="constrained")
    handles: dict[str, plt.Artist] = {}
    for r, p in enumerate(protos):
        pix = pick_pixels(hidden[p], n_pixels, seed=seed + r)
        for c in range(n_pixels):
            ax = axes[r, c]
            if c >= len(pix):
                ax.axis("off")
                continue
            _panel(ax, times, truth, hidden[p], predictions[p], pix[c])
            for h, lab in zip(*ax.get_legend_handles_labels()):
                handles.setdefault(lab, h)
            if c == 0:
                ax.set_ylabel(f"{p}\nNDVI")
    fig.legend(list(handles.values()), list(handles), loc="outside upper center", ncol=min(len(handles), 7),
               fontsize=8, frameon=False)
    return fig


def series_figure(times: np.ndarray, truth: np.ndarray, hidden: dict[str, np.ndarray], predictions: dict,
                  out: str | Path, n_pixels: int = 3, seed: int = 0) -> Path:
    """Write :func:`draw_series` to ``out``."""
    return save(draw_series(times, truth, hidden, predictions, n_pixels=n_pixels, seed=seed), out)
