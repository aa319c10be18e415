# A test UDF that kills the process running it (as a crashing native library or a careless os._exit would).
import os

import xarray


def apply_datacube(cube: xarray.DataArray, context: dict) -> xarray.DataArray:
    os._exit(1)
