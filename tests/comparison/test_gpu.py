"""MOGPR on CUDA (needs a GPU; deselected by default, run with ``-m gpu``): same numbers as on the CPU, float64."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from comparison.mogpr import core as mogpr
from tests.conftest import requires_cuda

REF = Path(__file__).resolve().parents[1] / "data" / "mogpr_reference" / "reference.npz"


def _pixels() -> dict[str, np.ndarray]:
    with np.load(REF) as f:
        return {k.split("/", 1)[1]: f[k] for k in f.files if k.startswith("pixels/")}


@pytest.mark.gpu
@requires_cuda
def test_cuda_likelihood_and_prediction_equal_cpu_at_fixed_parameters() -> None:
    r = _pixels()
    params = r["params"][:, 0]
    ll_cpu = mogpr.log_likelihood(r["times"], r["values"], params, device="cpu")
    ll_gpu = mogpr.log_likelihood(r["times"], r["values"], params, device="cuda")
    np.testing.assert_allclose(ll_gpu, ll_cpu, rtol=1e-10)
    m_cpu, s_cpu = mogpr.predict_with_params(r["times"], r["values"], params, r["predict_times"], device="cpu")
    m_gpu, s_gpu = mogpr.predict_with_params(r["times"], r["values"], params, r["predict_times"], device="cuda")
    np.testing.assert_allclose(m_gpu, m_cpu, atol=1e-9)
    np.testing.assert_allclose(s_gpu, s_cpu, atol=1e-9)


@pytest.mark.gpu
@requires_cuda
def test_cuda_fit_reaches_the_cpu_optimum() -> None:
    r = _pixels()
    cpu = mogpr.fit_predict(r["times"], r["values"], r["predict_times"], n_restarts=3, device="cpu")
    gpu = mogpr.fit_predict(r["times"], r["values"], r["predict_times"], n_restarts=3, device="cuda")
    assert (gpu.failed == cpu.failed).all()
    same = np.abs(gpu.log_likelihood - cpu.log_likelihood) < 1e-3
    assert same.mean() >= 0.75, gpu.log_likelihood - cpu.log_likelihood
    rmse = np.sqrt(np.nanmean((gpu.mean[same, :, 1] - cpu.mean[same, :, 1]) ** 2))
    assert rmse < 1e-3, rmse
