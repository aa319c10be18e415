# A test UDF for reduce_dimension over bands: VV / VH ratio (drops the bands dimension).
import xarray


def apply_datacube(cube: xarray.DataArray, context: dict) -> xarray.DataArray:
    return (cube.sel(bands="VV") / cube.sel(bands="VH")).astype("float32")
