"""Markdown report and JSON metrics of an evaluation run."""

from __future__ import annotations

import json
import math
from pathlib import Path

__all__ = ["breakdown_table", "markdown_table", "write_metrics", "write_report"]


def _fmt(v: object, digits: int = 3) -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "–"
    return f"{v:.{digits}f}" if isinstance(v, (int, float)) else str(v)


def _rate(v: object) -> str:
    if v is None or (isinstance(v, float) and not math.isfinite(v)):
        return "–"
    return f"{v:.2g}" if isinstance(v, (int, float)) and v < 10 else f"{v:,.0f}"


def markdown_table(metrics: dict) -> str:
    """Protocol × method: n, NaN, pixels not fitted, R², MAE, RMSE, bias, std coverage, time and pixels/s.

    Methods with a caveat (``note``) get a numbered footnote under the table.
    """
    lines = ["| protocol | method | n | NaN | not fitted (px) | R² | MAE | RMSE | bias | ±1σ / ±2σ | time (s) | "
             "pixels/s |", "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    notes: list[str] = []
    for p, by_method in metrics.items():
        for name, m in by_method.items():
            label = name
            if m.get("note"):
                if m["note"] not in notes:
                    notes.append(m["note"])
                label += f" [{notes.index(m['note']) + 1}]"
            cover = (f"{_fmt(m.get('within_1std'), 2)} / {_fmt(m.get('within_2std'), 2)}"
                     if "within_1std" in m else "")
            lines.append(f"| {p} | {label} | {m['n']} | {m['n_nan']} | {m.get('n_failed_pixels', 0)} | "
                         f"{_fmt(m['r2'])} | {_fmt(m['mae'])} | {_fmt(m['rmse'])} | {_fmt(m['bias'])} | {cover} | "
                         f"{m['seconds']:.2f} | {_rate(m['pixels_per_s'])} |")
    lines += [""] + [f"[{i + 1}] {n}" for i, n in enumerate(notes)]
    return "\n".join(lines).strip()


def breakdown_table(metrics: dict, key: str) -> str:
    """MAE (n) per bin of ``key`` (``by_range`` or ``by_distance``): rows protocol × method, columns bins."""
    first = next((m for by in metrics.values() for m in by.values() if key in m), None)
    if first is None:
        return ""
    bins = list(first[key])
    lines = ["| protocol | method | " + " | ".join(bins) + " |", "|---|---|" + "---:|" * len(bins)]
    for p, by_method in metrics.items():
        for name, m in by_method.items():
            cells = [f"{_fmt(m[key][b]['mae'])} ({m[key][b]['n'] - m[key][b]['n_nan']})" for b in bins]
            lines.append(f"| {p} | {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _clean(obj: object) -> object:
    if isinstance(obj, float) and (math.isnan(obj) or math.isinf(obj)):
        return None
    if isinstance(obj, dict):
        return {str(k): _clean(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_clean(v) for v in obj]
    if hasattr(obj, "item") and callable(obj.item):  # numpy scalars
        return _clean(obj.item())
    return obj


def write_metrics(payload: dict, path: str | Path) -> Path:
    """Write metrics as JSON (NaN/inf become null)."""
    path = Path(path)
    path.write_text(json.dumps(_clean(payload), indent=1), encoding="utf-8")
    return path


def write_report(path: str | Path, title: str, sections: list[tuple[str, str]]) -> Path:
    """Write a Markdown report made of ``(heading, body)`` sections."""
    text = [f"# {title}", ""]
    for heading, body in sections:
        text += [f"## {heading}", "", body.strip(), ""]
    path = Path(path)
    path.write_text("\n".join(text), encoding="utf-8")
    return path
