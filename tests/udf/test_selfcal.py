"""Self-calibration of the S1-only output on the cube's own kept NDVI (udf.selfcal)."""

import json

import numpy as np
import pytest
import torch
import xarray as xr

from udf.features import FEATURES
from udf.inference import predict_cube, predict_series
from udf.selfcal import S1_ONLY_TERMS, apply_s1_only, self_calibrate
from udf.weights import load_checkpoint


def _pixels(n: int, nt: int, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """VV, VH (linear), NDVI linear in VH dB (the site's relation), days."""
    rng = np.random.default_rng(seed)
    days = np.arange(nt, dtype=np.float64) * 12.0 + 19000.0
    phase = rng.uniform(0, 2 * np.pi, (n, 1))
    vh_db = -17.0 + 4.0 * np.sin(2 * np.pi * days / 120.0 + phase) + rng.normal(0, 0.3, (n, nt))
    vv_db = vh_db + 6.0 + rng.normal(0, 0.3, (n, nt))
    ndvi = np.clip(0.45 + 0.08 * (vh_db + 17.0), -1, 1)
    return (10 ** (vv_db / 10)).astype(np.float32), (10 ** (vh_db / 10)).astype(np.float32), ndvi.astype(np.float32), days


@pytest.fixture(scope="module")
def model(random_checkpoint):
    net, meta = load_checkpoint(str(random_checkpoint))
    return net.eval(), meta


def test_s1_only_map_learns_the_cubes_relation_from_its_cloud_free_pixels(model):
    """Pixels without any NDVI get NDVI from S1 through the relation the cube's other pixels show."""
    net, meta = model
    vv, vh, ndvi, days = _pixels(300, 30, seed=0)
    cloudy = np.random.default_rng(1).random(ndvi.shape) < 0.6
    kept = np.where(cloudy, np.float32(np.nan), ndvi)
    t = torch.from_numpy
    cal = self_calibrate(net, t(vv), t(vh), t(kept), t(days))
    assert cal.s1_only_form == "linear in S1" and cal.s1_only is not None
    assert cal.s1_only_mae["linear in S1"] < 0.5 * cal.s1_only_mae["as is"]
    vv2, vh2, truth, _ = _pixels(100, 30, seed=2)  # other pixels, no NDVI at all
    with torch.inference_mode():
        raw, _ = predict_series(net, t(vv2), t(vh2), None, t(days))
        mean, std = predict_series(net, t(vv2), t(vh2), None, t(days), cal, std_scale=float(meta["std_scale"]))
    assert np.abs(mean.numpy() - truth).mean() < 0.03 < np.abs(raw.numpy() - truth).mean()
    z = np.abs(mean.numpy() - truth) / std.numpy()
    assert 0.4 < (z <= 1).mean() <= 1.0


def test_apply_s1_only_matches_a_float64_reference():
    rng = np.random.default_rng(3)
    b, nt = 7, 15
    x = rng.normal(0, 5, (b, nt, len(FEATURES))).astype(np.float32)
    valid = rng.random((b, nt)) < 0.7
    valid[:, 0] = True
    x[..., FEATURES.index("s1_valid")] = valid
    days = np.cumsum(rng.uniform(5, 15, nt))
    mean = rng.uniform(0, 1, (b, nt)).astype(np.float32)
    has = np.zeros((b, nt), bool)
    has[0] = True  # a sequence with kept NDVI is left as it is
    coef = rng.normal(0, 0.1, len(S1_ONLY_TERMS) + 1)
    out = apply_s1_only(torch.from_numpy(mean), torch.from_numpy(x), torch.from_numpy(days), torch.from_numpy(has),
                        [float(c) for c in coef], bounds=(-0.5, 0.8)).numpy()
    ref = mean.astype(np.float64).copy()
    for i in range(1, b):
        cols = [x[i, :, FEATURES.index(name)].astype(np.float64) for name in S1_ONLY_TERMS[1:]]
        filled = [np.interp(days, days[valid[i]], c[valid[i]]) for c in cols]
        ref[i] = np.clip(coef[0] + coef[1] * mean[i] + sum(c * f for c, f in zip(coef[2:], filled)), -0.5, 0.8)
    np.testing.assert_allclose(out, ref, rtol=1e-5, atol=1e-5)


def test_too_little_ndvi_leaves_the_s1_only_output_as_it_is(model):
    net, _ = model
    vv, vh, ndvi, days = _pixels(10, 30, seed=4)
    t = torch.from_numpy
    cal = self_calibrate(net, t(vv), t(vh), t(ndvi), t(days))  # 10 pixels: fewer than the S1-only map needs
    assert cal.s1_only is None and cal.s1_only_std_scale is None
    with torch.inference_mode():
        a, _ = predict_series(net, t(vv), t(vh), None, t(days))
        b, _ = predict_series(net, t(vv), t(vh), None, t(days), cal)
    torch.testing.assert_close(a, b)


def test_cube_pixels_without_ndvi_use_the_map_and_pixels_without_s1_stay_nan(model):
    net, meta = model
    nt, ny, nx = 30, 20, 20
    vv, vh, ndvi, days = _pixels(ny * nx, nt, seed=5)
    ndvi[:40] = np.nan  # two rows of pixels with clouds all year
    vv[45], vh[45] = np.nan, np.nan  # a pixel without S1
    t = (np.datetime64("1970-01-01") + days.astype("timedelta64[D]")).astype("datetime64[ns]")
    data = np.stack([a.T.reshape(nt, ny, nx) for a in (vv, vh, ndvi)], axis=1)
    cube = xr.DataArray(data, dims=("t", "bands", "y", "x"),
                        coords={"t": t, "bands": ["VV", "VH", "NDVI"], "y": np.arange(ny), "x": np.arange(nx)})
    out = predict_cube(cube, net, meta, s1_units="linear", device="cpu", include_uncertainty=True)
    cal = json.loads(out.attrs["s1ndvi_self_calibration"])
    assert cal["s1_only"]["form"] == "linear in S1" and len(cal["s1_only"]["coefficients"]) == 7
    _, _, truth, _ = _pixels(ny * nx, nt, seed=5)
    got = out.sel(bands="NDVI").values.reshape(nt, -1).T
    assert np.abs(got[:40] - truth[:40]).mean() < 0.03
    assert np.isnan(got[45]).all() and np.isnan(out.sel(bands="NDVI_STD").values.reshape(nt, -1).T[45]).all()
    assert np.isfinite(got[:40]).all()



def _gap_pixels(n: int, nt: int, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Pixels whose NDVI follows VH: a gap is best filled from how far VH moved since the kept dates."""
    rng = np.random.default_rng(seed)
    days = np.arange(nt, dtype=np.float64) * 10.0 + 19000.0
    phase = rng.uniform(0, 2 * np.pi, (n, 1))
    vh_db = -17.0 + 4.0 * np.sin(2 * np.pi * days / 150.0 + phase) + rng.normal(0, 0.2, (n, nt))
    vv_db = -10.0 + rng.normal(0, 0.2, (n, nt))
    ndvi = np.clip(0.5 + 0.08 * (vh_db + 17.0), -1, 1)
    return (10 ** (vv_db / 10)).astype(np.float32), (10 ** (vh_db / 10)).astype(np.float32), ndvi.astype(np.float32), days


def test_gap_map_learns_how_s1_moves_ndvi_inside_gaps_and_leaves_kept_values_alone(model):
    """Where NDVI follows S1, the gap map fills a 60-day gap far better than the interpolation; kept steps stay."""
    from udf.masking import hide_window

    net, meta = model
    vv, vh, ndvi, days = _gap_pixels(400, 40, seed=6)
    t = torch.from_numpy
    cal = self_calibrate(net, t(vv), t(vh), t(ndvi), t(days))
    assert cal.gap_map is not None and any(cal.gap_bins)
    assert all(g < w for g, w, on in zip(cal.gap_mae["gap map"], cal.gap_mae["trust weights"], cal.gap_bins) if on)
    vv2, vh2, truth, _ = _gap_pixels(200, 40, seed=7)
    hidden = hide_window(np.isfinite(truth), days, 60.0, np.random.default_rng(8))
    kept = np.where(hidden, np.float32(np.nan), truth)
    with torch.inference_mode():
        mean, _ = predict_series(net, t(vv2), t(vh2), t(kept), t(days), cal, std_scale=1.0)
        plain, _ = predict_series(net, t(vv2), t(vh2), t(kept), t(days))
    from udf.features import interpolate_kept

    interp = interpolate_kept(t(kept.astype(np.float64)), t(days))[0].numpy()
    err = np.abs(mean.numpy() - truth)[hidden].mean()
    assert err < 0.5 * np.abs(interp - truth)[hidden].mean()
    assert err < np.abs(plain.numpy() - truth)[hidden].mean()


def test_gap_map_matches_a_float64_reference():
    from udf.selfcal import DIST_BINS, GAP_TERMS, apply_gap_map

    rng = np.random.default_rng(9)
    b, nt = 6, 12
    x = rng.normal(0, 2, (b, nt, len(FEATURES))).astype(np.float32)
    dist = rng.choice([0.0, 5.0, 30.0, 60.0, 120.0], (b, nt))
    x[..., FEATURES.index("dist_prev")] = dist / 30.0
    x[..., FEATURES.index("dist_next")] = 200.0 / 30.0
    mean, base, blended = (rng.uniform(0, 1, (b, nt)).astype(np.float32) for _ in range(3))
    has = np.ones((b, nt), bool)
    has[0] = False
    coef = rng.normal(0, 0.1, 2 * len(GAP_TERMS) + 2)
    bins = [False, True, True, False]
    out = apply_gap_map(*(torch.from_numpy(a) for a in (blended, mean, base, x, dist, has)),
                        [float(c) for c in coef], bins).numpy()
    d = dist / 90.0
    cols = [mean - base, x[..., FEATURES.index("vv_dev")], x[..., FEATURES.index("vh_dev")]]
    cols.append(cols[2] - cols[1])
    terms = np.stack([np.ones_like(d)] + [c.astype(np.float64) for c in cols] + [c * d for c in cols] + [d], -1)
    in_bins = np.zeros_like(has)
    for on, lo, hi in zip(bins, DIST_BINS[:-1], DIST_BINS[1:]):
        in_bins |= on & (dist >= lo) & (dist < hi)
    ref = np.where(has & in_bins & (dist > 0.5), base + terms @ coef, blended)
    np.testing.assert_allclose(out, ref, rtol=1e-5, atol=1e-5)
    assert np.array_equal(out[dist == 0], blended[dist == 0])  # a kept observation is never moved by the map


class _Oracle(torch.nn.Module):
    """A stand-in network whose correction to the interpolation is ``gain`` times the exact one of :func:`_pixels`.

    gain 1 predicts the hidden NDVI exactly (trust it fully), gain 2 overshoots by the same amount it corrects
    (the best blend is half-way), gain 0 plus ±``noise`` of random sign is worse than the interpolation (ignore it).
    """

    def __init__(self, gain: float, noise: float = 0.0) -> None:
        super().__init__()
        self.gain, self.noise = gain, noise
        self.config = type("Config", (), {"calendar": False})()

    def forward(self, x: torch.Tensor, base: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        truth = (0.45 + 0.08 * (x[..., FEATURES.index("vh_db")] + 17.0)).clamp(-1, 1)
        sign = torch.sign(torch.sin(1e4 * x[..., FEATURES.index("vv_db")]))  # independent of the error, median 0
        mean = base + self.gain * (truth - base) + self.noise * sign
        return mean, torch.full_like(mean, -3.0)


@pytest.mark.parametrize("gain,noise,expected", [(1.0, 0.0, 1.0), (2.0, 0.0, 0.5), (0.0, 0.3, 0.0)])
def test_trust_weights_follow_how_good_the_network_is_on_the_pseudo_hold_out(gain, noise, expected):
    """Each distance bin's weight is the blend that best predicts the cube's own hidden NDVI, not a fixed number."""
    vv, vh, ndvi, days = _pixels(300, 30, seed=0)
    cloudy = np.random.default_rng(1).random(ndvi.shape) < 0.5
    kept = np.where(cloudy, np.float32(np.nan), ndvi)
    t = torch.from_numpy
    cal = self_calibrate(_Oracle(gain, noise), t(vv), t(vh), t(kept), t(days))
    enough = [n >= 30 for n in cal.counts]
    assert sum(enough) >= 2, cal.counts  # at least two bins fitted on their own observations
    assert cal.weights == pytest.approx([expected] * len(cal.weights), abs=0.1), (cal.weights, cal.counts)
