"""Similar-pixel borrowing (udf/borrow.py): land-cover shift between the clear and the cloudy pixels of a tile."""

import json

import numpy as np
import pytest
import torch
import xarray as xr

from udf.borrow import build_borrower, fit_variance, signature_series, variance_model, water_steps
from udf.inference import predict_cube
from udf.preprocess import s1_to_linear, times_to_days
from udf.weights import load_checkpoint


def paddy_pond_tile(size: int = 48, steps: int = 36, seed: int = 0) -> tuple[xr.DataArray, np.ndarray, np.ndarray]:
    """A tropical tile: paddies (flooded, then growing), fish ponds and dry fields in 8 px blocks.

    The paddies are cloudy on every date; ponds and dry fields keep 70 % of their NDVI. Returns the cube (dB S1),
    the true NDVI ``(t, y, x)`` and the class map (0 paddy, 1 pond, 2 dry field).
    """
    rng = np.random.default_rng(seed)
    t = np.arange(steps)
    yy, xx = np.mgrid[:size, :size]
    cls = (yy // 8 + xx // 8) % 3
    grow = np.clip((t - 7) / 11, 0, 1) * (t < 28) + (t >= 28) * 0.15
    flooded = (t >= 3) & (t < 8)
    paddy = (np.where(flooded, -19.0, -13.0 + 5.0 * grow), np.where(flooded, -27.0, -21.0 + 6.0 * grow),
             np.where(t < 8, 0.05, 0.15 + 0.7 * grow))
    pond = (np.full(steps, -21.0), np.full(steps, -28.0), np.full(steps, -0.05))
    dry_phase = np.clip(np.sin(np.pi * (t - 4) / 24), 0, 1) * (t >= 4) * (t < 28)
    dry = (-11.0 + 1.0 * dry_phase, -18.0 + 2.5 * dry_phase, 0.2 + 0.45 * dry_phase)
    vv, vh, nd = (np.empty((steps, size, size), np.float32) for _ in range(3))
    for c, (a, b, n) in enumerate((paddy, pond, dry)):
        m = cls == c
        vv[:, m] = a[:, None] + rng.normal(0, 1.0, (steps, m.sum()))
        vh[:, m] = b[:, None] + rng.normal(0, 1.0, (steps, m.sum()))
        nd[:, m] = np.clip(n[:, None] + rng.normal(0, 0.03, (steps, m.sum())), -1, 1)
    kept = nd.copy()
    kept[:, cls == 0] = np.nan
    kept[rng.random(kept.shape) < 0.3] = np.nan
    days = (np.datetime64("2021-01-01") + (t * 10).astype("timedelta64[D]")).astype("datetime64[ns]")
    cube = xr.DataArray(np.stack([vv, vh, kept], 1), dims=("t", "bands", "y", "x"),
                        coords={"t": days, "bands": ["VV", "VH", "NDVI"], "y": np.arange(size), "x": np.arange(size)})
    return cube, nd, cls


def _scores(out: xr.DataArray, truth: np.ndarray, sel: np.ndarray) -> dict[str, float]:
    res = (out.sel(bands="NDVI").values - truth)[:, sel]
    std = out.sel(bands="NDVI_STD").values[:, sel]
    return {"bias": float(res.mean()), "mae": float(np.abs(res).mean()), "cov1": float((np.abs(res) <= std).mean()),
            "cov2": float((np.abs(res) <= 2 * std).mean())}


@pytest.fixture(scope="module")
def paddy_runs():
    cube, truth, cls = paddy_pond_tile()
    model, meta = load_checkpoint(None)
    runs = {b: predict_cube(cube, model, meta, s1_units="db", include_uncertainty=True, device="cpu", borrowing=b)
            for b in (False, True)}
    return runs, truth, cls


def test_ponds_do_not_pull_cloudy_paddies_down(paddy_runs):
    """The issue's failure (rice 0.43 too low, ±1σ 9 %) in miniature: the global S1-only map fails, borrowing holds."""
    runs, truth, cls = paddy_runs
    before, after = _scores(runs[False], truth, cls == 0), _scores(runs[True], truth, cls == 0)
    assert before["bias"] < -0.1 and before["cov1"] < 0.35  # the shipped path is confidently wrong here
    assert abs(after["bias"]) < 0.06
    assert after["mae"] < before["mae"]
    # issue 18 item 3: NDVI_STD covers like a std although no clear analog is a paddy (main before this: 56 % / 86 %)
    assert 0.60 <= after["cov1"] <= 0.80 and after["cov2"] >= 0.90


def test_clear_classes_are_unchanged_and_borrowing_is_described(paddy_runs):
    runs, truth, cls = paddy_runs
    for c in (1, 2):  # pixels with kept NDVI are not touched by borrowing
        np.testing.assert_array_equal(runs[False].values[:, :, cls == c], runs[True].values[:, :, cls == c])
    info = json.loads(runs[True].attrs["s1ndvi_borrowing"])
    assert info["water_prototypes"] > 0 and info["prototypes"] > 20
    assert json.loads(runs[False].attrs["s1ndvi_borrowing"]) is None


def test_water_is_recognised_from_s1():
    cube, _, cls = paddy_pond_tile(size=24, steps=36)
    days = torch.from_numpy(times_to_days(cube["t"].values))
    vv = torch.from_numpy(s1_to_linear(cube.sel(bands="VV").values.reshape(36, -1).T.copy(), "db", check=False))
    vh = torch.from_numpy(s1_to_linear(cube.sel(bands="VH").values.reshape(36, -1).T.copy(), "db", check=False))
    _, permanent = signature_series(vv, vh, days)
    flat = cls.reshape(-1)
    assert permanent[flat == 1].float().mean() > 0.95  # ponds
    assert not permanent[flat != 1].any()  # flooded paddies are not permanent water
    wet = water_steps(10 * torch.log10(vv), 10 * torch.log10(vh))
    assert wet[flat == 0][:, 3:8].float().mean() > 0.5 and wet[flat == 0][:, 12:].float().mean() < 0.05


def test_water_without_a_clear_water_analog_gets_low_ndvi():
    cube, truth, cls = paddy_pond_tile()
    nd = cube.sel(bands="NDVI").values.copy()
    nd[:, cls == 1] = np.nan  # ponds clouded too: only dry fields are clear
    cube = cube.copy()
    cube.loc[{"bands": "NDVI"}] = nd
    model, meta = load_checkpoint(None)
    out = predict_cube(cube, model, meta, s1_units="db", include_uncertainty=True, device="cpu")
    assert np.nanmax(out.sel(bands="NDVI").values[:, cls == 1]) <= 0.1 + 1e-6


def test_too_few_clear_pixels_means_no_borrowing():
    model, _ = load_checkpoint(None)
    cube, _, _ = paddy_pond_tile(size=8, steps=20)
    days = torch.from_numpy(times_to_days(cube["t"].values))
    flat = {b: torch.from_numpy(cube.sel(bands=b).values.reshape(20, -1).T.copy()) for b in ("VV", "VH", "NDVI")}
    vv, vh = (torch.from_numpy(s1_to_linear(flat[b].numpy(), "db", check=False)) for b in ("VV", "VH"))
    with torch.inference_mode():
        assert build_borrower(model, vv[:10], vh[:10], flat["NDVI"][:10], days, 1.0) is None


def test_borrowing_context_key_is_validated():
    from udf.errors import InvalidContext
    from udf.s1_ndvi_udf import validate_context

    assert validate_context({})["borrowing"] is True
    assert validate_context({"borrowing": False})["borrowing"] is False
    with pytest.raises(InvalidContext, match="borrowing"):
        validate_context({"borrowing": "yes"})


def test_variance_model_grows_with_distance_and_covers_each_scheme():
    rng = np.random.default_rng(0)
    n = 6000
    dist = rng.uniform(0.2, 2.0, n)
    spread, sigma, gap = rng.uniform(0.0, 0.1, n), np.full(n, 0.1), np.zeros(n)
    group = np.repeat([0, 1], n // 2)
    true_std = np.sqrt(0.02 ** 2 + (0.08 * dist) ** 2) * np.where(group == 1, 1.5, 1.0)  # scheme 1: wider errors
    res = rng.normal(0.0, true_std)
    coef, cover = fit_variance(res, spread, dist, sigma, gap, group)
    t = [torch.from_numpy(v) for v in (spread, dist, sigma, gap)]
    std = variance_model(coef, *t).sqrt().numpy()
    assert coef[1] > 0 and std[dist > 1.5].mean() > 2 * std[dist < 0.5].mean()
    for g in (0, 1):
        z = np.abs(res[group == g]) / std[group == g]
        assert (z <= 1).mean() >= 0.68 and (z <= 2).mean() >= 0.93 - 1e-9
    assert cover[0] >= 0.68 and cover[1] >= 0.93


def test_compare_scores_the_udf_as_users_get_it(paddy_runs):
    from comparison.compare.methods import dl_method

    runs, truth, cls = paddy_runs
    cube, _, _ = paddy_pond_tile()
    model, meta = load_checkpoint(None)
    got = dl_method(model, meta, s1_units="db")(cube, np.ones(cls.shape, bool))  # default: borrowing on
    np.testing.assert_array_equal(got.mean, runs[True].sel(bands="NDVI").values)
    np.testing.assert_array_equal(got.std, runs[True].sel(bands="NDVI_STD").values)
    off = dl_method(model, meta, s1_units="db", borrowing=False)(cube, np.ones(cls.shape, bool))
    np.testing.assert_array_equal(off.mean, runs[False].sel(bands="NDVI").values)
