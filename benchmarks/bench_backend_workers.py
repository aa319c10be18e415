"""Speed-up of UDF work on the local openEO backend from 1 to 2 dask workers.

Builds a synthetic cube (default 512 x 512 px, 36 dekads, bands VV/VH/NDVI; 113 MiB float32) as a local
collection, starts ``s1ndvi serve --workers N`` for each N, and times the same synchronous request with the stock
openeo client: ``load_collection`` → ``apply_neighborhood`` (UDF on 128 px tiles, 8 px overlap) → netCDF. One
warm-up request per server is not timed. Results are printed as JSON (wall seconds per worker count, speed-up).

Usage::

    python benchmarks/bench_backend_workers.py                       # project UDF (udf.UDF_PATH)
    python benchmarks/bench_backend_workers.py --udf tests/local_backend/udf_code/heavy_gru.py --size 256
"""

import argparse
import json
import logging
import os
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import numpy as np
import pandas as pd
import xarray as xr

_log = logging.getLogger(__name__)
REPO = Path(__file__).resolve().parents[1]
USER, PASSWORD = "bench", "bench-password"


def write_cube(folder: Path, size: int, steps: int) -> Path:
    """A seeded synthetic model cube (linear VV/VH, NDVI with gaps) as ``BENCH_CUBE.nc``."""
    sys.path.insert(0, str(REPO))
    from udf.ingest.cube_io import write_cube as write

    rng = np.random.default_rng(0)
    t = pd.date_range("2018-01-01", periods=steps, freq="10D").values
    vv = rng.gamma(4.0, 0.02, size=(steps, size, size)).astype(np.float32)
    vh = (vv * rng.uniform(0.1, 0.3, size=vv.shape)).astype(np.float32)
    ndvi = np.clip(0.5 + 0.3 * np.sin(np.arange(steps) / 6.0)[:, None, None] + rng.normal(0, 0.05, vv.shape), -1, 1)
    ndvi[rng.random(ndvi.shape) < 0.6] = np.nan
    cube = xr.DataArray(np.stack([vv, vh, ndvi.astype(np.float32)], axis=1), dims=("t", "bands", "y", "x"),
                        coords={"t": t, "bands": ["VV", "VH", "NDVI"], "y": 5600000.0 - 10 * np.arange(size),
                                "x": 500000.0 + 10 * np.arange(size)}, attrs={"crs": "EPSG:32631"})
    from pyproj import CRS

    cube.attrs["crs"] = CRS.from_epsg(32631).to_wkt()
    return write(cube, folder / "BENCH_CUBE.nc")


def start(state: Path, data: Path, users: Path, workers: int, port: int) -> subprocess.Popen:
    """Start ``s1ndvi serve`` and wait for it to answer."""
    cmd = [sys.executable, "-m", "udf.cli", "serve", "--port", str(port), "--data", str(data), "--state", str(state),
           "--users", str(users), "--workers", str(workers), "--max-sync-mb", "4096"]
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    proc = subprocess.Popen(cmd, cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    for _ in range(300):
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/.well-known/openeo", timeout=1)
            return proc
        except OSError:
            time.sleep(0.5)
    proc.kill()
    raise RuntimeError(f"server with {workers} workers did not start")


def time_request(url: str, udf_file: Path, out: Path, tile: int) -> float:
    """Wall seconds of one synchronous apply_neighborhood request (download included)."""
    import openeo

    conn = openeo.connect(url).authenticate_basic(USER, PASSWORD)
    udf = openeo.UDF.from_file(udf_file, context={})
    size = [{"dimension": d, "value": tile, "unit": "px"} for d in ("x", "y")] + [{"dimension": "t", "value": None}]
    overlap = [{"dimension": d, "value": 8, "unit": "px"} for d in ("x", "y")]
    cube = conn.load_collection("BENCH_CUBE").apply_neighborhood(process=udf, size=size, overlap=overlap)
    start_s = time.perf_counter()
    cube.download(out, format="netCDF")
    return time.perf_counter() - start_s


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark and print JSON."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--udf", type=Path, default=None, help="UDF file (default: udf.UDF_PATH)")
    parser.add_argument("--size", type=int, default=512, help="cube edge in pixels (default 512)")
    parser.add_argument("--steps", type=int, default=36, help="time steps (default 36)")
    parser.add_argument("--tile", type=int, default=128, help="apply_neighborhood tile edge (default 128)")
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--repeat", type=int, default=2, help="timed requests per worker count (best is kept)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(message)s")
    sys.path.insert(0, str(REPO))
    from local_backend.api.server import free_port
    from local_backend.api.users import UsersFile
    from udf import UDF_PATH

    udf_file = args.udf or Path(UDF_PATH)
    results: dict[str, object] = {"cube": {"x": args.size, "y": args.size, "t": args.steps, "bands": 3},
                                  "udf": str(udf_file), "tile": args.tile, "cpu_count": os.cpu_count()}
    with tempfile.TemporaryDirectory() as tmp_dir:
        tmp = Path(tmp_dir)
        data = tmp / "data"
        data.mkdir()
        write_cube(data, args.size, args.steps)
        UsersFile(tmp / "users.json").add(USER, PASSWORD)
        timings = {}
        for workers in args.workers:
            port = free_port()
            proc = start(tmp / f"state{workers}", data, tmp / "users.json", workers, port)
            try:
                url = f"http://127.0.0.1:{port}"
                time_request(url, udf_file, tmp / "warm.nc", args.tile)
                runs = [time_request(url, udf_file, tmp / "out.nc", args.tile) for _ in range(args.repeat)]
                timings[workers] = min(runs)
                _log.info("%d worker(s): %s s", workers, [round(r, 2) for r in runs])
            finally:
                proc.terminate()
                proc.wait(timeout=60)
        results["seconds"] = {str(k): round(v, 2) for k, v in timings.items()}
        if 1 in timings and len(timings) > 1:
            results["speedup"] = {str(k): round(timings[1] / v, 2) for k, v in timings.items()}
    print(json.dumps(results, indent=2))  # noqa: T201 - a benchmark script reports on stdout
    return 0


if __name__ == "__main__":
    sys.exit(main())
