"""The state one process-graph evaluation needs (catalog, output folder, dask client, limits).

Process implementations are called by openeo-pg-parser-networkx without an environment argument, so the current
evaluation is published through a :class:`contextvars.ContextVar`, one per request thread or job thread.
"""

import contextvars
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from local_backend.cubes.collections import LocalCollectionCatalog
from local_backend.limits import Guard

_log = logging.getLogger(__name__)


@dataclass
class Execution:
    """Everything an evaluation of one process graph needs besides the graph."""

    catalog: LocalCollectionCatalog
    """Collections to load from."""
    output_dir: Path
    """Folder where ``save_result`` writes its files."""
    sync: bool = True
    """True for ``POST /result`` (size limit applies), False for batch jobs."""
    max_sync_bytes: int = 512 * 2**20
    """Largest cube (bytes, float32) a synchronous request may load or write."""
    client: Any = None
    """A ``distributed.Client`` running UDF tiles, or None to run them in this process."""
    tile_size: int = 128
    """Spatial tile edge (pixels) for UDF work without an explicit neighbourhood size."""
    outputs: list[Path] = field(default_factory=list)
    """Files written by ``save_result`` (in order)."""
    log: logging.Logger = _log
    """Logger receiving user-facing messages (a batch job's log)."""
    guard: Guard = field(default_factory=Guard)
    """Size limit, deadline and stop signals of this evaluation (see :mod:`local_backend.limits`)."""
    job_id: str | None = None
    """The batch job being run (None: a synchronous request)."""
    dask: Any = None
    """The :class:`~local_backend.jobs.cluster.DaskCluster` behind ``client`` (None: none, or only a bare client)."""
    tile_dir: Path | None = None
    """Folder of the per-tile results of tiled UDF steps (None: ``output_dir/tiles``); kept between runs of a
    batch job so that a restarted job recomputes only the missing tiles."""
    progress: Callable[[float], None] | None = None
    """Called with the percentage of UDF tiles done (a batch job's ``progress``)."""
    inputs: list[str] = field(default_factory=list)
    """Collection files read by this evaluation with their modification times (part of a tiled step's key)."""
    graph_digest: str = ""
    """Digest of the process graph being evaluated (part of a tiled step's key)."""
    steps: int = 0
    """Tiled steps started so far (numbers each step's tile folder, in evaluation order)."""
    expand: Callable[[dict[str, Any]], dict[str, Any]] | None = None
    """Inlines calls to user-defined processes before the graph is parsed (None: predefined processes only)."""

    def tiles_root(self) -> Path:
        """Where tiled steps keep their tiles."""
        return self.tile_dir if self.tile_dir is not None else self.output_dir / "tiles"


_CURRENT: contextvars.ContextVar[Execution] = contextvars.ContextVar("s1ndvi_execution")


def current() -> Execution:
    """The evaluation running in this thread.

    Raises:
        RuntimeError: when called outside :func:`running`.
    """
    try:
        return _CURRENT.get()
    except LookupError as exc:
        raise RuntimeError("No process-graph evaluation is running in this thread.") from exc


def current_or_none() -> Execution | None:
    """The evaluation running in this thread, or None outside one."""
    return _CURRENT.get(None)


def activate(execution: Execution) -> contextvars.Token[Execution]:
    """Make ``execution`` the current evaluation; pass the token to :func:`deactivate` when done."""
    return _CURRENT.set(execution)


def deactivate(token: contextvars.Token[Execution]) -> None:
    """Restore the evaluation that was current before :func:`activate`."""
    _CURRENT.reset(token)
