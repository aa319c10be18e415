# A test UDF that records each call (one empty file per tile: its first y/x labels and the process id),
# optionally sleeps (to catch a batch job half-way), and returns its input.
import os
import time
import uuid
from pathlib import Path

import xarray


def apply_datacube(cube: xarray.DataArray, context: dict) -> xarray.DataArray:
    y0, x0 = float(cube["y"].values[0]), float(cube["x"].values[0])
    Path(context["log_dir"], f"{y0:.0f}_{x0:.0f}_{os.getpid()}_{uuid.uuid4().hex[:8]}").touch()
    time.sleep(float(context.get("seconds", 0)))
    return cube
