"""MOGPR throughput: GPy (FuseTS' way, pixel by pixel), the batched torch MOGPR and the DL UDF on the same series.

Series: real pixels of the embedded WorldCereal sample (``udf.ingest.base.load_sample_cube(period=None)``: one step per
S1 ∪ S2 acquisition day, linear VV/VH, SCL-masked NDVI), cut to the first 73 and 145 dates. MOGPR fuses RVI
(``4·VH / (VV + VH)``) and NDVI and predicts FuseTS' 5-day grid; the DL UDF (``udf/s1_ndvi_udf.py``) gets the cube
``(t, bands=[VV, VH, NDVI], y=1, x=N)`` of the same pixels and dates and predicts NDVI at every date. Each row is one
timed call (after a warm-up call on a few pixels); the table gives pixels per second, the ratio to GPy on the same
dates and the ratio to the torch MOGPR on CPU with one start (GPy's own start: the like-for-like comparison).

The batched MOGPR keeps a pool of problems in flight and refills it as fits finish; the fits that need the most
iterations (several hundred) run on alone at the end, so small batches (tens of pixels) get fewer pixels per second
than the default 1024.

GPy and torch live in different environments (GPy pins an older numpy). To get the GPy row, run with the GPy venv
and let it see torch from the project venv::

    /work/gpy-venv/bin/python benchmarks/bench_mogpr.py --extra-site /work/main/.venv/lib/python3.11/site-packages

Without GPy the GPy row says so.
"""

from __future__ import annotations

import argparse
import datetime as dt
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Optional

import numpy as np

REPO = Path(__file__).resolve().parents[1]
GPY_ROW = "GPy (FuseTS)"
BASE_ROW = "MOGPR torch cpu, restarts=1"


@dataclass
class Sample:
    """``N`` sample pixels on ``T`` dates."""

    times: np.ndarray
    """Proleptic ordinal days ``(T,)`` (as FuseTS uses)."""
    labels: np.ndarray
    """The same dates as datetime64 ``(T,)``."""
    bands: np.ndarray
    """``(N, T, 3)`` float64: VV, VH (linear power), NDVI; NaN where missing."""

    @property
    def rvi_ndvi(self) -> np.ndarray:
        """MOGPR outputs ``(N, T, 2)``: RVI from linear VV/VH, NDVI."""
        vv, vh = self.bands[..., 0], self.bands[..., 1]
        return np.stack([4.0 * vh / (vv + vh), self.bands[..., 2]], -1)

    def head(self, n: int) -> "Sample":
        """The first ``n`` pixels."""
        return Sample(self.times, self.labels, self.bands[:n])


@dataclass
class Row:
    """One timed method on one series length."""

    method: str
    n_dates: int
    n_pixels: int
    seconds: float

    @property
    def pixels_per_second(self) -> float:
        """Throughput."""
        return self.n_pixels / self.seconds if self.seconds > 0 else float("nan")


Method = Callable[[Sample], object]
"""``method(sample) -> anything``; timed as a whole."""


def load_sample(n_dates: int, n_pixels: int, seed: int = 0) -> Sample:
    """``n_pixels`` pixels with ≥ 4 RVI and ≥ 4 NDVI values in the first ``n_dates`` dates (repeated if too few)."""
    from udf.ingest.base import load_sample_cube

    cube = load_sample_cube(period=None).isel(t=slice(0, n_dates))
    data = cube.transpose("y", "x", "t", "bands").values.astype(np.float64)
    data = data.reshape(-1, cube.sizes["t"], cube.sizes["bands"])
    labels = cube["t"].values.astype("datetime64[ns]")
    times = np.array([dt.date.fromisoformat(str(t)[:10]).toordinal() for t in labels], dtype=np.float64)
    ok = np.flatnonzero((np.isfinite(data[:, :, 2]).sum(1) >= 4) & (np.isfinite(data[:, :, :2]).all(-1).sum(1) >= 4))
    pick = ok[np.random.RandomState(seed).permutation(len(ok))]
    pick = np.tile(pick, int(np.ceil(n_pixels / len(pick))))[:n_pixels]
    return Sample(times, labels, data[pick])


def bench(name: str, method: Method, sample: Sample, warmup: Optional[Sample] = None) -> Row:
    """Time ``method(sample)`` once (wall clock), after ``method(warmup)`` if given."""
    if warmup is not None:
        method(warmup)
    t0 = time.perf_counter()
    method(sample)
    return Row(name, len(sample.times), sample.bands.shape[0], time.perf_counter() - t0)


def _gpy_method() -> Optional[Method]:
    try:
        import GPy  # noqa: F401
    except ImportError:
        return None
    from comparison.mogpr.gpy import fit_predict_gpy

    return lambda s: fit_predict_gpy(s.times, s.rvi_ndvi)


def _mogpr_method(device: str, n_restarts: int) -> Method:
    from comparison.mogpr import fit_predict

    return lambda s: fit_predict(s.times, s.rvi_ndvi, device=device, n_restarts=n_restarts)


def _udf_method(device: str) -> Method:
    import xarray as xr

    from udf.s1_ndvi_udf import apply_datacube

    def run(s: Sample) -> object:
        n = s.bands.shape[0]
        cube = xr.DataArray(s.bands.transpose(1, 2, 0)[:, :, None, :], dims=("t", "bands", "y", "x"),
                            coords={"t": s.labels, "bands": ["VV", "VH", "NDVI"], "y": [0.0],
                                    "x": np.arange(n, dtype=np.float64)})
        return apply_datacube(cube, {"s1_units": "linear", "device": device})

    return run


def methods() -> list[tuple[str, Method]]:
    """The torch rows: MOGPR with 1 and 3 starts and the DL UDF, on CPU and (when available) CUDA."""
    import torch

    devices = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
    out: list[tuple[str, Method]] = []
    for device in devices:
        out += [(f"MOGPR torch {device}, restarts={r}", _mogpr_method(device, r)) for r in (1, 3)]
    out += [(f"DL UDF {device}", _udf_method(device)) for device in devices]
    return out


def run(n_dates_list: list[int], n_gpy: int, n_torch: int) -> list[Row]:
    """Time every available method on each series length: GPy on ``n_gpy`` pixels, the others on ``n_torch``.

    GPy's pixels are the first ``n_gpy`` of the torch pixels.
    """
    rows: list[Row] = []
    gpy = _gpy_method()
    for n_dates in n_dates_list:
        sample = load_sample(n_dates, n_torch)
        if gpy is not None:
            rows.append(bench(GPY_ROW, gpy, sample.head(n_gpy)))
        else:
            rows.append(Row(GPY_ROW + ": not importable", n_dates, 0, float("nan")))
        for name, method in methods():
            rows.append(bench(name, method, sample, warmup=sample.head(8)))
    return rows


def format_table(rows: list[Row]) -> str:
    """Markdown table: pixels/s, the ratio to GPy and to the CPU MOGPR with one start, per series length."""
    gpy = {r.n_dates: r.pixels_per_second for r in rows if r.method == GPY_ROW}
    base = {r.n_dates: r.pixels_per_second for r in rows if r.method == BASE_ROW}
    lines = ["| method | dates | pixels | seconds | pixels/s | × GPy | × MOGPR (CPU, restarts=1) |",
             "|---|---|---|---|---|---|---|"]
    for r in rows:
        pps = r.pixels_per_second
        lines.append(f"| {r.method} | {r.n_dates} | {r.n_pixels} | {r.seconds:.2f} | {pps:.1f} | "
                     f"{pps / gpy.get(r.n_dates, float('nan')):.1f} | {pps / base.get(r.n_dates, float('nan')):.2f} |")
    return "\n".join(lines)


def main(argv: Optional[list[str]] = None) -> None:
    """Command line: see ``--help``."""
    ap = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    ap.add_argument("--dates", type=int, nargs="+", default=[73, 145])
    ap.add_argument("--gpy-pixels", type=int, default=64)
    ap.add_argument("--torch-pixels", type=int, default=1024)
    ap.add_argument("--threads", type=int, default=None, help="torch.set_num_threads (default: torch's own)")
    ap.add_argument("--extra-site", default=None, help="site-packages appended to sys.path (torch for the GPy venv)")
    a = ap.parse_args(argv)
    if a.extra_site:
        sys.path.append(a.extra_site)
    sys.path.insert(0, str(REPO))
    import torch

    if a.threads:
        torch.set_num_threads(a.threads)
    rows = run(a.dates, a.gpy_pixels, a.torch_pixels)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} CPU threads"
          + (f", {torch.cuda.get_device_name()}" if torch.cuda.is_available() else ""))
    print(format_table(rows))


if __name__ == "__main__":
    main()
