"""The common look of the evaluation figures: method colours, in-sample methods drawn apart, values beyond the axis.

- Each method has a fixed colour, never black (the observations' colour); variants of a method family (``DL
  zero-shot``, ``DL adapted``) have colours of their own, and the DL and MOGPR families their ±1σ band.
- A method whose note says it saw the hidden values (:mod:`comparison.caveats`) is labelled ``"<name> (in-sample)"``
  and drawn dashed (lines) or hatched (bars), so it is not read as a winner.
- A value beyond an axis limit is never dropped silently: it is drawn as a marker on the edge and counted in the
  panel's title (:func:`mark_outside`, :func:`outside_text`).
"""

from __future__ import annotations

import colorsys
import logging
import zlib
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402  (backend must be chosen first)
import numpy as np  # noqa: E402
from matplotlib.colors import to_hex, to_rgb  # noqa: E402

from comparison.caveats import in_sample_tag  # noqa: E402

_log = logging.getLogger(__name__)

__all__ = ["FAMILIES", "NDVI_LIMITS", "bar_style", "colour", "family", "has_band", "label", "legend_right",
           "line_style", "mark_outside", "outside_text", "save"]

NDVI_LIMITS = (-0.1, 1.0)
"""Axis range of NDVI in the figures (values beyond are drawn on the edge and counted)."""

_COLOURS = {"DL": "tab:red", "DL adapted": "tab:red", "DL zero-shot": "tab:pink", "MOGPR": "tab:blue",
            "Whittaker": "tab:green", "Linear": "tab:gray", "SeedMLP": "tab:purple", "seed MLP": "tab:purple",
            "CropSAR": "tab:orange", "MOGPR-GPy": "tab:cyan", "MOGPR-file": "navy", "DateMean": "tab:olive",
            "Regression5": "tab:brown"}
"""Colour of each method by its exact name; variants of a family (``"DL zero-shot"``, ``"DL adapted"``) each have
their own."""
FAMILIES = ("DL", "MOGPR", "Whittaker", "Linear", "SeedMLP", "CropSAR")
"""Method families: a name is in a family when it is the family's name or starts with it and a space or hyphen."""
_SHADES = (0.55, 0.75, 1.3, 1.5)
"""Lightness factors of the family colour for family members without a colour of their own."""
_OTHERS = ("darkgoldenrod", "teal", "slateblue", "olivedrab", "sienna")
"""Colours of names in no family (never black: black is the observations' colour in every figure)."""


def family(name: str) -> str | None:
    """The method family of ``name`` (``"DL zero-shot"`` → ``"DL"``), or None."""
    for fam in FAMILIES:
        if name == fam or name.startswith((fam + " ", fam + "-")):
            return fam
    return None


def colour(name: str) -> str:
    """Fixed colour of a method: its own, else a shade of its family's, else one of a few others (stable per name)."""
    if name in _COLOURS:
        return _COLOURS[name]
    key = zlib.crc32(name.encode())
    fam = family(name)
    if fam is None:
        return _OTHERS[key % len(_OTHERS)]
    h, lum, sat = colorsys.rgb_to_hls(*to_rgb(_COLOURS[fam]))
    return to_hex(colorsys.hls_to_rgb(h, min(0.85, lum * _SHADES[key % len(_SHADES)]), sat))


def has_band(name: str) -> bool:
    """Whether a method's series is drawn with its ±1σ band (the DL and MOGPR families predict a std)."""
    return family(name) in ("DL", "MOGPR")


def label(name: str, note: str | None = None) -> str:
    """Legend text of a method: its name, with ``(in-sample)`` or ``(possibly in-sample)`` when its note says so."""
    tag = in_sample_tag(note)
    return f"{name} ({tag})" if tag else name


def line_style(name: str, note: str | None = None, width: float = 1.2) -> dict:
    """``plot`` keywords of a method: its colour, dashed when in-sample."""
    return {"color": colour(name), "lw": width, "ls": "--" if in_sample_tag(note) else "-", "label": label(name, note)}


def bar_style(name: str, note: str | None = None) -> dict:
    """``bar`` keywords of a method: its colour, hatched and paler when in-sample."""
    if in_sample_tag(note):
        return {"color": colour(name), "alpha": 0.45, "hatch": "///", "edgecolor": "black", "lw": 0.0,
                "label": label(name, note)}
    return {"color": colour(name), "label": label(name, note)}


def mark_outside(ax: plt.Axes, x: np.ndarray, y: np.ndarray, limits: tuple[float, float], color: str,
                 axis: str = "y") -> tuple[int, int]:
    """Draw values of ``y`` (or ``x`` with ``axis="x"``) beyond ``limits`` as triangles on the axis edge.

    Returns:
        How many values lie below and above the limits.
    """
    lo, hi = limits
    values = y if axis == "y" else x
    below, above = values < lo, values > hi
    for mask, edge, marker in ((below, lo, "v" if axis == "y" else "<"), (above, hi, "^" if axis == "y" else ">")):
        if mask.any():
            pos = np.full(int(mask.sum()), edge)
            px, py = (x[mask], pos) if axis == "y" else (pos, y[mask])
            ax.plot(px, py, marker, color=color, ms=6.5, mec="black", mew=0.5, ls="none", clip_on=False, zorder=5)
    return int(below.sum()), int(above.sum())


def outside_text(counts: dict[str, tuple[int, int]], limits: tuple[float, float]) -> str:
    """How many values lie beyond the limits (drawn on the edge), for a panel title; ``""`` if none.

    Args:
        counts: what (a method, ``"predicted"``) → (below, above), e.g. from :func:`mark_outside`; gives
            ``"beyond axis (on edge): 2 Whittaker < -0.1, 1 MOGPR > 1.05"``.
        limits: the axis limits.
    """
    parts = []
    for name, (below, above) in counts.items():
        parts += [f"{below} {name} < {limits[0]:g}"] if below else []
        parts += [f"{above} {name} > {limits[1]:g}"] if above else []
    return ("beyond axis (on edge): " + ", ".join(parts)) if parts else ""


def legend_right(ax: plt.Axes) -> None:
    """The panel's legend to its right, one entry per label (a label drawn several times is listed once)."""
    handles, labels = ax.get_legend_handles_labels()
    unique = dict(zip(labels, handles))
    ax.legend(unique.values(), unique.keys(), loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=8)


def save(fig: plt.Figure, out: str | Path, dpi: int = 110) -> Path:
    """Write the figure (laid out already, e.g. by its own ``constrained`` layout) and close it."""
    out = Path(out)
    fig.savefig(out, dpi=dpi)
    plt.close(fig)
    _log.info("Wrote figure %s", out)
    return out
