"""Adapt benchmark: seconds per ``s1ndvi adapt`` epoch on the embedded sample with 1 and 2 torch threads.

Both runs do the same optimisation steps from the same zero-shot checkpoint and split (seed 0), one after the other
in this process, so the ratio compares thread counts under the same machine load (printed). It also prints the
largest weight difference between the two runs (thread counts change float summation order, nothing else).

Usage::

    python benchmarks/bench_adapt_threads.py                 # 240 steps (3 epochs of 80)
    python benchmarks/bench_adapt_threads.py --steps 800
"""

import argparse
import os
import time
from pathlib import Path

import torch

import udf
from udf.ingest.base import load_sample_cube
from udf.training.adapt import AdaptOptions, adapt, adapt_split
from udf.training.fit import eval_cube
from udf.weights import DEMO_ZERO_SHOT_NAME, load_checkpoint


def main() -> None:
    """Run the benchmark and print seconds per epoch, the ratio and the weight difference."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=240, help="optimisation steps per run (default 240)")
    args = parser.parse_args()
    cube = eval_cube(load_sample_cube(period=None))
    checkpoint = Path(udf.__file__).parent / "data" / DEMO_ZERO_SHOT_NAME
    split = adapt_split((cube.sizes["y"], cube.sizes["x"]), 8, 0)
    per_epoch, weights = {}, {}
    for threads in (1, 2):
        base, meta = load_checkpoint(checkpoint)
        load = os.getloadavg()[0]
        start = time.perf_counter()
        model, meta = adapt(cube, base, meta, AdaptOptions(steps=args.steps, seed=0, threads=threads), split=split,
                            score_test=False)
        seconds = time.perf_counter() - start
        per_epoch[threads] = 60 * meta["adapt"]["minutes"] / meta["adapt"]["epochs_run"]
        weights[threads] = model.state_dict()
        print(f"threads={threads}: {seconds:.1f} s in all, {per_epoch[threads]:.2f} s per epoch of "
              f"{meta['adapt']['steps_per_epoch']} steps ({meta['adapt']['steps_run']} steps; load average "
              f"{load:.1f} at start)")
    diff = max(float((weights[1][k].float() - weights[2][k].float()).abs().max()) for k in weights[1])
    print(f"2 threads / 1 thread, seconds per epoch: {per_epoch[2] / per_epoch[1]:.2f}x; "
          f"largest weight difference {diff:.1e}; {os.cpu_count()} CPUs, torch {torch.__version__}")


if __name__ == "__main__":
    main()
