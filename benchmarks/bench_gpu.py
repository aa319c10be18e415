"""One call on a GPU machine: the UDF, a batch job with CUDA workers and MOGPR, each with the CPU rows of the same machine.

GPU time is scarce (a lent machine, minutes per task), so this runs everything issue 21 asks for in one short,
time-boxed command and writes what it measured under ``--out`` (default ``$OUT`` when set, else a temporary folder):

1. ``bench_udf.py``: the exported UDF called directly on synthetic cubes, on the device (``--udf-sizes``, 36 and 73
   steps) and on the CPU (all cores, one size) — pixel-steps/s, peak RSS, share of the matmul rate.
2. ``bench_area.py``: the batch job (``load_collection → apply_neighborhood(UDF) → save_result``) over the
   SYNTHETIC area collection with the UDF on the device (``--workers`` dask workers, default 1 per GPU), then the
   same job with the UDF on the CPU (``--cpu-workers``); each with its stage table and the bare UDF on the same tiles.
3. ``bench_mogpr.py``: GPy (when importable) and the batched torch MOGPR on the CPU and on the GPU, and the DL UDF.

Each part runs in its own subprocess with its own time limit (``--part-timeout``); a part that fails or times out
is reported and the next one runs. ``--device cpu`` is the dry mode: every part on the CPU at tiny sizes, to check
the script here before spending GPU time.

Usage::

    python benchmarks/bench_gpu.py                       # on the GPU machine (about 8 min)
    python benchmarks/bench_gpu.py --device cpu          # dry mode here (tiny sizes)
"""

import argparse
import json
import logging
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
_log = logging.getLogger("bench_gpu")
_TABLE_LINE = re.compile(r"^\s*(\||pixels|\d+x\d+|UDF |Worker|torch|\(MOGPR)")
"""Lines of the parts' tables (markdown rows, bench_udf's aligned rows, headers), not their JSON dumps."""

GPU_PLAN = {"udf_sizes": [256, 1024], "udf_steps": [36, 73], "area_size": 2048, "area_tile": 1024,
            "cpu_area_size": 1024, "cpu_area_tile": 256, "mogpr_dates": [73], "mogpr_pixels": 1024, "gpy_pixels": 32}
"""Sizes on a GPU machine: enough pixels for the GPU to be busy, small enough for the whole run to fit minutes."""
DRY_PLAN = {"udf_sizes": [32], "udf_steps": [36], "area_size": 256, "area_tile": 128, "cpu_area_size": 256,
            "cpu_area_tile": 128, "mogpr_dates": [73], "mogpr_pixels": 8, "gpy_pixels": 2}
"""Sizes of the CPU dry mode: each part runs end to end in seconds to minutes."""


def _run(name: str, cmd: list[str], timeout: float, log_dir: Path) -> dict[str, Any]:
    """Run one part; its stdout and stderr go to ``log_dir/<name>.log``; returns status, seconds and stdout."""
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    start = time.time()
    _log.info("%s: %s", name, " ".join(cmd))
    try:
        done = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=timeout)
        status, out, err = ("ok" if done.returncode == 0 else f"failed ({done.returncode})"), done.stdout, done.stderr
    except subprocess.TimeoutExpired as exc:
        status = f"timed out after {timeout:.0f} s"
        out = exc.stdout.decode() if isinstance(exc.stdout, bytes) else (exc.stdout or "")
        err = exc.stderr.decode() if isinstance(exc.stderr, bytes) else (exc.stderr or "")
    (log_dir / f"{name}.log").write_text(f"$ {' '.join(cmd)}\n{out}\n--- stderr ---\n{err}")
    _log.info("%s: %s in %.0f s", name, status, time.time() - start)
    return {"part": name, "status": status, "seconds": time.time() - start, "stdout": out,
            "stderr_tail": err[-1500:] if status != "ok" else ""}


def plan_parts(device: str, plan: dict[str, Any], args: argparse.Namespace, out: Path) -> list[tuple[str, list[str]]]:
    """The commands of the run, in order (device rows first, then the CPU rows of the same machine)."""
    py = sys.executable
    cores = os.cpu_count() or 1
    sizes = [str(s) for s in plan["udf_sizes"]]
    steps = [str(s) for s in plan["udf_steps"]]
    parts = [("udf_" + device, [py, str(HERE / "bench_udf.py"), "--device", device, "--sizes", *sizes,
                                "--steps", *steps, "--threads", str(cores)])]
    if device != "cpu":
        parts.append(("udf_cpu", [py, str(HERE / "bench_udf.py"), "--device", "cpu", "--sizes", sizes[0],
                                  "--steps", steps[0], "--threads", str(cores)]))

    def area(tag: str, dev: str, size: int, tile: int, workers: int) -> tuple[str, list[str]]:
        return (f"area_{tag}", [py, str(HERE / "bench_area.py"), "--sizes", str(size), "--tile", str(tile),
                                "--workers", str(workers), "--device", dev, "--bare-tiles", "2",
                                "--bare-threads", str(cores if dev == "cpu" else 1),
                                "--json", str(out / f"area_{tag}.json")])

    parts.append(area(device, device, plan["area_size"], plan["area_tile"], args.workers))
    if device != "cpu":
        parts.append(area("cpu", "cpu", plan["cpu_area_size"], plan["cpu_area_tile"], args.cpu_workers))
    mogpr = [py, str(HERE / "bench_mogpr.py"), "--dates", *[str(d) for d in plan["mogpr_dates"]],
             "--torch-pixels", str(plan["mogpr_pixels"]), "--gpy-pixels", str(plan["gpy_pixels"])]
    if args.gpy_python:
        mogpr = [args.gpy_python, *mogpr[1:], "--extra-site", args.extra_site or _site_packages()]
    parts.append(("mogpr", mogpr))
    return parts


def _site_packages() -> str:
    import sysconfig

    return sysconfig.get_paths()["purelib"]


def _device_line(device: str) -> str:
    import torch

    if device.startswith("cuda"):
        if not torch.cuda.is_available():
            raise SystemExit(f"--device {device}: torch {torch.__version__} sees no CUDA device; use --device cpu "
                             f"for the dry mode")
        free, total = torch.cuda.mem_get_info()
        return f"{torch.cuda.get_device_name()}, {free / 2**30:.0f} of {total / 2**30:.0f} GiB free"
    return f"CPU only, {os.cpu_count()} cores"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda", help="cuda (the GPU run) or cpu (dry mode, tiny sizes)")
    parser.add_argument("--workers", type=int, default=1, help="dask workers of the device job (default 1)")
    parser.add_argument("--cpu-workers", type=int, default=max(1, (os.cpu_count() or 2) // 2),
                        help="dask workers of the CPU job (default half the cores)")
    parser.add_argument("--part-timeout", type=float, default=240, help="seconds per part (default 240)")
    parser.add_argument("--gpy-python", default=None, help="python of a venv with GPy, for the GPy MOGPR row")
    parser.add_argument("--extra-site", default=None, help="site-packages with torch for --gpy-python")
    parser.add_argument("--out", type=Path, default=None, help="folder for logs and JSON (default $OUT or a temp)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    out = args.out or Path(os.environ.get("OUT") or tempfile.mkdtemp(prefix="bench_gpu-"))
    out.mkdir(parents=True, exist_ok=True)
    device = args.device
    plan = DRY_PLAN if device == "cpu" else GPU_PLAN
    header = {"device": _device_line(device), "load_1min": os.getloadavg()[0], "plan": plan,
              "started": time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime())}
    _log.info("%s", header)
    results = [_run(name, cmd, args.part_timeout, out) for name, cmd in plan_parts(device, plan, args, out)]
    header["load_1min_end"] = os.getloadavg()[0]
    (out / "bench_gpu.json").write_text(json.dumps({**header, "parts": results}, indent=1))
    for r in results:
        print(f"\n## {r['part']}: {r['status']} ({r['seconds']:.0f} s)\n")  # noqa: T201
        tables = [line for line in r["stdout"].splitlines() if _TABLE_LINE.match(line)]
        print("\n".join(tables) if tables else r["stdout"][-3000:] or r["stderr_tail"])  # noqa: T201
    print(f"\n{header['device']}; load {header['load_1min']:.1f} → {header['load_1min_end']:.1f}; logs in {out}")  # noqa: T201
    return 0 if all(r["status"] == "ok" for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
