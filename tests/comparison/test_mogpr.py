"""Batched torch MOGPR: exact likelihood, exact masking, failures, and agreement with the committed GPy reference."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import xarray as xr

from comparison.errors import BandNotFound, MOGPRInputError
from comparison.mogpr import core as mogpr
from tests.conftest import requires_cuda

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
    from comparison.mogpr import gpy as mogpr_gpy

    times, values = _random_problem(seed=2, n=2, t=20)
    ref = mogpr_gpy.fit_predict_gpy(times, values, times, seed=0)
    np.testing.assert_allclose(mogpr.log_likelihood(times, values, ref.params), ref.log_likelihood, rtol=1e-8)
    mean, std = mogpr.predict_with_params(times, values, ref.params, times)
    np.testing.assert_allclose(mean, ref.mean, rtol=1e-6, atol=1e-8)
    np.testing.assert_allclose(std, ref.std, rtol=1e-6, atol=1e-8)


# --- the fast binned objective (comparison/mogpr/_binned.py) against the dense reference ---------------------------


def _binned(times: np.ndarray, values: np.ndarray, o: int) -> tuple[object, object, object]:
    import torch

    from comparison.mogpr import _binned as b

    d = mogpr._pack(times - times.min(), mogpr._normalise(values)[0], torch.device("cpu"))
    grid = b.Grid.from_times(torch.as_tensor(times - times.min()), o)
    return d, grid, b.bin_pixels(d, grid)


@pytest.mark.parametrize("o,q", [(2, 2), (3, 3), (2, 1)])
def test_binned_gradient_matches_autograd_of_dense_likelihood(o: int, q: int) -> None:
    import torch

    from comparison.mogpr import _binned as b
    from comparison.mogpr import _model as m

    times, values = _random_problem(seed=20 + o, n=4, o=o)
    d, grid, binned = _binned(times, values, o)
    p = torch.as_tensor(_random_params(seed=o * q, n=4, o=o, q=q)).requires_grad_(True)
    f = m.neg_log_lik(p, d, o, q)
    (g,) = torch.autograd.grad(f.sum(), p)
    f2, g2 = b.neg_log_lik_and_grad(p.detach(), [binned], grid, q)
    torch.testing.assert_close(f2, f.detach(), rtol=1e-12, atol=1e-10)
    torch.testing.assert_close(g2, g, rtol=1e-9, atol=1e-10)


def _five_point_gradient(times: np.ndarray, series: np.ndarray, p: np.ndarray, q: int) -> np.ndarray:
    """Gradient of :func:`_naive_loglik` by the five-point central difference (error O(h⁴))."""
    out = np.empty(len(p))
    for k in range(len(p)):
        h = 1e-3 * max(abs(p[k]), 1e-2)
        f = [_naive_loglik(times, series, p + j * h * np.eye(len(p))[k], q) for j in (-2, -1, 1, 2)]
        out[k] = (f[0] - 8 * f[1] + 8 * f[2] - f[3]) / (12 * h)
    return out


@pytest.mark.parametrize("o,q", [(2, 2), (3, 1)])
def test_binned_objective_matches_naive_numpy_loop(o: int, q: int) -> None:
    """Value and central differences of the textbook loop implementation, on non-integer and repeated dates."""
    import torch

    from comparison.mogpr import _binned as b

    times, values = _random_problem(seed=40 + o, n=3, t=12, o=o)
    times = times + np.random.default_rng(0).uniform(0, 1, len(times))  # fractional days: many distinct distances
    times[5] = times[4]  # two dates at the same time: distance 0 off the diagonal
    params = _random_params(seed=7, n=3, o=o, q=q)
    _, grid, binned = _binned(times, values, o)
    f, g = b.neg_log_lik_and_grad(torch.as_tensor(params), [binned], grid, q)
    for i in range(3):
        np.testing.assert_allclose(-f[i].item(), _naive_loglik(times, values[i], params[i], q), rtol=1e-12)
        np.testing.assert_allclose(g[i].numpy(), -_five_point_gradient(times, values[i], params[i], q), rtol=1e-7,
                                   atol=1e-8)


def _naive_predict(times: np.ndarray, series: np.ndarray, p: np.ndarray, q: int, t_new: np.ndarray
                   ) -> tuple[np.ndarray, np.ndarray]:
    """Textbook GP prediction (loops, numpy solve) in data units: mean and std with noise ``(S, O)``."""
    o = series.shape[1]
    mu, sd = np.nanmean(series, 0), np.nanstd(series, 0)
    z = (series - mu) / sd
    obs = [(times[i], j, z[i, j]) for i in range(len(times)) for j in range(o) if np.isfinite(z[i, j])]
    blk = [(p[c * (2 + 2 * o)], p[c * (2 + 2 * o) + 1], p[c * (2 + 2 * o) + 2 : c * (2 + 2 * o) + 2 + o],
            p[c * (2 + 2 * o) + 2 + o : (c + 1) * (2 + 2 * o)]) for c in range(q)]

    def k(ta: float, oa: int, tb: float, ob: int) -> float:
        out = 0.0
        for var, ls, w, kap in blk:
            r = math.sqrt(3) * abs(ta - tb) / ls
            out += var * (1 + r) * math.exp(-r) * (w[oa] * w[ob] + (kap[oa] if oa == ob else 0.0))
        return out

    kk = np.array([[k(ta, oa, tb, ob) for tb, ob, _ in obs] for ta, oa, _ in obs])
    kk += np.diag([p[q * (2 + 2 * o) + oa] + 1e-8 for _, oa, _ in obs])
    y = np.array([v for _, _, v in obs])
    mean, std = np.empty((len(t_new), o)), np.empty((len(t_new), o))
    for s_, ts in enumerate(t_new):
        for a in range(o):
            ks = np.array([k(ts, a, tb, ob) for tb, ob, _ in obs])
            mean[s_, a] = ks @ np.linalg.solve(kk, y) * sd[a] + mu[a]
            var = k(ts, a, ts, a) - ks @ np.linalg.solve(kk, ks) + p[q * (2 + 2 * o) + a]
            std[s_, a] = math.sqrt(var) * sd[a]
    return mean, std


def test_binned_prediction_matches_naive_numpy_loop() -> None:
    times, values = _random_problem(seed=31, n=3, t=12, o=3)
    times = times + np.random.default_rng(1).uniform(0, 1, len(times))
    times[7] = times[6]
    params = _random_params(seed=5, n=3, o=3, q=2)
    t_new = np.r_[times[:3], times.max() + 7.5, times.min() - 2.25]
    mean, std = mogpr.predict_with_params(times, values, params, t_new, n_kernels=2)
    for i in range(3):
        want_mean, want_std = _naive_predict(times, values[i], params[i], 2, t_new)
        np.testing.assert_allclose(mean[i], want_mean, rtol=1e-10, atol=1e-12)
        np.testing.assert_allclose(std[i], want_std, rtol=1e-9, atol=1e-12)


def test_binned_covariance_equals_dense_covariance_and_padding() -> None:
    import torch

    from comparison.mogpr import _binned as b
    from comparison.mogpr import _model as m

    times, values = _random_problem(seed=9, n=3, t=15, o=3)
    d, grid, binned = _binned(times, values, 3)
    p = torch.as_tensor(_random_params(seed=1, n=3, o=3, q=2))
    tab = b.bin_table(m.unpack(p, 3, 2), grid)
    n, mm = binned.y.shape
    k_binned = torch.gather(tab.values, 1, binned.bins).view(n, mm, mm)
    torch.testing.assert_close(k_binned, m.train_cov(m.unpack(p, 3, 2), d), rtol=1e-14, atol=1e-15)
    sub = binned.take(torch.tensor([2, 0]))  # trimmed to the most valid of the two
    assert sub.y.shape[1] == int(d.valid[[2, 0]].sum(-1).max())
    f_sub, g_sub = b.neg_log_lik_and_grad(p[[2, 0]], [sub], grid, 2)
    f_all, g_all = b.neg_log_lik_and_grad(p, [binned], grid, 2)
    f_split, g_split = b.neg_log_lik_and_grad(p, [binned.take(torch.tensor([0])), binned.take(torch.tensor([1, 2]))],
                                              grid, 2)  # chunks padded to their own sizes
    torch.testing.assert_close(f_split, f_all, rtol=1e-13, atol=0)
    torch.testing.assert_close(g_split, g_all, rtol=1e-10, atol=1e-12)
    torch.testing.assert_close(f_sub, f_all[[2, 0]], rtol=1e-13, atol=0)
    torch.testing.assert_close(g_sub, g_all[[2, 0]], rtol=1e-10, atol=1e-12)


def test_binned_objective_not_positive_definite_is_inf() -> None:
    import torch

    from comparison.mogpr import _binned as b

    times, values = _random_problem(seed=4, n=2)
    _, grid, binned = _binned(times, values, 2)
    p = torch.as_tensor(_random_params(seed=3, n=2, o=2, q=2))
    p[1, 2 + 2 : 2 + 4] = -5.0  # negative kappa: B not PSD
    p[1, -2:] = 0.0
    p[1, 2 + 2 + 6 : 2 + 4 + 6] = -5.0
    f, g = b.neg_log_lik_and_grad(p, [binned], grid, 2)
    assert np.isfinite(f[0].item()) and torch.isfinite(g[0]).all()
    assert f[1].item() == math.inf and torch.isnan(g[1]).all()


def test_schur_inverse_equals_cholesky_inverse() -> None:
    import torch

    from comparison.mogpr import _binned as b

    rng = torch.Generator().manual_seed(3)
    for m in (b.SCHUR_MIN_SIZE, 131):
        a = torch.randn(4, m, m, generator=rng, dtype=torch.float64)
        k = a @ a.mT / m + 1e-3 * torch.eye(m, dtype=torch.float64)
        k[3, 0, 0] = -1.0  # not positive definite: leading block fails
        k[2, -1, -1] = -1.0  # not positive definite: Schur complement fails
        inv, logdet, ok = b._inverse_logdet(k)
        want_inv, want_logdet, want_ok = b._chol_inverse(k)
        assert ok.tolist() == want_ok.tolist() == [True, True, False, False]
        torch.testing.assert_close(inv[:2], want_inv[:2], rtol=1e-9, atol=1e-9)
        torch.testing.assert_close(logdet[:2], want_logdet[:2], rtol=1e-12, atol=1e-12)
        torch.testing.assert_close(inv[0], inv[0].mT, rtol=1e-12, atol=1e-12)


@pytest.mark.gpu
@requires_cuda
def test_binned_objective_on_cuda_equals_cpu() -> None:
    import torch

    from comparison.mogpr import _binned as b

    times, values = _random_problem(seed=8, n=5, t=60)  # about 85 slots: the Schur path
    params = torch.as_tensor(_random_params(seed=2, n=5, o=2, q=2))
    out = []
    for dev in ("cpu", "cuda"):
        d = mogpr._pack(times - times.min(), mogpr._normalise(values)[0], torch.device(dev))
        grid = b.Grid.from_times(torch.as_tensor(times - times.min(), device=dev), 2)
        f, g = b.neg_log_lik_and_grad(params.to(dev), [b.bin_pixels(d, grid)], grid, 2)
        out.append((f.cpu(), g.cpu()))
    torch.testing.assert_close(out[1][0], out[0][0], rtol=1e-12, atol=1e-10)
    torch.testing.assert_close(out[1][1], out[0][1], rtol=1e-9, atol=1e-9)


def test_pixel_problems_chunks_follow_bind_and_keep() -> None:
    """Pool refills (bind extends), shrinking and chunk merges (keep) evaluate the same as one fresh chunk."""
    import torch

    from comparison.mogpr import _fit as fit
    from comparison.mogpr import _model as m

    times, values = _random_problem(seed=13, n=20, t=30)
    d, grid, _ = _binned(times, values, 2)
    x = m.to_raw(torch.as_tensor(_random_params(seed=4, n=20, o=2, q=2)), 2, 2).numpy()
    pool = fit.PixelProblems(d, np.arange(20)[::-1].copy(), grid, 2, chunk_entries=1)  # 8-row chunks
    pool.bind(np.arange(12))
    pool.bind(np.arange(20))  # extends the pool: only rows 12..19 are binned
    assert [c.y.shape[0] for c in pool.chunks] == [6, 6, 8]
    keep = np.array([0, 2, 3, 9, 12, 15, 19])
    pool.keep(keep)
    assert sum(c.y.shape[0] for c in pool.chunks) == len(keep) and len(pool.chunks) == 1  # merged
    fresh = fit.PixelProblems(d, np.arange(20)[::-1].copy(), grid, 2, chunk_entries=10**9)
    fresh.bind(keep)
    f, g = pool.evaluate(x[keep])
    f_ref, g_ref = fresh.evaluate(x[keep])
    np.testing.assert_allclose(f, f_ref, rtol=1e-13)
    np.testing.assert_allclose(g, g_ref, rtol=1e-10, atol=1e-12)


# --- the batched L-BFGS (comparison/mogpr/_optim.py, _mogpr_linesearch.py) -----------------------------------------


class _Rosenbrock:
    """Scaled Rosenbrock problems, one per row, as a pool-based ``Problems``."""

    def __init__(self, scale: np.ndarray) -> None:
        self.scale, self.cur = scale, scale[:0]

    def bind(self, ids: np.ndarray) -> None:
        self.cur = self.scale[ids]

    def keep(self, rows: np.ndarray) -> None:
        self.cur = self.cur[rows]

    def evaluate(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        a = self.cur[:, None]
        t = x[:, 1:] - x[:, :-1] ** 2
        f = (a * t**2).sum(-1) + ((1 - x) ** 2).sum(-1)
        g = -2 * (1 - x)
        g[:, 1:] += 2 * a * t
        g[:, :-1] += -4 * a * t * x[:, :-1]
        return np.where(np.abs(x).max(-1) > 50, np.inf, f), g  # an "infeasible" region, like a non-PD covariance


@pytest.mark.parametrize("pool", [3, 64])
def test_lbfgs_pool_solves_every_problem_in_order(pool: int) -> None:
    from comparison.mogpr._optim import LBFGSOptions, minimize

    n = 10
    x0 = np.full((n, 6), -0.5)
    x0[3] = 100.0  # not finite at the start
    done: list[int] = []
    res = minimize(_Rosenbrock(np.linspace(1.0, 20.0, n)), x0, LBFGSOptions(pool=pool), done.extend)
    ok = np.arange(n) != 3
    np.testing.assert_allclose(res.x[ok], 1.0, rtol=0, atol=1e-4)
    assert res.f[3] == math.inf and res.n_iter[3] == 0
    assert sorted(done) == list(range(n))
    assert (res.n_eval[ok] >= res.n_iter[ok]).all() and (res.n_iter[ok] > 5).all()


def test_compact_direction_equals_two_loop_recursion() -> None:
    from comparison.mogpr._optim import _direction

    rng = np.random.default_rng(0)
    n, m, p = 4, 5, 7
    s = rng.standard_normal((n, m, p))
    y = s + 0.3 * rng.standard_normal((n, m, p))  # sᵀy > 0
    s[1, :2], y[1, :2] = 0.0, 0.0  # empty slots
    s[2, 3], y[2, 3] = 0.0, 0.0
    g = rng.standard_normal((n, p))
    gamma = rng.uniform(0.1, 1.1, n)
    want = []
    for i in range(n):  # Nocedal & Wright Alg. 7.4, skipping empty pairs
        q, alphas = g[i].copy(), {}
        pairs = [j for j in range(m) if np.abs(s[i, j]).sum() > 0]
        for j in reversed(pairs):
            alphas[j] = (s[i, j] @ q) / (y[i, j] @ s[i, j])
            q -= alphas[j] * y[i, j]
        r = gamma[i] * q
        for j in pairs:
            r += s[i, j] * (alphas[j] - (y[i, j] @ r) / (y[i, j] @ s[i, j]))
        want.append(-r)
    np.testing.assert_allclose(_direction(g, s, y, gamma), np.stack(want), rtol=1e-12, atol=1e-12)


def test_line_search_accepts_strong_wolfe_points() -> None:
    from comparison.mogpr._linesearch import C1, C2, Search, advance

    # phi(t) = f(x + t d) for f(x) = (x - c)², along d = 1 from x = 0: rows need extrapolation, zoom or nothing.
    c = np.array([0.5, 1e-3, 40.0])
    d = np.ones((3, 1))
    f0, g0 = c**2, (-2 * c)[:, None]
    s = Search.begin(f0, g0, d, np.ones(3))
    accepted = np.zeros(3, dtype=bool)
    for _ in range(20):
        t = s.step.copy()
        ft, gt = (t - c) ** 2, (2 * (t - c))[:, None]
        done, at_lo = advance(s, ft, gt, d)
        assert not at_lo.any()
        newly = done & ~accepted
        assert (ft[newly] <= f0[newly] + C1 * t[newly] * s.slope0[newly]).all()
        assert (np.abs(gt[newly, 0]) <= C2 * np.abs(s.slope0[newly])).all()
        accepted |= done
        if accepted.all():
            break
    assert accepted.all()


# --- fitting ----------------------------------------------------------------------------------------------------------


def test_fit_with_worker_threads_matches_one_thread() -> None:
    import torch

    r = _ref("pixels")
    px = [1, 3, 6, 9, 13]
    before = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        one = mogpr.fit_predict(r["times"], r["values"][px], r["predict_times"], n_restarts=2, chunk_size=3)
        torch.set_num_threads(2)
        two = mogpr.fit_predict(r["times"], r["values"][px], r["predict_times"], n_restarts=2, chunk_size=3)
    finally:
        torch.set_num_threads(before)
    assert torch.get_num_threads() == before
    np.testing.assert_allclose(two.log_likelihood, one.log_likelihood, rtol=0, atol=1e-4)  # ftol-level stops
    np.testing.assert_allclose(two.mean, one.mean, rtol=0, atol=1e-4)


def test_progress_counts_pixels() -> None:
    times, values = _random_problem(seed=12, n=5, t=14)
    values[2, :, 0] = np.nan  # not fitted: not reported as progress
    calls: list[tuple[int, int]] = []
    mogpr.fit_predict(times, values, max_iter=10, n_restarts=2, chunk_size=2,
                      progress=lambda done, total: calls.append((done, total)))
    assert calls[-1] == (4, 4) and all(b == 4 for _, b in calls)
    assert [a for a, _ in calls] == sorted(a for a, _ in calls)
