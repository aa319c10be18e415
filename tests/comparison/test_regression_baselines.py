"""S1-only baselines (DateMean, Regression5) and the P3S/P3C scenarios in ``s1ndvi compare``."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from comparison.compare.core import CompareOptions, parse_protocols, run_comparison
from comparison.compare.regression_baselines import MIN_FIT, date_mean, fit_regression5, regression5
from comparison.compare.shift import is_s1_only, per_class_table
from tests.conftest import make_cube
from udf.evaluation.protocols import spatial_block_split


def test_date_mean_exact() -> None:
    ndvi = np.array([[0.2, 0.4, np.nan], [np.nan, np.nan, np.nan], [0.5, np.nan, np.nan]])
    fit = date_mean(ndvi)
    np.testing.assert_allclose(fit.mean, [0.3, np.nan, 0.5])
    np.testing.assert_allclose(fit.std, [np.std([0.2, 0.4], ddof=1), np.nan, np.nan])
    np.testing.assert_array_equal(fit.n, [2, 0, 1])


def _linear_world(seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    vv = rng.uniform(-18, -6, (12, 60))
    vh = vv - rng.uniform(5, 9, (12, 60))
    # the visible half (first 30 pixels) has the same mean VV, VH on every date, so m_t is linear in the season
    vv[:, :30] += -12.0 - vv[:, :30].mean(1, keepdims=True)
    vh[:, :30] += -19.0 - vh[:, :30].mean(1, keepdims=True)
    season = np.linspace(0.2, 0.8, 12)[:, None]
    ndvi = 0.1 + 0.01 * vv - 0.02 * vh + season  # m_t of the visible pixels tracks the season
    return vv, vh, ndvi


def test_regression5_recovers_an_exact_linear_relation_on_hidden_pixels() -> None:
    vv, vh, ndvi = _linear_world()
    visible = ndvi.copy()
    visible[:, 30:] = np.nan  # S2 only on half the pixels
    mean, std, fit = regression5(vv, vh, visible)
    assert fit.fitted and fit.rank == 4 and fit.n == 12 * 30  # VH − VV collinear: rank 4
    np.testing.assert_allclose(mean[:, 30:], ndvi[:, 30:], atol=1e-9)
    assert fit.resid_std < 1e-9 and np.all(std[:, 30:] == fit.resid_std)


def test_regression5_nan_with_a_reason() -> None:
    vv, vh, ndvi = _linear_world()
    few = np.full_like(ndvi, np.nan)
    few[0, :MIN_FIT - 1] = ndvi[0, :MIN_FIT - 1]
    mean, std, fit = regression5(vv, vh, few)
    assert not fit.fitted and "not fitted: 19 visible" in fit.reason
    assert np.isnan(mean).all() and np.isnan(std).all()
    visible = ndvi.copy()
    visible[3] = np.nan  # a date with no visible NDVI: no date mean there
    vv2 = vv.copy()
    vv2[5, 7] = np.nan  # no S1 at one pixel-date
    mean, _, fit = regression5(vv2, vh, visible)
    assert fit.fitted and np.isnan(mean[3]).all() and np.isnan(mean[5, 7]) and np.isfinite(mean[4]).all()
    with pytest.raises(ValueError, match=r"\(T, P\)"):
        fit_regression5(vv, vh, ndvi[:, :5])


def test_compare_runs_shift_scenarios_with_baselines_and_per_class_scores() -> None:
    from comparison.compare.core import prepare_cube

    cube = prepare_cube(make_cube(nt=20, ny=16, nx=16, units="linear", seed=2))
    assert parse_protocols("P3S,p3c,P1") == ("P3S", "P3C", "P1")
    opts = CompareOptions(protocols=("P1", "P3S", "P3C"), mogpr=None, baselines=("Linear",), classes="clusters",
                          clusters=2, class_min_size=5, checker_block=4)
    split = spatial_block_split((16, 16), block=4, seed=0)
    payload, preds, prots = run_comparison(cube, opts, split=split)
    metrics = payload["metrics"]
    assert "Regression5" not in metrics["P1"] and "DateMean" not in metrics["P1"]
    p3c = [p for p in metrics if p.startswith("P3C:")]
    assert len(p3c) == 2 and all(is_s1_only(p) for p in p3c + ["P3S", "P3"]) and not is_s1_only("P1")
    for p in ["P3S", *p3c]:
        assert {"DateMean", "Regression5", "Linear"} <= set(metrics[p])
        assert metrics[p]["Regression5"]["n"] == int(prots[p].hidden.sum())  # scored on the whole hidden area
        assert np.isfinite(metrics[p]["Regression5"]["within_1std"])
    # the two P3C scenarios hide disjoint pixels and together every classified pixel with NDVI
    a, b = (prots[p].hidden.any(0) for p in p3c)
    assert not (a & b).any()
    per = payload["per_class"]
    assert set(per) == {"P3S", *p3c} and set(per[p3c[0]]["Regression5"]) == {p3c[0][4:]}
    assert "S1 cluster" in per_class_table(per, payload["classes"])


def test_loso_shift_scenarios_on_a_gridded_set(random_checkpoint) -> None:  # type: ignore[no-untyped-def]
    from comparison.compare.core import prepare_cube
    from comparison.loso.shift import ShiftLosoOptions, fold_model, score_shift_set, shift_hidden, summarise_shift
    from udf.evaluation.land_cover import LandCover
    from udf.evaluation.shift_protocols import checker_blocks
    from udf.training.corpus.rasters import cube_series
    from udf.weights import load_checkpoint

    cube = prepare_cube(make_cube(nt=15, ny=12, nx=12, units="linear", seed=5))
    s = cube_series(cube, "here", "synthetic", grid="10D")
    classes = np.where(np.arange(s.n) % 3 == 0, 7, 8)
    land = LandCover(classes, {7: "A", 8: "B"}, "test")
    opts = ShiftLosoOptions(checker_block=4, class_min_size=5)
    hide = shift_hidden(s, land, opts)
    assert set(hide) == {"P3S", "P3C:A", "P3C:B"}
    np.testing.assert_array_equal(hide["P3S"], checker_blocks((12, 12), 4).ravel())  # rows are y-major pixels
    np.testing.assert_array_equal(hide["P3C:A"], classes == 7)
    model, meta = load_checkpoint(random_checkpoint)
    recs = score_shift_set(model, s, land, opts)
    for r in recs:
        assert r["pred"].shape == r["truth"].shape == r["class"].shape
        assert r["truth"].size == int((hide[r["protocol"]][:, None] & np.isfinite(s.ndvi)).sum())
    summary = summarise_shift(recs)["here"]
    assert set(summary) == {"P3S", "P3C"} and set(summary["P3C"]["Regression5"]["classes"]) == {"A", "B"}
    with pytest.raises(FileNotFoundError, match="--save-models"):
        fold_model("togo_2019-20", None)


def test_shipped_weights_saw_the_sample_the_fold_model_did_not() -> None:
    from comparison.compare.shift import flag_in_sample, trained_on_cube
    from udf.ingest.base import load_sample_cube
    from udf.weights import DEMO_ZERO_SHOT_NAME, load_checkpoint

    cube = load_sample_cube()
    assert trained_on_cube(load_checkpoint(None)[1], cube)
    fold = Path(__file__).resolve().parents[2] / "udf" / "data" / DEMO_ZERO_SHOT_NAME
    assert not trained_on_cube(load_checkpoint(fold)[1], cube)
    metrics = {"P3S": {"DL zero-shot": {"note": ""}, "Regression5": {}}, "P3": {"DL zero-shot": {"note": ""}}}
    flag_in_sample(metrics, ("DL zero-shot",))
    assert metrics["P3S"]["DL zero-shot"]["note"].startswith("in-sample") and "note" not in metrics["P3S"]["Regression5"]
    assert metrics["P3"]["DL zero-shot"]["note"] == ""
