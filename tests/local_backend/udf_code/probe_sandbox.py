# A test UDF that reports what it can reach (issue 22): secrets of the server, its ports, the dask scheduler.
import os
import socket

import xarray


def _can_read(path: str) -> bool:
    try:
        with open(path, "rb") as handle:
            return len(handle.read(64)) > 0
    except OSError:
        return False


def _can_write(folder: str) -> bool:
    try:
        with open(os.path.join(folder, "udf-was-here"), "w") as handle:
            handle.write("x")
        return True
    except OSError:
        return False


def _can_connect(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=2).close()
        return True
    except OSError:
        return False


def _has_client() -> bool:
    try:
        from distributed import get_client

        get_client(timeout=2)
        return True
    except Exception:  # noqa: BLE001 - any failure means no client
        return False


def apply_datacube(cube: xarray.DataArray, context: dict) -> xarray.DataArray:
    state = context["state"]
    found = {"users": _can_read(context["users"]), "token_key": _can_read(os.path.join(state, "token_key")),
             "jobs_db": _can_read(os.path.join(state, "jobs.sqlite")), "write_state": _can_write(state),
             "server_port": _can_connect(int(context["port"])), "dask_client": _has_client()}
    raise ValueError("PROBE " + " ".join(f"{k}={v}" for k, v in sorted(found.items())))
