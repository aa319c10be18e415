"""Where a batch job's time goes (per stage, from the job's log), and the bare UDF on the same tiles.

The tile runner logs one line per tiled step (``local_backend.tiles.timing``): the seconds its tiles spent reading,
decoding, in the UDF and writing, their own wall and CPU seconds, and the tile phase's wall span. With the job's wall
time and its number of workers this splits the job's worker-seconds (workers x wall) into the stages, the rest of
the tiles' time (cropping, the graph), the scheduling/idle time inside the tile phase (workers x span - tile
seconds) and the time outside it (job start, ``save_result`` writing the result).

:func:`bare_udf` runs the exported UDF's ``apply_datacube`` directly (no backend) on windows of the same tiles of the
same collection, in a subprocess with a given number of torch threads: the speed the job is compared against.

Usage (the bare UDF alone)::

    python benchmarks/area_stages.py PATH.zarr N TILE [--tiles 4] [--threads 2] [--device cpu]
"""

import argparse
import json
import logging
import os
import re
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
_log = logging.getLogger("area_stages")
_LINE = re.compile(r"tile stages of (\d+) tile\(s\): (.*); tiles ([\d.]+) s \(CPU ([\d.]+) s\) in ([\d.]+) s wall")


def stages_from_logs(messages: list[str]) -> dict[str, Any]:
    """The last tiled step's stage line of a job log, parsed; raises when the log has none."""
    for message in reversed(messages):
        match = _LINE.search(message)
        if match:
            busy = {k: float(v) for k, v in (part.rsplit(" ", 2)[:2] for part in match.group(2).split(", "))}
            return {"tiles_timed": int(match.group(1)), "busy_s": busy, "tile_s": float(match.group(3)),
                    "tile_cpu_s": float(match.group(4)), "span_s": float(match.group(5))}
    raise RuntimeError(f"no 'tile stages' line in the job log (last lines: {messages[-3:]})")


def stage_split(row: dict[str, Any], workers: int) -> dict[str, float]:
    """The job's worker-seconds (``workers x wall``) per stage; the values add up to that total."""
    busy = row["busy_s"]
    split = {"read": busy.get("read", 0.0), "decode": busy.get("decode", 0.0), "UDF": busy.get("udf", 0.0),
             "tile write": busy.get("write", 0.0)}
    split["other in tile"] = row["tile_s"] - sum(split.values())
    split["scheduling/idle"] = workers * row["span_s"] - row["tile_s"]
    split["outside tiles (start, result write)"] = workers * (row["wall_s"] - row["span_s"])
    return split


def stage_table(rows: list[dict[str, Any]], workers: int) -> str:
    """Markdown: seconds and share of the job per stage, per N."""
    names = list(stage_split(rows[0], workers))
    lines = [f"Worker-seconds per stage ({workers} workers x wall; share of the job in brackets)",
             "| N | " + " | ".join(names) + " | result write s (wall) | load avg |",
             "|---|" + "---:|" * (len(names) + 1) + "---|"]
    for r in rows:
        split, total = stage_split(r, workers), workers * r["wall_s"]
        cells = " | ".join(f"{v:.0f} ({100 * v / total:.0f} %)" for v in split.values())
        lines.append(f"| {r['n']} | {cells} | {r.get('write_s', float('nan')):.0f} | "
                     f"{', '.join(f'{x:.1f}' for x in r['load_1min'])} |")
    return "\n".join(lines)


def speed_table(rows: list[dict[str, Any]]) -> str:
    """Markdown: the job's pixel-steps/s next to the bare UDF's on the same tiles, per wall and per CPU second."""
    lines = ["| N | job px-steps/s | bare UDF px-steps/s (threads) | job / bare | job px-steps per CPU-s | "
             "bare per CPU-s | job / bare per CPU-s | job CPU s (server + workers) | load avg (job; bare) |",
             "|---|---:|---:|---:|---:|---:|---:|---:|---|"]
    for r in rows:
        bare = r["bare"]
        if "error" in bare:
            lines.append(f"| {r['n']} | {r['pixel_steps_per_s']:,.0f} | failed: {bare['error'][:60]} | | | | | | |")
            continue
        job_cpu = r["n"] ** 2 * r["steps"] / r["cpu_s"] if r.get("cpu_s") else float("nan")
        lines.append(f"| {r['n']} | {r['pixel_steps_per_s']:,.0f} | {bare['px_steps_per_s']:,.0f} ({bare['threads']}) | "
                     f"{r['pixel_steps_per_s'] / bare['px_steps_per_s']:.2f} | {job_cpu:,.0f} | "
                     f"{bare['px_steps_per_cpu_s']:,.0f} | {job_cpu / bare['px_steps_per_cpu_s']:.2f} | "
                     f"{r.get('cpu_s', float('nan')):.0f} | {', '.join(f'{x:.1f}' for x in r['load_1min'])}; "
                     f"{', '.join(f'{x:.1f}' for x in bare['load_1min'])} |")
    return "\n".join(lines)


def bare_udf(zarr: Path, n: int, tile: int, tiles: int = 4, threads: int = 2, timeout: float = 3600,
             device: str = "cpu") -> dict[str, Any]:
    """The exported UDF called directly on ``tiles`` of the job's tile windows, in a subprocess with ``threads``."""
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": str(threads)}
    done = subprocess.run([sys.executable, __file__, str(zarr), str(n), str(tile), "--tiles", str(tiles),
                           "--threads", str(threads), "--device", device], env=env, capture_output=True, text=True,
                          timeout=timeout)
    if done.returncode:
        raise RuntimeError(f"bare UDF run failed ({done.returncode}): {done.stderr[-2000:]}")
    return dict(json.loads(done.stdout.strip().splitlines()[-1]))


def _measure(zarr: Path, n: int, tile: int, tiles: int, threads: int, device: str = "cpu") -> dict[str, Any]:
    """In this process: read ``tiles`` tile windows (core + 8 px overlap, along the diagonal), time the UDF on each.

    Pixel-steps count the window the UDF computes (core and overlap): the UDF's own speed.
    """
    import torch

    sys.path.insert(0, str(REPO))
    from local_backend.cubes.lazy_io import lazy_cube
    from local_backend.cubes.readers import describe_source
    from local_backend.tiles.windows import windows
    from udf.s1_ndvi_udf import apply_datacube

    torch.set_num_threads(threads)
    cube = lazy_cube(describe_source(zarr))
    grid = windows(n, tile, 8)
    picks = sorted({round(k * (len(grid) - 1) / max(tiles - 1, 1)) for k in range(tiles)})
    context = {"device": device}
    load = [os.getloadavg()[0]]
    apply_datacube(cube.isel(y=slice(0, 8), x=slice(0, 8)).compute(), context)  # warm-up, weights
    seconds = cpu = 0.0
    px_steps = 0
    for k in picks:
        window = cube.isel(y=grid[k].read, x=grid[len(grid) - 1 - k].read).compute()
        start, start_cpu = time.perf_counter(), time.process_time()
        apply_datacube(window, context)
        if device.startswith("cuda"):
            torch.cuda.synchronize()
        seconds += time.perf_counter() - start
        cpu += time.process_time() - start_cpu
        px_steps += window.sizes["t"] * window.sizes["y"] * window.sizes["x"]
    load.append(os.getloadavg()[0])
    return {"threads": threads, "device": device, "tiles": len(picks), "seconds": seconds, "cpu_s": cpu,
            "px_steps": px_steps, "px_steps_per_s": px_steps / seconds, "px_steps_per_cpu_s": px_steps / cpu,
            "load_1min": load}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("zarr", type=Path)
    parser.add_argument("n", type=int)
    parser.add_argument("tile", type=int)
    parser.add_argument("--tiles", type=int, default=4)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()
    print(json.dumps(_measure(args.zarr, args.n, args.tile, args.tiles, args.threads, args.device)))  # noqa: T201


if __name__ == "__main__":
    main()
