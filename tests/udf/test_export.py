import subprocess
import sys
import textwrap

import numpy as np
import xarray as xr

from tests.conftest import make_cube
from udf.export import export_udf
from udf.s1_ndvi_udf import apply_datacube


def run_isolated(udf_file, cube: xr.DataArray, tmp_path, context: dict | None = None) -> xr.DataArray:
    """Run an exported UDF file (with ``context``) in a fresh interpreter where this project is not importable."""
    cube.to_netcdf(tmp_path / "in.nc")
    script = textwrap.dedent(f"""
        import sys
        assert not any('work/main' in p and 'site-packages' not in p for p in sys.path[1:]), sys.path
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
        udf = openeo.UDF.from_file(pathlib.Path({str(udf_file)!r}), context={context!r})
        res = execute_local_udf(udf, XarrayDataCube(cube), fmt="netcdf")
        res.datacube_list[0].get_array().to_netcdf({str(tmp_path / 'out.nc')!r})
    """)
    # -I -S: no cwd, no PYTHONPATH and no .pth processing (so the editable install's path hook is absent);
    # the environment's site-packages directories are added back explicitly for numpy, xarray, torch and openeo
    site = [p for p in sys.path if p.endswith("site-packages")]
    code = f"import sys; sys.path[:] = [p for p in sys.path if p] ; sys.path += {site!r}\n" + script
    proc = subprocess.run([sys.executable, "-I", "-S", "-c", code], cwd=tmp_path, capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return xr.open_dataarray(tmp_path / "out.nc")


def test_exported_udf_runs_without_the_project(tmp_path, random_checkpoint):
    udf_file = export_udf(tmp_path / "s1ndvi_udf.py", weights=random_checkpoint)
    text = udf_file.read_text()
    assert text.startswith("# /// script")
    assert "from udf" not in text and "import udf" not in text
    cube = make_cube(units="uint16_db")
    got = run_isolated(udf_file, cube, tmp_path)
    want = apply_datacube(cube, {"weights": str(random_checkpoint)})
    np.testing.assert_allclose(got.transpose(*want.dims).values, want.values, atol=1e-5)
