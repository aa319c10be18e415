"""Area benchmark: the fusion UDF over a SYNTHETIC N x N px x 36-step zarr collection as a batch job.

The collection (:mod:`area_data`) is built from the real embedded WorldCereal sample; it is SYNTHETIC (the id is
``SYNTHETIC_AREA_<N>`` and its metadata says so): a realistic input for timing and memory, not for accuracy.

For each N the script starts ``s1ndvi serve --workers W`` (a new process group), runs
``load_collection -> apply_neighborhood(udf.UDF_PATH, tile, overlap 8) -> save_result(netCDF)`` as a batch job with
the stock openeo client, and prints wall time, pixel-steps/s (output pixels x steps / wall), the peak resident memory
(VmHWM) of the server process and of its worker processes, and the load average. Then, from the job's log
(:mod:`area_stages`), the seconds and share of the job per stage (read, decode, UDF, tile write, other, scheduling/
idle, outside the tile phase), and the job's pixel-steps/s next to the bare UDF's on windows of the same tiles, timed
right after the job in the same run (``--bare-threads`` torch threads), per wall second and per CPU second (the CPU
ratio is the one that survives a loaded machine). With ``--kill-at F`` the job of the
largest N is killed (SIGKILL to the server's process group: server and workers) once ``progress`` reaches F, the
server is started again and the job restarted; the script checks that every tile finished before the kill was kept
(its file unchanged) and counts the tiles computed after the restart.

``--probe N`` runs size N time-boxed only (``--probe-seconds`` of tiles, then the job is killed) and then a batch job
without UDF that writes the area's NDVI to netCDF, for the memory of the server while it writes an area that size.

Usage::

    python benchmarks/bench_area.py                                   # N = 1024 and 2048: the stage tables
    python benchmarks/bench_area.py --sizes 1024 2048 4096 --kill-at 0.5
    python benchmarks/bench_area.py --sizes 256 --workers 1 --tile 128 --bare-tiles 1   # quick check
"""

import argparse
import json
import logging
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from area_data import STEPS, write_synthetic  # noqa: E402 - sibling modules of this script
from area_server import PeakMemory, Server  # noqa: E402
from area_stages import bare_udf, speed_table, stage_table, stages_from_logs  # noqa: E402

_log = logging.getLogger("bench_area")
REPO = Path(__file__).resolve().parents[1]
USER, PASSWORD = "bench", "bench-password"


def create_job(url: str, collection: str, tile: int, device: str = "cpu") -> Any:
    """The batch job: the fusion UDF over the whole collection, tiles of ``tile`` px with 8 px overlap."""
    import openeo

    from udf import UDF_PATH

    conn = openeo.connect(url).authenticate_basic(USER, PASSWORD)
    size = [{"dimension": d, "value": tile, "unit": "px"} for d in ("x", "y")]
    overlap = [{"dimension": d, "value": 8, "unit": "px"} for d in ("x", "y")]
    udf = openeo.UDF.from_file(UDF_PATH, context={"device": device})
    cube = conn.load_collection(collection).apply_neighborhood(process=udf, size=size, overlap=overlap)
    return cube.create_job(title=f"bench_area {collection}", out_format="netCDF")


def wait(job: Any, until: float | None = None, timeout: float = 6 * 3600) -> dict[str, Any]:
    """Poll until the job ends (or, with ``until``, its ``progress`` reaches that percentage); the last description."""
    deadline, last = time.time() + timeout, None
    while time.time() < deadline:
        info = job.describe()
        if info.get("progress") != last:
            last = info.get("progress")
            _log.info("%s: %s, progress %s %%", job.job_id, info["status"], last)
        if info["status"] in ("finished", "error", "canceled") or (until is not None and
                                                                   (info.get("progress") or 0) >= until):
            return dict(info)
        time.sleep(2)
    raise TimeoutError(f"job {job.job_id} not done after {timeout} s")


def _tile_files(state: Path, job_id: str) -> dict[str, int]:
    return {str(p): p.stat().st_mtime_ns for p in (state / "jobs" / job_id / "tiles").glob("*/*.json")}


def _phases(job: Any) -> dict[str, float]:
    """Seconds of the tile phase and of the result writing, from the job's log times."""
    from datetime import datetime

    times: dict[str, float] = {}
    for entry in job.logs():
        stamp = datetime.fromisoformat(entry["time"]).timestamp()
        message = entry["message"]
        if message.startswith("run_udf on"):
            times["start"] = stamp
        elif message.startswith("UDF tile "):  # the last tile's line is always logged
            times["tiles"] = stamp
        elif message.startswith("save_result"):
            times["saved"] = stamp
    return {"write_s": times["saved"] - times["tiles"]} if "saved" in times and "tiles" in times else {}


def _kill_and_resume(job: Any, server: Server, memory: PeakMemory, paths: dict[str, Path],
                     kill_at: float, workers: int) -> tuple[Server, Any, dict[str, Any]]:
    info = wait(job, until=100 * kill_at)
    server.kill()
    kept = _tile_files(paths["state"], job.job_id)
    _log.info("killed at progress %s %% with %d tile files", info.get("progress"), len(kept))
    server = Server(paths["data"], paths["state"], paths["users"], workers)
    memory.watch(server.process.pid)
    import openeo

    again = openeo.connect(server.url).authenticate_basic(USER, PASSWORD).job(job.job_id)
    again.start()
    while again.describe()["status"] in ("queued", "created"):
        time.sleep(0.5)
    unchanged = _tile_files(paths["state"], job.job_id)
    same = sum(unchanged.get(p) == m for p, m in kept.items())
    report = {"killed_at": info.get("progress"), "tiles_before_kill": len(kept), "kept_unchanged": same}
    return server, again, report


def bench_size(n: int, args: argparse.Namespace, root: Path, kill: bool) -> dict[str, Any]:
    """One batch job over ``SYNTHETIC_AREA_<n>``; wall time, speed and peak memory (and the kill/restart check)."""
    paths = {"data": root / "data", "state": root / f"state-{n}", "users": root / "users.json"}
    paths["state"].mkdir(parents=True, exist_ok=True)
    started = time.time()
    collection = write_synthetic(paths["data"], n)
    _log.info("%s ready in %.0f s", collection, time.time() - started)
    memory = PeakMemory()
    server = Server(paths["data"], paths["state"], paths["users"], args.workers)
    memory.watch(server.process.pid)
    load = [os.getloadavg()[0]]
    try:
        job = create_job(server.url, collection, args.tile, args.device)
        start = time.time()
        job.start()
        row: dict[str, Any] = {}
        if kill:
            server, job, row = _kill_and_resume(job, server, memory, paths, args.kill_at, args.workers)
        info = wait(job)
        wall = time.time() - start
        load.append(os.getloadavg()[0])
        if info["status"] != "finished":
            raise RuntimeError(f"job {job.job_id} ended {info['status']}: {job.logs()[-3:]}")
        row.update(_last_run(job))
        result = paths["state"] / "jobs" / job.job_id / "results" / "openEO.nc"
        row.update(_check_result(result, n))
        row.update(_phases(job))
        row.update(stages_from_logs([e["message"] for e in job.logs()]))
    finally:
        server.stop()
        peaks = memory.stop()
    steps = n * n * STEPS
    _log.info("job done: %s", json.dumps({"n": n, "wall_s": wall, **peaks, **row}))
    try:
        bare = bare_udf(paths["data"] / f"{collection}.zarr", n, args.tile, args.bare_tiles, args.bare_threads,
                        device=args.device)
    except (RuntimeError, subprocess.TimeoutExpired) as exc:  # the job's row is still worth printing
        _log.error("bare UDF: %s", exc)
        bare = {"error": str(exc)[:300]}
    return {"n": n, "steps": STEPS, "wall_s": wall, "pixel_steps_per_s": steps / wall, "load_1min": load, **peaks,
            **row, "kill_restart": kill, "bare": bare}


def probe_size(n: int, args: argparse.Namespace, root: Path) -> dict[str, Any]:
    """A time-boxed part of the job at size ``n``, then a job that only writes.

    The UDF job runs ``--probe-seconds`` (tiles done, peak memory) and is killed; then a batch job without UDF
    (``load_collection`` NDVI → netCDF) measures the server while it writes an area of that size.
    """
    import openeo

    paths = {"data": root / "data", "state": root / f"state-{n}", "users": root / "users.json"}
    paths["state"].mkdir(parents=True, exist_ok=True)
    collection = write_synthetic(paths["data"], n)
    row: dict[str, Any] = {"n": n, "load_1min": [os.getloadavg()[0]]}
    memory = PeakMemory()
    server = Server(paths["data"], paths["state"], paths["users"], args.workers)
    memory.watch(server.process.pid)
    try:
        job = create_job(server.url, collection, args.tile, args.device)
        start = time.time()
        job.start()
        while time.time() < start + args.probe_seconds and job.describe()["status"] in ("queued", "running"):
            time.sleep(5)
        tiles = (n // args.tile) ** 2
        done = round((job.describe().get("progress") or 0) * tiles / 100)  # the log has at most ~50 tile lines
        row.update(seconds=time.time() - start, tiles_done=done, tiles=tiles,
                   pixel_steps_per_s=done * args.tile ** 2 * STEPS / (time.time() - start))
    finally:
        server.kill()
        row.update({f"udf_{k}": v for k, v in memory.stop().items()})
    memory = PeakMemory()
    server = Server(paths["data"], paths["state"], paths["users"], 0)
    memory.watch(server.process.pid)
    try:
        conn = openeo.connect(server.url).authenticate_basic(USER, PASSWORD)
        write = conn.load_collection(collection, bands=["NDVI"]).create_job(out_format="netCDF")
        start = time.time()
        write.start()
        if wait(write)["status"] != "finished":
            raise RuntimeError(f"write-only job ended {write.describe()['status']}: {write.logs()[-3:]}")
        row.update(write_only_s=time.time() - start, load_1min=[*row["load_1min"], os.getloadavg()[0]])
    finally:
        server.stop()
        row.update({f"write_{k}": v for k, v in memory.stop().items()})
    return row


def _last_run(job: Any) -> dict[str, Any]:
    """Tiles of the last run of a finished job: how many it found done (kept) and so had to compute."""
    messages = [e["message"] for e in job.logs()]
    start = max(i for i, m in enumerate(messages) if m.startswith("run_udf on"))
    kept = int(messages[start].rsplit("; ", 1)[1].split()[0])
    total = int(messages[start].split()[2])
    last = [m for m in messages[start:] if m.startswith(f"UDF tile {total}/{total} done")]
    if not last:
        raise RuntimeError(f"the last run of job {job.job_id} did not log its last tile: {messages[start:][-3:]}")
    return {"tiles": total, "tiles_kept": kept, "tiles_computed": total - kept}


def _check_result(path: Path, n: int) -> dict[str, Any]:
    import netCDF4

    with netCDF4.Dataset(path) as nc:
        ndvi = nc.variables["NDVI"]
        if ndvi.shape != (STEPS, n, n):
            raise RuntimeError(f"result NDVI has shape {ndvi.shape}, expected {(STEPS, n, n)}")
        probe = np.asarray(ndvi[:, n // 2:n // 2 + 64, :64], dtype=np.float32)
    return {"result_mb": path.stat().st_size / 2**20, "finite_probe": float(np.isfinite(probe).mean())}


def _udf_version() -> str:
    done = subprocess.run(["git", "log", "-1", "--format=%h %cs", "--", "udf/"], cwd=REPO, capture_output=True,
                          text=True)
    return done.stdout.strip() or "unknown"


def print_table(rows: list[dict[str, Any]], args: argparse.Namespace) -> None:
    """Markdown table, ratios against the first row (same run)."""
    base = rows[0]
    lines = [f"UDF {UDF_COMMIT} (git log -1 -- udf/), {args.workers} worker(s), tile {args.tile} px + 8 px overlap, "
             f"{os.cpu_count()} CPUs, UDF device {args.device}",
             "| N x N x 36 | tiles | wall s | pixel-steps/s | x base | server peak MiB | worker peak MiB (each, max) "
             "| server + workers MiB | result write s | load avg (start, end) | kill/restart |",
             "|---|---:|---:|---:|---:|---:|---:|---:|---:|---|---|"]
    for r in rows:
        kill = (f"killed at {r['killed_at']:.0f} %: {r['tiles_before_kill']} tiles done, "
                f"{r['kept_unchanged']} kept unchanged, {r['tiles_computed']} computed after restart"
                if r["kill_restart"] else "no")
        lines.append(f"| {r['n']} | {r['tiles']} | {r['wall_s']:.0f} | {r['pixel_steps_per_s']:,.0f} | "
                     f"{r['pixel_steps_per_s'] / base['pixel_steps_per_s']:.2f} | {r['server_mb']:.0f} | "
                     f"{r['worker_max_mb']:.0f} | {r['total_mb']:.0f} | {r.get('write_s', float('nan')):.0f} | "
                     f"{r['load_1min'][0]:.1f}, {r['load_1min'][-1]:.1f} | {kill} |")
    print("\n".join(lines))  # noqa: T201 - a benchmark script reports on stdout


def print_probes(rows: list[dict[str, Any]], args: argparse.Namespace) -> None:
    """Markdown table of the time-boxed probes."""
    lines = ["| N x N x 36 (probe) | tiles done in s | pixel-steps/s (tiles done) | server peak MiB | worker peak MiB "
             "| server + workers MiB | write-only job: s, server peak MiB | load avg (start, end) |",
             "|---|---|---:|---:|---:|---:|---|---|"]
    for r in rows:
        lines.append(f"| {r['n']} | {r['tiles_done']} of {r['tiles']} in {r['seconds']:.0f} | "
                     f"{r['pixel_steps_per_s']:,.0f} | {r['udf_server_mb']:.0f} | {r['udf_worker_max_mb']:.0f} | "
                     f"{r['udf_total_mb']:.0f} | {r['write_only_s']:.0f}, {r['write_server_mb']:.0f} | "
                     f"{r['load_1min'][0]:.1f}, {r['load_1min'][-1]:.1f} |")
    print("\n".join(lines))  # noqa: T201


UDF_COMMIT = _udf_version()


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark and print the table (and the rows as JSON)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="*", default=[1024, 2048], help="N (multiples of 128)")
    parser.add_argument("--workers", type=int, default=2, help="dask worker processes (default 2)")
    parser.add_argument("--tile", type=int, default=256, help="apply_neighborhood tile edge in px (default 256)")
    parser.add_argument("--kill-at", type=float, default=None,
                        help="kill the largest size's job at this fraction of its tiles and restart it")
    parser.add_argument("--probe", type=int, nargs="*", default=[],
                        help="sizes run time-boxed only (--probe-seconds of tiles, then a write-only job)")
    parser.add_argument("--probe-seconds", type=float, default=600, help="tile phase of a probe (default 600 s)")
    parser.add_argument("--bare-tiles", type=int, default=4, help="tiles the bare UDF is timed on (default 4)")
    parser.add_argument("--bare-threads", type=int, default=2,
                        help="torch threads of the bare UDF (default 2; on a loaded machine use 1: torch's idle "
                             "threads spin and inflate both its wall and CPU seconds)")
    parser.add_argument("--device", default="cpu", help="the UDF's device in the job and the bare run (cpu, cuda)")
    parser.add_argument("--json", type=Path, default=None, help="also write the rows to this JSON file")
    parser.add_argument("--work", type=Path, default=None, help="folder for data and state (default: temporary)")
    parser.add_argument("--keep", action="store_true", help="keep the work folder")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    if any(n % 128 for n in args.sizes + args.probe):
        parser.error(f"--sizes and --probe must be multiples of 128, got {args.sizes} {args.probe}")
    sys.path.insert(0, str(REPO))
    from local_backend.api.users import UsersFile

    root = Path(args.work or tempfile.mkdtemp(prefix="bench_area-"))
    (root / "data").mkdir(parents=True, exist_ok=True)
    UsersFile(root / "users.json").add(USER, PASSWORD)
    rows, probes = [], []
    try:
        for n in args.probe:
            probes.append(probe_size(n, args, root))
            _log.info("%s", json.dumps(probes[-1]))
        for n in args.sizes:
            kill = args.kill_at is not None and n == max(args.sizes)
            rows.append(bench_size(n, args, root, kill))
            _log.info("%s", json.dumps(rows[-1]))
            if not args.keep:
                shutil.rmtree(root / f"state-{n}", ignore_errors=True)
    finally:
        if not args.keep:
            shutil.rmtree(root, ignore_errors=True)
    if rows:
        print_table(rows, args)
        print(stage_table(rows, args.workers))  # noqa: T201
        print(speed_table(rows))  # noqa: T201
    if probes:
        print_probes(probes, args)
    print(json.dumps(rows + probes, indent=1))  # noqa: T201
    if args.json:
        args.json.write_text(json.dumps({"rows": rows, "probes": probes, "device": args.device,
                                         "workers": args.workers, "tile": args.tile}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
