"""UDF inference throughput and peak memory on synthetic cubes (speed only; accuracy comes from real data).

For each cube size (pixels² × steps) and CPU thread count, a fresh subprocess builds a random cube, runs
``apply_datacube`` once to warm up on a small cube, then times one full call. Prints pixel-time-steps per second, peak
RSS, the model's FLOPs per pixel-step and the fraction of this machine's measured fp32 matmul rate reached. The
baseline row is MOGPR's ~150 pixel-steps/s quoted in the brief only as context; the ratios are against the 1-thread
64² run measured here.

With ``--borrow-compare`` the NDVI of alternate 8 × 8 px blocks is removed (S2 elsewhere), so that similar-pixel
borrowing (udf/borrow.py) acts on half the pixels, and every configuration runs with borrowing on and off; the
"vs off" column is the throughput ratio against the same configuration without borrowing.

Usage: python benchmarks/bench_udf.py [--sizes 64 256 1024] [--steps 36 73] [--threads 1 2] [--batch-size 4096]
       [--device cuda]  (on a GPU machine: the UDF's CUDA path; "of matmul" is then against an fp32 cuda mm)
       [--borrow-compare]
"""

import argparse
import json
import resource
import subprocess
import sys
import time

import numpy as np


def matmul_gflops(threads: int, device: str = "cpu") -> float:
    import torch

    torch.set_num_threads(threads)
    a, b = torch.randn(2048, 2048, device=device), torch.randn(2048, 2048, device=device)
    torch.mm(a, b)
    n = 5 if device == "cpu" else 50
    if device != "cpu":
        torch.cuda.synchronize()
    t0 = time.perf_counter()
    for _ in range(n):
        torch.mm(a, b)
    if device != "cpu":
        torch.cuda.synchronize()
    return 2 * 2048 ** 3 * n / (time.perf_counter() - t0) / 1e9


def one(size: int, steps: int, threads: int, batch_size: int, device: str = "cpu", blocks: bool = False,
        borrowing: bool = True) -> dict:
    import torch
    import xarray as xr

    from udf.s1_ndvi_udf import apply_datacube
    from udf.weights import load_checkpoint

    torch.set_num_threads(threads)
    rng = np.random.default_rng(0)
    vv = rng.uniform(-18, -6, (steps, size, size)).astype(np.float32)
    vh = vv - rng.uniform(5, 9, vv.shape).astype(np.float32)
    nd = rng.uniform(0.1, 0.9, vv.shape).astype(np.float32)
    nd[rng.random(nd.shape) < 0.6] = np.nan
    if blocks:
        yy, xx = np.mgrid[:size, :size]
        nd[:, (yy // 8 + xx // 8) % 2 == 1] = np.nan
    t = (np.datetime64("2021-01-01") + np.arange(steps) * np.timedelta64(365 // steps, "D")).astype("datetime64[ns]")
    cube = xr.DataArray(np.stack([vv, vh, nd], 1), dims=("t", "bands", "y", "x"),
                        coords={"t": t, "bands": ["VV", "VH", "NDVI"], "y": np.arange(size), "x": np.arange(size)})
    ctx = {"s1_units": "db", "device": device, "batch_size": batch_size, "borrowing": borrowing}
    apply_datacube(cube.isel(y=slice(0, 8), x=slice(0, 8)), ctx)  # warm-up and weight loading
    rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    t0, c0 = time.perf_counter(), time.process_time()
    apply_datacube(cube, ctx)
    seconds, cpu_seconds = time.perf_counter() - t0, time.process_time() - c0
    model, _ = load_checkpoint(None)
    return {"size": size, "steps": steps, "threads": threads, "seconds": seconds,
            "px_steps_per_s": size * size * steps / seconds,
            "px_steps_per_cpu_s": size * size * steps / cpu_seconds, "flops_per_step": model.flops_per_step(),
            "cube_mb": cube.nbytes / 2 ** 20, "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
            "rss_before_mb": rss_before, "matmul_gflops": matmul_gflops(threads, device), "device": device,
            "borrowing": borrowing, "blocks": blocks}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--sizes", type=int, nargs="+", default=[64, 256, 1024])
    p.add_argument("--steps", type=int, nargs="+", default=[36, 73])
    p.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    p.add_argument("--batch-size", type=int, default=4096)
    p.add_argument("--device", default="cpu", help="cpu or cuda (CUDA: bf16 autocast, the UDF's GPU path)")
    p.add_argument("--borrow-compare", action="store_true",
                   help="S1 only on alternate 8x8 blocks; each configuration with borrowing on and off")
    p.add_argument("--one", nargs=3, type=int, help=argparse.SUPPRESS)
    p.add_argument("--no-borrow", action="store_true", help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.one:
        print(json.dumps(one(*args.one, batch_size=args.batch_size, device=args.device, blocks=args.borrow_compare,
                             borrowing=not args.no_borrow)))
        return
    rows = []
    for threads in args.threads:
        for steps in args.steps:
            for size in args.sizes:
                for off in ([True, False] if args.borrow_compare else [False]):
                    cmd = [sys.executable, __file__, "--one", str(size), str(steps), str(threads),
                           "--batch-size", str(args.batch_size), "--device", args.device]
                    cmd += (["--borrow-compare"] if args.borrow_compare else []) + (["--no-borrow"] if off else [])
                    out = subprocess.run(cmd, capture_output=True, text=True, check=True)
                    rows.append(json.loads(out.stdout.strip().splitlines()[-1]))
    base = rows[0]["px_steps_per_s"]
    print(f"{'pixels':>10} {'steps':>5} {'thr':>3} {'s':>8} {'px-steps/s':>12} {'x base':>7} {'cube MB':>8} "
          f"{'peak RSS MB':>11} {'FLOP/step':>9} {'GFLOP/s':>8} {'of matmul':>9} {'borrow':>6} {'vs off':>6} {'/CPU-s':>10}")
    off_rate = {(r["size"], r["steps"], r["threads"]): r["px_steps_per_s"] for r in rows if not r["borrowing"]}
    for r in rows:
        gflops = r["px_steps_per_s"] * r["flops_per_step"] / 1e9
        print(f"{r['size']:>5}x{r['size']:<4} {r['steps']:>5} {r['threads']:>3} {r['seconds']:>8.2f} "
              f"{r['px_steps_per_s']:>12,.0f} {r['px_steps_per_s'] / base:>7.2f} {r['cube_mb']:>8.1f} "
              f"{r['peak_rss_mb']:>11.0f} {r['flops_per_step']:>9,} {gflops:>8.1f} "
              f"{gflops / r['matmul_gflops']:>9.1%} {'on' if r['borrowing'] else 'off':>6} "
              f"{r['px_steps_per_s'] / off_rate.get((r['size'], r['steps'], r['threads']), float('nan')):>6.2f} "
              f"{r['px_steps_per_cpu_s']:>10,.0f}")
    print("(/CPU-s: pixel-steps per second of process CPU time, all threads together — less sensitive to a loaded "
          "machine than the wall-clock rate)")
    print("(MOGPR, for context: ~150 pixel-steps/s per the brief; matmul rate measured per thread count with a "
          "2048² fp32 torch.mm)")


if __name__ == "__main__":
    main()
