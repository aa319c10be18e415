# A test UDF: multiplies the cube by context["factor"] and checks that dimension labels reached it.
import numpy as np
import xarray


def apply_datacube(cube: xarray.DataArray, context: dict) -> xarray.DataArray:
    if "t" in cube.dims and not np.issubdtype(cube["t"].dtype, np.datetime64):
        raise ValueError(f"time labels lost: t has dtype {cube['t'].dtype}")
    if "bands" in cube.dims and cube["bands"].dtype.kind not in "OUS":
        raise ValueError(f"band labels lost: {cube['bands'].values!r}")
    return (cube * float(context.get("factor", 1.0))).astype("float32")
