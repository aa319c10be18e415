"""The README's main job from a shell: `s1ndvi demo` end to end, and its headline numbers against docs/results.md
(slow: one demo run, 2.5–4 min on 2 busy cores, Dec 2026; `.ci/run` runs this file)."""

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
ADAPT_STEPS = 400
"""Short adaptation (the docs' row used the demo's default budget, ten minutes here): the adapted row is only
bounded, not pinned."""
TOLERANCE = {"DL zero-shot": 0.003, "Linear": 0.001, "Whittaker": 0.001, "MOGPR": 0.005, "SeedMLP": 0.003}
"""MAE tolerance per row (the docs round to 0.001). Linear and Whittaker are deterministic; the zero-shot model is
deterministic up to float summation order across torch builds and threads; MOGPR's and the seed MLP's fits are
seeded but sensitive to float noise on a few pixels. Measured (Dec 2026, 2 busy cores): every row within 0.0005 of
the docs (zero-shot 0.0769 / 0.1048 / 0.1384 for P1 / P2_60 / P2_90; P3 0.0774 after borrowing landed)."""
KNOWN_DRIFT: dict[tuple[str, str], str] = {}
"""Cells of the docs table known to be stale, with why. Each must still differ (then it is listed, not failed);
once the docs are updated the entry must go."""
_DOC_COLUMNS = ("DL zero-shot", "DL adapted", "MOGPR", "Linear", "Whittaker", "SeedMLP")
_DOC_ROWS = {"P1": "P1", "P2: 60-day gap": "P2_60", "P2: 90-day gap": "P2_90", "P3: S1 only": "P3"}


def doc_demo_table() -> dict[str, dict[str, float | None]]:
    """``{protocol: {method: MAE or None}}`` of the demo table at the top of docs/results.md."""
    text = (ROOT / "docs" / "results.md").read_text()
    section = text[:text.index("## On sites the model never saw")]
    out: dict[str, dict[str, float | None]] = {}
    for line in section.splitlines():
        cells = [c.strip().strip("*") for c in line.strip().strip("|").split("|")]
        key = next((v for k, v in _DOC_ROWS.items() if cells[0].startswith(k)), None)
        if key and len(cells) == len(_DOC_COLUMNS) + 1:
            out[key] = {m: float(c.split(" / ")[0]) if re.match(r"^\d", c) else None
                        for m, c in zip(_DOC_COLUMNS, cells[1:])}
    return out


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> tuple[subprocess.CompletedProcess, Path]:
    out = tmp_path_factory.mktemp("demo") / "demo"
    proc = subprocess.run([sys.executable, "-m", "udf.cli", "demo", "--out", str(out), "--adapt-steps",
                           str(ADAPT_STEPS), "--field-pixels", "2"], capture_output=True, text=True, timeout=2400)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc, out


@pytest.mark.slow
@pytest.mark.timeout(2700)
def test_demo_from_the_command_line(demo) -> None:
    proc, out = demo
    assert "Demo done" in proc.stdout and "report.md" in proc.stdout
    metrics = json.loads((out / "metrics.json").read_text())
    rows = set(metrics["metrics"]["P2_60"])
    assert {"DL zero-shot", "DL adapted", "MOGPR", "Linear", "Whittaker"} <= rows
    assert "never seen" in metrics["dl_provenance"]["DL zero-shot"]
    assert metrics["backend_vs_direct_max_abs"] < 1e-4
    report = (out / "report.md").read_text()
    assert "leave-one-site-out" in report and "Phenology" in report
    for png in out.glob("*.png"):
        assert png.name in report, png.name
    assert (out / "ndvi_fused.nc").exists() and (out / "model_adapted.npz").exists()
    # server logs go to backend/server.log, not the console; the only INFO lines are the few progress lines
    info = [ln for ln in proc.stderr.splitlines() if " INFO " in ln]
    assert all(" udf.cli.progress: " in ln for ln in info) and len(info) <= 20, info
    assert "\r" not in proc.stderr  # no progress-bar frames when stderr is not a terminal


@pytest.mark.slow
@pytest.mark.timeout(2700)
def test_demo_headline_numbers_match_docs_results(demo) -> None:
    """The demo table of docs/results.md reproduces: zero-shot, MOGPR and the baselines within TOLERANCE; the
    adapted model (a short budget here) at least as good as the zero-shot one on the gap protocols."""
    _, out = demo
    got = json.loads((out / "metrics.json").read_text())["metrics"]
    want = doc_demo_table()
    assert set(want) == {"P1", "P2_60", "P2_90", "P3"}, want
    off = []
    for protocol, row in want.items():
        for method, tol in TOLERANCE.items():
            if row[method] is None:
                assert not (got[protocol].get(method) or {}).get("mae"), (protocol, method)
                continue
            mae = got[protocol][method]["mae"]
            if (protocol, method) in KNOWN_DRIFT:
                assert abs(mae - row[method]) > tol, f"{protocol} {method} agrees with the docs again: drop KNOWN_DRIFT"
                continue
            if abs(mae - row[method]) > tol:
                off.append(f"{protocol} {method}: {mae:.4f} vs docs {row[method]:.3f} (±{tol})")
    assert not off, "demo numbers moved from docs/results.md: " + "; ".join(off)
    for protocol in ("P2_60", "P2_90"):
        adapted, zero = got[protocol]["DL adapted"]["mae"], got[protocol]["DL zero-shot"]["mae"]
        assert adapted <= zero + 0.01, (protocol, adapted, zero)  # 0.3 min (≈ 60 steps): P2_60 0.106 vs 0.105
