"""MOGPR throughput: GPy (FuseTS' way, pixel by pixel) against the batched torch MOGPR, side by side in one run.

Series: real pixels of the embedded WorldCereal sample (RVI from linear VV/VH + SCL-masked NDVI; 2 outputs), cut to
the first 73 and 145 dates of the S1 ∪ S2 date axis. Each method fits and predicts (FuseTS' 5-day grid) the same
pixels; the table gives pixels per second and the ratio to GPy.

GPy and torch live in different environments (GPy pins an older numpy). To get the GPy row, run with the GPy venv
and let it see torch from the project venv::

    /work/gpy-venv/bin/python benchmarks/bench_mogpr.py --extra-site /work/main/.venv/lib/python3.11/site-packages

Without GPy the GPy row says so. Add rows (e.g. the DL UDF) with :func:`register` before :func:`main`, or call
:func:`bench_callable` yourself.
"""

from __future__ import annotations

import argparse
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Optional

import numpy as np

REPO = Path(__file__).resolve().parents[1]
Method = Callable[[np.ndarray, np.ndarray], object]
"""``method(times (T,) days, values (N, T, 2)) -> anything``; timed as a whole."""
_EXTRA: list[tuple[str, Method]] = []


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


def register(name: str, method: Method) -> None:
    """Add a method (e.g. the DL UDF on the same series) to the table printed by :func:`main`."""
    _EXTRA.append((name, method))


def bench_callable(name: str, method: Method, times: np.ndarray, values: np.ndarray) -> Row:
    """Time ``method(times, values)`` once (wall clock)."""
    t0 = time.perf_counter()
    method(times, values)
    return Row(name, len(times), values.shape[0], time.perf_counter() - t0)


def load_series(n_dates: int, n_pixels: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """``n_pixels`` sample pixels with ≥ 4 NDVI values in the first ``n_dates`` dates: ``(times, values (N, T, 2))``."""
    sys.path.insert(0, str(REPO / "tests" / "data" / "mogpr_reference"))
    from make_data import load_sample_cube

    times, cube = load_sample_cube()
    times, cube = times[:n_dates], cube[:n_dates]
    ok = np.argwhere((np.isfinite(cube[:, 1]).sum(0) >= 4) & (np.isfinite(cube[:, 0]).sum(0) >= 4))
    pick = ok[np.random.RandomState(seed).choice(len(ok), min(n_pixels, len(ok)), replace=False)]
    values = np.stack([cube[:, :, y, x] for y, x in pick])
    reps = int(np.ceil(n_pixels / len(values)))
    return times, np.tile(values, (reps, 1, 1))[:n_pixels]


def _gpy_method() -> Optional[Method]:
    try:
        import GPy  # noqa: F401
    except ImportError:
        return None
    from comparison.mogpr_gpy import fit_predict_gpy

    return lambda t, v: fit_predict_gpy(t, v)


def _torch_method(device: str, n_restarts: int) -> Method:
    from comparison.mogpr import fit_predict

    return lambda t, v: fit_predict(t, v, device=device, n_restarts=n_restarts, chunk_size=256)


def run(n_dates_list: list[int], n_gpy: int, n_torch: int, n_restarts: int) -> list[Row]:
    """Time every available method on each series length; GPy on ``n_gpy`` pixels, batched methods on ``n_torch``.

    The first ``n_gpy`` of the ``n_torch`` pixels are GPy's pixels; torch on CPU is also timed on those alone.
    """
    import torch

    rows: list[Row] = []
    gpy = _gpy_method()
    methods: list[tuple[str, Method]] = [(f"torch cpu (restarts={n_restarts})", _torch_method("cpu", n_restarts))]
    if torch.cuda.is_available():
        methods.append((f"torch cuda (restarts={n_restarts})", _torch_method("cuda", n_restarts)))
    methods += _EXTRA
    for n_dates in n_dates_list:
        if gpy is not None:
            rows.append(bench_callable("GPy (FuseTS)", gpy, *load_series(n_dates, n_gpy)))
        else:
            rows.append(Row("GPy (FuseTS): not importable", n_dates, 0, float("nan")))
        for name, method in methods:
            rows.append(bench_callable(name, method, *load_series(n_dates, n_torch)))
        rows.append(bench_callable(methods[0][0] + ", GPy's pixels", methods[0][1], *load_series(n_dates, n_gpy)))
    return rows


def format_table(rows: list[Row]) -> str:
    """Markdown table with pixels/s and the ratio to the GPy row of the same series length."""
    gpy = {r.n_dates: r.pixels_per_second for r in rows if r.method == "GPy (FuseTS)"}
    lines = ["| method | dates | pixels | seconds | pixels/s | × GPy |", "|---|---|---|---|---|---|"]
    for r in rows:
        ratio = r.pixels_per_second / gpy[r.n_dates] if r.n_dates in gpy else float("nan")
        lines.append(f"| {r.method} | {r.n_dates} | {r.n_pixels} | {r.seconds:.2f} | {r.pixels_per_second:.3f} | "
                     f"{ratio:.1f} |")
    return "\n".join(lines)


def main(argv: Optional[list[str]] = None) -> None:
    """Command line: see ``--help``."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--dates", type=int, nargs="+", default=[73, 145])
    ap.add_argument("--gpy-pixels", type=int, default=4)
    ap.add_argument("--torch-pixels", type=int, default=64)
    ap.add_argument("--restarts", type=int, default=1)
    ap.add_argument("--threads", type=int, default=None, help="torch.set_num_threads")
    ap.add_argument("--extra-site", default=None, help="site-packages appended to sys.path (torch for the GPy venv)")
    a = ap.parse_args(argv)
    if a.extra_site:
        sys.path.append(a.extra_site)
    sys.path.insert(0, str(REPO))
    import torch

    if a.threads:
        torch.set_num_threads(a.threads)
    rows = run(a.dates, a.gpy_pixels, a.torch_pixels, a.restarts)
    print(format_table(rows))


if __name__ == "__main__":
    main()
