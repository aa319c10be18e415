"""``adapt``'s budget is a number of optimisation steps: the same weights however slow the machine; a time cap warns."""

import logging
import time
from types import SimpleNamespace

import pytest
import torch
import xarray as xr

from udf.ingest.base import load_sample_cube
from udf.training import loop as training
from udf.training.adapt import AdaptOptions, adapt, adapt_split
from udf.training.fit import eval_cube
from udf.weights import load_checkpoint


@pytest.fixture(scope="module")
def sample_10d() -> xr.DataArray:
    return eval_cube(load_sample_cube(period=None))


class SlowClock:
    """A monotonic clock on which every reading is ``seconds`` later than the previous one (a loaded machine)."""

    def __init__(self, seconds: float) -> None:
        self.now, self.seconds = 0.0, seconds

    def monotonic(self) -> float:
        self.now += self.seconds
        return self.now


def _adapt(cube: xr.DataArray, checkpoint, opts: AdaptOptions, progress=None):  # type: ignore[no-untyped-def]
    base, meta = load_checkpoint(checkpoint)
    return adapt(cube, base, meta, opts, split=adapt_split((cube.sizes["y"], cube.sizes["x"]), seed=1),
                 score_test=False, progress=progress)


def _assert_same_weights(a: torch.nn.Module, b: torch.nn.Module) -> None:
    for (name, x), (_, y) in zip(a.state_dict().items(), b.state_dict().items(), strict=True):
        assert torch.equal(x, y), name


def test_same_steps_give_the_same_weights_on_a_slow_machine(sample_10d, random_checkpoint, monkeypatch):
    opts = AdaptOptions(steps=25, steps_per_epoch=10, seed=3, threads=1, minutes=60)
    quiet, quiet_meta = _adapt(sample_10d, random_checkpoint, opts)
    monkeypatch.setattr(training, "time", SimpleNamespace(monotonic=SlowClock(5 * 60).monotonic))
    slow, slow_meta = _adapt(sample_10d, random_checkpoint, opts, progress=lambda e, r: time.sleep(0.05))
    _assert_same_weights(quiet, slow)
    assert [h["steps"] for h in slow_meta["history"][1:]] == [10, 20, 25]  # the last epoch is cut to the budget
    assert slow_meta["history"][-1]["minutes"] == pytest.approx(15)  # the slow clock did run
    for meta in (quiet_meta, slow_meta):
        assert meta["adapt"]["steps_run"] == 25 and meta["adapt"]["epochs_run"] == 3
        assert meta["adapt"]["cut_by_time_cap"] is False and meta["adapt"]["stopped"] == "budget"
    assert quiet_meta["std_scale"] == slow_meta["std_scale"]


def test_the_time_cap_warns_and_is_recorded(sample_10d, random_checkpoint, monkeypatch, caplog):
    monkeypatch.setattr(training, "time", SimpleNamespace(monotonic=SlowClock(60).monotonic))
    with caplog.at_level(logging.WARNING, logger="udf.training.loop"):
        capped, meta = _adapt(sample_10d, random_checkpoint,
                              AdaptOptions(steps=50, steps_per_epoch=10, seed=3, threads=1, minutes=1.5))
    assert "time cap of 1.5 min cut training short at epoch 2 (20 of 50 steps)" in caplog.text
    record = meta["adapt"]
    assert record["cut_by_time_cap"] is True and record["stopped"] == "time cap"
    assert record["steps"] == 50 and record["steps_run"] == 20 and record["time_cap_minutes"] == 1.5
    monkeypatch.undo()
    # what the cap kept is exactly the first 20 steps of the full run (the schedule does not depend on the cap)
    short, _ = _adapt(sample_10d, random_checkpoint, AdaptOptions(steps=20, steps_per_epoch=10, seed=3, threads=1))
    _assert_same_weights(capped, short)


def test_a_budget_must_be_positive(sample_10d, random_checkpoint):
    with pytest.raises(ValueError, match="adapt steps 0: expected a positive number"):
        _adapt(sample_10d, random_checkpoint, AdaptOptions(steps=0))
    with pytest.raises(ValueError, match="adapt time cap -1 min"):
        _adapt(sample_10d, random_checkpoint, AdaptOptions(steps=10, minutes=-1))
