"""Private state folder: the folder is 0700 and every file the server writes in it is 0600.

The state folder holds the jobs database (process graphs with UDF code, user names), job logs, results, the token
signing key and scratch files. :func:`secure_state_dir` creates it private, tightens what an older version left
readable; ``s1ndvi serve`` also sets its process umask to :data:`PRIVATE_UMASK` so that everything created later
(SQLite, netCDF, logs, folders) is private too (an in-process backend, as the demo runs, leaves its host's umask alone).
"""

import logging
import os
import stat
from pathlib import Path

__all__ = ["PRIVATE_UMASK", "secure_state_dir"]

_log = logging.getLogger(__name__)

PRIVATE_UMASK = 0o077
"""Files 0600, folders 0700."""


def secure_state_dir(path: Path) -> Path:
    """Create ``path`` (mode 0700) and restrict what is already in it.

    Files and folders under ``path`` that group or others can access get those bits removed (a symlink is left
    alone). Returns ``path``.
    """
    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    os.chmod(path, 0o700)
    fixed = 0
    for root, dirs, files in os.walk(path):
        for name in dirs + files:
            item = Path(root) / name
            mode = item.lstat().st_mode
            if stat.S_ISLNK(mode) or not mode & 0o077:
                continue
            os.chmod(item, stat.S_IMODE(mode) & 0o700)
            fixed += 1
    if fixed:
        _log.warning("Removed group/other access from %d file(s) and folder(s) under %s", fixed, path)
    return path
