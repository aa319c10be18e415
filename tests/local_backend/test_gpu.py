"""GPU path (needs CUDA; deselected by default, run with ``-m gpu``)."""

from pathlib import Path

import numpy as np
import openeo
import pytest
import xarray as xr
from conftest import UDF_CODE, requires_project_udf

torch = pytest.importorskip("torch")
requires_cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="requires CUDA")


@pytest.mark.gpu
@requires_cuda
def test_udf_runs_on_cuda_in_worker(connection: openeo.Connection, tmp_path: Path) -> None:
    udf = openeo.UDF.from_file(UDF_CODE / "torch_device.py", context={"device": "cuda"})
    cube = connection.load_collection("S1NDVI_SAMPLE_CUBE", temporal_extent=["2018-05-01", "2018-07-01"])
    cube.download(tmp_path / "in.nc")
    cube.apply_dimension(process=udf, dimension="t").download(tmp_path / "out.nc")
    inp, out = xr.open_dataset(tmp_path / "in.nc"), xr.open_dataset(tmp_path / "out.nc")
    np.testing.assert_allclose(out["VV"].values, 2 * inp["VV"].values, rtol=1e-6, equal_nan=True)


@pytest.mark.gpu
@requires_cuda
@requires_project_udf
def test_project_udf_cuda_matches_cpu(connection: openeo.Connection, tmp_path: Path) -> None:
    from udf import UDF_PATH

    cube = connection.load_collection("S1NDVI_SAMPLE_CUBE", temporal_extent=["2018-03-01", "2018-09-01"])
    for device in ("cpu", "cuda"):
        udf = openeo.UDF.from_file(UDF_PATH, context={"device": device})
        cube.apply_dimension(process=udf, dimension="t").download(tmp_path / f"{device}.nc")
    cpu, gpu = xr.open_dataset(tmp_path / "cpu.nc"), xr.open_dataset(tmp_path / "cuda.nc")
    np.testing.assert_allclose(gpu["NDVI"].values, cpu["NDVI"].values, atol=2e-3, equal_nan=True)
