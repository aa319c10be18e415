"""Per-tile cost of UDF isolation (``s1ndvi serve --udf-isolation on``) against the same UDF run in-process.

The project's fusion UDF (``udf.UDF_PATH``, default weights) runs on spatial tiles of the embedded sample cube
(``S1NDVI_SAMPLE_CUBE``: VV, VH, NDVI on a 10-day grid; its 32x32 pixels repeated to fill larger tiles),
once in this process (``run_udf_on_array``, what a dask
worker does without isolation) and once through :func:`local_backend.tiles.sandbox.run_isolated` (a bubblewrap sandbox
started once per step, tiles exchanged as ``.npz`` files), interleaved so that load on the machine hits both alike.
Prints the median seconds per tile of each, their ratio (the overhead per tile), and the one-off start of a
sandbox (Python plus the UDF's imports, paid once per step and worker thread).

Usage: python benchmarks/bench_udf_isolation.py [--tile 64] [--tiles 4] [--repeats 3] [--identity]
"""

import argparse
import logging
import statistics
import time

import numpy as np

IDENTITY = """
import xarray


def apply_datacube(cube: xarray.DataArray, context: dict) -> xarray.DataArray:
    return cube
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tile", type=int, default=64, help="tile side in pixels (64)")
    parser.add_argument("--tiles", type=int, default=4, help="tiles per repeat (4)")
    parser.add_argument("--repeats", type=int, default=3, help="interleaved repeats (3)")
    parser.add_argument("--identity", action="store_true",
                        help="a UDF that returns its input instead of the project's: the transport cost alone")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)

    from local_backend.tiles.sandbox import SandboxSpec, bwrap_path, close_all, run_isolated
    from local_backend.tiles.windows import run_udf_on_array
    from udf import UDF_PATH
    from udf.ingest.base import load_sample_cube

    if bwrap_path() is None:
        raise SystemExit("bubblewrap (bwrap) is not installed: apt-get install bubblewrap")
    sample = load_sample_cube(period="10D").load()
    reps = -(-args.tile // min(sample.sizes["y"], sample.sizes["x"])) * 2  # at least 4 tiles of the asked size
    cube = sample.isel(y=np.tile(np.arange(sample.sizes["y"]), reps), x=np.tile(np.arange(sample.sizes["x"]), reps))
    cube = cube.assign_coords(y=np.arange(cube.sizes["y"]) * -10.0, x=np.arange(cube.sizes["x"]) * 10.0)
    code = IDENTITY if args.identity else UDF_PATH.read_text()
    size = args.tile
    tiles = [cube.isel(y=slice(i * size, (i + 1) * size), x=slice(j * size, (j + 1) * size))
             for i in range(cube.sizes["y"] // size) for j in range(cube.sizes["x"] // size)][:args.tiles]
    if not tiles:
        raise SystemExit(f"the sample cube ({dict(cube.sizes)}) holds no {size}x{size} tile")
    spec = SandboxSpec()
    start = time.perf_counter()
    run_isolated(tiles[0], code, None, "bench", spec)  # start the sandbox (one-off, per step and thread)
    startup = time.perf_counter() - start
    run_udf_on_array(tiles[0], code, None)  # warm this process alike (imports, weights)
    plain, isolated = [], []
    for _ in range(args.repeats):
        for tile in tiles:
            t0 = time.perf_counter()
            expected = run_udf_on_array(tile, code, None)
            t1 = time.perf_counter()
            got = run_isolated(tile, code, None, "bench", spec)
            t2 = time.perf_counter()
            plain.append(t1 - t0)
            isolated.append(t2 - t1)
            if not np.allclose(np.asarray(expected.values), np.asarray(got.values), equal_nan=True):
                raise SystemExit("the sandboxed UDF returned different values")
    close_all()
    p, s = statistics.median(plain), statistics.median(isolated)
    print(f"tiles: {len(tiles)} x {args.repeats} of {dict(tiles[0].sizes)}")
    print(f"in-process  median {p * 1000:8.1f} ms/tile")
    print(f"isolated    median {s * 1000:8.1f} ms/tile")
    print(f"ratio isolated/in-process {s / p:.3f} (overhead {100 * (s / p - 1):+.1f} % per tile)")
    print(f"sandbox start (once per step and worker thread): {startup:.2f} s")


if __name__ == "__main__":
    main()
