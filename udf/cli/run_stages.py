"""Stages of ``s1ndvi run`` with markers, so that a rerun after an interruption reuses the finished ones.

A stage is done when its marker ``<out>/.stages/<name>.json`` exists, its key (a hash of the options it depends on
and of the keys of the stages before it) is the same, and every output it lists still exists. Otherwise it runs
again, and so does every stage after it (their keys include its key).
"""

import hashlib
import json
import logging
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

__all__ = ["StageRunner"]

_log = logging.getLogger(__name__)


@dataclass
class StageRunner:
    """Runs named stages in order under ``out``; ``say`` reports progress (one line per stage)."""

    out: Path
    total: int
    say: Callable[[str], None]
    force: bool = False
    done: int = 0
    key: str = ""
    reused: list[str] = field(default_factory=list)
    seconds: dict[str, float] = field(default_factory=dict)

    @property
    def markers(self) -> Path:
        """Folder of the stage markers."""
        return self.out / ".stages"

    def _marker(self, name: str) -> Path:
        return self.markers / f"{name}.json"

    def run(self, name: str, options: dict, outputs: list[Path], fn: Callable[[], dict | None]) -> dict:
        """Run stage ``name`` (or reuse it) and return its recorded summary.

        Args:
            name: stage name (``cube``, ``adapt`` ...).
            options: what the stage's result depends on (JSON-serialisable).
            outputs: files the stage writes (all must exist for a reuse).
            fn: does the work; returns a JSON-serialisable summary kept in the marker.
        """
        self.done += 1
        self.key = hashlib.sha256(json.dumps([self.key, name, options], sort_keys=True, default=str)
                                  .encode()).hexdigest()[:16]
        marker = self._marker(name)
        prefix = f"[{self.done}/{self.total}] {name}"
        if not self.force and marker.exists():
            rec = json.loads(marker.read_text())
            if rec.get("key") == self.key and all(Path(p).exists() for p in rec.get("outputs", [])):
                self.reused.append(name)
                self.say(f"{prefix}: reused (finished earlier; delete {marker} to redo it)")
                return rec.get("summary") or {}
        self.say(f"{prefix} ...")
        marker.unlink(missing_ok=True)
        t0 = time.perf_counter()
        summary = fn() or {}
        elapsed = time.perf_counter() - t0
        self.seconds[name] = elapsed
        self.markers.mkdir(parents=True, exist_ok=True)
        marker.write_text(json.dumps({"key": self.key, "outputs": [str(p) for p in outputs], "seconds": elapsed,
                                      "summary": summary}, indent=1, default=str))
        self.say(f"{prefix}: done in {elapsed:.1f} s")
        return summary


def on_terminal() -> bool:
    """True when progress bars make sense (standard error is a terminal)."""
    return sys.stderr.isatty()
