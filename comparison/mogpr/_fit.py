"""Fitting many pixels' MOGPR hyper-parameters: the pooled L-BFGS on the binned objective, chunked and threaded.

Each problem is one (pixel, start) pair. Problems enter an L-BFGS pool in order of their number of valid
observations, largest first, so neighbouring pool rows need about the same padding. The pool's objective is
evaluated in *chunks* of consecutive rows, each padded only to its own largest pixel and small enough that its
``(rows, M, M)`` arrays stay in cache. On CPU the problems are shared round-robin between worker threads, each with
its own pool, that run torch single-threaded: batched LAPACK calls (Cholesky, inverse) loop over the batch on one
core and release the GIL, so one worker's LAPACK calls overlap with the other's Python bookkeeping, which uses the
cores better than torch's intra-op threads do.
"""

from __future__ import annotations

import logging
import threading
from concurrent.futures import Executor, ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Callable, Iterator, Optional, Sequence, TypeVar

import numpy as np
import torch

from . import _binned as _b
from . import _model as _m
from . import _predict as _p
from ._optim import LBFGSOptions, LBFGSResult, minimize

_log = logging.getLogger(__name__)
T = TypeVar("T")
R = TypeVar("R")

CPU_CHUNK_ENTRIES = 200_000
"""Covariance entries per objective chunk on CPU (``rows · M²``, 1.6 MB per float64 array). Measured with two
workers on a 2-core EPYC (2 MiB L2 per core): the cost per row doubles once a chunk grows past about 200 000 entries
(at M = 64 between 48 and 64 rows, at M = 133 between 16 and 32 rows)."""
MAX_CPU_WORKERS = 2
"""Most worker threads on CPU. They share the GIL: on a 16-core machine 1, 2, 4 and 8 workers fitted 72, 103, 85 and
39 pixels/s (73 dates, 1024 pixels), so further cores are left to other work rather than used badly."""
GPU_CHUNK_ENTRIES = 1 << 26
"""Covariance entries per objective chunk on a GPU: 512 MB per float64 array."""


class PixelProblems:
    """The MOGPR objective of (pixel, start) problems for :func:`comparison.mogpr._optim.minimize`.

    Args:
        packed: valid observations of the pixels ``(n, M)``, valid slots first, on the computing device.
        pixel: pixel (row of ``packed``) of each problem ``(N,)``.
        grid: covariance bins of the time axis that ``packed.date`` indexes.
        n_kernels: ``Q``.
        chunk_entries: covariance entries (``rows · M²``) per objective chunk.
    """

    def __init__(self, packed: _m.Packed, pixel: np.ndarray, grid: _b.Grid, n_kernels: int, chunk_entries: int):
        self.packed, self.pixel, self.grid, self.n_kernels = packed, pixel, grid, n_kernels
        self.chunk_entries = chunk_entries
        self.device = packed.y.device
        self.positive = _m.positive_mask(grid.n_outputs, n_kernels).to(self.device)
        self.chunks: list[_b.Binned] = []
        self.ids = np.zeros(0, dtype=np.int64)

    def bind(self, ids: np.ndarray) -> None:
        """Make problems ``ids`` the pool; when they extend the current pool, only the new rows are binned."""
        n_old = len(self.ids)
        if not (n_old <= len(ids) and np.array_equal(ids[:n_old], self.ids)):
            self.chunks, n_old = [], 0
        self.ids = ids
        self.chunks += self._build(n_old, len(ids))

    def _build(self, start: int, stop: int) -> list[_b.Binned]:
        """Chunks of about equal size for pool rows ``start:stop``, each within the cache budget."""
        d = self.packed.take(torch.as_tensor(self.pixel[self.ids[start:stop]], device=self.device))
        if not len(d.y):
            return []
        m = int(d.valid.sum(-1).max())
        n_chunks = -(-len(d.y) // self._rows(m))
        return [_b.bin_pixels(d.take(r).trim(), self.grid)
                for r in torch.arange(len(d.y), device=self.device).tensor_split(n_chunks)]

    def _rows(self, m: int) -> int:
        """Rows per chunk for ``m`` slots per pixel."""
        return max(8, self.chunk_entries // max(m * m, 1))

    def keep(self, rows: np.ndarray) -> None:
        """Shrink the pool to its ``rows`` (ascending); neighbouring chunks that fit in one are merged."""
        self.ids = self.ids[rows]
        kept, start = [], 0
        for c in self.chunks:
            n = c.y.shape[0]
            local = rows[(rows >= start) & (rows < start + n)] - start
            if len(local):
                kept.append(c if len(local) == n else c.take(torch.as_tensor(local, device=self.device)))
            start += n
        self.chunks, start = [], 0
        while kept:  # greedy: merge a run of chunks while the merged chunk stays within the budget
            run, n_rows, m = 1, kept[0].y.shape[0], kept[0].y.shape[1]
            while run < len(kept) and n_rows + kept[run].y.shape[0] <= self._rows(max(m, kept[run].y.shape[1])):
                n_rows, m = n_rows + kept[run].y.shape[0], max(m, kept[run].y.shape[1])
                run += 1
            self.chunks += kept[:1] if run == 1 else self._build(start, start + n_rows)
            kept, start = kept[run:], start + n_rows

    def evaluate(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Negative log likelihood and its gradient w.r.t. the unconstrained ``x`` ``(C, P)`` of the pool."""
        raw = torch.as_tensor(x, device=self.device)
        params = _m.to_constrained(raw, self.grid.n_outputs, self.n_kernels)
        f, g = _b.neg_log_lik_and_grad(params, self.chunks, self.grid, self.n_kernels)
        g = g * torch.where(self.positive, torch.sigmoid(raw), torch.ones_like(raw))  # chain rule of softplus
        return f.cpu().numpy(), g.cpu().numpy()


@dataclass
class Workers:
    """Where chunks of work run: ``count`` threads of ``executor``, or the calling thread when it is None."""

    count: int = 1
    executor: Optional[Executor] = None

    def map(self, fn: Callable[[T], R], items: Sequence[T]) -> list[R]:
        """``[fn(item) for item in items]``, concurrently when there is an executor."""
        return list(map(fn, items)) if self.executor is None else list(self.executor.map(fn, items))


@contextmanager
def cpu_workers(count: int) -> Iterator[Workers]:
    """``count`` worker threads running torch single-threaded; torch's thread count is restored afterwards.

    OpenMP's thread count is per thread, so it is set in each worker; MKL's is global, so it is set here too.
    One worker runs in the calling thread and changes nothing.
    """
    if count <= 1:
        yield Workers()
        return
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        with ThreadPoolExecutor(count, initializer=torch.set_num_threads, initargs=(1,)) as executor:
            yield Workers(count, executor)
    finally:
        torch.set_num_threads(before)


def fit(
    packed: _m.Packed, grid: _b.Grid, starts: np.ndarray, n_kernels: int, opts: LBFGSOptions,
    workers: Workers = Workers(), on_done: Optional[Callable[[np.ndarray], None]] = None,
) -> tuple[torch.Tensor, np.ndarray, np.ndarray]:
    """Fit every start of every pixel and keep, per pixel, the start with the lowest negative log likelihood.

    Args:
        packed: valid observations of ``n`` pixels ``(n, M)``, valid slots first, on the computing device.
        grid: covariance bins of the time axis ``packed.date`` indexes.
        starts: constrained starting points ``(R, n, P)``.
        n_kernels: ``Q``.
        opts: L-BFGS options (``opts.pool`` problems per worker).
        workers: each worker optimises every ``workers.count``-th problem with its own pool, so that one worker's
            Python work overlaps with another's LAPACK calls.
        on_done: called with the pixel of each (pixel, start) problem as it finishes (serialised by a lock).

    Returns:
        Best constrained params ``(n, P)`` on the device, their negative log likelihood ``(n,)`` (+inf: no finite
        fit) and L-BFGS iterations ``(n,)``.
    """
    n_starts, n, _ = starts.shape
    dev = packed.y.device
    pixel = np.tile(np.arange(n), n_starts)  # problem r·n + i is start r of pixel i
    order = np.argsort(-packed.valid.sum(-1).cpu().numpy()[pixel], kind="stable")
    x0 = _m.to_raw(torch.as_tensor(starts.reshape(n_starts * n, -1)), grid.n_outputs, n_kernels).numpy()
    shares = [order[k :: workers.count] for k in range(workers.count)]
    entries = CPU_CHUNK_ENTRIES if dev.type == "cpu" else GPU_CHUNK_ENTRIES
    lock = threading.Lock()

    def run(share: np.ndarray) -> LBFGSResult:
        def done(ids: np.ndarray) -> None:
            with lock:
                on_done(pixel[share[ids]])  # type: ignore[misc]

        return minimize(PixelProblems(packed, pixel[share], grid, n_kernels, entries), x0[share], opts,
                        None if on_done is None else done)

    results = workers.map(run, shares)
    x, f, it, ev = np.empty_like(x0), np.empty(len(x0)), np.empty(len(x0), dtype=np.int64), np.empty(len(x0))
    for share, r in zip(shares, results):
        x[share], f[share], it[share], ev[share] = r.x, r.f, r.n_iter, r.n_eval
    _log.debug("MOGPR fit: %d problems, mean %.1f iterations, %.1f evaluations", len(x0), it.mean(), ev.mean())
    f_best = np.where(np.isfinite(f), f, np.inf).reshape(n_starts, n)
    best = f_best.argmin(0)
    idx = best * n + np.arange(n)
    params = _m.to_constrained(torch.as_tensor(x[idx], device=dev), grid.n_outputs, n_kernels)
    return params, f_best[best, np.arange(n)], it[idx]


def predict_all(
    params: torch.Tensor, packed: _m.Packed, grid: _b.Grid, cross: _p.CrossGrid, n_kernels: int, include_noise: bool,
    workers: Workers = Workers(),
) -> tuple[np.ndarray, np.ndarray]:
    """:func:`comparison.mogpr._predict.predict` of all ``n`` pixels in cache-sized chunks shared by the workers.

    Returns:
        Normalised predictive mean and variance ``(n, S, O)``.
    """
    n, o, s = params.shape[0], grid.n_outputs, cross.index.shape[0]
    m = int(packed.valid.sum(-1).max()) if n else 1
    entries = CPU_CHUNK_ENTRIES if packed.y.device.type == "cpu" else GPU_CHUNK_ENTRIES
    rows = torch.arange(n, device=params.device).split(max(1, entries // max(m * m, o * s * m)))

    def one(r: torch.Tensor) -> tuple[np.ndarray, np.ndarray]:
        mean, var = _p.predict(params[r], packed.take(r).trim(), grid, cross, n_kernels, include_noise)
        return mean.cpu().numpy(), var.cpu().numpy()

    parts = workers.map(one, rows)
    if not parts:
        return np.zeros((0, s, o)), np.zeros((0, s, o))
    return np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts])
