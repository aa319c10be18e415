"""Progress of long commands: a tqdm bar on a terminal, a few log lines anywhere else.

A tqdm bar redraws itself with carriage returns; written to a file (a CI log, ``nohup``, a batch system) each redraw
is a new frame and a four-minute ``adapt`` leaves thousands of them. :func:`progress_bar` returns a bar only when
standard error is a terminal; otherwise a :class:`LogProgress` with the same methods, which logs a line at each
quarter of the total, at most one a minute (:data:`LOG_EVERY_S`) in between, and one when it closes.
"""

import logging
import sys
import time
from typing import Any, Protocol

__all__ = ["LOG_EVERY_S", "LogProgress", "Progress", "on_terminal", "progress_bar"]

_log = logging.getLogger(__name__)
_log.setLevel(logging.INFO)  # the few progress lines show at the CLI's default verbosity (WARNING elsewhere)

LOG_EVERY_S = 60.0
"""Between quarters (or without a known total), a progress line at most this often (seconds)."""
_QUARTERS = 4


class Progress(Protocol):
    """What the commands use of a tqdm bar."""

    n: float

    def update(self, n: float = 1) -> Any: ...  # noqa: D102

    def set_postfix(self, **kwargs: Any) -> Any: ...  # noqa: D102

    def set_postfix_str(self, s: str = "") -> Any: ...  # noqa: D102

    def refresh(self) -> Any: ...  # noqa: D102

    def close(self) -> Any: ...  # noqa: D102


def on_terminal() -> bool:
    """True when progress bars make sense (standard error is a terminal)."""
    return bool(getattr(sys.stderr, "isatty", lambda: False)())


class LogProgress:
    """A stand-in for a tqdm bar that logs a few lines (``desc: n/total unit (postfix)``) instead of redrawing.

    Args:
        total: the total, or None when unknown.
        desc: what progresses (the line's prefix).
        unit: unit of ``n``.
        clock: time source (seconds), for tests.
    """

    def __init__(self, total: float | None = None, desc: str = "", unit: str = "it",
                 clock: Any = time.monotonic) -> None:
        self.total, self.desc, self.unit = total, desc, unit
        self.n: float = 0
        self._clock = clock
        self._postfix = ""
        self._next_quarter = 1
        self._last = clock()
        self._closed = False
        self.lines = 0
        """Lines logged so far."""

    def __enter__(self) -> "LogProgress":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _line(self, final: bool = False) -> str:
        count = f"{self.n:g}/{self.total:g}" if self.total else f"{self.n:g}"
        post = f" ({self._postfix})" if self._postfix else ""
        return f"{self.desc}: {'done, ' if final else ''}{count} {self.unit}{post}"

    def _emit(self, final: bool = False) -> None:
        _log.info("%s", self._line(final))
        self.lines += 1
        self._last = self._clock()

    def _maybe_log(self) -> None:
        if self.total:
            reached = int(_QUARTERS * min(self.n, self.total) / self.total)
            if self._next_quarter <= reached < _QUARTERS:
                self._next_quarter = reached + 1
                self._emit()
                return
        if self._clock() - self._last >= LOG_EVERY_S:
            self._emit()

    def update(self, n: float = 1) -> None:
        """Advance by ``n``."""
        self.n += n
        self._maybe_log()

    def set_postfix(self, **kwargs: Any) -> None:
        """Set the line's trailing ``key=value`` text."""
        self._postfix = ", ".join(f"{k}={v}" for k, v in kwargs.items())
        self._maybe_log()

    def set_postfix_str(self, s: str = "") -> None:
        """Set the line's trailing text."""
        self._postfix = s
        self._maybe_log()

    def refresh(self) -> None:
        """Log if a quarter (or the interval) was reached since the last line."""
        self._maybe_log()

    def close(self) -> None:
        """Log the final line (once)."""
        if not self._closed:
            self._closed = True
            self._emit(final=True)


def progress_bar(total: float | None = None, desc: str = "", unit: str = "it", **tqdm_kwargs: Any) -> Progress:
    """A tqdm bar on a terminal, else a :class:`LogProgress`; both work as context managers.

    Args:
        total: the total (None: unknown).
        desc: what progresses.
        unit: unit of the count.
        tqdm_kwargs: further tqdm options (``bar_format``, ``dynamic_ncols``), used on a terminal only.
    """
    if on_terminal():
        from tqdm import tqdm

        bar: Progress = tqdm(total=total, desc=desc, unit=unit, **tqdm_kwargs)
        return bar
    return LogProgress(total=total, desc=desc, unit=unit)
