"""Fixtures of the harness tests: the embedded real sample as a 10-day truth cube."""

from __future__ import annotations

import pytest
import xarray as xr


@pytest.fixture(scope="session")
def sample_cube() -> xr.DataArray:
    """The embedded WorldCereal sample, 10-day composites, linear S1: ``(t=49, bands[VV, VH, NDVI], y=32, x=32)``."""
    from udf.ingest.base import load_sample_cube
    from udf.training.fit import eval_cube

    return eval_cube(load_sample_cube(period=None))
