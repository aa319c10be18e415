"""Per-tile results of a tiled UDF step on disk, and a lazy cube over them.

A tile ``(i, j)`` of a step is two files in the step's folder: ``i_j.npy`` (the tile core, dims in the order the
JSON gives) and ``i_j.json`` (dims, shape, dtype, labels of the non-spatial dims, attributes, who computed it and
how long it took). Both are written under temporary names and renamed, the JSON last, so a tile whose JSON exists
is complete, whatever killed the process that wrote it. :class:`TileMosaic` reads any window of the step's result
from these files (memory-mapped); :meth:`TileStore.mosaic` wraps it in a dask-backed cube whose chunks are the tiles.
"""

import bisect
import json
import logging
import os
import socket
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import xarray as xr

from local_backend.cubes.lazy_io import apply_index, index_ranges
from local_backend.errors import UdfError
from local_backend.tiles.timing import TileTimer

_log = logging.getLogger(__name__)

__all__ = ["TileMosaic", "TileStore", "decode_labels", "encode_labels"]

SPATIAL = ("y", "x")


def encode_labels(values: np.ndarray) -> dict[str, Any]:
    """Dimension labels as JSON (dtype and values as text; datetimes keep nanoseconds)."""
    values = np.asarray(values)
    kind = "str" if values.dtype.kind in "OUS" else values.dtype.str
    return {"dtype": kind, "values": values.astype(str).tolist()}


def decode_labels(encoded: dict[str, Any]) -> np.ndarray:
    """Inverse of :func:`encode_labels`."""
    values = np.array(encoded["values"])
    return values if encoded["dtype"] == "str" else values.astype(np.dtype(encoded["dtype"]))


def _json_attrs(attrs: dict[str, Any]) -> dict[str, Any]:
    return {str(k): v for k, v in attrs.items() if isinstance(v, (str, int, float, bool))}


def _atomic_write(path: Path, data: bytes | np.ndarray) -> None:
    """Write under a temporary name in the same folder, then rename (readers never see a partial file)."""
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with temporary.open("wb") as handle:
        if isinstance(data, np.ndarray):
            np.save(handle, data)
        else:
            handle.write(data)
    os.replace(temporary, path)


class TileStore:
    """The folder of one tiled step: which tiles are done, writing one, and the lazy result."""

    def __init__(self, folder: Path) -> None:
        self.folder = Path(folder)

    def stem(self, i: int, j: int) -> Path:
        """Path of tile ``(i, j)`` without suffix."""
        return self.folder / f"{i}_{j}"

    def done(self, i: int, j: int) -> bool:
        """Whether tile ``(i, j)`` was written completely (by this run or an earlier one)."""
        return self.stem(i, j).with_suffix(".json").is_file()

    def describe(self, i: int, j: int) -> dict[str, Any]:
        """The JSON description of a finished tile."""
        return dict(json.loads(self.stem(i, j).with_suffix(".json").read_text()))

    @staticmethod
    def write(out: xr.DataArray, stem: Path, seconds: float, timer: TileTimer | None = None) -> dict[str, Any]:
        """Write one tile's result (already cropped to its core) and return its description.

        With ``timer``, writing the values counts as its ``write`` stage and the description keeps the tile's stage
        times as ``timing`` (:meth:`~local_backend.tiles.timing.TileTimer.describe`).
        """
        stem.parent.mkdir(parents=True, exist_ok=True)
        values = np.ascontiguousarray(out.values)
        meta = {"dims": [str(d) for d in out.dims], "shape": list(values.shape), "dtype": values.dtype.str,
                "coords": {str(d): encode_labels(out[d].values) for d in out.dims
                           if d not in SPATIAL and d in out.coords},
                "attrs": _json_attrs(out.attrs), "seconds": round(seconds, 3), "pid": os.getpid(),
                "host": socket.gethostname()}
        if timer is None:
            _atomic_write(stem.with_suffix(".npy"), values)
        else:
            with timer.stage("write"):
                _atomic_write(stem.with_suffix(".npy"), values)
            meta["timing"] = timer.describe()
        _atomic_write(stem.with_suffix(".json"), json.dumps(meta).encode())
        return meta

    def _check_same(self, metas: dict[tuple[int, int], dict[str, Any]]) -> dict[str, Any]:
        first_key, first = next(iter(metas.items()))
        for key, meta in metas.items():
            for field in ("dims", "coords"):
                if meta[field] != first[field]:
                    raise UdfError(f"the UDF returned different {field} for tile {key} ({meta[field]}) than for "
                                   f"tile {first_key} ({first[field]}); every tile must give the same labels")
        return first

    def mosaic(self, rows: list[tuple[int, int]], cols: list[tuple[int, int]], y: np.ndarray, x: np.ndarray,
               attrs: dict[str, Any], key: str) -> xr.DataArray:
        """The step's result as a lazy cube over the tile files.

        Args:
            rows: ``(start, size)`` of each tile row's core along ``y``.
            cols: same along ``x``.
            y: labels of the whole ``y`` axis.
            x: labels of the whole ``x`` axis.
            attrs: attributes of the result (the input's CRS).
            key: the step's key (names the dask array).
        """
        import dask.array as da

        metas = {(i, j): self.describe(i, j) for i in range(len(rows)) for j in range(len(cols))}
        first = self._check_same(metas)
        dims = tuple(first["dims"])
        if not all(d in dims for d in SPATIAL):
            if len(metas) != 1:
                raise UdfError(f"the UDF removed a spatial dimension (output dims {dims}); it cannot be tiled")
            return self._whole(first, attrs)
        dtype = np.result_type(*[np.dtype(m["dtype"]) for m in metas.values()])
        sizes = dict(zip(dims, first["shape"]))
        sizes.update(y=len(y), x=len(x))
        reader = TileMosaic(folder=str(self.folder), dims=dims, shape=tuple(sizes[d] for d in dims),
                            dtype=dtype.str, y_starts=tuple(r[0] for r in rows), x_starts=tuple(c[0] for c in cols))
        chunks = tuple(tuple(r[1] for r in rows) if d == "y" else tuple(c[1] for c in cols) if d == "x"
                       else (sizes[d],) for d in dims)
        array = da.from_array(reader, chunks=chunks, name=f"tiles-{key}", asarray=False,
                              meta=np.empty((0,) * len(dims), dtype=dtype))
        coords: dict[str, Any] = {d: decode_labels(v) for d, v in first["coords"].items()}
        coords.update(y=y, x=x)
        return xr.DataArray(array, dims=dims, coords=coords, attrs={**first["attrs"], **attrs})

    def _whole(self, meta: dict[str, Any], attrs: dict[str, Any]) -> xr.DataArray:
        values = np.load(self.stem(0, 0).with_suffix(".npy"))
        coords = {d: decode_labels(v) for d, v in meta["coords"].items()}
        return xr.DataArray(values, dims=tuple(meta["dims"]), coords=coords, attrs={**meta["attrs"], **attrs})


@dataclass(frozen=True)
class TileMosaic:
    """Array-like view of a tiled step's result, read window by window from the memory-mapped tile files."""

    folder: str
    dims: tuple[str, ...]
    shape: tuple[int, ...]
    dtype: str
    y_starts: tuple[int, ...]
    """Start of each tile row's core along ``y`` (ascending, the first is 0)."""
    x_starts: tuple[int, ...]

    @property
    def ndim(self) -> int:
        """Number of dimensions."""
        return len(self.shape)

    def _spans(self, starts: tuple[int, ...], total: int, wanted: slice) -> list[tuple[int, int, int]]:
        """``(tile, start, stop)`` of the tiles whose cores meet ``wanted`` along one axis."""
        first = max(bisect.bisect_right(starts, wanted.start) - 1, 0)
        out = []
        for tile in range(first, len(starts)):
            start, stop = starts[tile], starts[tile + 1] if tile + 1 < len(starts) else total
            if start >= wanted.stop:
                break
            out.append((tile, start, stop))
        return out

    def __getitem__(self, key: Any) -> np.ndarray:
        ranges, inner = index_ranges(key, self.shape)
        block = np.empty([r.stop - r.start for r in ranges], dtype=np.dtype(self.dtype))
        ya, xa = self.dims.index("y"), self.dims.index("x")
        if block.size:
            for i, y0, y1 in self._spans(self.y_starts, self.shape[ya], ranges[ya]):
                for j, x0, x1 in self._spans(self.x_starts, self.shape[xa], ranges[xa]):
                    tile = np.load(Path(self.folder) / f"{i}_{j}.npy", mmap_mode="r")
                    source, target = list(ranges), [slice(None)] * self.ndim
                    for axis, lo, hi in ((ya, y0, y1), (xa, x0, x1)):
                        want = ranges[axis]
                        a, b = max(want.start, lo), min(want.stop, hi)
                        source[axis], target[axis] = slice(a - lo, b - lo), slice(a - want.start, b - want.start)
                    block[tuple(target)] = tile[tuple(source)]
        return apply_index(block, inner)
