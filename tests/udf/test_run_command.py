"""``s1ndvi run`` end to end on the Earth Engine period-folder layout (from a shell), and its refusals."""

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import rasterio

from tests.udf.export_fixtures import START, sample_composites, write_period_folder


@pytest.fixture(scope="module")
def small_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_period_folder(tmp_path_factory.mktemp("run") / "periods", sample_composites(), skip=(7,),
                               window=(16, 24))


def _s1ndvi(*args: object) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(Path(__file__).parents[2])] + sys.path)}
    return subprocess.run([sys.executable, "-m", "udf.cli", *map(str, args)], capture_output=True, text=True,
                          env=env, timeout=900)


def test_run_on_period_folder_from_a_shell(small_folder: Path, tmp_path: Path) -> None:
    out = tmp_path / "results"
    args = ("run", "--input", small_folder, "--start", START, "--period", "12D", "--out", out,
            "--adapt-steps", "12", "--adapt-epoch-steps", "4", "--max-seasons", "2")
    done = _s1ndvi(*args)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "[5/5] products: done" in done.stdout
    assert "\x1b[" not in done.stderr and "it/s" not in done.stderr  # no progress bars off a terminal
    year = out / "cog" / "2017-11"
    with rasterio.open(year / "NDVI.tif") as src:
        assert src.crs.to_epsg() == 4326
        starts = np.datetime64(START) + np.arange(60) * np.timedelta64(12, "D")
        in_year = [str(d) for d in starts if np.datetime64("2017-11-01") <= d < np.datetime64("2018-11-01")]
        assert list(src.descriptions) == in_year  # the input's 12-day steps of that farming year, dated
        ndvi = src.read()
        assert src.profile.get("tiled") or src.block_shapes[0][0] == src.height  # a COG (tiny: one block)
        assert np.isfinite(ndvi).mean() > 0.99
    with rasterio.open(year / "NDVI_STD.tif") as src:
        assert np.nanmin(src.read()) > 0
    with rasterio.open(year / "SOS_1.tif") as src:
        sos = src.read(1)
        assert src.tags()["unit"] == "days since 1970-01-01"
        days = sos[np.isfinite(sos)]
        assert days.size and (days > np.datetime64("2017-06-01").astype(int)).all() and \
            (days < np.datetime64("2018-11-01").astype(int)).all()
    with rasterio.open(year / "N_SEASONS.tif") as src:
        assert np.nanmax(src.read(1)) >= 1
    with rasterio.open(year / "SOS_STD_1.tif") as src:  # each date's uncertainty from NDVI_STD, beside it
        spread = src.read(1)
        assert np.isfinite(spread[np.isfinite(sos)]).mean() > 0.5 and np.nanmin(spread) >= 0
    with rasterio.open(year / "CONF_1.tif") as src:
        conf = src.read(1)
        assert np.nanmin(conf) >= 0 and np.nanmax(conf) <= 1
    png = out / "maps" / "seasons_2017-11.png"
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 20_000
    report = (out / "report.md").read_text()
    for needle in ("Trust report on", "(12 steps, 3 epochs,", "S2ndvi: NDVI, masked upstream",
                   "periods [7] missing", "Sentinel-2 coverage", "farming year from 2017-11-01"):
        assert needle in report
    for name in ("cube.nc", "fused.nc", "phenology.nc", "model.npz"):
        assert (out / name).exists()
    # a rerun reuses every finished stage
    again = _s1ndvi(*args)
    assert again.returncode == 0, again.stderr[-3000:]
    assert again.stdout.count("reused") == 5
    # a changed phenology option redoes phenology and products only
    third = _s1ndvi(*args[:-1], "3")
    assert third.stdout.count("reused") == 3 and "[4/5] phenology: done" in third.stdout
    marker = json.loads((out / ".stages" / "adapt.json").read_text())
    assert marker["summary"]["adapted"] is True


def test_run_refusals(small_folder: Path, tmp_path: Path, cli) -> None:  # type: ignore[no-untyped-def]
    status, _, err = cli("run", "--input", small_folder, "--period", "12D", "--out", tmp_path / "a")
    assert status == 2 and "give --start" in err
    status, _, err = cli("run", "--input", small_folder, "--start", START, "--period", "12D", "--out", tmp_path / "b",
                         "--adapt-minutes", "0")
    assert status == 2 and "--adapt-minutes 0.0: expected a positive time cap" in err
    status, _, err = cli("run", "--input", small_folder, "--start", START, "--period", "12D", "--out", tmp_path / "b",
                         "--adapt-steps", "0")
    assert status == 2 and "--adapt-steps 0: expected a positive number of steps" in err
    status, _, err = cli("run", "--input", small_folder, "--start", START, "--period", "12D", "--out", tmp_path / "c",
                         "--year-start", "13-01")
    assert status == 2 and "'year_start'='13-01'" in err
    status, _, err = cli("run", "--input", tmp_path / "nowhere", "--out", tmp_path / "d")
    assert status == 2 and "nowhere" in err


def test_run_on_vh_stack_without_s2(tmp_path: Path, cli) -> None:  # type: ignore[no-untyped-def]
    from tests.udf.test_ingest_composited import _stack

    stack = _stack(tmp_path / "java" / "vh_stack.tif", sample_composites(), None)
    status, out, err = cli("run", "--input", stack, "--bands", "VH", "--start", START, "--period", "12D",
                           "--out", tmp_path / "res", "--max-seasons", "2")
    assert status == 0, err
    report = (tmp_path / "res" / "report.md").read_text()
    assert "Not adapted" in report and "imputed as VH + 7 dB" in report
    with rasterio.open(tmp_path / "res" / "cog" / "2017-11" / "NDVI.tif") as src:
        assert np.isfinite(src.read()).mean() > 0.9
