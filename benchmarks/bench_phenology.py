"""Phenology UDF throughput on one core: pixels per minute on synthetic 1–3-season NDVI cubes.

Each row runs in a fresh single-threaded subprocess (OMP/MKL/OpenBLAS threads = 1) that builds a cube
``(t, bands[NDVI, NDVI_STD], y, x)`` with 1–3 noisy seasons per pixel on a regular grid over two farming years
(optionally with 40 % of the values missing, as a raw S2 series), warms up on a small cube, then times one call of
the UDF entry ``apply_datacube`` (input checks, smoothing, season detection, farming-year slots, output cube). Rates
are pixels per minute of the process's CPU time (it is single-threaded, so that is one core, and other load on a
shared machine does not inflate it; wall time is printed too). The baseline, measured in the same run, is the same
code called pixel by pixel (``phenology_arrays`` on one series at a time, 1,000 pixels), i.e. what vectorising over
pixels buys. "UDF peak MB" is the memory the UDF allocates on top of its input cube (tracemalloc, second call).
Target: ≥ 1 M pixels per minute per core at 36 steps.

Usage: python benchmarks/bench_phenology.py [--sizes 256 1024] [--steps 36 73] [--missing 0 0.4]
"""

import argparse
import json
import os
import subprocess
import sys
import time
import tracemalloc

import numpy as np

TARGET_PX_PER_MIN = 1_000_000


def synthetic(size: int, steps: int, missing: float, seed: int = 0):  # type: ignore[no-untyped-def]
    """A cube of ``size``² pixels × ``steps`` dates over two years, 1–3 seasons per pixel, NDVI_STD attached."""
    import xarray as xr

    rng = np.random.default_rng(seed)
    days = np.linspace(0.0, 730.0, steps)
    n = size * size
    n_seasons = rng.integers(1, 4, n)
    period = 365.0 / n_seasons
    phase = rng.uniform(0, 365.0, n)
    x = (days[None, :] - phase[:, None]) / period[:, None]
    ndvi = 0.2 + 0.6 * np.sin(np.pi * x) ** 2 + rng.normal(0, 0.03, (n, steps))
    ndvi[rng.random(ndvi.shape) < missing] = np.nan
    std = rng.uniform(0.03, 0.12, (n, steps))
    values = np.stack([ndvi, std], 0).reshape(2, size, size, steps).transpose(3, 0, 1, 2).astype(np.float32)
    t = (np.datetime64("2019-11-01") + days.astype("timedelta64[D]")).astype("datetime64[ns]")
    return xr.DataArray(values, dims=("t", "bands", "y", "x"),
                        coords={"t": t, "bands": ["NDVI", "NDVI_STD"], "y": np.arange(size), "x": np.arange(size)})


def one(size: int, steps: int, missing: float) -> dict:
    from udf.phenology import phenology_arrays
    from udf.phenology_udf import apply_datacube

    cube = synthetic(size, steps, missing)
    apply_datacube(cube.isel(y=slice(0, 8), x=slice(0, 8)), {})  # warm-up
    t0, c0 = time.perf_counter(), time.process_time()
    out = apply_datacube(cube, {})
    seconds, cpu = time.perf_counter() - t0, time.process_time() - c0
    del out
    tracemalloc.start()  # a second, untimed call: memory the UDF allocates on top of its input
    out = apply_datacube(cube, {})
    udf_mb = tracemalloc.get_traced_memory()[1] / 2 ** 20
    tracemalloc.stop()
    small = synthetic(32, steps, missing, seed=1)
    ndvi = small.sel(bands="NDVI").values.reshape(steps, -1).T[:1000].astype(np.float64)
    std = small.sel(bands="NDVI_STD").values.reshape(steps, -1).T[:1000].astype(np.float64)
    days = small["t"].values.astype("datetime64[s]").astype(np.int64) / 86400.0
    c1 = time.process_time()
    for i in range(ndvi.shape[0]):
        phenology_arrays(ndvi[i:i + 1], days, std[i:i + 1])
    per_pixel = (time.process_time() - c1) / ndvi.shape[0]
    counts = out.sel(bands="N_SEASONS").values
    return {"size": size, "steps": steps, "missing": missing, "seconds": seconds, "cpu_seconds": cpu,
            "px_per_min": size * size / cpu * 60, "wall_px_per_min": size * size / seconds * 60,
            "baseline_px_per_min": 60 / per_pixel,
            "cube_mb": cube.nbytes / 2 ** 20, "udf_peak_mb": udf_mb,
            "mean_seasons": float(np.nanmean(counts))}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--sizes", type=int, nargs="+", default=[256, 1024])
    p.add_argument("--steps", type=int, nargs="+", default=[36, 73])
    p.add_argument("--missing", type=float, nargs="+", default=[0.0, 0.4])
    p.add_argument("--one", nargs=3, help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.one:
        print(json.dumps(one(int(args.one[0]), int(args.one[1]), float(args.one[2]))))
        return
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1"}
    rows = []
    for steps in args.steps:
        for missing in args.missing:
            for size in args.sizes:
                out = subprocess.run([sys.executable, __file__, "--one", str(size), str(steps), str(missing)],
                                     capture_output=True, text=True, check=True, env=env)
                rows.append(json.loads(out.stdout.strip().splitlines()[-1]))
    print(f"{'pixels':>10} {'steps':>5} {'missing':>7} {'wall s':>7} {'CPU s':>7} {'px/min (1 core)':>16} "
          f"{'x target':>8} {'per-pixel px/min':>16} {'x per-pixel':>11} {'cube MB':>8} {'UDF peak MB':>11} "
          f"{'seasons/yr':>10}")
    for r in rows:
        print(f"{r['size']:>5}x{r['size']:<4} {r['steps']:>5} {r['missing']:>7.0%} {r['seconds']:>7.2f} "
              f"{r['cpu_seconds']:>7.2f} {r['px_per_min']:>16,.0f} {r['px_per_min'] / TARGET_PX_PER_MIN:>8.2f} "
              f"{r['baseline_px_per_min']:>16,.0f} {r['px_per_min'] / r['baseline_px_per_min']:>11.0f} "
              f"{r['cube_mb']:>8.0f} {r['udf_peak_mb']:>11.0f} {r['mean_seasons']:>10.2f}")
    print(f"(px/min per core = pixels ÷ CPU time of the single-threaded process, so that other load on the machine "
          f"does not count; target: {TARGET_PX_PER_MIN:,} at 36 steps; baseline: the same code called pixel by pixel, "
          "CPU time, in each subprocess)")


if __name__ == "__main__":
    main()
