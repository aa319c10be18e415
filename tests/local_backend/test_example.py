"""The example script (cloud-style graph built with the stock client) runs unchanged on the local backend."""

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import xarray as xr
from conftest import PASSWORD, REPO, UDF_CODE, USER, Server, requires_project_udf

EXAMPLE = REPO / "examples" / "s1_s2_fusion.py"


def _run_example(server: Server, out: Path, *extra: str) -> xr.Dataset:
    """Run the example into an empty folder; ``--out`` must be the only file it writes (sync and batch alike)."""
    out.parent.mkdir(parents=True, exist_ok=True)
    cmd = [sys.executable, str(EXAMPLE), "--url", server.url, "--user", USER, "--password", PASSWORD,
           "--out", str(out), *extra]
    done = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    assert sorted(p.name for p in out.parent.iterdir()) == [out.name]
    return xr.open_dataset(out)


@pytest.mark.parametrize("batch", [False, True])
def test_example_graph_with_label_checking_udf(server: Server, tmp_path: Path, batch: bool) -> None:
    """The whole graph (sar_backscatter, SCL-masked NDVI, dekads, resampling, merge, apply_neighborhood)."""
    extra = ("--batch",) if batch else ()
    ds = _run_example(server, tmp_path / "out" / "merged.nc", "--udf", str(UDF_CODE / "scale_labels.py"), *extra)
    assert {"VV", "VH", "NDVI"} <= set(ds.data_vars)
    t = ds["t"].values.astype("datetime64[D]").astype(str)
    assert t[0] == "2018-03-01" and t[1] == "2018-03-11" and t[2] == "2018-03-21" and t[3] == "2018-04-01"
    assert ds.sizes["x"] == 32 and ds.sizes["y"] == 32  # the S1 20 m grid
    assert 0 < float(np.nanmedian(ds["VV"].values)) < 1  # linear power, untouched by sar_backscatter
    ndvi = ds["NDVI"].values
    assert np.isfinite(ndvi).mean() > 0.3 and np.nanmin(ndvi) >= -1 and np.nanmax(ndvi) <= 1
    assert "crs_wkt" in ds["crs"].attrs and "32631" in ds["crs"].attrs["crs_wkt"]


@requires_project_udf
@pytest.mark.parametrize("batch", [False, pytest.param(True, marks=pytest.mark.slow)])
def test_example_with_project_udf(server: Server, tmp_path: Path, batch: bool) -> None:
    extra = ("--batch",) if batch else ()
    ds = _run_example(server, tmp_path / "out" / "fused.nc", *extra)
    assert list(v for v in ds.data_vars if v != "crs") == ["NDVI"]
    ndvi = ds["NDVI"].values
    assert np.isfinite(ndvi).mean() > 0.9 and np.nanmin(ndvi) >= -1 and np.nanmax(ndvi) <= 1
