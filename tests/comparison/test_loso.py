import json
from dataclasses import replace

import numpy as np
import pytest

from comparison.loso.report import write_loso
from comparison.loso.run import LosoOptions, load_folds, run_fold, run_loso
from udf.model import ModelConfig
from udf.training.corpus import load_corpus
from udf.training.loop import TrainConfig


@pytest.fixture(scope="module")
def corpus():
    """The embedded sources only (no data folder): the 31UDS sample and the Belgian monthly cube."""
    full = load_corpus(None)
    assert set(full) == {"flanders_2017", "belgium_2020-22"}
    return {site: [s.subset(np.arange(min(s.n, 150))) for s in sets] for site, sets in full.items()}


OPTS = LosoOptions(train=TrainConfig(model=ModelConfig(hidden=8), epochs=1, steps_per_epoch=4, batch_size=16),
                   mogpr=False, max_sequences=40)


def test_a_fold_never_trains_on_its_site(corpus, monkeypatch):
    import comparison.loso.run as loso

    seen = {}
    original = loso.pretrain

    def spy(c, cfg, holdout=(), **kw):
        seen["holdout"] = holdout
        model, meta = original(c, cfg, holdout=holdout, **kw)
        seen["sites"] = meta["training_data"]["sites"]
        return model, meta

    monkeypatch.setattr(loso, "pretrain", spy)
    fold = run_fold(corpus, "flanders_2017", OPTS)
    assert seen["holdout"] == ("flanders_2017",) and seen["sites"] == ["belgium_2020-22"]
    methods = {(r["protocol"], r["method"]) for r in fold["records"]}
    assert ("P1", "Linear") in methods and ("P3", "DL") in methods and ("P3", "Linear") in methods
    assert ("P3_alone", "DL") in methods
    grids = {r["grid"] for r in fold["records"]}
    assert grids == {"acquisition", "10D"}  # the per-acquisition site is also scored on 10-day composites


def test_folds_in_one_folder_make_one_table(corpus, tmp_path):
    run_loso(corpus, OPTS, sites=("flanders_2017",), folder=tmp_path)
    payload = run_loso(corpus, OPTS, sites=("belgium_2020-22",), folder=tmp_path)  # a second process
    assert {f["site"] for f in load_folds(tmp_path)} == {"flanders_2017", "belgium_2020-22"}
    assert set(payload["sites"]) == {"flanders_2017", "belgium_2020-22"}
    row = payload["sites"]["flanders_2017"]["metrics"]["P1"]
    assert {"DL", "Linear", "Whittaker"} <= set(row) and 0 <= row["DL"]["within_1std"] <= 1
    assert payload["std_scale_cross_site"] > 0
    md = write_loso(payload, tmp_path)
    assert "| flanders_2017 | P1 |" in md.read_text() and (tmp_path / "loso.png").stat().st_size > 10_000
    assert json.loads((tmp_path / "loso.json").read_text())["sites"]


def test_s1_only_is_calibrated_on_the_other_sequences_only(corpus, monkeypatch):
    """P3: each half is calibrated on the other half's NDVI, never on the sequences it scores."""
    import comparison.loso.run as loso
    from udf.model import FusionNet

    calls = []
    original = loso.predict_set

    def spy(model, s1, ndvi, days, *a, calibrate_on=None, **kw):
        if calibrate_on is not None:
            calls.append(({r.tobytes() for r in s1}, {r.tobytes() for r in calibrate_on.s1}))
            assert not np.isfinite(ndvi).any()
        return original(model, s1, ndvi, days, *a, calibrate_on=calibrate_on, **kw)

    monkeypatch.setattr(loso, "predict_set", spy)
    sets = []
    for s in loso.evaluation_sets(corpus["belgium_2020-22"]):
        s1 = s.s1.copy()
        s1[:, 0, 0] = 0.01 * (1 + np.arange(s.n))  # every sequence told apart by its first VV value
        sets.append(replace(s, s1=s1))
    records = loso.score_methods(FusionNet(ModelConfig(hidden=8)).eval(), sets,
                                 LosoOptions(protocols=("P3",), mogpr=False, max_sequences=60), 100.0)
    assert len(calls) == 2 * len(sets)
    for scored, calibration in calls:
        assert scored and calibration and not scored & calibration
    p3 = [r for r in records if r["protocol"] == "P3" and r["method"] == "DL"]
    assert p3 and all(len(r["self_calibration"]["halves"]) == 2 for r in p3)
