import numpy as np
import pytest

from tests.conftest import make_cube, requires_cuda
from udf.s1_ndvi_udf import apply_datacube


@pytest.mark.gpu
@requires_cuda
def test_cuda_bf16_matches_cpu():
    cube = make_cube(ny=64, nx=64, nt=36)
    cpu = apply_datacube(cube, {"device": "cpu", "include_uncertainty": True})
    gpu = apply_datacube(cube, {"device": "cuda", "include_uncertainty": True})
    diff = np.abs(cpu.sel(bands="NDVI").values - gpu.sel(bands="NDVI").values)
    assert np.nanmax(diff) < 0.02 and np.nanmean(diff) < 0.005


def test_cuda_request_without_cuda_is_refused():
    import torch

    if torch.cuda.is_available():
        pytest.skip("CUDA present")
    with pytest.raises(RuntimeError, match="CUDA is not available"):
        apply_datacube(make_cube(), {"device": "cuda"})
