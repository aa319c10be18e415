"""The self-contained UDF of ``s1ndvi export-udf`` (code + embedded weights, a large string) runs on dask workers.

Run through a server with two workers and small tiles, so that several tiles travel to both workers, in
``apply_dimension``, ``apply_neighborhood`` and a batch job; its output must equal the importing UDF's
(``udf.UDF_PATH``) run through the same graph.
"""

import time
from pathlib import Path
from typing import Iterator

import numpy as np
import openeo
import pytest
import xarray as xr
from conftest import PASSWORD, USER, Server, requires_project_udf, start_server

pytestmark = requires_project_udf

PERIOD = ["2018-03-01", "2018-07-01"]
TILE = 16
"""Server tile size: the 32 x 32 sample cube becomes four tiles."""


@pytest.fixture(scope="module")
def two_workers(tmp_path_factory: pytest.TempPathFactory, sample_data: Path, users_file: Path) -> Iterator[Server]:
    """A server with two dask workers and 16-pixel tiles."""
    srv = start_server(tmp_path_factory.mktemp("state2"), sample_data, users_file, workers=2,
                       extra=("--tile-size", str(TILE)))
    yield srv
    srv.stop()


@pytest.fixture(scope="module")
def exported(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The self-contained UDF generated from the current code (shipped weights embedded)."""
    from udf.export import export_udf

    path = export_udf(tmp_path_factory.mktemp("export") / "s1ndvi_udf.py")
    assert path.stat().st_size > 50_000  # code + embedded weights: distributed ships it as a graph node of its own
    return path


def _graph(connection: openeo.Connection, udf: openeo.UDF, how: str) -> openeo.DataCube:
    cube = connection.load_collection("S1NDVI_SAMPLE_CUBE", temporal_extent=PERIOD)
    if how == "apply_dimension":
        return cube.apply_dimension(process=udf, dimension="t")
    size = [{"dimension": d, "value": TILE, "unit": "px"} for d in ("x", "y")] + [{"dimension": "t", "value": None}]
    overlap = [{"dimension": d, "value": 1, "unit": "px"} for d in ("x", "y")]
    return cube.apply_neighborhood(process=udf, size=size, overlap=overlap)


def _batch(cube: openeo.DataCube, out: Path) -> Path:
    job = cube.create_job(out_format="netCDF")
    job.start()
    deadline = time.time() + 240
    while job.status() not in ("finished", "error", "canceled"):
        if time.time() > deadline:
            raise AssertionError(f"job {job.job_id} still {job.status()} after 240 s")
        time.sleep(0.5)
    assert job.status() == "finished", [e.message for e in job.logs()]
    files = job.get_results().download_files(out)
    return next(f for f in files if f.suffix == ".nc")


def _assert_same(got_file: Path, want_file: Path) -> None:
    got, want = xr.open_dataset(got_file), xr.open_dataset(want_file)
    assert [v for v in got.data_vars if v != "crs"] == ["NDVI"]
    assert got.sizes == want.sizes
    np.testing.assert_array_equal(got["t"].values, want["t"].values)
    np.testing.assert_allclose(got["NDVI"].values, want["NDVI"].values, atol=1e-6, equal_nan=True)
    assert np.isfinite(got["NDVI"].values).mean() > 0.9


@pytest.mark.parametrize("how", ["apply_dimension", "apply_neighborhood", "batch"])
def test_exported_udf_on_two_workers(two_workers: Server, exported: Path, tmp_path: Path, how: str) -> None:
    from udf import UDF_PATH

    conn = openeo.connect(two_workers.url).authenticate_basic(USER, PASSWORD)
    process = "apply_neighborhood" if how == "batch" else how
    outputs = {}
    for name, path in (("exported", exported), ("importing", UDF_PATH)):
        cube = _graph(conn, openeo.UDF.from_file(path, context={"device": "cpu"}), process)
        if how == "batch":
            outputs[name] = _batch(cube, tmp_path / name)
        else:
            outputs[name] = tmp_path / f"{name}.nc"
            cube.download(outputs[name])
    _assert_same(outputs["exported"], outputs["importing"])
    assert "tile(s)" in two_workers.log.read_text() and "dask workers" in two_workers.log.read_text()
