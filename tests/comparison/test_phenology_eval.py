"""Phenology evaluation: reference vs gap-filled series, season matching, the compare hook, FuseTS' own output."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import xarray as xr

from comparison.compare.methods import Prediction
from comparison.phenology.evaluate import match_seasons, phenology_scores, phenology_section, touched_seasons
from tests.udf.test_phenology import curve, day, grid
from udf.evaluation.protocols import make_protocols
from udf.phenology import PhenologyConfig, pixel_seasons

SEASONS = [("2019-12-01", "2020-04-01"), ("2020-05-20", "2020-09-10")]


def _truth_cube(ny: int = 4, nx: int = 4, seed: int = 0) -> xr.DataArray:
    """Two seasons a year on every pixel, 40 % of the NDVI missing (clouds); VV/VH are placeholders."""
    rng = np.random.default_rng(seed)
    days = grid("2019-10-01", "2020-11-30", 10)
    ndvi = np.broadcast_to(curve(days, SEASONS)[:, None, None], (len(days), ny, nx)).copy()
    ndvi += rng.normal(0, 0.01, ndvi.shape)
    ndvi[rng.random(ndvi.shape) < 0.4] = np.nan
    ndvi[0], ndvi[-1] = curve(days, SEASONS)[[0, -1], None, None]  # same span on every pixel
    s1 = np.full((len(days), 2, ny, nx), 0.05)
    values = np.concatenate([s1, ndvi[:, None]], axis=1)
    t = days.astype(np.int64).astype("datetime64[D]").astype("datetime64[ns]")
    return xr.DataArray(values, dims=("t", "bands", "y", "x"),
                        coords={"t": t, "bands": ["VV", "VH", "NDVI"], "y": np.arange(ny), "x": np.arange(nx)})


def _predictions(cube: xr.DataArray) -> dict[str, Prediction]:
    days = (cube["t"].values.astype("datetime64[D]").astype(np.int64)).astype(float)
    shape = (len(days), cube.sizes["y"], cube.sizes["x"])
    exact = np.broadcast_to(curve(days, SEASONS)[:, None, None], shape).copy()
    late = np.broadcast_to(curve(days - 20, SEASONS)[:, None, None], shape).copy()
    return {"Exact": Prediction(exact, np.full(shape, 0.05)), "Late20": Prediction(late),
            "Nothing": Prediction(np.full(shape, np.nan))}


def test_scores_reflect_exact_shifted_and_missing_series() -> None:
    cube = _truth_cube()
    ndvi = cube.sel(bands="NDVI").values
    days = (cube["t"].values.astype("datetime64[D]").astype(np.int64)).astype(float)
    prots = make_protocols(ndvi, days, np.ones(ndvi.shape[1:], dtype=bool), names=("P2_60", "P3"), seed=1)
    preds = {p: _predictions(cube) for p in prots}
    payload, _ = phenology_scores(cube, prots, preds)
    assert payload["pixels"] == 16 and payload["reference"]["seasons"] == 32
    exact, late, nothing = (payload["protocols"]["P2_60"][m] for m in ("Exact", "Late20", "Nothing"))
    for name in ("SOS", "POS", "EOS"):
        assert exact[name]["all"]["median"] < 3 and exact[name]["all"]["n"] == 32
        assert late[name]["all"]["median"] == pytest.approx(20, abs=4)
    assert exact["count"]["agreement"] == 1.0 and exact["missed"] == exact["extra"] == 0
    assert nothing["missed"] == 32 and nothing["count"]["agreement"] == 0 and nothing["count"]["no_output"] == 16
    assert payload["protocols"]["P3"]["Exact"]["touched_seasons"] == 32  # P3 hides everything


def test_match_seasons_is_one_to_one_by_overlap() -> None:
    days = grid("2019-10-01", "2021-06-30", 10)
    ref = pixel_seasons(curve(days, SEASONS)[None], days)
    got = pixel_seasons(curve(days, [("2019-12-10", "2020-04-10"), ("2020-12-01", "2021-04-01")])[None], days)
    m = match_seasons(ref, got)
    first = np.flatnonzero(ref.present[0])[0]
    assert m[0, first] == np.flatnonzero(got.present[0])[0]
    assert (m[0][ref.present[0]] >= 0).sum() == 1  # the summer season overlaps no season of `got`


def test_touched_seasons_need_a_hidden_observation_inside() -> None:
    days = grid("2019-10-01", "2020-11-30", 10)
    ref = pixel_seasons(curve(days, SEASONS)[None], days)
    hidden = ((days > day("2020-06-15")) & (days < day("2020-07-15")))[None]
    touched = touched_seasons(ref, hidden, days)
    peaks = ref.peak_day[0][ref.present[0]]
    assert touched[0][ref.present[0]].tolist() == [bool(p > day("2020-05-01")) for p in peaks]


def test_phenology_section_writes_figures_and_markdown(tmp_path: Path) -> None:
    from comparison.report import write_metrics

    cube = _truth_cube()
    ndvi = cube.sel(bands="NDVI").values
    days = (cube["t"].values.astype("datetime64[D]").astype(np.int64)).astype(float)
    prots = make_protocols(ndvi, days, np.ones(ndvi.shape[1:], dtype=bool), names=("P2_60",), seed=1)
    preds = {"P2_60": {"DL adapted": _predictions(cube)["Exact"], "DL zero-shot": _predictions(cube)["Late20"],
                       "Linear": _predictions(cube)["Late20"]}}
    payload, markdown = phenology_section(cube, prots, preds, tmp_path, PhenologyConfig())
    assert "DL adapted: median |ΔSOS| and |ΔEOS| ≤ 10 days and ≤ Linear; season counts agree on ≥ 90 % of " \
           "pixel-years): **met**" in markdown
    assert "DL zero-shot: median" in markdown and "**NOT met**" in markdown  # 20 days late
    assert "| P2_60 | DL adapted |" in markdown
    for name in payload["figures"]:
        assert (tmp_path / name).stat().st_size > 10_000
    json.loads(write_metrics(payload, tmp_path / "m.json").read_text())


def test_fusets_comparison_on_the_real_field(tmp_path: Path) -> None:
    from comparison.phenology.fusets import fusets_phenology_comparison

    payload, markdown = fusets_phenology_comparison(tmp_path)
    assert payload["fusets_pos_equals_cropsar_max_dn"] == 0  # FuseTS ran on this CropSAR series
    diff = payload["ours_cropsar_minus_fusets"]
    assert diff["SOS"]["n"] > 2000
    assert abs(diff["POS"]["median"]) < 10  # both take the maximum
    assert diff["SOS"]["median"] > 10 and diff["EOS"]["median"] < -10  # 20 % thresholds vs lowest slope values
    assert "Why they differ" in markdown and (tmp_path / payload["figure"]).exists()


def test_compare_command_with_phenology(sample_cube: xr.DataArray, tmp_path: Path) -> None:
    from udf.cli import main
    from udf.ingest.cube_io import write_cube

    path = write_cube(sample_cube, tmp_path / "cube.nc")
    out = tmp_path / "cmp"
    assert main(["compare", "--cube", str(path), "--out", str(out), "--protocol", "P2_60", "--max-pixels", "12",
                 "--mogpr", "none", "--no-dl", "--phenology"]) == 0  # the hook does not depend on which methods ran
    metrics = json.loads((out / "metrics.json").read_text())
    by = metrics["phenology"]["protocols"]
    assert set(by) == {"P2_60"} and {"Linear", "Whittaker"} <= set(by["P2_60"])
    assert metrics["phenology"]["pixels"] == 12 and by["P2_60"]["Linear"]["matched"] > 0
    assert "## Phenology" in (out / "report.md").read_text()
