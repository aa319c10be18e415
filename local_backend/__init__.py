"""A local openEO backend: the stock openeo client runs process graphs and UDFs on this machine.

Heavy dependencies (openeo-driver, processes-dask, dask.distributed) are imported on first use of a name below;
install them with ``pip install -e .[backend]``.
"""

import importlib
from typing import Any

__all__ = ["Backend", "LocalCollectionCatalog", "ServerConfig", "UsersFile", "build_backend", "serve",
           "write_sample_collections"]

_WHERE = {
    "Backend": "local_backend.api.server",
    "ServerConfig": "local_backend.api.server",
    "build_backend": "local_backend.api.server",
    "serve": "local_backend.api.server",
    "LocalCollectionCatalog": "local_backend.cubes.collections",
    "UsersFile": "local_backend.api.users",
    "write_sample_collections": "local_backend.cubes.sample_data",
}


def __getattr__(name: str) -> Any:
    if name not in _WHERE:
        raise AttributeError(f"module 'local_backend' has no attribute {name!r}; public names: {__all__}")
    return getattr(importlib.import_module(_WHERE[name]), name)
