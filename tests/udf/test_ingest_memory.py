"""Peak memory of ``s1ndvi cube`` does not grow with the area of a GeoTIFF export (SYNTHETIC files made here).

Slow: writes two synthetic exports in the GEE recipe's layout (benchmarks/bench_ingest_memory.py) and measures each
run's peak RSS in a fresh process.
"""

import importlib.util
from pathlib import Path

import pytest

BENCH = Path(__file__).parents[2] / "benchmarks" / "bench_ingest_memory.py"


def _bench():
    spec = importlib.util.spec_from_file_location("bench_ingest_memory", BENCH)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.slow
def test_cube_memory_is_bounded_by_blocks_not_by_area(tmp_path):
    bench = _bench()
    small = {r["run"]: r for r in bench.measure(tmp_path / "small", 256, 256, 62, [(64, 1)])}
    large = {r["run"]: r for r in bench.measure(tmp_path / "large", 768, 768, 62, [(64, 1)])}
    lazy = "s1ndvi cube (chunk 64, 1 workers)"
    raw_growth = large[lazy]["raw MiB"] - small[lazy]["raw MiB"]
    eager_growth = large["read at once"]["above floor MiB"] - small["read at once"]["above floor MiB"]
    lazy_growth = large[lazy]["above floor MiB"] - small[lazy]["above floor MiB"]
    assert eager_growth > 0.8 * raw_growth  # the baseline holds the files: it grows with them
    assert lazy_growth < 0.35 * raw_growth, (lazy_growth, raw_growth)
    assert large[lazy]["above floor MiB"] < large["read at once"]["above floor MiB"]
