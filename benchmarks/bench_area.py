"""Area benchmark: the fusion UDF over a SYNTHETIC N x N px x 36-step zarr collection as a batch job.

The collection is built from the real embedded WorldCereal sample (``udf.ingest.base.load_sample_cube``, 32 x 32 px at
20 m, the first 36 dekads): every 32 x 32 block is the sample rotated/flipped at random, with a random gain and
multiplicative speckle on VV/VH and an offset, noise and extra random cloud gaps on NDVI. It is SYNTHETIC (the id is
``SYNTHETIC_AREA_<N>`` and its metadata says so): a realistic input for timing and memory, not for accuracy.

For each N the script starts ``s1ndvi serve --workers W`` (a new process group), runs
``load_collection -> apply_neighborhood(udf.UDF_PATH, tile, overlap 8) -> save_result(netCDF)`` as a batch job with
the stock openeo client, and prints wall time, pixel-steps/s (output pixels x steps / wall), the peak resident memory
(VmHWM) of the server process and of its worker processes, and the load average. With ``--kill-at F`` the job of the
largest N is killed (SIGKILL to the server's process group: server and workers) once ``progress`` reaches F, the
server is started again and the job restarted; the script checks that every tile finished before the kill was kept
(its file unchanged) and counts the tiles computed after the restart.

``--probe N`` runs size N time-boxed only (``--probe-seconds`` of tiles, then the job is killed) and then a batch job
without UDF that writes the area's NDVI to netCDF, for the memory of the server while it writes an area that size.

Usage::

    python benchmarks/bench_area.py --sizes 1024 2048 4096 --kill-at 0.5
    python benchmarks/bench_area.py --sizes 1024 2048 --kill-at 0.5 --probe 4096      # a busy machine
    python benchmarks/bench_area.py --sizes 256 --workers 1 --tile 128               # quick check
"""

import argparse
import json
import logging
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path
from typing import Any

import numpy as np

_log = logging.getLogger("bench_area")
REPO = Path(__file__).resolve().parents[1]
USER, PASSWORD = "bench", "bench-password"
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


def _vmhwm_kb(pid: int) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


class PeakMemory:
    """Peak resident memory (VmHWM) of a server process and of its descendants, sampled in a thread."""

    def __init__(self, interval: float = 0.5) -> None:
        self.interval = interval
        self.peaks: dict[int, tuple[int, bool, int]] = {}
        """pid -> (server generation, is the server, peak kB)."""
        self._root: int | None = None
        self._generation = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)
        self._thread.start()

    def watch(self, pid: int) -> None:
        """Follow this server process (and its descendants) from now on (a restarted server: a new generation)."""
        self._root, self._generation = pid, self._generation + 1

    def _note(self, pid: int, is_server: bool) -> None:
        kb = max(self.peaks.get(pid, (0, False, 0))[2], _vmhwm_kb(pid))
        self.peaks[pid] = (self._generation, is_server, kb)

    def _loop(self) -> None:
        import psutil

        while not self._stop.wait(self.interval):
            root = self._root
            if root is None:
                continue
            try:
                children = psutil.Process(root).children(recursive=True)
            except psutil.Error:
                continue
            self._note(root, True)
            for child in children:
                self._note(child.pid, False)

    def stop(self) -> dict[str, float]:
        """Stop sampling; peaks in MiB (``total``: the largest server + all its workers of any server run)."""
        self._stop.set()
        self._thread.join()
        big = {pid: p for pid, p in self.peaks.items() if p[2] > 20 * 1024}  # not the resource tracker
        servers = [kb for _, is_server, kb in big.values() if is_server]
        workers = [kb for _, is_server, kb in big.values() if not is_server]
        totals = [sum(kb for g, _, kb in big.values() if g == gen) for gen in {g for g, _, _ in big.values()}]
        return {"server_mb": max(servers, default=0) / 1024, "worker_max_mb": max(workers, default=0) / 1024,
                "workers": len(workers), "total_mb": max(totals, default=0) / 1024}


class Server:
    """``s1ndvi serve`` in its own process group."""

    def __init__(self, data: Path, state: Path, users: Path, workers: int) -> None:
        from local_backend.api.server import free_port

        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        cmd = [sys.executable, "-m", "udf.cli", "-v", "serve", "--port", str(self.port), "--data", str(data),
               "--state", str(state), "--users", str(users), "--workers", str(workers)]
        log = (state.parent / f"server-{self.port}.log").open("w")
        env = {**os.environ, "PYTHONPATH": str(REPO)}
        self.process = subprocess.Popen(cmd, cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT,
                                        start_new_session=True)
        deadline = time.time() + 300
        while time.time() < deadline:
            try:
                urllib.request.urlopen(f"{self.url}/.well-known/openeo", timeout=2)
                return
            except OSError:
                if self.process.poll() is not None:
                    raise RuntimeError(f"server exited with {self.process.returncode}; see {log.name}")
                time.sleep(0.5)
        self.kill()
        raise RuntimeError("server did not start")

    def kill(self) -> None:
        """SIGKILL the whole process group (server and its dask workers), as a crash would."""
        os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait()

    def stop(self) -> None:
        """SIGTERM, then make sure nothing of the group is left."""
        self.process.terminate()
        try:
            self.process.wait(timeout=60)
        finally:
            try:
                os.killpg(self.process.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass


def create_job(url: str, collection: str, tile: int) -> Any:
    """The batch job: the fusion UDF over the whole collection, tiles of ``tile`` px with 8 px overlap."""
    import openeo

    from udf import UDF_PATH

    conn = openeo.connect(url).authenticate_basic(USER, PASSWORD)
    size = [{"dimension": d, "value": tile, "unit": "px"} for d in ("x", "y")]
    overlap = [{"dimension": d, "value": 8, "unit": "px"} for d in ("x", "y")]
    udf = openeo.UDF.from_file(UDF_PATH, context={"device": "cpu"})
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
        job = create_job(server.url, collection, args.tile)
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
    finally:
        server.stop()
        peaks = memory.stop()
    steps = n * n * STEPS
    return {"n": n, "wall_s": wall, "pixel_steps_per_s": steps / wall, "load_1min": load, **peaks, **row,
            "kill_restart": kill}


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
        job = create_job(server.url, collection, args.tile)
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
             f"{os.cpu_count()} CPUs",
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
    parser.add_argument("--sizes", type=int, nargs="*", default=[1024, 2048, 4096], help="N (multiples of 128)")
    parser.add_argument("--workers", type=int, default=2, help="dask worker processes (default 2)")
    parser.add_argument("--tile", type=int, default=256, help="apply_neighborhood tile edge in px (default 256)")
    parser.add_argument("--kill-at", type=float, default=None,
                        help="kill the largest size's job at this fraction of its tiles and restart it")
    parser.add_argument("--probe", type=int, nargs="*", default=[],
                        help="sizes run time-boxed only (--probe-seconds of tiles, then a write-only job)")
    parser.add_argument("--probe-seconds", type=float, default=600, help="tile phase of a probe (default 600 s)")
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
    if probes:
        print_probes(probes, args)
    print(json.dumps(rows + probes, indent=1))  # noqa: T201
    return 0


if __name__ == "__main__":
    sys.exit(main())
