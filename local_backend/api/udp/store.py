"""Per-user store of user-defined processes (``/process_graphs``), in SQLite beside the jobs database.

A process is private to its owner: every method takes the user id, and one user never sees another's processes.
"""

import json
import logging
import sqlite3
import threading
from contextlib import closing
from pathlib import Path
from typing import Any

from openeo_driver.backend import UserDefinedProcesses, UserDefinedProcessesListing, UserDefinedProcessMetadata
from openeo_driver.errors import ProcessGraphNotFoundException

_log = logging.getLogger(__name__)

__all__ = ["UdpStore"]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS process_graphs (
    user_id TEXT NOT NULL, id TEXT NOT NULL, spec TEXT NOT NULL, updated TEXT NOT NULL,
    PRIMARY KEY (user_id, id)
)
"""


class UdpStore(UserDefinedProcesses):
    """openeo-driver's ``UserDefinedProcesses`` service over ``STATE/process_graphs.sqlite``.

    ``validate`` (set by :mod:`local_backend.api.udp.service`) checks a definition before it is saved.
    """

    def __init__(self, state_dir: Path) -> None:
        super().__init__()
        self.db_path = Path(state_dir) / "process_graphs.sqlite"
        self.db_path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self.validate: Any = None
        with closing(self._connect()) as db, db:
            db.execute(_SCHEMA)

    def _connect(self) -> sqlite3.Connection:
        return sqlite3.connect(self.db_path, timeout=30)

    def spec(self, user_id: str, process_id: str) -> dict[str, Any] | None:
        """The stored definition (openEO process JSON) of one of the user's processes, or None."""
        with closing(self._connect()) as db:
            row = db.execute("SELECT spec FROM process_graphs WHERE user_id = ? AND id = ?",
                             (user_id, process_id)).fetchone()
        return None if row is None else dict(json.loads(row[0]))

    def get(self, user_id: str, process_id: str) -> UserDefinedProcessMetadata | None:
        """``GET /process_graphs/{id}``: the user's process or None."""
        spec = self.spec(user_id, process_id)
        return None if spec is None else UserDefinedProcessMetadata.from_dict(spec)

    def get_for_user(self, user_id: str) -> list[UserDefinedProcessMetadata]:
        """All of the user's processes, sorted by id."""
        with closing(self._connect()) as db:
            rows = db.execute("SELECT spec FROM process_graphs WHERE user_id = ? ORDER BY id", (user_id,)).fetchall()
        return [UserDefinedProcessMetadata.from_dict(json.loads(r[0])) for r in rows]

    def list_for_user(self, user_id: str) -> UserDefinedProcessesListing:
        """``GET /process_graphs``."""
        return UserDefinedProcessesListing(udps=self.get_for_user(user_id))

    def save(self, user_id: str, process_id: str, spec: dict) -> None:
        """``PUT /process_graphs/{id}``: validate (raises an openEO error) and store, replacing a previous version."""
        spec = {**spec, "id": process_id}
        if self.validate is not None:
            self.validate(user_id, spec)
        from local_backend.jobs.store import now

        with self._lock, closing(self._connect()) as db, db:
            db.execute("INSERT OR REPLACE INTO process_graphs (user_id, id, spec, updated) VALUES (?, ?, ?, ?)",
                       (user_id, process_id, json.dumps(spec), now()))
        _log.info("Stored user-defined process %r of user %r", process_id, user_id)

    def delete(self, user_id: str, process_id: str) -> None:
        """``DELETE /process_graphs/{id}`` (404 ``ProcessGraphNotFound`` when the user has no such process)."""
        with self._lock, closing(self._connect()) as db, db:
            deleted = db.execute("DELETE FROM process_graphs WHERE user_id = ? AND id = ?",
                                 (user_id, process_id)).rowcount
        if not deleted:
            raise ProcessGraphNotFoundException(process_id)
        _log.info("Deleted user-defined process %r of user %r", process_id, user_id)
