"""Login rate limiting: failed basic-auth logins per user name and per client address.

After ``max_failures`` failed logins for one user name (or ``4 * max_failures`` from one address) within
``window_s``, every login for that name (address) is refused with HTTP 429 and a ``Retry-After`` for ``lockout_s``,
even with the right password. A successful login clears the user's count (not the address's).
"""

import threading
import time
from collections import deque
from dataclasses import dataclass, field

__all__ = ["LoginLimiter"]

ADDRESS_FACTOR = 4
"""An address may fail this many times more often than one user name (several users behind one address)."""


@dataclass
class LoginLimiter:
    """Counts failed logins per key (``user:NAME``, ``addr:IP``) in a sliding window."""

    max_failures: int = 5
    """Failures per user name within ``window_s`` that trigger a lockout."""
    lockout_s: float = 300.0
    """How long a locked key stays locked."""
    window_s: float = 900.0
    """Sliding window over which failures are counted."""
    _failures: dict[str, deque[float]] = field(default_factory=dict)
    _locked_until: dict[str, float] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def _keys(self, user: str | None, address: str) -> list[tuple[str, int]]:
        keys = [(f"addr:{address}", ADDRESS_FACTOR * self.max_failures)]
        return keys if user is None else [(f"user:{user}", self.max_failures), *keys]

    def retry_after(self, user: str | None, address: str, now: float | None = None) -> int:
        """Seconds until ``user`` may try again from ``address`` (0: not locked)."""
        now = time.monotonic() if now is None else now
        with self._lock:
            wait = max((self._locked_until.get(key, 0.0) - now for key, _ in self._keys(user, address)), default=0.0)
        return int(wait) + 1 if wait > 0 else 0

    def failed(self, user: str | None, address: str, now: float | None = None) -> None:
        """Record a failed login; lock the user name or the address when over its limit.

        ``user`` is the canonical name of :func:`~local_backend.api.credentials.parse_basic` (None: the header named no
        valid user, only the address is counted).
        """
        now = time.monotonic() if now is None else now
        with self._lock:
            for key, limit in self._keys(user, address):
                times = self._failures.setdefault(key, deque())
                times.append(now)
                while times and times[0] < now - self.window_s:
                    times.popleft()
                if len(times) >= limit:
                    self._locked_until[key] = now + self.lockout_s
                    times.clear()
            if len(self._failures) > 10_000:  # forget idle keys so that random names cannot grow memory forever
                for key in [k for k, t in self._failures.items() if not t or t[-1] < now - self.window_s]:
                    del self._failures[key]
                for key in [k for k, until in self._locked_until.items() if until < now]:
                    del self._locked_until[key]

    def succeeded(self, user: str) -> None:
        """Forget the failures of ``user`` after a successful login."""
        with self._lock:
            self._failures.pop(f"user:{user}", None)
