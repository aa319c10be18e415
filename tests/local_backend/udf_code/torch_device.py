# A test UDF for the GPU path: doubles the cube with torch on context["device"] and reports where it ran.
import numpy as np
import torch
import xarray


def apply_datacube(cube: xarray.DataArray, context: dict) -> xarray.DataArray:
    device = torch.device(context.get("device", "cpu"))
    values = torch.from_numpy(np.asarray(cube.values, dtype="float32")).to(device)
    doubled = (values * 2).cpu().numpy()
    if device.type == "cuda" and not torch.cuda.is_available():
        raise RuntimeError("CUDA requested but not available in the worker")
    return cube.copy(data=doubled)
