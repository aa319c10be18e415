"""Lazy collections: nothing is read at load_collection, a window reads only that window, processes stay lazy."""

from pathlib import Path
from typing import Any, Iterator

import dask
import numpy as np
import pytest
import xarray as xr
from openeo_pg_parser_networkx.pg_schema import BoundingBox

from local_backend.context import Execution, activate, deactivate
from local_backend.cubes import lazy_io
from local_backend.cubes.collections import LocalCollectionCatalog
from local_backend.graph import implementations
from local_backend.processes.load import load_collection
from local_backend.tiles.store import TileStore

EPSG = 32631


def _cube_dataset(size: int, step: float, steps: int = 6, seed: int = 0) -> xr.Dataset:
    from pyproj import CRS

    rng = np.random.default_rng(seed)
    coords = {"t": np.array("2020-01-01", dtype="datetime64[ns]") + np.arange(steps) * np.timedelta64(10, "D"),
              "y": 5600000.0 - step * (np.arange(size) + 0.5), "x": 500000.0 + step * (np.arange(size) + 0.5)}
    bands = {name: (("t", "y", "x"), rng.uniform(0.01, 0.5, size=(steps, size, size)).astype(np.float32))
             for name in ("VV", "VH", "NDVI")}
    ds = xr.Dataset(bands, coords=coords)
    ds["crs"] = xr.DataArray(0, attrs={"crs_wkt": CRS.from_epsg(EPSG).to_wkt()})
    return ds


@pytest.fixture
def reads(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, tuple[slice, ...]]]:
    """Every window read from a netCDF file or zarr store in this process: ``(variable, key in stored order)``."""
    seen: list[tuple[str, tuple[slice, ...]]] = []
    for name in ("_read_netcdf", "_read_zarr"):
        original = getattr(lazy_io, name)

        def recording(path: str, variable: str, key: tuple[slice, ...], original: Any = original) -> np.ndarray:
            seen.append((variable, key))
            return np.asarray(original(path, variable, key))

        monkeypatch.setattr(lazy_io, name, recording)
    return seen


@pytest.fixture
def execution(tmp_path: Path) -> Iterator[Execution]:
    """A batch evaluation (no dask cluster) over a netCDF collection (64 px, 10 m) and a zarr one (32 px, 20 m)."""
    data = tmp_path / "data"
    data.mkdir()
    _cube_dataset(64, 10.0).to_netcdf(data / "FINE.nc")
    _cube_dataset(32, 20.0, seed=1).to_zarr(data / "COARSE.zarr", zarr_format=2)
    run = Execution(catalog=LocalCollectionCatalog(data), output_dir=tmp_path / "out", sync=False,
                    max_sync_bytes=1024)
    token = activate(run)
    yield run
    deactivate(token)


def _window(x0: float, y0: float, x1: float, y1: float) -> dict[str, Any]:
    return {"west": x0, "south": y0, "east": x1, "north": y1, "crs": EPSG}


def test_load_reads_nothing_and_a_window_reads_only_itself(execution: Execution, reads: list) -> None:
    whole = load_collection("FINE")
    assert whole.nbytes > 100 * execution.max_sync_bytes  # far more than a synchronous request may load
    cube = load_collection("FINE", spatial_extent=_window(500100, 5599500, 500220, 5599600), bands=["VV", "NDVI"])
    assert dask.is_dask_collection(whole) and dask.is_dask_collection(cube) and reads == []
    assert dict(cube.sizes) == {"t": 6, "bands": 2, "y": 10, "x": 12}
    values = cube.values
    expected = _cube_dataset(64, 10.0)[["VV", "NDVI"]].to_dataarray("bands").transpose("t", "bands", "y", "x")
    np.testing.assert_array_equal(values, expected.isel(y=slice(40, 50), x=slice(10, 22)).values)
    assert sorted(v for v, _ in reads) == ["NDVI", "VV"]  # one read per band, of exactly the window
    assert all(key[1:] == (slice(40, 50), slice(10, 22)) for _, key in reads)


def test_zarr_window_and_time_filter_read_only_their_part(execution: Execution, reads: list) -> None:
    cube = load_collection("COARSE", spatial_extent=_window(500000, 5599400, 500100, 5599800),
                           temporal_extent=["2020-01-11", "2020-01-31"], bands=["VH"])
    assert reads == []
    assert cube.sizes["t"] == 2 and cube.sizes["y"] == 20 and cube.sizes["x"] == 5
    cube.compute()
    assert reads == [("VH", (slice(1, 3), slice(10, 30), slice(0, 5)))]


def test_filter_merge_resample_stay_lazy(execution: Execution, reads: list) -> None:
    processes = implementations()
    fine = load_collection("FINE", bands=["VV", "VH"])
    coarse = load_collection("COARSE", bands=["NDVI"])
    resampled = processes["resample_cube_spatial"](data=fine, target=coarse, method="average")
    merged = processes["merge_cubes"](cube1=resampled, cube2=coarse)
    clipped = processes["filter_bbox"](data=merged, extent=BoundingBox(**_window(500000, 5599680, 500640, 5600000)))
    for cube in (resampled, merged, clipped):
        assert dask.is_dask_collection(cube)
    assert reads == []
    assert list(merged["bands"].values) == ["VV", "VH", "NDVI"] and merged.sizes["x"] == 32
    corner = merged.isel(y=slice(0, 4), x=slice(0, 4)).compute()
    assert np.isfinite(corner.values).all()
    rows_read = {key[1].stop for _, key in reads}
    assert reads and max(rows_read) <= lazy_io.CHUNK  # the first chunk row only, not the whole collection


def test_tiled_udf_reads_each_tile_window(execution: Execution, reads: list) -> None:
    from local_backend.processes.udf import udf_apply_neighborhood

    code = (Path(__file__).with_name("udf_code") / "scale_labels.py").read_text()
    cube = load_collection("FINE", bands=["VV"])
    size = [{"dimension": d, "value": 16, "unit": "px"} for d in ("x", "y")]
    overlap = [{"dimension": d, "value": 2, "unit": "px"} for d in ("x", "y")]
    out = udf_apply_neighborhood(cube, size=size, udf=code, udf_context={"factor": 3}, overlap=overlap)
    assert len(reads) == 16  # every tile read its own window while it ran, once
    assert all(k[1].stop - k[1].start <= 20 and k[2].stop - k[2].start <= 20 for _, k in reads)
    assert dask.is_dask_collection(out) and len(list(execution.tiles_root().glob("*/*.npy"))) == 16
    np.testing.assert_allclose(out.values, 3 * cube.values, rtol=1e-6)


def test_canceled_tiles_stop_between_tiles_and_resume(execution: Execution, reads: list) -> None:
    from local_backend.errors import ExecutionCanceled
    from local_backend.limits import Guard
    from local_backend.processes.udf import udf_apply_neighborhood

    code = (Path(__file__).with_name("udf_code") / "scale_labels.py").read_text()
    size = [{"dimension": d, "value": 16, "unit": "px"} for d in ("x", "y")]

    def run() -> xr.DataArray:
        cube = load_collection("FINE", bands=["VV"])
        return udf_apply_neighborhood(cube, size=size, udf=code, udf_context={"factor": 3}, overlap=[])

    def cancel_after_three(percent: float) -> None:
        if percent >= 3 * 100 / 16:
            execution.guard.cancel("the job was canceled by the user")

    execution.progress = cancel_after_three
    with pytest.raises(ExecutionCanceled, match="canceled by the user"):
        run()
    assert len(reads) == 3 and len(list(execution.tiles_root().glob("*/*.json"))) == 3  # stopped between tiles
    execution.guard, execution.progress, execution.steps = Guard(sync=False), None, 0  # the job started again
    out = run()
    assert len(reads) == 16  # the 13 missing tiles only
    np.testing.assert_allclose(out.values, 3 * load_collection("FINE", bands=["VV"]).values, rtol=1e-6)


def test_batch_size_limit_refuses_a_lazy_load_before_reading(execution: Execution, reads: list) -> None:
    from openeo_driver.errors import OpenEOApiException

    from local_backend.executor import evaluate_graph
    from local_backend.limits import Guard

    graph = {"load": {"process_id": "load_collection", "arguments": {"id": "FINE"}},
             "save": {"process_id": "save_result", "arguments": {"data": {"from_node": "load"}, "format": "netCDF"},
                      "result": True}}
    execution.guard = Guard(sync=False, max_bytes=200_000)  # FINE is 6 x 3 x 64 x 64 float32: 288 KiB
    with pytest.raises(OpenEOApiException, match=r"'load_collection' \(0.3 MiB.*--max-batch-mb") as info:
        evaluate_graph(graph, execution)
    assert info.value.code == "ProcessGraphComplexity" and info.value.status_code == 413
    assert reads == [] and not execution.outputs  # estimated from the lazy shape: nothing was read
    execution.guard = Guard(sync=False, max_bytes=400_000)
    evaluate_graph(graph, execution)
    assert len(reads) == 3 and [p.name for p in execution.outputs] == ["openEO.nc"]


def test_tile_mosaic_windows(tmp_path: Path) -> None:
    rng = np.random.default_rng(3)
    whole = xr.DataArray(rng.normal(size=(3, 2, 10, 7)).astype(np.float32), dims=("t", "bands", "y", "x"),
                         coords={"t": np.arange(3).astype("datetime64[D]").astype("datetime64[ns]"),
                                 "bands": ["A", "B"], "y": np.arange(10.0), "x": np.arange(7.0)})
    rows, cols = [(0, 4), (4, 4), (8, 2)], [(0, 3), (3, 3), (6, 1)]
    store = TileStore(tmp_path / "step")
    for i, (y0, ny) in enumerate(rows):
        for j, (x0, nx) in enumerate(cols):
            store.write(whole.isel(y=slice(y0, y0 + ny), x=slice(x0, x0 + nx)), store.stem(i, j), 0.0)
    lazy = store.mosaic(rows, cols, whole["y"].values, whole["x"].values, {"crs": "EPSG:1"}, "test")
    assert lazy.chunks[2:] == ((4, 4, 2), (3, 3, 1)) and lazy.attrs["crs"] == "EPSG:1"
    xr.testing.assert_identical(lazy.compute().drop_attrs().rename(None), whole)
    for index in [(slice(None), 1, slice(3, 9), slice(2, 6)), (0, slice(None), slice(None, None, 3), -1),
                  (slice(2, 0, -1), 0, [1, 5, 9], slice(6, 0, -2))]:
        np.testing.assert_array_equal(store_view(lazy)[index], whole.values[index])


def store_view(lazy: xr.DataArray) -> Any:
    """The mosaic reader behind a lazy tiled result."""
    graph = dict(lazy.data.__dask_graph__())
    return next(v for v in graph.values() if type(v).__name__ == "TileMosaic")


def test_netcdf_written_in_blocks(tmp_path: Path) -> None:
    from local_backend.processes.save import write_netcdf
    from local_backend.tiles.stream_write import BLOCK

    size = BLOCK + 44
    cube = _cube_dataset(size, 10.0, steps=2)[["VV", "NDVI"]].to_dataarray("bands").transpose("t", "bands", "y", "x")
    cube.attrs["crs"] = f"EPSG:{EPSG}"
    write_netcdf(cube.chunk({"y": 100, "x": 100}), tmp_path / "out.nc")
    out = xr.open_dataset(tmp_path / "out.nc")
    assert out["VV"].dims == ("t", "y", "x") and out["VV"].encoding["chunksizes"] == (2, BLOCK, BLOCK)
    np.testing.assert_array_equal(out["NDVI"].values, cube.sel(bands="NDVI").values)
    np.testing.assert_array_equal(out["t"].values, cube["t"].values)


def test_gtiff_one_file_per_date_written_in_blocks(tmp_path: Path) -> None:
    import rasterio

    from local_backend.processes.save import write_gtiff
    from local_backend.tiles.stream_write import BLOCK

    cube = _cube_dataset(BLOCK + 20, 10.0, steps=2)[["VV", "VH"]].to_dataarray("bands").transpose("t", "bands", "y", "x")
    cube.attrs["crs"] = f"EPSG:{EPSG}"
    paths = write_gtiff(cube.chunk({"y": 64, "x": 64}), tmp_path)
    assert [p.name for p in paths] == ["openEO_2020-01-01.tif", "openEO_2020-01-11.tif"]
    with rasterio.open(paths[1]) as src:
        assert src.descriptions == ("VV", "VH") and src.crs.to_epsg() == EPSG and src.block_shapes[0] == (BLOCK, BLOCK)
        np.testing.assert_array_equal(src.read(), cube.isel(t=1).values)
        assert src.transform.c == 500000.0 and src.transform.f == 5600000.0 and src.transform.a == 10.0
