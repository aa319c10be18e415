"""Cost of the phenology's uncertainty bands (CONF_k, SOS/POS/EOS_STD_k): time per pixel against plain phenology.

Builds a synthetic two-year cube ``(t, bands[NDVI, NDVI_STD], y, x)`` (1–3 noisy seasons per pixel, 10-day steps)
and times :func:`udf.phenology.phenology_cube` with ``uncertainty`` off (the baseline, same run) and on with
``uncertainty_samples`` = 4, 8, 16, 32, single-threaded, reporting seconds and the ratio to the baseline. The cost is
expected to grow as about 1 + samples (one extra season detection per sample). Times on a shared machine vary with
its load; the ratios are measured back to back and are the number to read.

Usage: python benchmarks/bench_phenology_uncertainty.py [--size 64] [--samples 4 8 16 32]
"""

import argparse
import os
import time

for _var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
    os.environ[_var] = "1"

import numpy as np  # noqa: E402
import xarray as xr  # noqa: E402

from udf.phenology import PhenologyConfig, phenology_cube  # noqa: E402


def synthetic(size: int, seed: int = 0) -> xr.DataArray:
    """``size``² pixels, 73 ten-day steps, 1–3 seasons per pixel, NDVI_STD 0.02–0.12."""
    rng = np.random.default_rng(seed)
    days = np.arange(0.0, 730.0, 10.0)
    n = size * size
    period = 365.0 / rng.integers(1, 4, n)
    x = (days[None, :] - rng.uniform(0, 365.0, n)[:, None]) / period[:, None]
    ndvi = 0.2 + 0.6 * np.sin(np.pi * x) ** 2 + rng.normal(0, 0.03, (n, days.size))
    std = rng.uniform(0.02, 0.12, (n, days.size))
    values = np.stack([ndvi, std], 1).reshape(size, size, 2, days.size).transpose(3, 2, 0, 1)
    t = (days + 18200).astype(np.int64).astype("datetime64[D]").astype("datetime64[ns]")
    return xr.DataArray(values.astype(np.float32), dims=("t", "bands", "y", "x"),
                        coords={"t": t, "bands": ["NDVI", "NDVI_STD"], "y": np.arange(size), "x": np.arange(size)})


def timed(cube: xr.DataArray, config: PhenologyConfig) -> float:
    t0 = time.process_time()
    phenology_cube(cube, config)
    return time.process_time() - t0


def main() -> None:
    """Print seconds and ratios to the plain phenology for each sample count."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", type=int, default=64)
    ap.add_argument("--samples", type=int, nargs="+", default=[4, 8, 16, 32])
    args = ap.parse_args()
    cube = synthetic(args.size)
    timed(synthetic(8), PhenologyConfig())  # warm-up
    base = timed(cube, PhenologyConfig())
    n = args.size ** 2
    print(f"{n} pixels × {cube.sizes['t']} steps, CPU seconds (one thread)")
    print(f"| samples | seconds | µs / pixel | ratio to plain |\n|---|---|---|---|\n| plain | {base:.2f} | "
          f"{1e6 * base / n:.0f} | 1.00 |")
    for s in args.samples:
        sec = timed(cube, PhenologyConfig(uncertainty=True, uncertainty_samples=s))
        print(f"| {s} | {sec:.2f} | {1e6 * sec / n:.0f} | {sec / base:.2f} |")


if __name__ == "__main__":
    main()
