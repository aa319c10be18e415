import numpy as np

from udf.evaluation.baselines import choose_whittaker_lambda, linear_interpolation, whittaker


def test_linear_interpolation():
    nd = np.array([0.2, np.nan, 0.6, np.nan])[:, None, None]
    np.testing.assert_allclose(linear_interpolation(nd, np.array([0, 10, 20, 30.0]))[:, 0, 0], [0.2, 0.4, 0.6, 0.6])
    assert np.isnan(linear_interpolation(np.full((3, 1, 1), np.nan), np.arange(3.0))).all()


def test_whittaker_matches_dense_solve():
    rng = np.random.default_rng(0)
    days = np.cumsum(rng.integers(5, 15, 30)).astype(float)
    y = rng.random(30)
    y[rng.random(30) < 0.3] = np.nan
    lam = 7.0
    got = whittaker(y[:, None, None], days, lam)[:, 0, 0]
    w = np.isfinite(y).astype(float)
    d = np.zeros((28, 30))
    for i in range(28):
        h1, h2 = days[i + 1] - days[i], days[i + 2] - days[i + 1]
        c = 2 * 100 / (h1 + h2)
        d[i, i:i + 3] = [c / h1, -c * (1 / h1 + 1 / h2), c / h2]
    ref = np.linalg.solve(np.diag(w) + lam * d.T @ d, w * np.nan_to_num(y))
    np.testing.assert_allclose(got, np.clip(ref, -1, 1), atol=1e-5)
    one_obs = np.full((30, 1, 1), np.nan)
    one_obs[3] = 0.5
    assert np.isnan(whittaker(one_obs, days, lam)).all()


def test_whittaker_lambda_is_chosen_from_the_grid():
    rng = np.random.default_rng(0)
    t = np.arange(40) * 10.0
    truth = 0.5 + 0.3 * np.sin(t / 60)[:, None, None] + 0.03 * rng.standard_normal((40, 4, 4))
    lam, maes = choose_whittaker_lambda(truth, t, np.ones((4, 4), bool))
    assert lam in maes and maes[lam] == min(maes.values())
