"""The area benchmark's stage split: parsed from the job-log line the tile runner writes, adding up to the job."""

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parents[2] / "benchmarks"))

from area_stages import stage_split, stage_table, stages_from_logs  # noqa: E402

from local_backend.tiles.jobs import _Progress  # noqa: E402


class _Execution:
    job_id = "j-1"
    progress = None


def test_the_logged_stage_line_parses_and_splits_the_job(monkeypatch: pytest.MonkeyPatch) -> None:
    lines: list[str] = []
    monkeypatch.setattr("local_backend.tiles.jobs.job_log", lambda job_id, message, level="info": lines.append(message))
    progress = _Progress(_Execution(), total=2, done=0, many=False)  # type: ignore[arg-type]
    for k, (start, end) in enumerate(((100.0, 110.0), (101.0, 113.0))):
        progress.tile({"dims": ["t", "y", "x"], "index": [0, k], "seconds": end - start, "pid": 1, "host": "h",
                       "timing": {"started": start, "ended": end, "cpu_s": 9.0,
                                  "stages": {"read": 1.0, "decode": 0.5, "udf": 7.0, "write": 0.25}}})
    progress.log_stages()
    parsed = stages_from_logs(["run_udf on 2 tile(s)", *lines])
    assert parsed == {"tiles_timed": 2, "busy_s": {"read": 2.0, "decode": 1.0, "udf": 14.0, "write": 0.5},
                      "tile_s": 22.0, "tile_cpu_s": 18.0, "span_s": 13.0}
    row = {**parsed, "n": 256, "wall_s": 20.0, "load_1min": [1.0, 2.0], "write_s": 3.0}
    split = stage_split(row, workers=2)
    assert split["UDF"] == 14.0 and split["other in tile"] == pytest.approx(4.5)
    assert split["scheduling/idle"] == pytest.approx(4.0) and split["outside tiles (start, result write)"] == 14.0
    assert sum(split.values()) == pytest.approx(2 * 20.0)
    assert "| 256 | 2 (5 %)" in stage_table([row], workers=2)


def test_a_log_without_the_stage_line_is_an_error() -> None:
    with pytest.raises(RuntimeError, match="no 'tile stages' line"):
        stages_from_logs(["run_udf on 2 tile(s)"])
