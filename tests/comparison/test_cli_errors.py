"""``s1ndvi compare`` through the real entry: one-line user errors (exit status 2) and what it says it wrote."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

from tests.conftest import make_cube
from udf.ingest.cube_io import write_cube


def _one_error_line(err: str) -> str:
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("s1ndvi compare: error: "), err
    return lines[0]


@pytest.fixture
def cube_file(tmp_path: Path) -> Path:
    return write_cube(make_cube(nt=20, ny=16, nx=16, units="db", seed=2), tmp_path / "cube.nc")


def test_unknown_protocol(cli, cube_file: Path, tmp_path: Path) -> None:
    status, _, err = cli("compare", "--cube", cube_file, "--out", tmp_path / "o", "--protocol", "P1,P4")
    line = _one_error_line(err)
    assert status == 2 and "Unknown protocol 'P4'; known: P1, P2 (= P2_60 + P2_90), P2_60, P2_90, P3" in line


def test_unknown_mogpr_value_lists_the_accepted_ones(cli, cube_file: Path, tmp_path: Path) -> None:
    status, _, err = cli("compare", "--cube", cube_file, "--out", tmp_path / "o", "--mogpr", "fast")
    line = _one_error_line(err)
    assert status == 2 and "'fast' is neither a MOGPR engine (local, gpy, none) nor an existing cloud MOGPR" in line
    assert "IO backends" not in err


def test_mogpr_file_that_is_not_netcdf(cli, cube_file: Path, tmp_path: Path) -> None:
    bad = tmp_path / "mogpr.nc"
    bad.write_text('{"code": "Internal"}')
    status, _, err = cli("compare", "--cube", cube_file, "--out", tmp_path / "o", "--no-dl", "--protocol", "P1",
                         "--mogpr", bad)
    line = err.strip().splitlines()[-1]  # after the progress bars
    assert status == 2 and line.startswith(f"s1ndvi compare: error: Result file '{bad}' is not a netCDF file")
    assert "IO backends" not in err and "Traceback" not in err


def test_cube_without_ndvi_band(cli, tmp_path: Path) -> None:
    cube = write_cube(make_cube(units="db", ndvi=False), tmp_path / "s1.nc")
    status, _, err = cli("compare", "--cube", cube, "--out", tmp_path / "o")
    line = err.strip().splitlines()[-1]
    assert status == 2 and line.startswith("s1ndvi compare: error: Band 'NDVI' not in cube bands ['VV', 'VH']")


@pytest.mark.skipif(importlib.util.find_spec("GPy") is not None, reason="GPy is installed")
def test_gpy_missing(cli, cube_file: Path, tmp_path: Path) -> None:
    status, _, err = cli("compare", "--cube", cube_file, "--out", tmp_path / "o", "--no-dl", "--mogpr", "gpy")
    line = err.strip().splitlines()[-1]
    assert status == 2 and line.startswith("s1ndvi compare: error: ") and 'pip install -e ".[mogpr]"' in line
    assert "Traceback" not in err
