"""Ship what every UDF tile needs (the UDF code, its context) to the dask workers once per request.

``Client.map(f, tiles, code=code)`` embeds a keyword argument larger than ~100 kB (dask ``sizeof``) as a graph node
named after the keyword (``'code'``): every request then reuses that fixed key, and a second request, or the second
worker of one, trips distributed's state machine (``AssertionError(<TaskState 'code' processing>)``). The
self-contained UDF of ``s1ndvi export-udf`` (code plus embedded weights) is such an argument. Here each value is
scattered to every worker under a key of its own (``<type>-<uuid>``), so each worker receives it once per request
instead of once per tile, and no two requests share a key: content-hashed keys would be shared by concurrent
requests with the same UDF, and one request releasing the key while another scatters it again is a race.
"""

import logging
from typing import Any

_log = logging.getLogger(__name__)

__all__ = ["ship"]


def ship(client: Any, value: Any) -> Any:
    """A future for ``value`` held by every worker of ``client``, under a key unique to this call.

    Args:
        client: a ``distributed.Client``.
        value: any picklable value (wrapped so that a dict or list is shipped as one object).

    Returns:
        A ``distributed.Future``; pass it as an argument of ``client.map``/``submit`` and keep it until the tasks
        using it are gathered (it is released when the last reference goes).
    """
    (future,) = client.scatter([value], hash=False, broadcast=True)
    _log.debug("Shipped %s to the workers as %s", type(value).__name__, future.key)
    return future
