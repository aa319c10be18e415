"""Ship what every UDF tile needs (the UDF code, its context) to the dask workers once per request.

``Client.map(f, tiles, code=code)`` embeds a keyword argument larger than ~100 kB (dask ``sizeof``) as a graph node
named after the keyword (``'code'``): every request then reuses that fixed key, and a second request, or the second
worker of one, trips distributed's state machine (``AssertionError(<TaskState 'code' processing>)``). The
self-contained UDF of ``s1ndvi export-udf`` (code plus embedded weights) is such an argument. Here each value becomes
a task of its own under a key unique to the request (``<type>-<uuid>``) that the tiles depend on: a worker fetches it
once per request, not once per tile, and no two requests share a key (content-hashed keys would be shared by
concurrent requests with the same UDF, and one request releasing the key while another creates it again is a race).

A task, not ``Client.scatter``: scattered data has no recipe, so when the only worker holding it dies (a UDF killing
its process, the memory limit) the tiles that need it are cancelled instead of retried on the restarted worker
(:mod:`local_backend.jobs.supervision`); the scheduler recomputes a lost task's value from its task.
"""

import logging
import uuid
from dataclasses import dataclass
from typing import Any

_log = logging.getLogger(__name__)

__all__ = ["ship"]


@dataclass(frozen=True)
class _Parcel:
    """An opaque holder: dask leaves it as it is (a bare dict or list argument would be searched for references)."""

    value: Any


def _unpack(parcel: _Parcel) -> Any:
    return parcel.value


def ship(client: Any, value: Any) -> Any:
    """A future for ``value`` computed on a worker, under a key unique to this call.

    Args:
        client: a ``distributed.Client``.
        value: any picklable value.

    Returns:
        A ``distributed.Future``; pass it as an argument of ``client.map``/``submit`` and keep it until the tasks
        using it are gathered (it is released when the last reference goes).
    """
    key = f"{type(value).__name__}-{uuid.uuid4().hex}"
    future = client.submit(_unpack, _Parcel(value), key=key, pure=False)
    _log.debug("Shipped %s to the workers as %s", type(value).__name__, key)
    return future
