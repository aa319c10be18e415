"""The README's main job from a shell: `s1ndvi demo` end to end (slow: a few minutes)."""

import json
import subprocess
import sys
from pathlib import Path

import pytest


@pytest.mark.slow
def test_demo_from_the_command_line(tmp_path: Path) -> None:
    out = tmp_path / "demo"
    proc = subprocess.run([sys.executable, "-m", "udf.cli", "demo", "--out", str(out), "--adapt-steps", "400",
                           "--field-pixels", "2"], capture_output=True, text=True, timeout=1800)
    assert proc.returncode == 0, proc.stderr[-3000:]
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
    assert "INFO" not in proc.stderr  # server logs go to backend/server.log, not the console
