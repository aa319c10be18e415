"""Uncertainty-aware seasons: k·σ against spurious splits, confidence, per-date std (issues 19 item 6 and 23)."""

import numpy as np
import pytest

from udf.errors import InvalidContext
from udf.phenology import PhenologyConfig, band_names, phenology_cube, pixel_seasons, std_weights
from udf.season_uncertainty import ar1_noise
from udf.seasons import normal_cdf

from .test_phenology import BASE, cube_of, curve, day, grid, year_values

DAYS = grid("2019-11-01", "2020-10-31", 10)
DOUBLE = [("2019-12-01", "2020-04-01"), ("2020-04-20", "2020-08-20")]


def split_by_a_dip(depth: float) -> np.ndarray:
    """One long season with a dip of ``depth`` in its middle (what a fill following S1 in a gap looks like)."""
    series = curve(DAYS, [("2019-12-01", "2020-08-20")])
    dip = np.exp(-0.5 * ((DAYS - day("2020-04-10")) / 15.0) ** 2)
    return series - depth * dip


def test_a_dip_within_the_uncertainty_does_not_split_a_season():
    series = np.tile(split_by_a_dip(0.3), (2, 1))
    std = np.vstack([np.full(DAYS.size, 0.02), np.full(DAYS.size, 0.2)])
    plain = pixel_seasons(series, DAYS, std, PhenologyConfig(noise_std=0.0))
    assert (plain.present.sum(1) == 2).all()  # relative weights, no k·σ: the dip splits both
    aware = pixel_seasons(series, DAYS, std, PhenologyConfig(noise_std=0.0, k_sigma=1.5))
    assert aware.present.sum(1).tolist() == [2, 1]  # only where the std is small compared with the dip
    weighted = pixel_seasons(series, DAYS, std, PhenologyConfig(std_floor_quantile=0.0))  # absolute weights alone
    assert weighted.present.sum(1).tolist() == [2, 1]


def test_a_season_no_larger_than_its_std_is_dropped():
    series = curve(DAYS, [DOUBLE[0]], top=BASE + 0.3)
    std = np.full((1, DAYS.size), 0.25)
    assert pixel_seasons(series[None], DAYS, std, PhenologyConfig(noise_std=0.0)).present.sum() == 1
    assert pixel_seasons(series[None], DAYS, std, PhenologyConfig(noise_std=0.0, k_sigma=1.5)).present.sum() == 0


def test_confidence_and_date_std_follow_the_std():
    rng = np.random.default_rng(1)
    series = np.tile(curve(DAYS, DOUBLE), (3, 1)) + rng.normal(0, 0.01, (3, DAYS.size))
    std = np.vstack([np.full(DAYS.size, s) for s in (0.01, 0.05, 0.12)])
    cfg = PhenologyConfig(uncertainty=True, uncertainty_samples=24)
    got = pixel_seasons(series, DAYS, std, cfg)
    assert (got.present.sum(1) == 2).all()
    conf = got.confidence[got.present].reshape(3, 2)
    assert ((conf > 0) & (conf <= 1)).all() and conf[0].min() > 0.99
    sos_std = got.sos_std[:, 0]
    assert np.isfinite(sos_std).all() and sos_std[0] < sos_std[1] < sos_std[2]
    again = pixel_seasons(series, DAYS, std, cfg)
    np.testing.assert_array_equal(again.sos_std, got.sos_std)  # seeded


def test_uncertainty_bands_in_the_cube_and_defaults_unchanged():
    series = curve(DAYS, DOUBLE)
    cube = cube_of(DAYS, series, np.full(DAYS.size, 0.05))
    plain = phenology_cube(cube)
    assert list(plain["bands"].values) == band_names(3)
    full = phenology_cube(cube, PhenologyConfig(uncertainty=True, uncertainty_samples=8))
    names = list(full["bands"].values)
    assert names[:len(band_names(3))] == band_names(3) and names == band_names(3, uncertainty=True)
    np.testing.assert_array_equal(full.sel(bands=band_names(3)).values, plain.values)
    got = year_values(full, "2019-11-01")
    assert 0 < got["CONF_1"] <= 1 and got["SOS_STD_1"] >= 0 and np.isnan(got["SOS_STD_3"])


def test_a_uniformly_uncertain_series_keeps_its_dates():
    series = curve(DAYS, DOUBLE)[None]
    std = np.full(series.shape, 0.08)
    exact = pixel_seasons(series, DAYS, None)
    for cfg, close in ((PhenologyConfig(), True), (PhenologyConfig(std_floor_quantile=0.0), False)):
        got = pixel_seasons(series, DAYS, std, cfg)
        shift = np.abs(got.sos[got.present] - exact.sos[exact.present]).max()
        assert (shift < 1.0) if close else (shift > 5.0), (cfg, shift)


def test_noise_weights_and_helpers():
    w = std_weights(np.array([[0.0, 0.05, np.nan]]), noise_std=0.05)
    np.testing.assert_allclose(w, [[1.0, 0.5, 1.0]])
    w = std_weights(np.array([[0.05, 0.05, 0.05, 0.5]]), noise_std=0.05, floor_quantile=0.1)
    np.testing.assert_allclose(w, [[1.0, 1.0, 1.0, 0.005 / 0.2525]])
    np.testing.assert_allclose(normal_cdf(np.array([0.0, 1.0, -np.inf, np.inf])), [0.5, 0.841345, 0.0, 1.0],
                               atol=1e-6)
    e = ar1_noise(np.random.default_rng(0), 4000, np.arange(0.0, 400.0, 10.0), 30.0)
    assert abs(e.std() - 1) < 0.02 and abs(np.corrcoef(e[:, 5], e[:, 6])[0, 1] - np.exp(-1 / 3)) < 0.05


@pytest.mark.parametrize("context, match", [({"k_sigma": -1}, "k_sigma"), ({"uncertainty": "yes"}, "uncertainty"),
                                            ({"uncertainty_samples": 1}, "uncertainty_samples"),
                                            ({"noise_std": float("nan")}, "noise_std")])
def test_bad_uncertainty_context_is_named(context, match):
    with pytest.raises(InvalidContext, match=match):
        PhenologyConfig.from_context(context)
