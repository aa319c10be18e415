"""The harness: protocol parsing, input checks, shared hidden values, failure counts and the compare command."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import xarray as xr

from comparison.compare.core import (
    CompareOptions,
    check_overlap,
    parse_protocols,
    plan,
    prepare_cube,
    run_comparison,
    scored_pixels,
)
from comparison.compare.evaluate import evaluate
from comparison.compare.methods import Prediction, mogpr_method
from comparison.errors import BandNotFound, NoOverlap
from tests.conftest import make_cube
from udf.evaluation.metrics import paired_difference
from udf.evaluation.protocols import spatial_block_split


def test_parse_protocols() -> None:
    assert parse_protocols("P1,P2,P3") == ("P1", "P2_60", "P2_90", "P3")
    assert parse_protocols(" p2_90 , P1,P1") == ("P2_90", "P1")
    with pytest.raises(ValueError, match=r"Unknown protocol 'P4'.*P2 \(= P2_60 \+ P2_90\)"):
        parse_protocols("P1,P4")


def test_prepare_cube_converts_db_and_names_missing_band() -> None:
    cube = make_cube(units="db")
    out = prepare_cube(cube)
    np.testing.assert_allclose(out.sel(bands="VV").values, 10 ** (cube.sel(bands="VV").values / 10), rtol=1e-5)
    with pytest.raises(BandNotFound, match=r"Band 'NDVI' not in cube bands \['VV', 'VH'\]"):
        prepare_cube(make_cube(ndvi=False))
    with pytest.raises(ValueError, match=r"lack \['x'\]"):
        prepare_cube(cube.isel(x=0))


def test_no_overlap_between_s1_and_s2_is_a_clear_error() -> None:
    cube = prepare_cube(make_cube(nt=20, units="linear"))
    data = cube.values.copy()
    data[10:, :2] = np.nan  # S1 only in the first 10 dates
    data[:10, 2] = np.nan  # NDVI only in the last 10
    late_s2 = cube.copy(data=data)
    with pytest.raises(NoOverlap, match=r"Valid S1 dates 2021-01-01…2021-04-01 \(10 dates\) and valid NDVI dates "
                                        r"2021-04-11…2021-07-10 \(10 dates\) do not overlap"):
        check_overlap(late_s2)
    no_s2 = cube.copy(data=cube.values.copy())
    no_s2.loc[{"bands": "NDVI"}] = np.nan
    with pytest.raises(NoOverlap, match="valid NDVI on none"):
        check_overlap(no_s2)


def test_scored_pixels_subsample_is_seeded_and_inside_test() -> None:
    test = np.zeros((10, 10), bool)
    test[:5] = True
    ndvi = np.ones((3, 10, 10))
    ndvi[:, 0, 0] = np.nan  # no observation: never scored
    a = scored_pixels(test, ndvi, 7, seed=1)
    assert a.sum() == 7 and not (a & ~test).any() and not a[0, 0]
    np.testing.assert_array_equal(a, scored_pixels(test, ndvi, 7, seed=1))
    assert scored_pixels(test, ndvi, None, seed=1).sum() == 49


def test_every_method_sees_the_same_hidden_values_and_nan_is_counted() -> None:
    cube = prepare_cube(make_cube(nt=30, ny=16, nx=16, units="linear", seed=3))
    split = spatial_block_split((16, 16), block=4, seed=0)
    pixels, protocols = plan(cube, CompareOptions(), split)
    seen: dict[str, list[np.ndarray]] = {}

    def recorder(name: str, fill: float):  # type: ignore[no-untyped-def]
        def run(masked: xr.DataArray, px: np.ndarray) -> Prediction:
            seen.setdefault(name, []).append(np.isfinite(masked.sel(bands="NDVI").values))
            mean = np.full(masked.sel(bands="NDVI").shape, fill)
            failed = np.zeros(px.shape, bool)
            if np.isnan(fill):
                failed |= px
            return Prediction(mean, None, 1, failed=failed)
        return run

    metrics, _ = evaluate(cube, protocols, {"a": recorder("a", 0.5), "b": recorder("b", np.nan)}, pixels)
    for x, y in zip(seen["a"], seen["b"]):
        np.testing.assert_array_equal(x, y)
    for p, prot in protocols.items():
        assert metrics[p]["b"]["n_nan"] == metrics[p]["b"]["n"] == int(prot.hidden.sum())
        assert metrics[p]["b"]["n_failed_pixels"] == int(prot.hidden.any(0).sum())
        assert metrics[p]["a"]["n_nan"] == 0 and np.isfinite(metrics[p]["a"]["mae"])


def test_mogpr_method_counts_pixels_with_too_few_ndvi() -> None:
    cube = prepare_cube(make_cube(nt=24, ny=2, nx=2, units="linear", seed=5))
    nd = cube.sel(bands="NDVI").values.copy()
    nd[:, 0, 0] = np.nan
    nd[3, 0, 0] = 0.5  # a single NDVI value: cannot be fitted
    cube.loc[{"bands": "NDVI"}] = nd
    pred = mogpr_method("local", n_restarts=1)(cube, np.ones((2, 2), bool))
    assert pred.failed.tolist() == [[True, False], [False, False]]
    assert np.isnan(pred.mean[:, 0, 0]).all() and np.isfinite(pred.mean[:, 1, 1]).all()
    assert pred.n_pixels == 4
    with pytest.raises(ValueError, match="MOGPR engine 'fast' unknown"):
        mogpr_method("fast")


def test_paired_difference_matches_direct_computation() -> None:
    rng = np.random.default_rng(0)
    truth = rng.random((10, 4, 4))
    a, b = truth + 0.05 * rng.standard_normal(truth.shape), truth + 0.2 * rng.standard_normal(truth.shape)
    b[0, 0, 0] = np.nan  # only observations both predicted are compared
    mask = rng.random(truth.shape) < 0.5
    r = paired_difference(a, b, truth, mask, n_boot=300)
    both = mask & np.isfinite(b)
    assert r["n"] == both.sum()
    assert r["mae_a"] == pytest.approx(np.abs(a - truth)[both].mean())
    assert r["diff"] == pytest.approx(np.abs(a - truth)[both].mean() - np.abs(b - truth)[both].mean())
    assert r["ci95"][0] < r["diff"] < r["ci95"][1] < 0


def test_run_comparison_on_real_sample(sample_cube: xr.DataArray) -> None:
    opts = CompareOptions(protocols=("P1", "P3"), mogpr="local", mogpr_restarts=1, max_pixels=6, seed=0)
    payload, preds, prots = run_comparison(sample_cube, opts)
    assert payload["scored_pixels"] == 6 and payload["subsampled"]
    assert set(payload["metrics"]["P1"]) == {"MOGPR", "Linear", "Whittaker", "SeedMLP"}
    assert np.isfinite(payload["metrics"]["P1"]["MOGPR"]["mae"])
    assert payload["metrics"]["P3"]["MOGPR"]["n_failed_pixels"] == 6  # no NDVI at all: NaN with a count
    assert payload["metrics"]["P3"]["MOGPR"]["n_nan"] == payload["metrics"]["P3"]["MOGPR"]["n"]
    assert np.isfinite(preds["P1"]["MOGPR"].mean).any(0).sum() == 6  # MOGPR computed the scored pixels only


def test_compare_command_writes_metrics_report_and_figures(sample_cube: xr.DataArray, tmp_path: Path) -> None:
    from udf.cli import main
    from udf.ingest.cube_io import write_cube

    path = write_cube(sample_cube, tmp_path / "cube.nc")
    out = tmp_path / "cmp"
    assert main(["compare", "--cube", str(path), "--out", str(out), "--protocol", "P1,P2_60", "--max-pixels", "5",
                 "--mogpr-restarts", "1", "--adapt-steps", "160", "--adapt", "30"]) == 0
    metrics = json.loads((out / "metrics.json").read_text())
    assert set(metrics["metrics"]) == {"P1", "P2_60"}
    assert {"DL zero-shot", "DL adapted", "MOGPR", "Linear", "Whittaker", "SeedMLP"} == set(metrics["metrics"]["P1"])
    assert "reserved (never seen)" in metrics["dl_provenance"]["DL zero-shot"]
    assert "NDVI was removed" in metrics["dl_provenance"]["DL adapted"]
    assert "(160 steps, 2 epochs," in metrics["dl_provenance"]["DL adapted"]  # the 30-min cap did not cut it
    assert metrics["head_to_head_rows"] == ["DL adapted", "MOGPR"]
    assert set(metrics["head_to_head"]) == {"P1", "P2_60"}
    assert (out / "model_adapted.npz").exists()
    report = (out / "report.md").read_text()
    assert "Is DL as good as MOGPR" in report and "--max-pixels" in report
    for fig in ("scatter", "residuals", "by_range", "by_distance", "series"):
        assert (out / f"{fig}.png").stat().st_size > 10_000


def test_compare_refuses_the_shipped_weights_with_another_split_of_a_reserved_cube(sample_cube: xr.DataArray,
                                                                                   tmp_path: Path) -> None:
    """The shipped weights saw the sample's training and validation blocks: only split 8/0 scores held-out pixels."""
    from comparison.compare.run import compare_file
    from udf.ingest.cube_io import write_cube

    path = write_cube(sample_cube, tmp_path / "cube.nc")
    with pytest.raises(ValueError, match="only the test blocks of split"):
        compare_file(path, tmp_path / "o", protocols="P1", block=4, mogpr=None, max_pixels=4, adapt_steps=None)


def _meta_for(cube: xr.DataArray, split_seed: int = 0) -> dict:
    from udf.training.fit import grid_fingerprint

    split = spatial_block_split((cube.sizes["y"], cube.sizes["x"]), block=4, seed=split_seed)
    return {"split": split.describe(), "training_data": {
        "cube_shape": [cube.sizes["y"], cube.sizes["x"]], "time_range": ["2021-01-01", "2021-12-31"],
        "source": "a.nc", "grid": grid_fingerprint(cube)}}


def test_provenance_compares_grids_not_shapes() -> None:
    """A checkpoint from another tile with the same shape and an overlapping year is cross-site, not in-site."""
    from comparison.compare.core import dl_provenance

    here = make_cube(nt=20, ny=16, nx=16, units="linear")
    here.attrs["crs"] = "EPSG:32631"
    other = here.assign_coords(x=here["x"] + 50_000.0)
    split = spatial_block_split((16, 16), block=4, seed=0)
    assert "trained elsewhere" in dl_provenance(_meta_for(other), here, split)
    assert "held out" in dl_provenance(_meta_for(here), here, split)
    with pytest.raises(ValueError, match="training pixels may be scored"):
        dl_provenance(_meta_for(here, split_seed=1), here, split)
    corpus = {"training_data": {"kind": "multi-site corpus", "sites": ["a", "b"], "reserved": [],
                                "grids": [{"site": "a", "source": "a.nc", "crs": "EPSG:32631",
                                           "bbox": [0.0, 0.0, 10.0, 10.0]}]}}
    assert "zero-shot" in dl_provenance(corpus, here, split)
    corpus["training_data"]["grids"][0]["bbox"] = [float(here.x.min()), float(here.y.min()), 1e7, 1e8]
    with pytest.raises(ValueError, match="in-sample"):
        dl_provenance(corpus, here, split)


def test_gpy_engine_without_gpy_names_the_install() -> None:
    import importlib.util

    from comparison.errors import OptionalDependencyMissing

    if importlib.util.find_spec("GPy") is not None:
        pytest.skip("GPy is installed")
    cube = prepare_cube(make_cube(nt=20, ny=16, nx=16, units="linear"))
    with pytest.raises(OptionalDependencyMissing, match=r'pip install -e "\.\[mogpr\]"'):
        run_comparison(cube, CompareOptions(mogpr="gpy", block=4, protocols=("P1",)))
