"""Markdown report and JSON metrics of an evaluation run."""

import json
import math
from pathlib import Path

__all__ = ["markdown_table", "write_metrics", "write_report"]


def _fmt(v: float, digits: int = 3) -> str:
    return "–" if v is None or (isinstance(v, float) and math.isnan(v)) else f"{v:.{digits}f}"


def markdown_table(metrics: dict) -> str:
    """One table: protocol × method with n, NaN, R², MAE, RMSE, bias, wall time and pixels/s."""
    lines = ["| protocol | method | n | NaN | R² | MAE | RMSE | bias | ±1σ cover | time (s) | pixels/s |",
             "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for p, by_method in metrics.items():
        for name, m in by_method.items():
            cover = _fmt(m.get("within_1std"), 2) if "within_1std" in m else ""
            lines.append(f"| {p} | {name} | {m['n']} | {m['n_nan']} | {_fmt(m['r2'])} | {_fmt(m['mae'])} | "
                         f"{_fmt(m['rmse'])} | {_fmt(m['bias'])} | {cover} | {m['seconds']:.2f} | "
                         f"{m['pixels_per_s']:,.0f} |")
    return "\n".join(lines)


def _clean(obj: object) -> object:
    if isinstance(obj, float) and (math.isnan(obj) or math.isinf(obj)):
        return None
    if isinstance(obj, dict):
        return {str(k): _clean(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_clean(v) for v in obj]
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
