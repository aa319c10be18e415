"""Batch-job records in SQLite plus per-job folders (``logs.jsonl``, ``results/``) under the state directory.

A job created, started and finished survives a server restart; a job that was queued or running when the server
stopped is marked ``error`` on the next start (with a log entry saying so), never lost silently.
"""

import json
import logging
import shutil
import sqlite3
import threading
from contextlib import closing
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

_log = logging.getLogger(__name__)

_SCHEMA = """
CREATE TABLE IF NOT EXISTS jobs (
    id TEXT PRIMARY KEY, user_id TEXT NOT NULL, status TEXT NOT NULL, title TEXT, description TEXT,
    process TEXT NOT NULL, job_options TEXT, created TEXT NOT NULL, updated TEXT NOT NULL,
    started TEXT, finished TEXT, error TEXT, progress REAL
)
"""
COLUMNS = ("id", "user_id", "status", "title", "description", "process", "job_options", "created", "updated",
           "started", "finished", "error", "progress")
"""Columns of the ``jobs`` table, in order."""


def now() -> str:
    """Current UTC time as ISO 8601."""
    return datetime.now(timezone.utc).isoformat()


class JobStore:
    """SQLite table of jobs and the folder of each job's logs and results."""

    def __init__(self, state_dir: Path) -> None:
        self.state_dir = Path(state_dir)
        self.state_dir.mkdir(parents=True, exist_ok=True)
        self.db_path = self.state_dir / "jobs.sqlite"
        self._lock = threading.Lock()
        with closing(self._connect()) as db, db:
            db.execute(_SCHEMA)
            if "progress" not in {row["name"] for row in db.execute("PRAGMA table_info(jobs)")}:
                db.execute("ALTER TABLE jobs ADD COLUMN progress REAL")  # a database of an earlier version

    def _connect(self) -> sqlite3.Connection:
        db = sqlite3.connect(self.db_path, timeout=30)
        db.row_factory = sqlite3.Row
        return db

    def job_dir(self, job_id: str) -> Path:
        """Folder of one job (``logs.jsonl``, ``results/``)."""
        return self.state_dir / "jobs" / job_id

    def results_dir(self, job_id: str) -> Path:
        """Folder of one job's result files."""
        return self.job_dir(job_id) / "results"

    def tiles_dir(self, job_id: str) -> Path:
        """Folder of one job's per-tile results, kept until the job finishes (a restarted job reuses them)."""
        return self.job_dir(job_id) / "tiles"

    def insert(self, record: dict[str, Any]) -> None:
        """Store a new job (``process`` and ``job_options`` as Python objects)."""
        row = {**record, "process": json.dumps(record["process"]),
               "job_options": json.dumps(record.get("job_options"))}
        with self._lock, closing(self._connect()) as db, db:
            db.execute(f"INSERT INTO jobs ({', '.join(COLUMNS)}) VALUES ({', '.join('?' * len(COLUMNS))})",
                       [row.get(c) for c in COLUMNS])
        self.job_dir(record["id"]).mkdir(parents=True, exist_ok=True)

    def get(self, job_id: str) -> dict[str, Any] | None:
        """One job as a dict (JSON columns decoded), or None."""
        with closing(self._connect()) as db:
            row = db.execute("SELECT * FROM jobs WHERE id = ?", (job_id,)).fetchone()
        return None if row is None else self._decode(row)

    def for_user(self, user_id: str) -> list[dict[str, Any]]:
        """All jobs of a user, newest first."""
        with closing(self._connect()) as db:
            rows = db.execute("SELECT * FROM jobs WHERE user_id = ? ORDER BY created DESC", (user_id,)).fetchall()
        return [self._decode(r) for r in rows]

    @staticmethod
    def _decode(row: sqlite3.Row) -> dict[str, Any]:
        out = dict(row)
        out["process"] = json.loads(out["process"])
        out["job_options"] = json.loads(out["job_options"]) if out["job_options"] else None
        return out

    def update(self, job_id: str, **fields: Any) -> None:
        """Set columns of one job (``updated`` is set too)."""
        unknown = set(fields) - set(COLUMNS)
        if unknown:
            raise KeyError(f"Unknown job columns {sorted(unknown)}; columns are {COLUMNS}.")
        fields["updated"] = now()
        with self._lock, closing(self._connect()) as db, db:
            db.execute(f"UPDATE jobs SET {', '.join(f'{k} = ?' for k in fields)} WHERE id = ?",
                       [*fields.values(), job_id])

    def delete(self, job_id: str) -> None:
        """Remove a job's record and folder."""
        with self._lock, closing(self._connect()) as db, db:
            db.execute("DELETE FROM jobs WHERE id = ?", (job_id,))
        shutil.rmtree(self.job_dir(job_id), ignore_errors=True)

    def append_log(self, job_id: str, level: str, message: str) -> None:
        """Add one openEO log entry to the job's ``logs.jsonl``."""
        path = self.job_dir(job_id) / "logs.jsonl"
        path.parent.mkdir(parents=True, exist_ok=True)
        with self._lock, path.open("a") as handle:
            count = sum(1 for _ in path.open()) if path.exists() else 0
            handle.write(json.dumps({"id": str(count), "level": level, "message": message, "time": now()}) + "\n")

    def logs(self, job_id: str) -> list[dict[str, Any]]:
        """The job's log entries in order."""
        path = self.job_dir(job_id) / "logs.jsonl"
        if not path.exists():
            return []
        return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]

    def recover(self) -> list[str]:
        """Mark jobs left ``queued``/``running`` by a previous server process as ``error``; return their ids."""
        with closing(self._connect()) as db:
            rows = db.execute("SELECT id, status FROM jobs WHERE status IN ('queued', 'running')").fetchall()
        for row in rows:
            message = (f"The server stopped while this job was {row['status']}; start the job again (tiles already "
                       f"computed are kept and not recomputed).")
            self.update(row["id"], status="error", error=message, finished=now())
            self.append_log(row["id"], "error", message)
            _log.warning("Job %s was %s when the server stopped: marked error", row["id"], row["status"])
        return [r["id"] for r in rows]
