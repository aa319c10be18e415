# A test UDF that sleeps (to catch a batch job while it runs), then returns its input.
import time

import xarray


def apply_datacube(cube: xarray.DataArray, context: dict) -> xarray.DataArray:
    time.sleep(float(context["seconds"]))
    return cube
