"""Peak memory of ``s1ndvi cube`` on a regency-sized Earth Engine export — SYNTHETIC data made here.

Writes two GeoTIFFs shaped like the GEE recipe's export of a regency (default 900 x 1200 px at 50 m, 62 twelve-day
periods): ``s1.tif`` (float32 dB, bands ``<YYYYMMDD>_VV``, ``<YYYYMMDD>_VH``) and ``s2.tif`` (uint16, ``_B4``,
``_B8``, ``_SCL``), tiled 256 x 256, pixel-interleaved and deflate-compressed as Earth Engine writes them. The values
are seeded random numbers (not real data): only sizes and encodings matter here.

Then, each in a fresh process, measures the peak resident memory of

- ``read at once``: ``rasterio`` reading both files into memory (the least an eager reader needs);
- ``s1ndvi cube``: the lazy reader writing the 12-day cube (chunked netCDF);

and prints a table with each peak (resident memory sampled every 20 ms) above the process's resident memory after
its imports (the floor), and its ratio to the eager read. Run with ``--sizes`` to see how
each grows with the area.

Usage::

    python benchmarks/bench_ingest_memory.py                          # 900 x 1200 px, 62 periods
    python benchmarks/bench_ingest_memory.py --sizes 300x400 900x1200 --variants 128x1 256x2
"""

import argparse
import json
import logging
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

_log = logging.getLogger(__name__)
REPO = Path(__file__).resolve().parents[1]


def make_export(folder: Path, ny: int, nx: int, periods: int, seed: int = 0) -> tuple[Path, Path]:
    """Write the synthetic ``s1.tif`` and ``s2.tif`` window by window (the writer never holds a whole file)."""
    import rasterio
    from rasterio.transform import from_origin
    from rasterio.windows import Window

    dates = [str(np.datetime64("2019-11-01") + 12 * k).replace("-", "") for k in range(periods)]
    common = {"driver": "GTiff", "height": ny, "width": nx, "crs": "EPSG:32749", "tiled": True, "blockxsize": 256,
              "blockysize": 256, "compress": "deflate", "interleave": "pixel", "BIGTIFF": "YES",
              "transform": from_origin(440000.0, 9240000.0, 50.0, 50.0)}
    folder.mkdir(parents=True, exist_ok=True)
    s1, s2 = folder / "s1.tif", folder / "s2.tif"
    rng = np.random.default_rng(seed)
    with rasterio.open(s1, "w", count=2 * periods, dtype="float32", nodata=None, **common) as d1, \
            rasterio.open(s2, "w", count=3 * periods, dtype="uint16", nodata=0, **common) as d2:
        for i, name in enumerate(f"{d}_{b}" for d in dates for b in ("VV", "VH")):
            d1.set_band_description(i + 1, name)
        for i, name in enumerate(f"{d}_{b}" for d in dates for b in ("B4", "B8", "SCL")):
            d2.set_band_description(i + 1, name)
        for row in range(0, ny, 256):
            h = min(256, ny - row)
            win = Window(0, row, nx, h)
            vv = rng.uniform(-18, -6, (periods, h, nx)).astype(np.float32)
            d1.write(np.stack([vv, vv - 6.5], axis=1).reshape(2 * periods, h, nx), window=win)
            red = rng.integers(300, 1500, (periods, h, nx), dtype=np.uint16)
            scl = np.where(rng.random((periods, h, nx)) < 0.4, 9, 4).astype(np.uint16)
            d2.write(np.stack([red, red + 1200, scl], axis=1).reshape(3 * periods, h, nx), window=win)
    return s1, s2


_IMPORTS = ("import threading, time\nimport udf.ingest.sources, udf.ingest.gee, udf.cli, rasterio, dask.array\n"
            "def rss():\n"
            "    return int(open('/proc/self/statm').read().split()[1]) * 4096 // 1024\n"
            "floor = rss()\n"
            "top = [floor]\n"
            "def sample():\n"
            "    while True:\n"
            "        top[0] = max(top[0], rss())\n"
            "        time.sleep(0.02)\n"
            "threading.Thread(target=sample, daemon=True).start()\n")
_CHILD = {
    "read at once": "keep = []\n"
                    "for f in ({s1!r}, {s2!r}):\n"
                    "    with rasterio.open(f) as src:\n"
                    "        keep.append(src.read())",
    "s1ndvi cube": "from udf.cli import main\n"
                   "main(['cube', '--s1', {s1!r}, '--s2', {s2!r}, '--period', '12D', '--start', '2019-11-01',"
                   " '--chunk', '{chunk}', '--workers', '{workers}', '--out', {out!r}])",
}


def peak_mib(code: str) -> tuple[float, float, float]:
    """Run ``code`` in a fresh interpreter after the imports, sampling its resident memory every 20 ms.

    Returns:
        Resident memory after the imports (MiB), the peak sampled while ``code`` ran (MiB) and wall seconds.
    """
    tail = "\nimport json\ntime.sleep(0.05)\nprint(json.dumps([floor, max(top[0], rss())]))"
    t0 = time.perf_counter()
    out = subprocess.run([sys.executable, "-c", _IMPORTS + code + tail], cwd=REPO, check=True, capture_output=True,
                         text=True)
    floor, peak = json.loads(out.stdout.strip().splitlines()[-1])
    return floor / 1024.0, peak / 1024.0, time.perf_counter() - t0


def measure(folder: Path, ny: int, nx: int, periods: int, settings: list[tuple[int, int]]) -> list[dict]:
    """Rows of the table for one size (files written under ``folder``); ``settings`` = (chunk, workers) pairs."""
    t0 = time.perf_counter()
    s1, s2 = make_export(folder, ny, nx, periods)
    made = time.perf_counter() - t0
    raw_mib = (ny * nx * periods * (2 * 4 + 3 * 2)) / 2**20
    on_disk = (s1.stat().st_size + s2.stat().st_size) / 2**20
    _log.info("synthetic export %dx%d x %d periods: %.0f MiB raw, %.0f MiB on disk, written in %.0f s",
              ny, nx, periods, raw_mib, on_disk, made)
    runs = [("read at once", _CHILD["read at once"], {})]
    runs += [(f"s1ndvi cube (chunk {c}, {w} workers)", _CHILD["s1ndvi cube"], {"chunk": c, "workers": w})
             for c, w in settings]
    rows = []
    for name, code, extra in runs:
        args = {"s1": str(s1), "s2": str(s2), "out": str(folder / "cube.nc"), **extra}
        floor, peak, wall = peak_mib(code.format(**args))
        rows.append({"size": f"{ny}x{nx}x{periods}", "raw MiB": raw_mib, "run": name, "peak MiB": peak,
                     "above floor MiB": peak - floor, "wall s": wall})
        (folder / "cube.nc").unlink(missing_ok=True)
    eager = rows[0]["above floor MiB"]
    for r in rows:
        r["vs read at once"] = r["above floor MiB"] / eager
    return rows


def main() -> None:
    """Parse arguments, run the sizes, print the table."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", nargs="+", default=["900x1200"], help="NYxNX pixel sizes")
    parser.add_argument("--periods", type=int, default=62)
    parser.add_argument("--chunk", type=int, default=128)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--variants", nargs="*", default=[], help="extra CHUNKxWORKERS runs of s1ndvi cube")
    parser.add_argument("--dir", default=None, help="folder for the synthetic files (default: a temporary one)")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    rows = []
    for size in args.sizes:
        ny, nx = (int(v) for v in size.lower().split("x"))
        with tempfile.TemporaryDirectory(dir=args.dir) as tmp:
            settings = [(args.chunk, args.workers)] + [tuple(int(v) for v in x.split("x")) for x in args.variants]
            rows += measure(Path(tmp), ny, nx, args.periods, settings)
    print("SYNTHETIC data (seeded random values in the GEE recipe's layout)")
    print(f"| size | raw MiB | run | peak RSS MiB | above floor MiB | x read at once | wall s |\n|{'---|' * 7}")
    for r in rows:
        print(f"| {r['size']} | {r['raw MiB']:.0f} | {r['run']} | {r['peak MiB']:.0f} | {r['above floor MiB']:.0f} "
              f"| {r['vs read at once']:.2f} | {r['wall s']:.1f} |")


if __name__ == "__main__":
    main()
