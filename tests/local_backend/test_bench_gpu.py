"""The prepared GPU benchmark (benchmarks/bench_gpu.py): its plan, and its CPU dry mode end to end (slow)."""

import argparse
import importlib.util
import json
from pathlib import Path

import pytest

BENCH = Path(__file__).parents[2] / "benchmarks" / "bench_gpu.py"


def _bench():
    spec = importlib.util.spec_from_file_location("bench_gpu", BENCH)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_gpu_plan_has_device_and_cpu_rows_of_every_part(tmp_path: Path) -> None:
    bench = _bench()
    args = argparse.Namespace(workers=1, cpu_workers=4, gpy_python=None, extra_site=None)
    parts = dict(bench.plan_parts("cuda", bench.GPU_PLAN, args, tmp_path))
    assert list(parts) == ["udf_cuda", "udf_cpu", "area_cuda", "area_cpu", "mogpr"]
    assert parts["area_cuda"][parts["area_cuda"].index("--device") + 1] == "cuda"
    assert parts["area_cpu"][parts["area_cpu"].index("--workers") + 1] == "4"
    assert all(Path(cmd[1]).is_file() for cmd in parts.values())
    dry = dict(bench.plan_parts("cpu", bench.DRY_PLAN, args, tmp_path))
    assert list(dry) == ["udf_cpu", "area_cpu", "mogpr"]


@pytest.mark.slow
def test_the_cpu_dry_mode_runs_every_part(tmp_path: Path) -> None:
    bench = _bench()
    code = bench.main(["--device", "cpu", "--out", str(tmp_path), "--cpu-workers", "1", "--part-timeout", "900"])
    report = json.loads((tmp_path / "bench_gpu.json").read_text())
    assert [p["status"] for p in report["parts"]] == ["ok"] * 3, report["parts"]
    assert code == 0
    area = json.loads((tmp_path / "area_cpu.json").read_text())["rows"][0]
    assert area["n"] == 256 and area["busy_s"]["udf"] > 0 and area["bare"]["px_steps_per_s"] > 0
