"""Batched torch MOGPR: exact likelihood, exact masking, failures, and agreement with the committed GPy reference."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import xarray as xr

from comparison import mogpr
from comparison.errors import BandNotFound, MOGPRInputError

REF = Path(__file__).resolve().parents[1] / "data" / "mogpr_reference" / "reference.npz"


def _random_problem(seed: int, n: int = 3, t: int = 14, o: int = 2) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    times = np.sort(rng.uniform(0, 200, t)).round(0) + 737000.0
    values = np.sin(times[None, :, None] / 30.0 + rng.uniform(0, 3, (n, 1, o))) + 0.1 * rng.standard_normal((n, t, o))
    values[rng.uniform(size=values.shape) < 0.3] = np.nan
    return times, values


def _random_params(seed: int, n: int, o: int, q: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    per_q = [np.c_[rng.uniform(0.2, 2, n), rng.uniform(5, 60, n), rng.normal(0, 1, (n, o)),
                   rng.uniform(0.01, 1, (n, o))] for _ in range(q)]
    return np.concatenate(per_q + [rng.uniform(0.01, 0.5, (n, o))], axis=1)


def _naive_loglik(times: np.ndarray, series: np.ndarray, p: np.ndarray, q: int) -> float:
    """Textbook dense implementation on the valid observations only (loops, numpy slogdet/solve)."""
    o = series.shape[1]
    z = (series - np.nanmean(series, 0)) / np.nanstd(series, 0)
    obs = [(times[i], j, z[i, j]) for i in range(len(times)) for j in range(o) if np.isfinite(z[i, j])]
    m = len(obs)
    k = np.zeros((m, m))
    for a, (ta, oa, _) in enumerate(obs):
        for b, (tb, ob, _) in enumerate(obs):
            for c in range(q):
                var, ls = p[c * (2 + 2 * o)], p[c * (2 + 2 * o) + 1]
                w = p[c * (2 + 2 * o) + 2 : c * (2 + 2 * o) + 2 + o]
                kap = p[c * (2 + 2 * o) + 2 + o : (c + 1) * (2 + 2 * o)]
                r = math.sqrt(3) * abs(ta - tb) / ls
                k[a, b] += var * (1 + r) * math.exp(-r) * (w[oa] * w[ob] + (kap[oa] if oa == ob else 0.0))
        k[a, a] += p[q * (2 + 2 * o) + oa] + 1e-8
    y = np.array([v for _, _, v in obs])
    _, logdet = np.linalg.slogdet(k)
    return float(-0.5 * y @ np.linalg.solve(k, y) - 0.5 * logdet - 0.5 * m * math.log(2 * math.pi))


@pytest.mark.parametrize("o,q", [(2, 2), (3, 3), (2, 1)])
def test_batched_likelihood_matches_naive_numpy(o: int, q: int) -> None:
    times, values = _random_problem(seed=o + q, n=4, o=o)
    params = _random_params(seed=q, n=4, o=o, q=q)
    got = mogpr.log_likelihood(times, values, params, n_kernels=q)
    want = [_naive_loglik(times, values[i], params[i], q) for i in range(4)]
    np.testing.assert_allclose(got, want, rtol=1e-11, atol=1e-9)


def test_padding_with_masked_dates_is_exact() -> None:
    times, values = _random_problem(seed=7, n=3, t=12)
    alone = mogpr.fit_predict(times, values[:1], predict_times=times, max_iter=15, n_restarts=1)
    # Same pixel, extra all-NaN dates interleaved, batched with denser pixels (so it gets padded slots).
    extra = np.sort(np.r_[times, times[:-1] + 0.5])
    padded = np.full((3, len(extra), 2), np.nan)
    padded[:, np.isin(extra, times)] = values
    padded[1:, ~np.isin(extra, times)] = 0.3
    batch = mogpr.fit_predict(extra, padded, predict_times=times, max_iter=15, n_restarts=1)
    assert batch.n_obs[0].tolist() == alone.n_obs[0].tolist()
    # The fits agree to rounding (batched BLAS sums in another order, amplified a little by the optimiser) ...
    np.testing.assert_allclose(batch.log_likelihood[0], alone.log_likelihood[0], rtol=1e-6)
    np.testing.assert_allclose(batch.mean[0], alone.mean[0], atol=1e-5)
    np.testing.assert_allclose(batch.std[0], alone.std[0], atol=1e-5)
    # ... and at fixed parameters the padded/masked computation is exact.
    p = alone.params
    np.testing.assert_allclose(mogpr.log_likelihood(extra, padded[:1], p), mogpr.log_likelihood(times, values[:1], p),
                               rtol=1e-13)


def test_fewer_than_two_observations_gives_nan_and_count() -> None:
    times, values = _random_problem(seed=3, n=4, t=12)
    values[1, :, 1] = np.nan
    values[1, 5, 1] = 0.4  # one NDVI value only
    values[2, :, 0] = 0.25  # constant output: std 0
    values[3, :, 0] = np.nan  # no RVI at all
    values[3, 2, 0] = np.inf  # an infinite value is missing, not data
    res = mogpr.fit_predict(times, values, max_iter=20, n_restarts=1)
    assert res.failed.tolist() == [False, True, True, True]
    assert res.n_failed == 3 and res.n_obs[3, 0] == 0
    assert res.n_obs[1, 1] == 1
    assert np.isnan(res.mean[1]).all() and np.isnan(res.std[2]).all()
    assert np.isfinite(res.mean[0]).all() and (res.std[0] > 0).all()


def test_std_is_a_real_std_and_noise_optional() -> None:
    times, values = _random_problem(seed=11, n=2, t=16)
    with_noise = mogpr.fit_predict(times, values, max_iter=15, n_restarts=1)
    mean, latent = mogpr.predict_with_params(times, values, with_noise.params, with_noise.predict_times,
                                             include_noise=False)
    np.testing.assert_allclose(with_noise.mean, mean, rtol=1e-12)
    assert (with_noise.std >= latent).all()
    sigma = np.nanstd(values, axis=1)
    noise = np.broadcast_to((with_noise.params[:, -2:] * sigma**2)[:, None, :], latent.shape)
    np.testing.assert_allclose(with_noise.std**2 - latent**2, noise, rtol=1e-8, atol=1e-14)


def test_bad_shapes_raise() -> None:
    with pytest.raises(MOGPRInputError, match=r"values must be \(N, T, O\)"):
        mogpr.fit_predict(np.arange(5.0), np.zeros((5, 2)))
    with pytest.raises(MOGPRInputError, match=r"times must be \(T,\) = \(5,\)"):
        mogpr.fit_predict(np.arange(4.0), np.zeros((1, 5, 2)))


def test_mogpr_cube_labels_and_bands() -> None:
    times, values = _random_problem(seed=5, n=4, t=15)
    t = (np.datetime64("2020-01-01") + (times - times.min()).astype("timedelta64[D]")).astype("datetime64[ns]")
    data = values.reshape(2, 2, 15, 2).transpose(2, 3, 0, 1)
    cube = xr.DataArray(data, dims=("time", "bands", "y", "x"),
                        coords={"time": t, "bands": ["RVI", "NDVI"], "y": [1.0, 2.0], "x": [3.0, 4.0]})
    out = mogpr.mogpr_cube(cube, max_iter=15, n_restarts=1)
    assert out.dims == ("t", "bands", "y", "x")
    assert out["bands"].values.tolist() == ["NDVI", "NDVI_STD"]
    assert (out["t"].values == t).all() and out.dtype == np.float32
    res = mogpr.fit_predict(times, values, predict_times=times, max_iter=15, n_restarts=1)
    np.testing.assert_allclose(out.sel(bands="NDVI").values, res.mean[:, :, 1].reshape(2, 2, 15).transpose(2, 0, 1),
                               rtol=1e-5)
    with pytest.raises(BandNotFound, match=r"Band 'VV'.*not in cube bands \['RVI', 'NDVI'\]"):
        mogpr.mogpr_cube(cube, bands=("VV", "NDVI"))


# --- against the committed GPy reference (tests/data/mogpr_reference/make_data.py) ---------------------------------


def _ref(case: str) -> dict[str, np.ndarray]:
    with np.load(REF) as f:
        return {k.split("/", 1)[1]: f[k] for k in f.files if k.startswith(case + "/")}


@pytest.mark.parametrize("case", ["BIDS_demo", "BIDS_workshop", "pixels"])
def test_same_likelihood_and_prediction_as_gpy_at_gpy_parameters(case: str) -> None:
    r = _ref(case)
    params = r["params"][:, 0]
    ll = mogpr.log_likelihood(r["times"], r["values"], params)
    np.testing.assert_allclose(ll, r["log_likelihood"][:, 0], rtol=1e-9, atol=1e-7)
    mean, std = mogpr.predict_with_params(r["times"], r["values"], params, r["predict_times"])
    sigma = np.nanstd(r["values"], axis=1)[:, None, :]
    mu = np.nanmean(r["values"], axis=1)[:, None, :]
    np.testing.assert_allclose(mean, r["mean"][:, 0] * sigma + mu, rtol=1e-6, atol=1e-8)
    np.testing.assert_allclose(std, np.sqrt(r["var"][:, 0]) * sigma, rtol=1e-6, atol=1e-8)


def test_gpy_start_is_reproduced() -> None:
    r = _ref("pixels")
    start = mogpr._initial_params(1, 2, 2, 1, int(r["seeds"][0]))[0, 0]
    np.testing.assert_allclose(r["start"][:, 0], np.broadcast_to(start, r["start"][:, 0].shape), rtol=1e-15)


def _gpy_ndvi(r: dict[str, np.ndarray], k: int) -> np.ndarray:
    """GPy's (seed 0) NDVI predictive mean in data units ``(N, S)``."""
    sigma = np.nanstd(r["values"][:, :, k], axis=1)[:, None]
    return r["mean"][:, 0, :, k] * sigma + np.nanmean(r["values"][:, :, k], axis=1)[:, None]


def test_fit_from_gpy_start_reaches_gpy_optimum() -> None:
    """From GPy's own start (restart 0), pixels with a well-defined optimum land where GPy lands."""
    r = _ref("pixels")
    px = [1, 3, 6, 9, 13]  # the reference pixels GPy and we both converge quickly on (< 60 iterations)
    res = mogpr.fit_predict(r["times"], r["values"][px], r["predict_times"], n_restarts=1)
    np.testing.assert_allclose(res.log_likelihood, r["log_likelihood"][px, 0], atol=1e-3, rtol=0)
    rmse = np.sqrt(np.mean((res.mean[:, :, 1] - _gpy_ndvi(r, 1)[px]) ** 2))
    assert rmse <= 1e-3, rmse


@pytest.mark.slow
def test_fit_with_restarts_on_pixels_is_at_least_as_likely_as_gpy() -> None:
    """With 3 restarts our optimum is never (beyond 0.05) less likely than GPy's; at GPy's optimum, NDVI RMSE ≤ 0.01.

    The likelihood is multimodal: where we end higher than GPy, predictions may differ by more than 0.01 NDVI.
    """
    r = _ref("pixels")
    res = mogpr.fit_predict(r["times"], r["values"], r["predict_times"], n_restarts=3)
    assert not res.failed.any()
    dll = res.log_likelihood - r["log_likelihood"][:, 0]
    assert (dll >= -0.05).all(), dll
    same = np.abs(dll) < 0.01
    assert same.sum() >= 3, dll
    rmse = np.sqrt(np.mean((res.mean[same, :, 1] - _gpy_ndvi(r, 1)[same]) ** 2))
    assert rmse <= 0.01, rmse


@pytest.mark.slow
@pytest.mark.parametrize("case", ["BIDS_demo", "BIDS_workshop"])
def test_fit_on_fusets_fields_within_gpy_seed_spread(case: str) -> None:
    """3 outputs, 27 hyper-parameters: GPy's own seeds 0–3 end 2.3–2.9 log-lik units and up to 0.019 NDVI RMSE apart
    on these fields, so we ask for that spread, not for one GPy run."""
    r = _ref(case)
    res = mogpr.fit_predict(r["times"], r["values"], r["predict_times"], n_restarts=3)
    assert res.log_likelihood[0] >= r["log_likelihood"][0, 0] - 3.0  # higher is fine
    rmse = np.sqrt(np.mean((res.mean[0, :, 0] - _gpy_ndvi(r, 0)[0]) ** 2))
    assert rmse <= 0.02, rmse


def test_gpy_wrapper_matches_torch() -> None:
    pytest.importorskip("GPy")
    from comparison import mogpr_gpy

    times, values = _random_problem(seed=2, n=2, t=20)
    ref = mogpr_gpy.fit_predict_gpy(times, values, times, seed=0)
    np.testing.assert_allclose(mogpr.log_likelihood(times, values, ref.params), ref.log_likelihood, rtol=1e-8)
    mean, std = mogpr.predict_with_params(times, values, ref.params, times)
    np.testing.assert_allclose(mean, ref.mean, rtol=1e-6, atol=1e-8)
    np.testing.assert_allclose(std, ref.std, rtol=1e-6, atol=1e-8)


@pytest.mark.parametrize("o,q", [(2, 2), (3, 3), (2, 1)])
def test_analytic_gradient_matches_autograd(o: int, q: int) -> None:
    import torch

    from comparison import _mogpr_model as m

    times, values = _random_problem(seed=20 + o, n=4, o=o)
    z = mogpr._normalise(values)[0]
    d = mogpr._pack(times - times.min(), z, torch.device("cpu"))
    p = torch.as_tensor(_random_params(seed=o * q, n=4, o=o, q=q)).requires_grad_(True)
    f = m.neg_log_lik(p, d, o, q)
    (g,) = torch.autograd.grad(f.sum(), p)
    f2, g2 = m.neg_log_lik_and_grad(p.detach(), d, o, q)
    torch.testing.assert_close(f2, f.detach(), rtol=1e-12, atol=1e-10)
    torch.testing.assert_close(g2, g, rtol=1e-9, atol=1e-10)
