"""``s1ndvi export-udf --phenology``: a self-contained file that runs where the project cannot be imported."""

import numpy as np

from tests.udf.test_export import run_isolated
from tests.udf.test_phenology import cube_of, curve, grid
from udf.cli import main
from udf.phenology import PhenologyConfig, phenology_cube


def test_exported_phenology_udf_runs_without_the_project(tmp_path):
    out = tmp_path / "phenology_udf.py"
    assert main(["export-udf", "--phenology", str(out)]) == 0
    text = out.read_text()
    assert text.startswith("# /// script")
    assert "from udf" not in text and "import udf" not in text
    days = grid("2019-10-01", "2021-10-31", 10)
    cube = cube_of(days, curve(days, [("2019-12-01", "2020-05-01"), ("2020-06-01", "2020-09-01")]), ny=3, nx=4)
    cube = cube + np.random.default_rng(1).normal(0, 0.02, cube.shape)
    got = run_isolated(out, cube, tmp_path, context={"max_seasons": 2})
    want = phenology_cube(cube, PhenologyConfig(max_seasons=2))
    assert list(got["bands"].values) == list(want["bands"].values)
    assert np.isfinite(want.sel(bands="SOS_1", t="2019-11-01").values).all()  # not an all-NaN comparison
    np.testing.assert_allclose(got.transpose(*want.dims).values, want.values, equal_nan=True)
