"""Labelled arrays as ``.npz`` files without pickles: how a sandboxed UDF and the server exchange tiles.

``numpy.load(..., allow_pickle=False)`` refuses object arrays, so a file written by untrusted code can hold numbers,
dates and strings, never code the reader would run. Names, dims, attributes and which coordinate belongs to which
dims travel as a JSON string in the same file.
"""

import json
from pathlib import Path
from typing import Any

import numpy as np
import xarray as xr

__all__ = ["read_array", "write_array"]

_META = "__meta__"


def _plain(values: Any) -> np.ndarray:
    array = np.asarray(values)
    if array.dtype.kind == "O":  # strings (band names) kept as object by xarray: fixed-width unicode instead
        array = array.astype(str)
    return array


def write_array(array: xr.DataArray, path: Path) -> None:
    """Write ``array`` (data, coordinates, dims, name, attributes) to ``path`` (``.npz``, uncompressed)."""
    meta = {"dims": [str(d) for d in array.dims], "name": None if array.name is None else str(array.name),
            "attrs": json.loads(json.dumps(array.attrs, default=str)),
            "coords": {str(k): [str(d) for d in c.dims] for k, c in array.coords.items()}}
    arrays = {"data": _plain(array.values), _META: np.frombuffer(json.dumps(meta).encode(), dtype=np.uint8)}
    arrays.update({f"coord:{k}": _plain(c.values) for k, c in array.coords.items()})
    with open(path, "wb") as handle:
        np.savez(handle, **arrays)  # type: ignore[arg-type]  # numpy's stub types the keywords as allow_pickle


def read_array(path: Path) -> xr.DataArray:
    """Read a :func:`write_array` file without unpickling anything.

    Raises:
        ValueError: for a file that is not such an array (missing parts, object arrays, shapes that disagree).
    """
    with np.load(path, allow_pickle=False) as archive:
        if _META not in archive or "data" not in archive:
            raise ValueError(f"{Path(path).name} is not an array file (no data or metadata)")
        meta = json.loads(archive[_META].tobytes().decode())
        coords = {name: (tuple(dims), archive[f"coord:{name}"]) for name, dims in meta["coords"].items()}
        return xr.DataArray(archive["data"], dims=tuple(meta["dims"]), coords=coords, name=meta["name"],
                            attrs=meta["attrs"])
