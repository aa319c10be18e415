"""Pixels of the embedded cubes that pretraining never sees: the test blocks of ``s1ndvi compare``'s default split.

The demo and ``s1ndvi compare`` score the embedded cubes on the test blocks of ``spatial_block_split(shape, block=8,
seed=0)``; pretraining drops those pixels (and the one-pixel buffer around them) from every corpus source on the
same grid, so that scoring the shipped weights there scores held-out pixels. The checkpoint records which grids and
split were reserved; :func:`comparison.compare.core.dl_provenance` checks a cube against them.
"""

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from udf.evaluation.protocols import spatial_block_split
from udf.training.corpus.series import SeriesSet

__all__ = ["RESERVED_SPLIT", "Reserved", "describe_reserved", "drop_reserved", "reserved_grids"]

RESERVED_SPLIT = {"block": 8, "seed": 0}
"""Split whose test blocks are reserved (``s1ndvi compare``'s and the demo's defaults)."""


@dataclass(frozen=True)
class Reserved:
    """The reserved pixels of one embedded cube."""

    name: str
    crs: str | None
    xy: np.ndarray
    """``(M, 2)`` pixel centres (x, y) never used in pretraining (test blocks + buffer)."""
    grid: dict
    """Grid of the whole cube (CRS, shape, origin, pixel size)."""
    split: dict
    """The split (:meth:`udf.evaluation.protocols.SpatialSplit.describe`)."""


def _grid_of(path: Path, name: str) -> Reserved:
    from udf.ingest.base import load_s1
    from udf.training.fit import grid_fingerprint

    s1 = load_s1(path)
    ny, nx = s1.sizes["y"], s1.sizes["x"]
    split = spatial_block_split((ny, nx), block=RESERVED_SPLIT["block"], seed=RESERVED_SPLIT["seed"])
    excluded = ~(split.train | split.val)
    xx, yy = np.meshgrid(s1["x"].values, s1["y"].values)
    xy = np.stack([xx[excluded], yy[excluded]], axis=-1).astype(np.float64)
    return Reserved(name=name, crs=s1.attrs.get("crs"), xy=xy, grid=grid_fingerprint(s1), split=split.describe())


def reserved_grids() -> list[Reserved]:
    """The embedded cubes' reserved pixels (the WorldCereal 31UDS sample and the Belgian monthly cube)."""
    from udf.ingest.sample import CROSS_SITE_FILE, sample_files

    return [_grid_of(sample_files()["s1"], "embedded WorldCereal 31UDS sample"),
            _grid_of(CROSS_SITE_FILE, "embedded Belgian monthly cube")]


def describe_reserved(reserved: list[Reserved]) -> list[dict]:
    """JSON-ready description of reserved pixels for checkpoint metadata (name, grid, split)."""
    return [{"name": r.name, "grid": r.grid, "split": r.split, "pixels": int(len(r.xy))} for r in reserved]


def _same_crs(a: str | None, b: str | None) -> bool:
    if not a or not b:
        return False
    from pyproj import CRS

    return bool(CRS.from_user_input(a).equals(CRS.from_user_input(b)))


def drop_reserved(ss: SeriesSet, reserved: list[Reserved]) -> tuple[SeriesSet, int]:
    """``ss`` without the sequences at reserved pixel centres (same CRS, centres within 1 cm); and how many went."""
    if ss.xy is None:
        return ss, 0
    keep = np.ones(ss.n, dtype=bool)
    for r in reserved:
        if not _same_crs(ss.attrs.get("crs"), r.crs):
            continue
        key = {(round(x, 2), round(y, 2)) for x, y in r.xy}
        keep &= np.array([(round(x, 2), round(y, 2)) not in key for x, y in ss.xy])
    return ss.subset(keep), int((~keep).sum())
