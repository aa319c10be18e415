# A test UDF that fills context["mb"] MiB of memory (touching every page), then returns its input.
import numpy as np
import xarray


def apply_datacube(cube: xarray.DataArray, context: dict) -> xarray.DataArray:
    block = np.ones(int(context["mb"]) * 2**20, dtype=np.uint8)
    return cube + float(block[-1]) - 1.0
