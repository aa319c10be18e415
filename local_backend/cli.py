"""``s1ndvi serve``, ``s1ndvi users add`` and ``s1ndvi sample-data``: sub-commands of the local backend."""

import argparse
import getpass
import logging
import os
import signal
import sys
import threading
from pathlib import Path
from types import FrameType
from typing import Any

from local_backend.errors import USER_ERRORS, BackendDependencyMissing, UsersFileError
from udf.cli.output import say

_log = logging.getLogger(__name__)

_INSTALL_HINT = "pip install -e .[backend]"
__all__ = ["USER_ERRORS", "register"]  # USER_ERRORS: the errors `s1ndvi` prints on one line (udf.cli)


def _require_backend() -> None:
    try:
        import distributed  # noqa: F401
        import openeo_driver  # noqa: F401
        import openeo_pg_parser_networkx  # noqa: F401
        import openeo_processes_dask.process_implementations  # noqa: F401
    except ImportError as exc:
        raise BackendDependencyMissing(
            f"The local backend needs packages that are not installed ({exc}); install them with: {_INSTALL_HINT}"
        ) from exc


def _sigterm(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def cmd_serve(args: argparse.Namespace) -> int:
    """Run the server until interrupted."""
    from local_backend.api.log_hygiene import quiet_startup_logs

    quiet_startup_logs()
    _require_backend()
    from local_backend.api.server import DEFAULT_STATE_DIR, ServerConfig, serve

    config = ServerConfig(
        data_dir=args.data, host=args.host, port=args.port, users_file=args.users,
        workers=args.workers, scheduler=args.dask_scheduler, state_dir=args.state or DEFAULT_STATE_DIR,
        max_sync_mb=args.max_sync_mb, tile_size=args.tile_size, max_batch_mb=args.max_batch_mb,
        request_timeout_s=args.request_timeout, job_timeout_s=args.job_timeout, tile_timeout_s=args.tile_timeout,
        worker_memory_mb=args.worker_memory_mb, login_max_failures=args.login_max_failures,
        login_lockout_s=args.login_lockout, debug=args.debug_routes, udp_catalogue=args.udp_catalogue,
        trusted_proxies=tuple(args.trusted_proxy or ()), udf_isolation=args.udf_isolation)
    signal.signal(signal.SIGTERM, _sigterm)
    serve(config, announce=say)
    stuck = [t.name for t in threading.enumerate() if t.name.startswith("s1ndvi-job") and t.is_alive()]
    if stuck:  # a UDF running in this process (--workers 0) cannot be interrupted; its job is already marked error
        _log.warning("Exiting while %s still run a UDF in the server process", stuck)
        logging.shutdown()
        os._exit(0)
    return 0


def _read_password(stream: Any) -> str:
    if stream.isatty():
        first = getpass.getpass("Password: ")
        if getpass.getpass("Repeat password: ") != first:
            raise UsersFileError("The two passwords differ.")
        return first
    return str(stream.readline().rstrip("\r\n"))


def cmd_users_add(args: argparse.Namespace) -> int:
    """Add or update a user; the password is read from standard input (never from the command line)."""
    from local_backend.api.users import UsersFile

    users = UsersFile(args.users)
    try:
        new = users.add(args.name, _read_password(sys.stdin))
    except UsersFileError as exc:  # printed on one line by `s1ndvi` (USER_ERRORS)
        raise UsersFileError(f"{exc} User {args.name!r} not changed.") from exc
    say(f"{'Added' if new else 'Updated'} user {args.name!r} in {args.users}")
    return 0


def cmd_sample_data(args: argparse.Namespace) -> int:
    """Write the embedded sample as collections ``SENTINEL1_GRD``, ``SENTINEL2_L2A``, ``S1NDVI_SAMPLE_CUBE``."""
    from local_backend.cubes.sample_data import write_sample_collections

    paths = write_sample_collections(args.dir, overwrite=args.overwrite)
    say(f"Wrote sample collections in {args.dir}: {', '.join(p.name for p in paths)}")
    return 0


def _port(text: str) -> int:
    """``--port``: an integer 0-65535 (0: any free port); anything else is a usage error naming the value."""
    try:
        port = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"port must be an integer from 1 to 65535 (or 0 for any free port), "
                                         f"got {text!r}") from None
    if not 0 <= port <= 65535:
        raise argparse.ArgumentTypeError(f"port must be from 1 to 65535 (or 0 for any free port), got {port}")
    return port


def _add_serve(sub: Any) -> None:
    serve = sub.add_parser("serve", help="run the local openEO backend (openEO API 1.2)")
    serve.add_argument("--data", type=Path, default=None,
                       help="folder of collections (netCDF, zarr, GeoTIFF); default: the embedded sample")
    serve.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    serve.add_argument("--port", type=_port, default=8080, help="port 1-65535, 0 for any free port (default 8080)")
    serve.add_argument("--users", type=Path, default=None, help="users file (default STATE/users.json)")
    where = serve.add_mutually_exclusive_group()
    where.add_argument("--workers", type=int, default=1,
                       help="local dask workers for UDF tiles (default 1; 0 runs UDFs in the request thread)")
    where.add_argument("--dask-scheduler", default=None, help="address of an external dask scheduler")
    serve.add_argument("--state", type=Path, default=None, help="state folder (jobs, logs, results; ~/.s1ndvi/state)")
    serve.add_argument("--max-sync-mb", type=float, default=512.0,
                       help="largest cube (MiB) a synchronous request may load (default 512)")
    serve.add_argument("--tile-size", type=int, default=128, help="spatial tile in pixels for UDF work (128)")
    _add_limits(serve)
    serve.set_defaults(func=cmd_serve)


def _proxy(text: str) -> str:
    """A ``--trusted-proxy`` value: an IP address or network."""
    import ipaddress

    try:
        ipaddress.ip_network(text, strict=False)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"{text!r} is not an IP address or network (e.g. 127.0.0.1, 10.0.0.0/8)") \
            from exc
    return text


def _add_limits(serve: Any) -> None:
    serve.add_argument("--max-batch-mb", type=float, default=8192.0,
                       help="largest cube (MiB) any process of a batch job may produce (default 8192)")
    serve.add_argument("--request-timeout", type=float, default=900.0,
                       help="wall-clock limit (s) of a synchronous request; 0: none (default 900)")
    serve.add_argument("--job-timeout", type=float, default=86400.0,
                       help="wall-clock limit (s) of a batch job; 0: none (default 86400)")
    serve.add_argument("--tile-timeout", type=float, default=600.0,
                       help="longest (s) one UDF tile may run on a dask worker; 0: none (default 600)")
    serve.add_argument("--worker-memory-mb", type=float, default=None,
                       help="memory limit of each local dask worker (default: half the RAM / --workers)")
    serve.add_argument("--login-max-failures", type=int, default=5,
                       help="failed logins per user (x4 per address) in 15 min before logins are refused (5)")
    serve.add_argument("--login-lockout", type=float, default=300.0,
                       help="seconds a locked user or address is refused with HTTP 429 (300)")
    serve.add_argument("--udf-isolation", choices=("auto", "on", "off"), default="auto",
                       help="run UDFs in a bubblewrap sandbox without network, state folder or users file; auto "
                            "(default): when the users file has more than one user (see docs/backend-security.md)")
    serve.add_argument("--trusted-proxy", action="append", metavar="ADDR", type=_proxy,
                       help="reverse proxy (address or network) whose X-Forwarded-For names the client for the login "
                            "limiter; repeatable; default: none (see docs/backend-security.md)")
    serve.add_argument("--debug-routes", action="store_true",
                       help="serve openeo-driver's /_debug routes (to logged-in users only)")
    serve.add_argument("--udp-catalogue", type=Path, default=None,
                       help="folder of UDP JSONs: a process namespace URL whose file name is in it resolves to it "
                            "(offline catalogue)")


def register(sub: Any) -> None:
    """Add the backend's sub-commands to the ``s1ndvi`` parser's subparsers."""
    _add_serve(sub)
    users = sub.add_parser("users", help="manage the users of the local backend")
    users_sub = users.add_subparsers(dest="users_command", required=True)
    add = users_sub.add_parser("add", help="add or update a user (password read from standard input)")
    add.add_argument("--users", type=Path, required=True, help="users file (created when missing)")
    add.add_argument("name", help="user name")
    add.set_defaults(func=cmd_users_add)
    sample = sub.add_parser("sample-data", help="write the embedded sample as local collections")
    sample.add_argument("dir", type=Path, help="target folder")
    sample.add_argument("--overwrite", action="store_true", help="rewrite existing files")
    sample.set_defaults(func=cmd_sample_data)
