"""The ``s1ndvi`` entry: user errors as one line and exit status 2, bugs with their traceback, help texts, and what
each core command says it wrote."""

import argparse
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from tests.conftest import make_cube
from udf.cli import build_parser
from udf.errors import NotEnoughNDVI
from udf.ingest.cube_io import write_cube
from udf.ingest.sample import sample_files
from udf.training.fit import check_training_ndvi

REPO = Path(__file__).resolve().parents[2]


def _one_error_line(err: str, command: str) -> str:
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith(f"s1ndvi {command}: error: "), err
    return lines[0]


@pytest.fixture
def cube_file(tmp_path: Path) -> Path:
    return write_cube(make_cube(nt=12, ny=5, nx=6, units="db"), tmp_path / "cube.nc")


def test_missing_file(cli, tmp_path: Path) -> None:
    status, out, err = cli("predict", "--cube", tmp_path / "nope.nc", "--out", tmp_path / "p.nc")
    assert status == 2 and out == ""
    assert "Cube file" in _one_error_line(err, "predict") and "nope.nc' does not exist" in err


def test_not_netcdf_names_the_file_and_the_expected_format(cli, tmp_path: Path) -> None:
    text = tmp_path / "notes.nc"
    text.write_text("hello, not a cube\n")
    status, _, err = cli("predict", "--cube", text, "--out", tmp_path / "p.nc")
    line = _one_error_line(err, "predict")
    assert status == 2 and "notes.nc' is not a netCDF file" in line and "expected netCDF" in line
    assert "IO backends" not in err
    status, _, err = cli("cube", "--s1", text, "--out", tmp_path / "c.nc")
    assert status == 2 and "Input file" in _one_error_line(err, "cube")


def test_missing_band(cli, tmp_path: Path) -> None:
    no_vh = write_cube(make_cube(units="db").sel(bands=["VV", "NDVI"]), tmp_path / "vv_only.nc")
    status, _, err = cli("predict", "--cube", no_vh, "--out", tmp_path / "p.nc")
    line = _one_error_line(err, "predict")
    assert status == 2 and "['VH'] not found in the cube's bands ['VV', 'NDVI']" in line and "needs VV and VH" in line


def test_usage_errors_are_one_line_too(cli, tmp_path: Path) -> None:
    status, _, err = cli("predict", "--cube", tmp_path / "c.nc")
    assert status == 2 and "--out" in _one_error_line(err, "predict")
    status, _, err = cli("cube", "--s1", "x.nc", "--period", "10", "--out", "c.nc")
    assert status == 2 and "expected a number of days such as 5D" in _one_error_line(err, "cube")


def test_unavailable_device(cli, cube_file: Path, tmp_path: Path) -> None:
    if __import__("torch").cuda.is_available():
        pytest.skip("this machine has CUDA")
    status, _, err = cli("predict", "--cube", cube_file, "--out", tmp_path / "p.nc", "--device", "cuda")
    assert status == 2 and "CUDA is not available" in _one_error_line(err, "predict")


def test_debug_shows_the_traceback(cli, tmp_path: Path) -> None:
    status, _, err = cli("--debug", "predict", "--cube", tmp_path / "nope.nc", "--out", tmp_path / "p.nc")
    assert status == 2 and "Traceback (most recent call last)" in err
    assert err.strip().splitlines()[-1].startswith("s1ndvi predict: error: Cube file")
    status, _, err = cli("predict", "--cube", tmp_path / "nope.nc", "--out", tmp_path / "p.nc", "-v")
    assert status == 2 and "Traceback" in err


def test_a_bug_keeps_its_traceback(cli, monkeypatch: pytest.MonkeyPatch, cube_file: Path, tmp_path: Path) -> None:
    def broken(*args: object, **kwargs: object) -> None:
        raise ZeroDivisionError("a bug, not a user error")

    monkeypatch.setattr("udf.s1_ndvi_udf.apply_datacube", broken)
    with pytest.raises(ZeroDivisionError, match="a bug"):
        cli("predict", "--cube", cube_file, "--out", tmp_path / "p.nc")


def test_interrupt_is_one_line(cli, monkeypatch: pytest.MonkeyPatch, cube_file: Path, tmp_path: Path) -> None:
    def stopped(*args: object, **kwargs: object) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr("udf.s1_ndvi_udf.apply_datacube", stopped)
    status, _, err = cli("predict", "--cube", cube_file, "--out", tmp_path / "p.nc")
    assert status == 130 and err.strip() == "s1ndvi predict: interrupted"


def test_console_script_prints_one_line_without_traceback(tmp_path: Path) -> None:
    """The real entry in a fresh interpreter (what a user's shell runs)."""
    done = subprocess.run([sys.executable, "-m", "udf.cli", "predict", "--cube", str(tmp_path / "nope.nc"), "--out",
                           str(tmp_path / "p.nc")], capture_output=True, text=True, cwd=REPO, timeout=120)
    assert done.returncode == 2
    assert done.stderr.strip() == f"s1ndvi predict: error: Cube file '{tmp_path / 'nope.nc'}' does not exist."


def test_train_refuses_a_cube_without_ndvi(cli, tmp_path: Path) -> None:
    f = sample_files()
    cube = tmp_path / "s1_only.nc"
    assert cli("cube", "--s1", f["s1"], "--period", "acquisition", "--out", cube)[0] == 0
    model = tmp_path / "m.npz"
    status, _, err = cli("train", "--cube", cube, "--out", model, "--epochs", "1")
    line = _one_error_line(err, "train")
    assert status == 2 and "no valid NDVI at all" in line and "≥ 32 training pixels with ≥ 4 valid NDVI" in line
    assert not model.exists()


def test_check_training_ndvi_counts_usable_pixels() -> None:
    ndvi = np.full((10, 8, 8), np.nan)
    train = np.zeros((8, 8), bool)
    train[:6] = True
    val = ~train
    ndvi[:4, :6] = 0.5  # 48 training pixels with 4 observations each
    ndvi[:2, 6:] = 0.4  # 16 validation pixels with 2
    found = check_training_ndvi(ndvi, train, val)
    assert found == {"train_pixels": 48, "usable_train_pixels": 48, "train_observations": 192, "usable_val_pixels": 16}
    ndvi[3, :3] = np.nan  # 24 training pixels left with 4
    with pytest.raises(NotEnoughNDVI, match=r"168 valid NDVI observations on its 48 training pixels, 24 of them with "
                                            r"≥ 4; 16 validation pixels with ≥ 2: training needs ≥ 32"):
        check_training_ndvi(ndvi, train, val)
    assert check_training_ndvi(ndvi, train, min_pixels=24)["usable_train_pixels"] == 24
    with pytest.raises(NotEnoughNDVI, match="no valid NDVI at all"):
        check_training_ndvi(np.full((10, 8, 8), np.nan), train, val)


def test_core_commands_say_what_they_wrote(cli, cube_file: Path, tmp_path: Path, random_checkpoint: Path) -> None:
    pred = tmp_path / "pred.nc"
    status, out, err = cli("predict", "--cube", cube_file, "--model", random_checkpoint, "--out", pred)
    assert status == 0 and out.strip() == f"Wrote {pred}: bands NDVI; t=12, y=5, x=6 (2021-01-01 … 2021-04-21)"
    udf = tmp_path / "u.py"
    status, out, _ = cli("export-udf", udf, "--model", random_checkpoint)
    assert status == 0 and out.startswith(f"Wrote self-contained UDF {udf} (") and udf.exists()


def _commands(parser: argparse.ArgumentParser, prefix: str = "s1ndvi"):  # type: ignore[no-untyped-def]
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield f"{prefix} {name}", sub
                yield from _commands(sub, f"{prefix} {name}")


def test_help_is_for_users_and_every_option_has_a_help_text() -> None:
    parser = build_parser()
    text = parser.format_help()
    assert "Gap-free NDVI from Sentinel-1 radar" in text and "register(subparsers)" not in text
    missing = [f"{name} {action.option_strings or action.dest}" for name, sub in _commands(parser)
               for action in sub._actions
               if not isinstance(action, (argparse._HelpAction, argparse._SubParsersAction)) and not action.help]
    assert missing == []
    assert all(sub.description for _, sub in _commands(parser))
