"""Lazy (dask) steps from raw stacks to the model cube: S1 units, orbit normalisation, NDVI, compositing.

Every step works on spatial blocks that hold the whole time axis, with the same numpy rules as the in-memory path
(:mod:`udf.preprocess`, :mod:`udf.ingest.orbits`, :mod:`udf.ingest.cloudmask`, :mod:`udf.ingest.compositing`), so
a cube built block by block equals one built in memory. Whole-scene quantities (the clear fraction of each S2 scene,
the orbit offsets' summary) are computed in a first pass; the composites are computed when the cube is written.
"""

import functools
import logging
import os
from typing import Callable, Iterator

import dask
import dask.array as da
import numpy as np
import xarray as xr

from udf.errors import S1UnitsError
from udf.ingest.base import acquisition_days, period_days
from udf.ingest.cloudmask import ndvi_block
from udf.ingest.compositing import composite_ndvi, composite_s1, regular_grid
from udf.ingest.orbits import OrbitPlan, apply_offsets, pixel_offsets, plan_orbits
from udf.preprocess import NDVI_BAND, S1_BANDS, detect_s1_units, s1_to_linear

__all__ = ["by_blocks", "composite_cube", "decide_s1_units", "ndvi_lazy", "normalise_orbits", "per_scene_sum",
           "s1_linear_lazy"]

_log = logging.getLogger(__name__)


def _by_rows(func: Callable[..., np.ndarray], rows: int = 32) -> Callable[..., np.ndarray]:
    """Run a per-pixel block function on slabs of ``rows`` rows.

    The numpy rules work in float64 with several temporaries; a slab keeps them small while the reads stay
    aligned with the file's tiles.
    """

    @functools.wraps(func)
    def wrapped(*arrays: np.ndarray, **kwargs: object) -> np.ndarray:
        ny = arrays[0].shape[-2]
        if ny <= rows:
            return func(*arrays, **kwargs)
        parts = [func(*(a[..., i:i + rows, :] for a in arrays), **kwargs) for i in range(0, ny, rows)]
        return np.concatenate(parts, axis=-2)

    return wrapped


def by_blocks(arr: da.Array, workers: int | None = None) -> Iterator[tuple[slice, slice, np.ndarray]]:
    """Compute ``arr`` a few spatial blocks (last two axes) at a time; yield ``(y slice, x slice, values)``.

    Computing a whole graph at once lets dask read many blocks ahead (every block of an export holds all periods
    and bands); ``workers`` blocks at a time keeps memory bounded by the block size.
    """
    workers = workers or min(4, os.cpu_count() or 1)
    ys = np.cumsum((0,) + arr.chunks[-2])
    xs = np.cumsum((0,) + arr.chunks[-1])
    blocks = [(i, j) for i in range(len(ys) - 1) for j in range(len(xs) - 1)]
    lead = (slice(None),) * (arr.ndim - 2)
    with dask.config.set(scheduler="threads", num_workers=workers):
        for start in range(0, len(blocks), workers):
            group = blocks[start:start + workers]
            values = dask.compute(*(arr.blocks[lead + (i, j)] for i, j in group))
            for (i, j), v in zip(group, values):
                yield slice(ys[i], ys[i + 1]), slice(xs[j], xs[j + 1]), v


def per_scene_sum(arr: da.Array, func: Callable[[np.ndarray], np.ndarray], workers: int | None = None) -> np.ndarray:
    """Sum over the area of ``func(block)`` (``(t, y, x)`` → ``(t,)``), computed a few blocks at a time."""
    nby, nbx = arr.numblocks[-2:]
    parts = da.map_blocks(lambda b: func(b)[:, None, None], arr, dtype=np.float64,
                          chunks=(arr.chunks[0], (1,) * nby, (1,) * nbx))
    total = np.zeros(arr.shape[0])
    for _, _, block in by_blocks(parts, workers):
        total += block[:, 0, 0]
    return total


def _count_finite(block: np.ndarray) -> np.ndarray:
    return np.isfinite(block).sum(axis=(1, 2)).astype(np.float64)


def _spatial(arr: da.Array, chunk: int) -> da.Array:
    """Rechunk to the whole of every leading axis and ``chunk`` pixels along y and x."""
    spec = {i: -1 for i in range(arr.ndim - 2)} | {arr.ndim - 2: chunk, arr.ndim - 1: chunk}
    return arr.rechunk(spec)


def decide_s1_units(stack: xr.Dataset, units: str, max_blocks: int = 3) -> str:
    """Resolve ``auto`` from a sample of the S1 values (blocks spread over the area, every 4th pixel).

    Raises:
        S1UnitsError: the sample holds no valid value, or fits no encoding.
    """
    if units != "auto":
        return units
    vv = stack["VV"].data
    rows = np.unique(np.linspace(0, vv.numblocks[1] - 1, max_blocks).round().astype(int))
    cols = np.unique(np.linspace(0, vv.numblocks[2] - 1, max_blocks).round().astype(int))
    step_t = max(1, vv.shape[0] // 24)
    samples: list[tuple[np.ndarray, ...]] = []
    for i in rows:
        for j in cols:  # one block at a time: VV and VH share the block's read
            samples.append(dask.compute(*(stack[b].data.blocks[:, i, j][::step_t, ::4, ::4] for b in S1_BANDS)))
    vv_s = np.concatenate([v[0].ravel() for v in samples])
    vh_s = np.concatenate([v[1].ravel() for v in samples])
    try:
        return detect_s1_units(vv_s, vh_s, dtype=np.dtype(stack.attrs.get("raw_dtype", "float32")))
    except S1UnitsError as exc:
        raise S1UnitsError(f"{exc} (sampled from {stack.attrs.get('source')})") from exc


def s1_linear_lazy(stack: xr.Dataset, units: str, chunk: int) -> da.Array:
    """``(t, 2, y, x)`` float32 linear power of VV, VH (NaN = no data), lazily, in blocks with the whole time axis."""
    raw = _spatial(da.stack([stack[b].data for b in S1_BANDS], axis=1), chunk)
    return da.map_blocks(_by_rows(s1_to_linear), raw, units=units, dtype=np.float32)


def normalise_orbits(linear: da.Array, times: np.ndarray, orbits: np.ndarray, max_gap_days: float,
                     workers: int | None = None) -> tuple[da.Array, dict[str, str]]:
    """Shift every S1 orbit onto the reference orbit (see :mod:`udf.ingest.orbits`); one pass to estimate the offsets.

    Returns:
        The normalised array and cube attributes describing the orbits and what was done.
    """
    plan = plan_orbits(times, orbits, max_gap_days=max_gap_days)
    if plan is None:
        known = sorted(set(np.asarray(orbits).astype(str)) - {""})
        what = f"one orbit label for all acquisitions: {known[0]}" if known else "not known per acquisition"
        return linear, {"s1_orbits": what,
                        "s1_orbit_normalisation": "none (one orbit label)" if known else "none (orbits not known)"}
    n = len(plan.others)
    offsets = da.map_blocks(_by_rows(pixel_offsets), linear, plan=plan, dtype=np.float32,
                            chunks=((n,), linear.chunks[1], linear.chunks[2], linear.chunks[3]))
    off = np.full(offsets.shape, np.nan, dtype=np.float32)
    for ys, xs, block in by_blocks(offsets, workers):
        off[..., ys, xs] = block
    off_arr = da.from_array(off, chunks=offsets.chunks)
    out = da.map_blocks(_by_rows(apply_offsets), linear, off_arr, plan=plan, dtype=np.float32, chunks=linear.chunks)
    return out, _orbit_attrs(plan, off, max_gap_days)


def _orbit_attrs(plan: OrbitPlan, off: np.ndarray, max_gap_days: float) -> dict[str, str]:
    parts = [f"{plan.reference}: {plan.counts[plan.reference]} acquisitions (reference)"]
    for i, name in enumerate(plan.others):
        with np.errstate(all="ignore"):
            med = [float(np.nanmedian(off[i, b])) if np.isfinite(off[i, b]).any() else np.nan for b in range(2)]
        unpaired = int((~np.isfinite(off[i])).any(axis=0).sum())
        parts.append(f"{name}: {plan.counts[name]} acquisitions, {len(plan.pairs[name][0])} pairs, median offset "
                     f"VV {med[0]:+.2f} dB, VH {med[1]:+.2f} dB, {unpaired} px without {plan.min_pairs} valid pairs "
                     "left unshifted")
        _log.info("S1 orbit %s", parts[-1])
    rule = (f"per-pixel median dB offset of each orbit to orbit {plan.reference} over acquisition pairs at most "
            f"{max_gap_days:g} days apart, subtracted before compositing")
    return {"s1_orbits": "; ".join(parts), "s1_orbit_normalisation": rule}


def ndvi_lazy(stack: xr.Dataset, kind: str, band: str | None, threshold: float, dilation: int,
              chunk: int) -> da.Array:
    """``(t, y, x)`` float32 NDVI, masked per ``kind``, lazily; clouds are grown across block borders."""
    red, nir = _spatial(stack["B04"].data, chunk), _spatial(stack["B08"].data, chunk)
    offset = stack["boa_offset"].values if "boa_offset" in stack.coords else np.zeros(stack.sizes["t"], np.float32)
    arrays = [red, nir] + ([_spatial(stack[band].data, chunk)] if band else [])

    def block(r: np.ndarray, n: np.ndarray, m: np.ndarray | None = None) -> np.ndarray:
        return ndvi_block(r, n, m, kind, threshold, dilation, offset)

    if dilation > 0 and band:
        return da.map_overlap(block, *arrays, depth={0: 0, 1: dilation, 2: dilation}, boundary="none",
                              dtype=np.float32, trim=True)
    return da.map_blocks(block, *arrays, dtype=np.float32)


def cube_edges(times: list[np.ndarray], period: str | None, start: str | None, end: str | None) -> np.ndarray:
    """Bin edges of the cube, as :func:`udf.ingest.base.build_cube` makes them."""
    t_all = np.concatenate([np.asarray(t) for t in times])
    t0 = np.datetime64(start or str(t_all.min())[:10], "D")
    t1 = np.datetime64(end or str(t_all.max())[:10], "D") + np.timedelta64(1, "D")
    return regular_grid(t0, t1, period_days(period)) if period else acquisition_days(t_all)


def composite_cube(linear: da.Array, s1_times: np.ndarray, ndvi: da.Array | None, s2_times: np.ndarray | None,
                   edges: np.ndarray, coords: dict, s2_rule: str = "clearest",
                   workers: int | None = None) -> xr.DataArray:
    """The lazy model cube ``(t, bands=[VV, VH, NDVI], y, x)``: S1 mean of linear power, NDVI of the clearest scene.

    The clear fraction of every S2 scene is computed over the whole scene first (one pass), so that each block
    picks the same scene as an in-memory composite would.
    """
    n = len(edges) - 1
    s1c = da.map_blocks(_by_rows(composite_s1), linear, times=s1_times, edges=edges, dtype=np.float32,
                        chunks=((n,),) + linear.chunks[1:])
    if ndvi is None:
        ndc = da.full((n, 1) + linear.shape[2:], np.nan, dtype=np.float32, chunks=((n,), (1,)) + linear.chunks[2:])
    else:
        ndvi = ndvi.rechunk({0: -1, 1: linear.chunks[2], 2: linear.chunks[3]})
        fraction = per_scene_sum(ndvi, _count_finite, workers) / (ndvi.shape[1] * ndvi.shape[2])
        ndc = da.map_blocks(_by_rows(composite_ndvi), ndvi, times=s2_times, edges=edges, rule=s2_rule,
                            clear_fraction=fraction, dtype=np.float32, chunks=((n,),) + ndvi.chunks[1:])[:, None]
    values = da.concatenate([s1c, ndc], axis=1)
    return xr.DataArray(values, dims=("t", "bands", "y", "x"),
                        coords={"t": edges[:-1].astype("datetime64[ns]"), "bands": [*S1_BANDS, NDVI_BAND], **coords})
