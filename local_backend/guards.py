"""Checks of the current evaluation's :class:`~local_backend.limits.Guard`: a wrapper for every process and a dask callback.

Kept apart from :mod:`local_backend.limits` (the bounds themselves) because they look up the running evaluation in
:mod:`local_backend.context`, which holds a guard.
"""

import threading
from typing import Any, Callable

from local_backend.context import current_or_none
from local_backend.limits import Guard

__all__ = ["current_guard", "guard_process", "install_dask_callback"]


def current_guard() -> Guard | None:
    """The guard of the evaluation running in this context, if any."""
    execution = current_or_none()
    return None if execution is None else execution.guard


def guard_process(func: Callable[..., Any]) -> Callable[..., Any]:
    """Registry wrapper: check the stop signals around a process call and the size of what it returns."""
    name = getattr(func, "__name__", "process").strip("_")

    def guarded(*args: Any, **kwargs: Any) -> Any:
        guard = current_guard()
        if guard is not None:
            guard.check()
        result = func(*args, **kwargs)
        if guard is not None:
            guard.check_size(name, result)
            guard.check()
        return result

    guarded.__name__ = getattr(func, "__name__", "guarded")
    guarded.__doc__ = func.__doc__
    return guarded


_installed = threading.Lock()
_callback: Any = None


def install_dask_callback() -> None:
    """Register (once per process) a dask callback checking the current evaluation's guard before each task."""
    global _callback
    from dask.callbacks import Callback

    class _GuardCallback(Callback):
        def _pretask(self, key: Any, dsk: Any, state: Any) -> None:
            guard = current_guard()
            if guard is not None:
                guard.check()

    with _installed:
        if _callback is None:
            _callback = _GuardCallback()
            _callback.register()
