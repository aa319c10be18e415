"""The DL model through the local openEO backend (stock client, process graph) equals a direct UDF call."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("openeo_driver")

from comparison.compare.core import prepare_cube  # noqa: E402
from comparison.compare.methods import dl_method  # noqa: E402
from comparison.compare.via_backend import LocalBackendRun, backend_dl_method, cube_key  # noqa: E402
from tests.conftest import make_cube  # noqa: E402


def test_backend_result_equals_direct_udf(tmp_path: Path, random_checkpoint: Path) -> None:
    from udf.weights import load_checkpoint

    cube = prepare_cube(make_cube(nt=14, ny=6, nx=7, units="linear", seed=2))
    cube.attrs["crs"] = "EPSG:32631"
    other = cube.copy(data=cube.values.copy())
    other.loc[{"bands": "NDVI"}] = np.nan
    assert cube_key(cube) != cube_key(other)
    model, meta = load_checkpoint(random_checkpoint)
    pixels = np.ones((6, 7), bool)
    with LocalBackendRun([cube, other], tmp_path) as run:
        method = backend_dl_method(run, random_checkpoint)
        got = method(cube, pixels)
        got_other = method(other, pixels)
        with pytest.raises(Exception, match="CollectionNotFound|not found|Collection"):
            method(cube.isel(t=slice(0, 10)), pixels)
    want = dl_method(model, meta)(cube, pixels)
    np.testing.assert_allclose(got.mean, want.mean, atol=1e-6)
    np.testing.assert_allclose(got.std, want.std, atol=1e-6)
    assert not np.allclose(got_other.mean, got.mean)  # the S1-only cube really was another collection
    assert isinstance(got.mean, np.ndarray) and got.mean.shape == (14, 6, 7)
