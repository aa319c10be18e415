"""Cheap per-tile stage timers: where a tile's seconds go (read, decode, UDF, write), kept in the tile's description.

A worker runs a tile inside :func:`timed_tile`; code on the way (the collection reader, the UDF call, the tile
writer) wraps its work in :func:`stage`, which adds the elapsed seconds to the timer of the tile running in this
thread (and costs two ``perf_counter`` calls; outside a timed tile it does nothing). Threads started for one tile
(e.g. to read its bands in parallel) pass the timer on with :func:`current` and :meth:`TileTimer.stage`.

:func:`summarise` adds up the stages of a step's tiles: the busy seconds per stage, and the tile phase's wall span
(first tile started to last tile ended), from which the benchmark derives the scheduling/idle share
(``workers x span - busy``).
"""

import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Iterable, Iterator

__all__ = ["STAGES", "TileTimer", "current", "stage", "summarise", "timed_tile"]

STAGES = ("read", "decode", "udf", "write")
"""The stages of a tile, in order: read stored values, decode them to float32, run the UDF, write the core."""

_local = threading.local()


@dataclass
class TileTimer:
    """Seconds spent per stage by one tile (from any thread working for it) and its wall-clock start."""

    started: float = field(default_factory=time.time)
    """Wall-clock start (``time.time``), to place the tile in the step's timeline."""
    cpu_started: float = field(default_factory=time.process_time)
    """CPU seconds of this process at the start (all its threads): the tile's CPU time, meaningful under load."""
    seconds: dict[str, float] = field(default_factory=lambda: dict.fromkeys(STAGES, 0.0))
    """Seconds per stage; a stage run by several threads at once counts the sum of their seconds."""
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    @contextmanager
    def stage(self, name: str) -> Iterator[None]:
        """Add the seconds of the ``with`` block to stage ``name``."""
        start = time.perf_counter()
        try:
            yield
        finally:
            elapsed = time.perf_counter() - start
            with self._lock:
                self.seconds[name] = self.seconds.get(name, 0.0) + elapsed

    def describe(self) -> dict[str, Any]:
        """The stages (rounded), the start and end (``time.time``) and the process's CPU seconds since the start."""
        return {"started": round(self.started, 3), "ended": round(time.time(), 3),
                "cpu_s": round(time.process_time() - self.cpu_started, 3),
                "stages": {k: round(v, 6) for k, v in self.seconds.items()}}


def current() -> TileTimer | None:
    """The timer of the tile running in this thread (None outside :func:`timed_tile`)."""
    return getattr(_local, "timer", None)


@contextmanager
def timed_tile() -> Iterator[TileTimer]:
    """Time one tile run in this thread: :func:`stage` calls inside add to the yielded timer."""
    timer, previous = TileTimer(), current()
    _local.timer = timer
    try:
        yield timer
    finally:
        _local.timer = previous


@contextmanager
def stage(name: str) -> Iterator[None]:
    """Add the ``with`` block's seconds to stage ``name`` of this thread's tile (nothing outside a timed tile)."""
    timer = current()
    if timer is None:
        yield
        return
    with timer.stage(name):
        yield


def summarise(timings: Iterable[dict[str, Any]]) -> dict[str, Any]:
    """Sum the :meth:`TileTimer.describe` of a step's tiles.

    Returns:
        ``tiles``, ``busy_s`` per stage (summed over tiles), ``tile_s`` (sum of the tiles' own wall times),
        ``cpu_s`` (sum of their processes' CPU seconds) and ``span_s`` (first start to last end; 0 without tiles).
    """
    rows = [t for t in timings if t and "stages" in t]
    busy = dict.fromkeys(STAGES, 0.0)
    for row in rows:
        for name, seconds in row["stages"].items():
            busy[name] = busy.get(name, 0.0) + float(seconds)
    span = max((r["ended"] for r in rows), default=0.0) - min((r["started"] for r in rows), default=0.0)
    return {"tiles": len(rows), "busy_s": busy, "tile_s": sum(r["ended"] - r["started"] for r in rows),
            "cpu_s": sum(r.get("cpu_s", 0.0) for r in rows), "span_s": span}
