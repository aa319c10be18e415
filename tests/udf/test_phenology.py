"""Phenology: synthetic seasons with known dates, farming years, honest NaN, the UDF contract and bad input."""

import numpy as np
import openeo
import pytest
import xarray as xr
from openeo.metadata import BandDimension, CollectionMetadata, TemporalDimension
from openeo.udf import XarrayDataCube
from openeo.udf.run_code import execute_local_udf

import udf.phenology as phenology
from udf import PHENOLOGY_UDF_PATH
from udf.errors import BandNotAvailable, DimensionNotAvailable, InvalidContext, InvalidValues, TooFewTimeSteps
from udf.phenology import PhenologyConfig, band_names, farming_years, phenology_cube
from udf.phenology_udf import apply_datacube, apply_metadata

BASE, TOP = 0.2, 0.8
_RISE = np.arcsin(np.sqrt(0.2)) / np.pi  # a sin² bump crosses base + 20 % of its amplitude at this fraction


def day(text: str) -> float:
    return float(np.datetime64(text, "D").astype(np.int64))


def grid(first: str, last: str, step: int) -> np.ndarray:
    return np.arange(day(first), day(last) + 1, step, dtype=np.float64)


def curve(days: np.ndarray, seasons: list[tuple[str, str]], base: float = BASE, top: float = TOP) -> np.ndarray:
    """sin² bumps from ``base`` to ``top`` over each (start, end); ``base`` elsewhere."""
    out = np.full(days.shape, base)
    for start, end in seasons:
        x = np.clip((days - day(start)) / (day(end) - day(start)), 0, 1)
        out = np.maximum(out, base + (top - base) * np.sin(np.pi * x) ** 2)
    return out


def truth(start: str, end: str) -> tuple[float, float, float]:
    """SOS, POS, EOS (20 % / 20 %) of one sin² bump."""
    a, b = day(start), day(end)
    return a + _RISE * (b - a), (a + b) / 2, b - _RISE * (b - a)


def cube_of(days: np.ndarray, series: np.ndarray, std: np.ndarray | None = None, ny: int = 2,
            nx: int = 3) -> xr.DataArray:
    """Every pixel gets ``series``; bands NDVI (and NDVI_STD)."""
    stack = [series] + ([std] if std is not None else [])
    values = np.broadcast_to(np.stack(stack, 1)[:, :, None, None], (len(days), len(stack), ny, nx)).copy()
    bands = ["NDVI"] + (["NDVI_STD"] if std is not None else [])
    t = days.astype(np.int64).astype("datetime64[D]").astype("datetime64[ns]")
    return xr.DataArray(values, dims=("t", "bands", "y", "x"),
                        coords={"t": t, "bands": bands, "y": 100.0 - 10 * np.arange(ny), "x": 10.0 * np.arange(nx)})


def year_values(out: xr.DataArray, year: str) -> dict[str, float]:
    sel = out.sel(t=np.datetime64(year, "ns")).isel(y=0, x=0)
    return {str(b): float(v) for b, v in zip(sel["bands"].values, sel.values)}


def assert_season(got: dict, k: int, want: tuple[float, float, float], tol: float) -> None:
    for name, value in zip(("SOS", "POS", "EOS"), want):
        if np.isnan(value):
            assert np.isnan(got[f"{name}_{k}"]), f"{name}_{k} should be NaN, got {got[f'{name}_{k}']}"
        else:
            assert abs(got[f"{name}_{k}"] - value) <= tol, f"{name}_{k}: {got[f'{name}_{k}']} vs {value} (±{tol})"


def test_season_across_new_year_is_one_season():
    days = grid("2017-08-01", "2018-10-31", 10)
    seasons = [("2017-11-10", "2018-03-20"), ("2018-05-01", "2018-09-01")]
    out = phenology_cube(cube_of(days, curve(days, seasons)))
    assert [str(t)[:10] for t in out["t"].values] == ["2016-11-01", "2017-11-01"]
    got = year_values(out, "2017-11-01")
    assert got["N_SEASONS"] == 2
    assert_season(got, 1, truth(*seasons[0]), tol=10)
    assert_season(got, 2, truth(*seasons[1]), tol=10)
    assert got["LOS_1"] == pytest.approx(got["EOS_1"] - got["SOS_1"], abs=0.01)
    assert got["PEAK_1"] == pytest.approx(TOP, abs=0.05) and got["AMP_1"] == pytest.approx(TOP - BASE, abs=0.05)
    assert np.isnan(year_values(out, "2016-11-01")["N_SEASONS"])  # the data do not cover that year


def test_triple_rice_with_fallows_and_a_flooding_dip():
    days = grid("2019-10-01", "2021-11-30", 12)
    seasons = [("2019-11-05", "2020-02-20"), ("2020-03-10", "2020-06-20"), ("2020-06-20", "2020-10-05"),
               ("2020-11-01", "2021-02-15"), ("2021-03-05", "2021-06-15"), ("2021-07-01", "2021-10-10")]
    series = curve(days, seasons)  # 2020-06-20: the crop is flooded right after harvest (dip without fallow)
    out = phenology_cube(cube_of(days, series))
    for year, chunk in (("2019-11-01", seasons[:3]), ("2020-11-01", seasons[3:])):
        got = year_values(out, year)
        assert got["N_SEASONS"] == 3, got
        for k, (start, end) in enumerate(chunk, 1):
            assert_season(got, k, truth(start, end), tol=12)


def test_seasons_cut_by_the_cube_are_nan_not_invented():
    seasons = [("2018-02-01", "2018-06-01"), ("2018-07-01", "2018-11-01")]
    days = grid("2018-03-01", "2018-10-01", 10)  # starts mid-rise of the first, ends mid-fall of the second
    out = phenology_cube(cube_of(days, curve(days, seasons)), PhenologyConfig(year_start="01-01"))
    got = year_values(out, "2018-01-01")
    sos1, pos1, eos1 = truth(*seasons[0])
    sos2, pos2, eos2 = truth(*seasons[1])
    assert_season(got, 1, (np.nan, pos1, eos1), tol=10)
    assert_season(got, 2, (sos2, pos2, np.nan), tol=10)
    assert np.isnan(got["LOS_1"]) and np.isnan(got["LOS_2"])


def test_a_rise_in_the_first_steps_keeps_its_sos_on_a_double_season_cube():
    """Issue 19 item 6: the series starts at base level and rises within its first steps (SOS was NaN in 30 %)."""
    rng = np.random.default_rng(0)
    days = np.arange(0.0, 730.0, 10.0) + day("2019-01-01")
    shift = rng.uniform(-25.0, 40.0, 600)  # first of four 120-day seasons, 180 days apart, starts here
    x = np.clip((days[None, None, :] - (days[0] + shift[:, None, None] + 180.0 * np.arange(4)[None, :, None]))
                / 120.0, 0.0, 1.0)
    ndvi = BASE + (TOP - BASE) * (np.sin(np.pi * x) ** 2).max(1) + rng.normal(0.0, 0.02, (shift.size, days.size))
    seasons = phenology.pixel_seasons(ndvi, days)
    want = days[0] + shift + _RISE * 120.0
    assert np.all(np.abs(seasons.peak_day[:, 0] - (days[0] + shift + 60.0)) < 20.0)
    shown = shift >= 0.0  # the series starts at base level before the rise
    assert np.isfinite(seasons.sos[shown, 0]).all()
    assert np.nanpercentile(np.abs(seasons.sos[shown, 0] - want[shown]), 90) < 6.0
    before = want < days[0]  # the true SOS precedes the data: never guessed
    assert before.sum() > 20 and np.isnan(seasons.sos[before, 0]).all()


def test_a_peak_outside_the_cube_is_not_a_season():
    days = grid("2018-04-01", "2018-12-31", 10)  # the first season peaks on 2018-04-01, before the first rise
    seasons = [("2018-02-01", "2018-06-01"), ("2018-07-01", "2018-11-01")]
    got = year_values(phenology_cube(cube_of(days, curve(days, seasons)), PhenologyConfig(year_start="01-01")),
                      "2018-01-01")
    assert_season(got, 1, truth(*seasons[1]), tol=10)
    assert np.isnan(got["SOS_2"]) and np.isnan(got["POS_2"])


def test_irregular_axis_noise_and_cloud_gaps():
    rng = np.random.default_rng(3)
    days = np.cumsum(rng.integers(5, 13, 80)).astype(float) + day("2019-10-20")
    seasons = [("2019-11-20", "2020-03-10"), ("2020-04-10", "2020-08-01")]
    series = curve(days, seasons) + rng.normal(0, 0.03, days.size)
    series[(days > day("2020-01-05")) & (days < day("2020-02-05"))] = np.nan  # a month of cloud over the peak
    got = year_values(phenology_cube(cube_of(days, series)), "2019-11-01")
    step = float(np.diff(days).max())
    assert got["N_SEASONS"] == 2
    assert_season(got, 1, truth(*seasons[0]), tol=step)
    assert_season(got, 2, truth(*seasons[1]), tol=step)


def test_long_gap_gives_nan_date_not_spline_date():
    days = grid("2019-11-01", "2020-10-31", 10)
    season = ("2020-02-01", "2020-07-01")
    series = curve(days, [season])
    series[(days > day("2020-01-05")) & (days < day("2020-04-01"))] = np.nan  # 90 days without data over SOS
    got = year_values(phenology_cube(cube_of(days, series)), "2019-11-01")
    sos, pos, eos = truth(*season)
    assert_season(got, 1, (np.nan, pos, eos), tol=10)


def test_flat_series_no_season_and_empty_pixels_nan():
    days = grid("2019-11-01", "2020-10-31", 10)
    cube = cube_of(days, 0.3 + 0.01 * np.sin(days / 7.0))
    cube[:, 0, 1, 1] = np.nan  # all-NaN pixel
    cube[3:, 0, 1, 2] = np.nan  # 3 observations only
    out = phenology_cube(cube)
    flat = out.isel(t=0, y=0, x=0)
    assert float(flat.sel(bands="N_SEASONS")) == 0 and np.isnan(flat.sel(bands="SOS_1"))
    for x in (1, 2):
        assert np.isnan(out.isel(t=0, y=1, x=x).values).all()


def test_std_weights_the_smoothing():
    days = grid("2019-11-01", "2020-10-31", 10)
    series = curve(days, [("2019-12-01", "2020-08-01")])
    std = np.full(days.size, 0.02)
    dip = np.argmin(np.abs(days - day("2020-04-01")))
    series[dip - 1:dip + 2] -= 0.45  # three wrong values in mid-season (e.g. a cloud shadow the fusion doubted)
    std[dip - 1:dip + 2] = 0.5
    with_std = year_values(phenology_cube(cube_of(days, series, std)), "2019-11-01")
    without = year_values(phenology_cube(cube_of(days, series)), "2019-11-01")
    assert without["N_SEASONS"] == 2 and with_std["N_SEASONS"] == 1


def test_chunks_do_not_change_results(monkeypatch):
    rng = np.random.default_rng(0)
    days = grid("2019-11-01", "2020-10-31", 10)
    cube = cube_of(days, curve(days, [("2019-12-01", "2020-05-01")]), ny=4, nx=5)
    cube = cube + rng.normal(0, 0.05, cube.shape)
    whole = phenology_cube(cube)
    monkeypatch.setattr(phenology, "CHUNK_PIXELS", 3)
    np.testing.assert_array_equal(phenology_cube(cube).values, whole.values)


def test_farming_years_overlap_rule():
    starts = farming_years(day("2017-08-01"), day("2018-11-24"), "11-01")
    assert [str(np.datetime64(int(s), "D")) for s in starts] == ["2016-11-01", "2017-11-01", "2018-11-01"]
    assert len(farming_years(day("2018-11-01"), day("2019-10-31"), "11-01")) == 1


@pytest.mark.parametrize("cube_change, error, match", [
    (lambda c: c.assign_coords(bands=["B04"]), BandNotAvailable, r"'NDVI' band .*\['B04'\]"),
    (lambda c: c.isel(t=[0]), TooFewTimeSteps, "1 time step"),
    (lambda c: c.isel(x=0), DimensionNotAvailable, r"missing \['x'\]"),
    (lambda c: c * 250, InvalidValues, r"outside \[-1, 1\]"),
    (lambda c: c.isel(t=[0, 1, 2, 3, 3]), InvalidValues, "repeat"),
])
def test_bad_input_is_named(cube_change, error, match):
    days = grid("2019-11-01", "2020-10-31", 10)
    cube = cube_of(days, curve(days, [("2019-12-01", "2020-05-01")]))
    with pytest.raises(error, match=match):
        apply_datacube(cube_change(cube), {})


@pytest.mark.parametrize("context, match", [
    ({"max_season": 2}, r"Unknown phenology context key\(s\) \['max_season'\]; known keys: .*'max_seasons'"),
    ({"year_start": "02-29"}, "MM-DD"),
    ({"sos_fraction": 1.2}, r"in \[1e-09, 1\)"),
    ({"min_relative_amplitude": -0.1}, r"in \[0, 1\)"),
    ({"max_seasons": 0}, "positive integer"),
    ({"min_amplitude": -1}, "positive number"),
])
def test_bad_context_is_named(context, match):
    days = grid("2019-11-01", "2020-10-31", 10)
    with pytest.raises(InvalidContext, match=match):
        apply_datacube(cube_of(days, curve(days, [("2019-12-01", "2020-05-01")])), context)


def test_execute_local_udf_and_context():
    days = grid("2019-11-01", "2021-10-31", 10)
    cube = cube_of(days, curve(days, [("2019-12-01", "2020-05-01"), ("2020-12-01", "2021-05-01")]))
    cube = cube.transpose("x", "y", "bands", "t")  # execute_local_udf reorders; the UDF selects by name
    res = execute_local_udf(PHENOLOGY_UDF_PATH, XarrayDataCube(cube)).get_datacube_list()[0].get_array()
    assert list(res["bands"].values) == band_names(3)
    assert res.sizes["t"] == 2 and res.dtype == np.float32
    np.testing.assert_array_equal(res.transpose("t", "bands", "y", "x").values, phenology_cube(cube).values)
    udf = openeo.UDF.from_file(PHENOLOGY_UDF_PATH, context={"max_seasons": 1, "year_start": "01-01"})
    res = execute_local_udf(udf, XarrayDataCube(cube)).get_datacube_list()[0].get_array()
    assert list(res["bands"].values) == band_names(1)
    assert [str(t)[:10] for t in res["t"].values] == ["2019-01-01", "2020-01-01", "2021-01-01"]


def test_entry_file_contract_and_metadata():
    code = openeo.UDF.from_file(PHENOLOGY_UDF_PATH).code
    assert "def apply_datacube(cube: xarray.DataArray, context: dict) -> xarray.DataArray" in code
    assert "from __future__" not in code
    meta = CollectionMetadata({}, dimensions=[TemporalDimension(name="t", extent=[None, None]),
                                              BandDimension(name="bands", bands=[])])
    assert apply_metadata(meta, {"max_seasons": 2}).band_names == band_names(2)
