"""Shared fixtures: small cubes in every S1 encoding, and a checkpoint with random weights."""

from pathlib import Path
from typing import Callable

import numpy as np
import pytest
import torch
import xarray as xr

from udf.model import FusionNet, ModelConfig
from udf.weights import save_checkpoint

DATA = Path(__file__).parent / "data"
requires_cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="requires CUDA")


def make_cube(nt: int = 12, ny: int = 5, nx: int = 6, units: str = "db", ndvi: bool = True,
              seed: int = 0, step_days: int = 10) -> xr.DataArray:
    """A random but physically plausible cube ``(t, bands, y, x)``.

    The S1 values are drawn as uint16 compressed dB first, so that the dB and linear versions describe exactly the
    same backscatter.
    """
    rng = np.random.default_rng(seed)
    vv_db = rng.uniform(-18, -6, (nt, ny, nx))
    vh_db = vv_db - rng.uniform(5, 9, (nt, ny, nx))
    raw = np.round(10 ** ((np.stack([vv_db, vh_db], 1) + 83) / 20)).astype(np.uint16)
    db = 20 * np.log10(raw.astype(np.float64)) - 83
    values = {"uint16_db": raw, "db": db, "linear": 10 ** (db / 10)}[units]
    bands = ["VV", "VH"]
    if ndvi:
        nd = rng.uniform(0.1, 0.9, (nt, 1, ny, nx))
        nd[rng.random(nd.shape) < 0.4] = np.nan
        values = np.concatenate([values.astype(np.float64), nd], axis=1)
        bands.append("NDVI")
    t = np.datetime64("2021-01-01") + np.arange(nt) * np.timedelta64(step_days, "D")
    return xr.DataArray(values, dims=("t", "bands", "y", "x"),
                        coords={"t": t.astype("datetime64[ns]"), "bands": bands,
                                "y": 5000.0 - 20 * np.arange(ny), "x": 300.0 + 20 * np.arange(nx)})


@pytest.fixture(scope="session")
def random_checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A checkpoint with random weights (never the shipped ones), saved like a real one."""
    torch.manual_seed(0)
    model = FusionNet(ModelConfig(hidden=8))
    path = tmp_path_factory.mktemp("ckpt") / "random.npz"
    save_checkpoint(model, {"std_scale": 1.0, "note": "random weights for tests"}, path)
    return path


@pytest.fixture
def cli(capsys: pytest.CaptureFixture) -> Callable[..., tuple[int, str, str]]:
    """Run ``s1ndvi ARGS...`` in this process: returns ``(exit status, stdout, stderr)``."""
    from udf.cli import main

    def run(*argv: object) -> tuple[int, str, str]:
        try:
            status = main([str(a) for a in argv])
        except SystemExit as exc:  # argparse: --help, usage errors
            status = int(exc.code or 0)
        captured = capsys.readouterr()
        return status, captured.out, captured.err
    return run
