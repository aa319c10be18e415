"""``s1ndvi export-udf --phenology``: a self-contained file that runs where the project cannot be imported."""

import subprocess
import sys
import textwrap

import numpy as np
import xarray as xr

from tests.udf.test_phenology import cube_of, curve, grid
from udf.cli import main
from udf.phenology import phenology_cube


def test_exported_phenology_udf_runs_without_the_project(tmp_path):
    out = tmp_path / "phenology_udf.py"
    assert main(["export-udf", "--phenology", str(out)]) == 0
    text = out.read_text()
    assert text.startswith("# /// script")
    assert "from udf" not in text and "import udf" not in text
    days = grid("2019-10-01", "2021-10-31", 10)
    cube = cube_of(days, curve(days, [("2019-12-01", "2020-05-01"), ("2020-06-01", "2020-09-01")]), ny=3, nx=4)
    cube = cube + np.random.default_rng(1).normal(0, 0.02, cube.shape)
    cube.to_netcdf(tmp_path / "in.nc")
    script = textwrap.dedent(f"""
        try:
            import udf  # must not be importable here
            raise SystemExit("project importable: " + str(udf.__file__))
        except ImportError:
            pass
        import pathlib
        import openeo
        import xarray
        from openeo.udf import XarrayDataCube
        from openeo.udf.run_code import execute_local_udf
        cube = xarray.open_dataarray({str(tmp_path / 'in.nc')!r})
        udf = openeo.UDF.from_file(pathlib.Path({str(out)!r}), context={{"max_seasons": 2}})
        res = execute_local_udf(udf, XarrayDataCube(cube), fmt="netcdf")
        res.datacube_list[0].get_array().to_netcdf({str(tmp_path / 'out.nc')!r})
    """)
    # -I -S: no cwd, no PYTHONPATH and no .pth processing (the editable install's path hook is absent); the
    # environment's site-packages directories are added back for numpy, xarray and openeo
    site = [p for p in sys.path if p.endswith("site-packages")]
    code = f"import sys; sys.path[:] = [p for p in sys.path if p] ; sys.path += {site!r}\n" + script
    proc = subprocess.run([sys.executable, "-I", "-S", "-c", code], cwd=tmp_path, capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    got = xr.open_dataarray(tmp_path / "out.nc")
    from udf.phenology import PhenologyConfig

    want = phenology_cube(cube, PhenologyConfig(max_seasons=2))
    assert list(got["bands"].values) == list(want["bands"].values)
    assert np.isfinite(want.sel(bands="SOS_1", t="2019-11-01").values).all()  # not an all-NaN comparison
    np.testing.assert_allclose(got.transpose(*want.dims).values, want.values, equal_nan=True)
