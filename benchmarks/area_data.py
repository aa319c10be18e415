"""The SYNTHETIC area collection of the area benchmarks: ``SYNTHETIC_AREA_<N>`` (zarr v3, N x N px x 36 steps).

Every 32 x 32 block is the real embedded WorldCereal sample (``udf.ingest.base.load_sample_cube``, 20 m, the first 36
dekads) rotated/flipped at random, with a random gain and multiplicative speckle on VV/VH and an offset, noise and
extra random cloud gaps on NDVI: a realistic input for timing and memory, not for accuracy.
"""

import json
import sys
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
STEPS = 36


def _variants(steps: int) -> tuple[np.ndarray, np.ndarray]:
    """The real sample cube ``(8, t, 3, 32, 32)``: its 4 rotations, each also flipped."""
    sys.path.insert(0, str(REPO))
    from udf.ingest.base import load_sample_cube

    cube = load_sample_cube(period="10D").transpose("t", "bands", "y", "x").isel(t=slice(0, steps))
    values = cube.sel(bands=["VV", "VH", "NDVI"]).values.astype(np.float32)
    rotated = [np.rot90(values, k, axes=(2, 3)) for k in range(4)]
    return np.stack(rotated + [r[..., ::-1] for r in rotated]), cube["t"].values


def _stripe(variants: np.ndarray, rows: int, n: int, rng: np.random.Generator) -> np.ndarray:
    """``rows`` x ``n`` px of perturbed sample blocks, ``(t, 3, rows, n)``."""
    block = variants.shape[-1]
    by, bx = rows // block, n // block
    pick = variants[rng.integers(0, len(variants), size=(by, bx))]  # (by, bx, t, 3, b, b)
    out = np.ascontiguousarray(pick.transpose(2, 3, 0, 4, 1, 5).reshape(variants.shape[1], 3, rows, n))
    gain = np.repeat(np.repeat(rng.lognormal(0, 0.1, size=(by, bx)), block, 0), block, 1).astype(np.float32)
    speckle = np.exp(0.15 * rng.standard_normal(size=(out.shape[0], 2, rows, n), dtype=np.float32))
    out[:, :2] *= gain * speckle
    offset = np.repeat(np.repeat(rng.normal(0, 0.03, size=(by, bx)), block, 0), block, 1).astype(np.float32)
    ndvi = out[:, 2] + offset + 0.02 * rng.standard_normal(size=out[:, 2].shape, dtype=np.float32)
    ndvi[rng.random(size=ndvi.shape, dtype=np.float32) < 0.1] = np.nan
    out[:, 2] = np.clip(ndvi, -1, 1)
    return out


def write_synthetic(folder: Path, n: int, seed: int = 0) -> str:
    """Write ``SYNTHETIC_AREA_<n>.zarr`` (zarr v3, chunks t x 128 x 128) and its sidecar; return the id."""
    import zarr
    from pyproj import CRS

    cid = f"SYNTHETIC_AREA_{n}"
    path = folder / f"{cid}.zarr"
    if (path / "zarr.json").exists() and (folder / f"{cid}.json").exists():
        return cid
    variants, times = _variants(STEPS)
    rng = np.random.default_rng(seed)
    group = zarr.open_group(str(path), mode="w", zarr_format=3)
    days = ((times - np.datetime64("2017-01-01")) / np.timedelta64(1, "D")).astype("int64")
    group.create_array("t", data=days, dimension_names=["t"], attributes={"units": "days since 2017-01-01"})
    group.create_array("y", data=5600000.0 - 20 * (np.arange(n) + 0.5), dimension_names=["y"])
    group.create_array("x", data=500000.0 + 20 * (np.arange(n) + 0.5), dimension_names=["x"])
    group.create_array("crs", shape=(), dtype="int32", attributes={"crs_wkt": CRS.from_epsg(32631).to_wkt()})
    arrays = {b: group.create_array(b, shape=(len(days), n, n), dtype="float32", chunks=(len(days), 128, 128),
                                    dimension_names=["t", "y", "x"], fill_value=np.nan)
              for b in ("VV", "VH", "NDVI")}
    for row in range(0, n, 128):
        stripe = _stripe(variants, min(128, n - row), n, rng)
        for k, array in enumerate(arrays.values()):
            array[:, row:row + stripe.shape[2], :] = stripe[:, k]
    sidecar = {"id": cid, "title": f"SYNTHETIC {n} x {n} px x {STEPS} steps",
               "description": "SYNTHETIC: 32 x 32 px blocks of the embedded WorldCereal sample, rotated/flipped, "
                              "with random gains, speckle, NDVI noise and gaps. For timing and memory, not accuracy."}
    (folder / f"{cid}.json").write_text(json.dumps(sidecar))
    return cid
