import numpy as np
import pytest
import torch

from udf.features import FEATURES, MAX_DIST_DAYS, interpolate_kept, series_features


def _numpy_interp(ndvi: np.ndarray, days: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per-row float64 reference: np.interp (constant beyond the ends) and distances to kept observations."""
    out = np.zeros(ndvi.shape)
    dprev, dnext = np.full(ndvi.shape, np.inf), np.full(ndvi.shape, np.inf)
    for i in range(ndvi.shape[0]):
        ok = np.isfinite(ndvi[i])
        if not ok.any():
            continue
        out[i] = np.interp(days[i], days[i][ok], ndvi[i][ok])
        for j in range(ndvi.shape[1]):
            before, after = days[i][ok & (days[i] <= days[i, j])], days[i][ok & (days[i] >= days[i, j])]
            dprev[i, j] = days[i, j] - before.max() if before.size else np.inf
            dnext[i, j] = after.min() - days[i, j] if after.size else np.inf
    return out, dprev, dnext


def test_interpolation_matches_float64_reference_on_random_inputs():
    rng = np.random.default_rng(0)
    ndvi = rng.uniform(-0.2, 0.9, (40, 25))
    ndvi[rng.random(ndvi.shape) < 0.6] = np.nan
    ndvi[3] = np.nan  # a sequence without any kept value
    days = np.cumsum(rng.uniform(1, 20, (40, 25)), axis=1)
    interp, dprev, dnext = interpolate_kept(torch.from_numpy(ndvi), torch.from_numpy(days))
    ref, rprev, rnext = _numpy_interp(ndvi, days)
    np.testing.assert_allclose(interp.numpy(), ref, atol=1e-12)
    np.testing.assert_allclose(dprev.numpy(), rprev, atol=1e-9)
    np.testing.assert_allclose(dnext.numpy(), rnext, atol=1e-9)
    f32, _, _ = interpolate_kept(torch.from_numpy(ndvi.astype(np.float32)), torch.from_numpy(days.astype(np.float32)))
    np.testing.assert_allclose(f32.numpy(), ref, atol=2e-6)


def _batch(seed: int = 1, b: int = 6, t: int = 15):
    rng = np.random.default_rng(seed)
    vv = 10 ** (rng.uniform(-16, -6, (b, t)) / 10)
    vh = vv * 10 ** (-rng.uniform(5, 9, (b, t)) / 10)
    vv[rng.random((b, t)) < 0.2] = np.nan
    vh[np.isnan(vv)] = np.nan
    ndvi = rng.uniform(0.1, 0.9, (b, t))
    ndvi[rng.random((b, t)) < 0.5] = np.nan
    days = np.arange(t) * 12.0
    return vv, vh, ndvi, days


def test_feature_layout_and_base():
    vv, vh, ndvi, days = _batch()
    f = series_features(torch.from_numpy(vv), torch.from_numpy(vh), torch.from_numpy(ndvi), torch.from_numpy(days))
    assert f.x.shape == (6, 15, len(FEATURES))
    col = {n: f.x[..., i].numpy() for i, n in enumerate(FEATURES)}
    np.testing.assert_array_equal(col["s1_valid"], np.isfinite(vv))
    np.testing.assert_array_equal(col["ndvi_valid"], np.isfinite(ndvi))
    np.testing.assert_allclose(col["ndvi"], np.nan_to_num(ndvi))
    np.testing.assert_allclose(col["vv_db"][np.isfinite(vv)], 10 * np.log10(vv[np.isfinite(vv)]), rtol=1e-10)
    ref, _, _ = _numpy_interp(ndvi, np.broadcast_to(days, ndvi.shape))
    np.testing.assert_allclose(f.base.numpy(), ref, atol=1e-12)
    assert (col["dist_prev"] <= MAX_DIST_DAYS / 30).all() and np.isfinite(f.x.numpy()).all()


def test_s1_only_has_no_base_and_zero_ndvi_features():
    vv, vh, _, days = _batch()
    f = series_features(torch.from_numpy(vv), torch.from_numpy(vh), None, torch.from_numpy(days))
    assert float(f.base.abs().max()) == 0.0
    for name in ("ndvi", "ndvi_valid", "interp", "has_ndvi", "vv_dev", "vh_dev"):
        assert float(f.x[..., FEATURES.index(name)].abs().max()) == 0.0, name
    assert (f.x[..., FEATURES.index("dist_prev")] == MAX_DIST_DAYS / 30).all()


@pytest.mark.parametrize("offset_db", [-2.5, 1.7])
def test_relative_features_ignore_a_calibration_offset(offset_db):
    """σ⁰ vs γ⁰ or another calibration shifts VV and VH by a constant: anomalies, deviations and ratio do not move."""
    vv, vh, ndvi, days = _batch(seed=3)
    gain = 10 ** (offset_db / 10)
    a = series_features(*(torch.from_numpy(v) for v in (vv, vh, ndvi, days)))
    b = series_features(*(torch.from_numpy(v) for v in (vv * gain, vh * gain, ndvi, days)))
    for name in ("ratio_db", "vv_anom", "vh_anom", "vv_dev", "vh_dev"):
        j = FEATURES.index(name)
        torch.testing.assert_close(a.x[..., j], b.x[..., j], atol=1e-9, rtol=0, msg=name)
    j = FEATURES.index("vv_db")
    assert float((b.x[..., j] - a.x[..., j])[torch.from_numpy(np.isfinite(vv))].mean()) == pytest.approx(offset_db)


def test_deviation_is_zero_at_kept_dates_with_s1():
    vv, vh, ndvi, days = _batch(seed=5)
    f = series_features(*(torch.from_numpy(v) for v in (vv, vh, ndvi, days)))
    at = np.isfinite(ndvi) & np.isfinite(vv)
    assert np.abs(f.x[..., FEATURES.index("vv_dev")].numpy()[at]).max() < 1e-9
