"""Land-cover classes of a cube's pixels or a point table's rows, for the P3C protocol (one land cover clouded).

Three sources, best first:

- the WorldCereal label raster of the embedded sample (LPIS Flanders 2018: crop type ``CT`` where a parcel is
  declared, land cover ``LC`` elsewhere), brought to the cube grid by majority (:func:`labels_on_grid`);
- the crop codes of a point table (``ewoc_code`` or ``CROPTYPE_LABEL``), one class per row (:func:`point_classes`);
- where no labels exist, seeded k-means clusters of the pixels' S1 signatures (:func:`s1_clusters`).

Classes are ints ≥ 0; ``-1`` means "no class" (unlabelled, mixed at the cube's resolution, or no S1 to cluster):
such pixels belong to no P3C scenario and keep their NDVI in every one.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

import numpy as np
import xarray as xr

_log = logging.getLogger(__name__)

__all__ = ["LandCover", "labels_on_grid", "point_classes", "s1_clusters", "sample_label_file", "sample_land_cover"]

NO_CLASS = -1


@dataclass(frozen=True)
class LandCover:
    """A class per pixel ``(y, x)`` (or per sequence ``(N,)``) and a name per class."""

    classes: np.ndarray
    """Integer class per pixel (or point); :data:`NO_CLASS` (-1) where none."""
    names: dict[int, str] = field(default_factory=dict)
    """Class → readable name (e.g. ``"CT 1200"``, ``"S1 cluster 3"``)."""
    source: str = ""
    """Where the classes come from (for reports)."""

    def sizes(self) -> dict[int, int]:
        """Pixels per class (``NO_CLASS`` left out)."""
        vals, counts = np.unique(self.classes[self.classes != NO_CLASS], return_counts=True)
        return {int(v): int(c) for v, c in zip(vals, counts)}

    def name(self, cls: int) -> str:
        """Readable name of ``cls``."""
        return self.names.get(int(cls), f"class {int(cls)}")


def sample_label_file() -> Path:
    """The embedded label raster of the sample (WorldCereal, MIT; see ``udf/data/sample/ATTRIBUTION.md``)."""
    from udf.ingest.sample import SAMPLE_DIR

    hits = sorted(SAMPLE_DIR.glob("OUTPUT_POLY-*.nc"))
    if len(hits) != 1:
        raise FileNotFoundError(f"Expected one 'OUTPUT_POLY-*.nc' label file in {SAMPLE_DIR}, found "
                                f"{[h.name for h in hits]}.")
    return hits[0]


def _label_codes(path: Path) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(codes (y, x) int, x (nx,), y (ny,))``: CT where finite and > 0, else LC where > 0, else -1."""
    with xr.open_dataset(path) as ds:
        for var in ("LC", "CT"):
            if var not in ds:
                raise KeyError(f"Label file '{path}' has no variable {var!r} (has {list(ds.data_vars)}); expected "
                               "WorldCereal LC (land cover) and CT (crop type).")
        lc, ct = ds["LC"].values.astype(np.float64), ds["CT"].values.astype(np.float64)
        x, y = ds["x"].values.astype(np.float64), ds["y"].values.astype(np.float64)
    codes = np.where(np.isfinite(ct) & (ct > 0), ct, np.where(np.isfinite(lc) & (lc > 0), lc, NO_CLASS))
    return codes.astype(np.int64), x, y


def labels_on_grid(path: str | Path, x: np.ndarray, y: np.ndarray, min_share: float = 0.75) -> LandCover:
    """Labels of a WorldCereal ``OUTPUT_POLY`` raster on a cube grid by majority of the label pixels inside each cell.

    A cube pixel gets the most frequent code among the label pixels whose centres fall in it when that code covers
    at least ``min_share`` of them (3 of 4 label pixels of a 20 m cell at 10 m); otherwise (mixed, or no label
    pixel inside) it gets :data:`NO_CLASS`. Codes are WorldCereal crop types (``CT``, ≥ 1000) where a parcel is
    declared and land covers (``LC``, < 100) elsewhere, so the two never collide.

    Args:
        path: label file (variables ``LC`` and ``CT`` on ``(y, x)``).
        x: ``(nx,)`` cube pixel centres (same CRS as the label file).
        y: ``(ny,)`` cube pixel centres.
        min_share: least share of the majority code in a cell.

    Raises:
        ValueError: the grids do not overlap (the message gives both extents).
    """
    codes, lx, ly = _label_codes(Path(path))
    x, y = np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)
    dx = abs(float(x[1] - x[0])) if len(x) > 1 else abs(float(lx[1] - lx[0]))
    dy = abs(float(y[1] - y[0])) if len(y) > 1 else abs(float(ly[1] - ly[0]))
    ix = np.floor((lx - (x.min() - dx / 2)) / dx).astype(np.int64)
    iy = np.floor((ly - (y.min() - dy / 2)) / dy).astype(np.int64)
    if x[0] > x[-1]:
        ix = len(x) - 1 - ix
    if y[0] > y[-1]:
        iy = len(y) - 1 - iy
    okx, oky = (ix >= 0) & (ix < len(x)), (iy >= 0) & (iy < len(y))
    if not okx.any() or not oky.any():
        raise ValueError(f"Label file '{path}' (x {lx.min():.0f}…{lx.max():.0f}, y {ly.min():.0f}…{ly.max():.0f}) "
                         f"does not overlap the cube (x {x.min():.0f}…{x.max():.0f}, y {y.min():.0f}…{y.max():.0f}).")
    yy, xx = np.meshgrid(iy, ix, indexing="ij")
    inside = oky[:, None] & okx[None, :]
    cell = (yy * len(x) + xx)[inside]
    code = codes[inside]
    values = np.unique(code)
    counts = np.zeros((len(values), len(y) * len(x)), dtype=np.int64)
    np.add.at(counts, (np.searchsorted(values, code), cell), 1)
    total = counts.sum(0)
    best = counts.argmax(0)
    share = counts.max(0) / np.maximum(total, 1)
    out = np.where((total > 0) & (share >= min_share - 1e-9), values[best], NO_CLASS).reshape(len(y), len(x))
    names = {int(c): (f"CT {int(c)}" if c >= 1000 else f"LC {int(c)}") for c in np.unique(out) if c != NO_CLASS}
    return LandCover(out.astype(np.int32), names, f"{Path(path).name} (majority ≥ {min_share:g} per cell)")


def sample_land_cover(cube: xr.DataArray, min_share: float = 0.75) -> LandCover:
    """Classes of the embedded sample's cube pixels (:func:`labels_on_grid` with the embedded label file)."""
    return labels_on_grid(sample_label_file(), cube["x"].values, cube["y"].values, min_share)


def _db(a: np.ndarray) -> np.ndarray:
    with np.errstate(divide="ignore", invalid="ignore"):
        return 10.0 * np.log10(np.where(a > 0, a, np.nan))


def s1_signatures(cube: xr.DataArray) -> np.ndarray:
    """``(y·x, 2·t)`` standardised S1 signature per pixel: VV and VH (dB) per date, gaps filled with the date's mean.

    Dates with no S1 at all are dropped; pixels with no S1 are NaN rows.
    """
    vv = _db(cube.sel(bands="VV").values.astype(np.float64))
    vh = _db(cube.sel(bands="VH").values.astype(np.float64))
    nt = vv.shape[0]
    feats = np.concatenate([vv.reshape(nt, -1), vh.reshape(nt, -1)], axis=0).T
    keep = np.isfinite(feats).any(0)
    feats = feats[:, keep]
    none = ~np.isfinite(feats).any(1)
    mean = np.nanmean(feats[~none], axis=0) if (~none).any() else np.zeros(feats.shape[1])
    feats = np.where(np.isfinite(feats), feats, mean)
    std = feats[~none].std(0) if (~none).any() else np.ones(feats.shape[1])
    feats = (feats - mean) / np.where(std > 0, std, 1.0)
    feats[none] = np.nan
    return feats


def kmeans(x: np.ndarray, k: int, seed: int = 0, iters: int = 50) -> np.ndarray:
    """Seeded k-means (k-means++ start, Lloyd iterations) of the rows of ``x``; returns the cluster of each row."""
    n = len(x)
    if k < 1 or k > n:
        raise ValueError(f"k-means needs 1 ≤ k ≤ number of pixels with S1 ({n}), got k={k}.")
    rng = np.random.default_rng(seed)
    centres = [x[rng.integers(n)]]
    d2 = ((x - centres[0]) ** 2).sum(1)
    for _ in range(1, k):
        p = d2 / d2.sum() if d2.sum() > 0 else np.full(n, 1.0 / n)
        centres.append(x[rng.choice(n, p=p)])
        d2 = np.minimum(d2, ((x - centres[-1]) ** 2).sum(1))
    c = np.stack(centres)
    label = np.zeros(n, dtype=np.int64)
    for it in range(iters):
        dist = (x ** 2).sum(1)[:, None] - 2 * x @ c.T + (c ** 2).sum(1)[None]
        new = dist.argmin(1)
        if it and np.array_equal(new, label):
            break
        label = new
        for j in range(k):
            if (label == j).any():
                c[j] = x[label == j].mean(0)
    # number clusters by size (largest first) so the numbering does not depend on the random start's order
    order = np.argsort(-np.bincount(label, minlength=k), kind="stable")
    rank = np.empty(k, dtype=np.int64)
    rank[order] = np.arange(k)
    return rank[label]


def s1_clusters(cube: xr.DataArray, k: int = 4, seed: int = 0) -> LandCover:
    """Seeded k-means clusters of the pixels' S1 signatures (:func:`s1_signatures`): classes where no labels exist.

    Pixels with no S1 at all get :data:`NO_CLASS`. Cluster 0 is the largest.
    """
    feats = s1_signatures(cube)
    ok = np.isfinite(feats).all(1)
    out = np.full(len(feats), NO_CLASS, dtype=np.int32)
    out[ok] = kmeans(feats[ok], k, seed)
    shape = (cube.sizes["y"], cube.sizes["x"])
    return LandCover(out.reshape(shape), {j: f"S1 cluster {j}" for j in range(k)},
                     f"k-means of S1 signatures (k={k}, seed={seed})")


_CODE_COLUMNS = ("ewoc_code", "CROPTYPE_LABEL")


def point_classes(path: str | Path, rows: Optional[np.ndarray] = None) -> LandCover:
    """Crop code of each point of a WorldCereal point table, in the row order of :mod:`udf.training.corpus.points`.

    Long tables (``sample_id``, ``timestamp``): one class per sample, sample ids sorted (as
    :func:`udf.training.corpus.points.read_long_points`). Wide tables: one class per row in file order, ``rows`` selecting
    rows as :func:`udf.training.corpus.points.read_wide_points` does.

    Raises:
        KeyError: the table has neither ``ewoc_code`` nor ``CROPTYPE_LABEL``.
        ValueError: a sample of a long table has several codes.
    """
    import pandas as pd

    path = Path(path)
    cols = pd.read_parquet(path, columns=None).columns
    column = next((c for c in _CODE_COLUMNS if c in cols), None)
    if column is None:
        raise KeyError(f"Point table '{path}' has no crop-code column (looked for {list(_CODE_COLUMNS)}).")
    if "sample_id" in cols and "timestamp" in cols:
        df = pd.read_parquet(path, columns=["sample_id", column])
        per = df.groupby("sample_id")[column].nunique()
        if (per > 1).any():
            raise ValueError(f"'{path}': {int((per > 1).sum())} samples have several {column} values.")
        codes = df.groupby("sample_id")[column].first().sort_index().to_numpy()
    else:
        codes = pd.read_parquet(path, columns=[column])[column].to_numpy()
        if rows is not None:
            codes = codes[np.flatnonzero(rows) if np.asarray(rows).dtype == bool else rows]
    codes = pd.to_numeric(pd.Series(codes), errors="coerce").to_numpy()
    out = np.where(np.isfinite(codes) & (codes > 0), codes, NO_CLASS).astype(np.int64)
    return LandCover(out.astype(np.int64), {int(c): f"{column} {int(c)}" for c in np.unique(out) if c != NO_CLASS},
                     f"{path.name} ({column})")
