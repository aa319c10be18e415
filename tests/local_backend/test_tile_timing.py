"""Per-tile stage timers: the reader, the UDF call and the writer of a tile add their seconds to the tile's JSON."""

import json
import time
from pathlib import Path

import numpy as np

from local_backend.tiles.timing import STAGES, TileTimer, current, stage, summarise, timed_tile


def test_stage_adds_to_the_tile_of_this_thread_only() -> None:
    with stage("read"):  # outside a timed tile: nothing to add to, no error
        pass
    with timed_tile() as timer:
        assert current() is timer
        with stage("udf"):
            time.sleep(0.05)
        with stage("udf"):
            time.sleep(0.02)
    assert current() is None
    assert 0.06 < timer.seconds["udf"] < 1.0 and timer.seconds["read"] == 0.0
    described = timer.describe()
    assert set(described["stages"]) == set(STAGES) and described["ended"] >= described["started"]


def test_summarise_sums_stages_and_spans_the_tiles() -> None:
    rows = [{"started": 10.0, "ended": 12.0, "cpu_s": 1.5, "stages": {"read": 0.5, "udf": 1.0}},
            {"started": 11.0, "ended": 15.0, "cpu_s": 3.0, "stages": {"read": 0.25, "udf": 3.0, "write": 0.5}},
            {}]
    summary = summarise(rows)
    assert summary["tiles"] == 2 and summary["span_s"] == 5.0 and summary["tile_s"] == 6.0
    assert summary["busy_s"]["read"] == 0.75 and summary["busy_s"]["udf"] == 4.0 and summary["busy_s"]["write"] == 0.5
    assert summary["cpu_s"] == 4.5
    assert summarise([])["span_s"] == 0.0


def test_run_tile_records_read_decode_udf_write(tmp_path: Path) -> None:
    import dask.array as da
    import zarr

    from local_backend.cubes.lazy_io import CubeSource, SourceInfo, lazy_cube
    from local_backend.tiles.jobs import _task, run_tile
    from local_backend.tiles.store import TileStore
    from local_backend.tiles.windows import windows
    from udf.ingest.decode import Encoding

    values = np.arange(4 * 32 * 32, dtype=np.float32).reshape(4, 32, 32)
    zarr.open_array(str(tmp_path / "s.zarr" / "B1"), mode="w", shape=values.shape, dtype="float32",
                    chunks=(4, 16, 16))[:] = values
    source = CubeSource(kind="zarr", files=(str(tmp_path / "s.zarr"),), variables=("B1",), axes=(("t", "y", "x"),),
                        encodings=(Encoding(),), shape=values.shape)
    coords = {"t": np.arange(4).astype("M8[D]").astype("M8[ns]"), "y": np.arange(32.0), "x": np.arange(32.0)}
    cube = lazy_cube(SourceInfo(source=source, bands=("B1",), coords=coords, crs=None, chunks=(16, 16)))
    assert isinstance(cube.data, da.Array)
    code = "import xarray\n\ndef apply_datacube(cube: xarray.DataArray, context: dict) -> xarray.DataArray:\n" \
           "    import time\n    time.sleep(0.05)\n    return cube * 2\n"
    rows = windows(32, 16, 4)
    store = TileStore(tmp_path / "tiles")
    meta = run_tile(_task(cube, rows[1], rows[0], (1, 0), store), code, None)
    stages = meta["timing"]["stages"]
    assert stages["udf"] >= 0.05 and stages["read"] > 0 and stages["decode"] >= 0 and stages["write"] > 0
    on_disk = json.loads(store.stem(1, 0).with_suffix(".json").read_text())
    assert on_disk["timing"] == meta["timing"]
    written = np.load(store.stem(1, 0).with_suffix(".npy"))
    np.testing.assert_array_equal(written[:, 0], 2 * values[:, 16:32, 0:16])
    assert isinstance(TileTimer().describe()["cpu_s"], float)
