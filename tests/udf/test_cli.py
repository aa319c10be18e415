import numpy as np

from udf.cli import main
from udf.ingest.cube_io import read_cube
from udf.ingest.sample import sample_files


def test_cube_predict_export(tmp_path, random_checkpoint):
    f = sample_files()
    cube_path = tmp_path / "cube.nc"
    assert main(["cube", "--s1", str(f["s1"]), "--s2", str(f["s2_10m"]), "--scl", str(f["s2_20m"]), "--period", "12D",
                 "--out", str(cube_path)]) == 0
    cube = read_cube(cube_path)
    assert list(cube["bands"].values) == ["VV", "VH", "NDVI"] and cube.sizes["y"] == 32
    pred_path = tmp_path / "pred.nc"
    assert main(["predict", "--cube", str(cube_path), "--model", str(random_checkpoint), "--out", str(pred_path),
                 "--uncertainty"]) == 0
    pred = read_cube(pred_path)
    assert list(pred["bands"].values) == ["NDVI", "NDVI_STD"]
    np.testing.assert_array_equal(pred["t"].values, cube["t"].values)
    assert np.isfinite(pred.values).all()
    out = tmp_path / "exported.py"
    assert main(["export-udf", str(out), "--model", str(random_checkpoint)]) == 0
    assert "def apply_datacube(cube: xarray.DataArray, context: dict) -> xarray.DataArray" in out.read_text()
