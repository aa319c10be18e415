"""Progress bars only on a terminal; elsewhere a few log lines (udf.cli.progress)."""

import io
import logging
import subprocess
import sys

import pytest

from udf.cli import progress
from udf.cli.progress import LogProgress, progress_bar


class _Clock:
    def __init__(self) -> None:
        self.t = 0.0

    def __call__(self) -> float:
        return self.t


def test_a_thousand_updates_make_a_few_lines(caplog) -> None:
    clock = _Clock()
    caplog.set_level(logging.INFO, logger=progress.__name__)
    with LogProgress(total=1000, desc="adapt", unit="epoch", clock=clock) as bar:
        for epoch in range(1000):
            clock.t += 0.01
            bar.update(1)
            bar.set_postfix(val_mae=f"{0.1 - epoch * 1e-5:.4f}")
    lines = [r.getMessage() for r in caplog.records]
    assert lines == ["adapt: 250/1000 epoch (val_mae=0.0975)", "adapt: 500/1000 epoch (val_mae=0.0950)",
                     "adapt: 750/1000 epoch (val_mae=0.0925)", "adapt: done, 1000/1000 epoch (val_mae=0.0900)"]


def test_between_quarters_and_without_a_total_one_line_a_minute(caplog) -> None:
    clock = _Clock()
    caplog.set_level(logging.INFO, logger=progress.__name__)
    bar = LogProgress(desc="steps", unit="step", clock=clock)
    for _ in range(600):  # ten minutes, one step a second
        clock.t += 1.0
        bar.update(1)
    bar.set_postfix_str("MOGPR 10/20 px")
    bar.close()
    bar.close()  # once only
    assert bar.lines == 11
    assert caplog.records[0].getMessage() == "steps: 60 step"
    assert caplog.records[-1].getMessage() == "steps: done, 600 step (MOGPR 10/20 px)"


def test_progress_bar_is_tqdm_only_on_a_terminal(monkeypatch) -> None:
    class Tty(io.StringIO):
        def isatty(self) -> bool:
            return True

    monkeypatch.setattr(sys, "stderr", io.StringIO())
    assert isinstance(progress_bar(total=3, desc="x"), LogProgress)
    monkeypatch.setattr(sys, "stderr", Tty())
    bar = progress_bar(total=3, desc="x", bar_format="{l_bar}{bar}| {n}/{total} s{postfix}")
    assert type(bar).__name__ == "tqdm"
    bar.close()


@pytest.mark.parametrize("module", ["udf.cli.commands", "udf.cli.model_commands", "udf.cli.run", "comparison.cli"])
def test_commands_do_not_draw_tqdm_bars_themselves(module) -> None:
    """Every progress bar of the CLI goes through progress_bar (a bar drawn directly would flood a log again)."""
    import importlib
    import inspect

    source = inspect.getsource(importlib.import_module(module))
    assert "tqdm(" not in source and "from tqdm" not in source


def test_a_command_writes_no_bar_frames_into_a_log(tmp_path) -> None:
    """``s1ndvi train`` with standard error to a file: progress as a few log lines, no carriage-return frames."""
    from tests.conftest import make_cube
    from udf.ingest.cube_io import write_cube

    cube = tmp_path / "cube.nc"
    write_cube(make_cube(units="linear", nt=30, ny=16, nx=16), cube)
    with open(tmp_path / "err.log", "w") as err:
        args = ["train", "--cube", str(cube), "--out", str(tmp_path / "m.npz"), "--epochs", "2"]
        proc = subprocess.run([sys.executable, "-m", "udf.cli", *args], stderr=err, stdout=subprocess.PIPE, text=True,
                              timeout=600)
    log = (tmp_path / "err.log").read_text()
    assert proc.returncode == 0, log[-2000:]
    assert "\r" not in log
    lines = [ln for ln in log.splitlines() if "train: " in ln]
    assert 1 <= len(lines) <= 5 and "done, 2/2 epoch" in lines[-1], log[-2000:]
