# A test UDF that always fails with a recognisable message.
import xarray


def apply_datacube(cube: xarray.DataArray, context: dict) -> xarray.DataArray:
    raise ValueError("boom from the test UDF: context was " + repr(context))
