"""Build and run the local openEO backend (openeo-driver Flask app over this package's services)."""

import ipaddress
import logging
import os
import socket
import threading
from dataclasses import astuple, dataclass
from pathlib import Path
from typing import Any, Callable

import flask

from local_backend.api import endpoints as api_endpoints
from local_backend.api import http_hooks, proxies, result_items
from local_backend.api.credentials import parse_basic
from local_backend.api.log_hygiene import quiet_worker_udf_failures
from local_backend.api.proxies import ClientAddress
from local_backend.api.ratelimit import LoginLimiter
from local_backend.api.udp.service import install as install_udp_views
from local_backend.api.udp.service import user_processes
from local_backend.api.users import TokenSigner, UsersFile
from local_backend.cubes.collections import LocalCollectionCatalog
from local_backend.errors import InsecureBind, MalformedJson
from local_backend.executor import LocalProcessing, Runtime
from local_backend.guards import install_dask_callback
from local_backend.jobs.batch import LocalBatchJobs
from local_backend.jobs.cluster import DaskCluster, connect, start_local_cluster
from local_backend.jobs.state_files import PRIVATE_UMASK, secure_state_dir
from local_backend.jobs.store import JobStore
from local_backend.jobs.supervision import WorkerSupervisor
from local_backend.limits import Limits
from local_backend.tiles import sandbox

_log = logging.getLogger(__name__)

DEFAULT_STATE_DIR = Path.home() / ".s1ndvi" / "state"
"""Where jobs, users and the generated sample data live unless ``--state`` says otherwise."""


@dataclass(frozen=True)
class ServerConfig:
    """Options of ``s1ndvi serve``."""

    data_dir: Path | None = None
    """Collections folder (None: the embedded sample, written into ``state_dir/sample_data``)."""
    host: str = "127.0.0.1"
    """Address to bind."""
    port: int = 8080
    """Port to bind (0: any free port)."""
    users_file: Path | None = None
    """Users file (None: ``state_dir/users.json``)."""
    workers: int = 1
    """Local dask workers for UDF tiles (0: run UDFs in the request thread); ignored with ``scheduler``."""
    scheduler: str | None = None
    """Address of an external dask scheduler."""
    state_dir: Path = DEFAULT_STATE_DIR
    """Jobs database, job folders, scratch space."""
    max_sync_mb: float = 512.0
    """Largest cube (MiB, float32) a synchronous request may load or write."""
    tile_size: int = 128
    """Default spatial tile (pixels) for UDF work without an explicit neighbourhood."""
    max_batch_mb: float = 8192.0
    """Largest cube (MiB) any process of a batch job may produce."""
    request_timeout_s: float = 900.0
    """Wall-clock limit of a synchronous request (0: none)."""
    job_timeout_s: float = 24 * 3600.0
    """Wall-clock limit of a batch job (0: none)."""
    tile_timeout_s: float = 600.0
    """Longest one UDF tile may run before it is stopped and its request fails (0: none)."""
    worker_memory_mb: float | None = None
    """Memory limit of each local worker (None: half the machine's RAM shared by the workers)."""
    login_max_failures: int = 5
    """Failed logins per user name (x4 per client address) within 15 min that lock logins."""
    login_lockout_s: float = 300.0
    """How long a locked user name or address is refused (HTTP 429)."""
    debug: bool = False
    """Serve openeo-driver's ``/_debug`` routes (to logged-in users only)."""
    udf_isolation: str = "auto"
    """``auto`` (isolate UDFs when more than one user exists), ``on`` or ``off`` (see :mod:`local_backend.tiles.sandbox`)."""
    trusted_proxies: tuple[str, ...] = ()
    """Reverse proxies (addresses or networks) whose ``X-Forwarded-For`` names the client (none by default)."""
    udp_catalogue: Path | None = None
    """Folder of UDP JSONs: the offline catalogue that process namespaces (URLs by file name) resolve to."""

    def limits(self) -> Limits:
        """The size and time limits these options set."""
        return Limits(max_sync_bytes=int(self.max_sync_mb * 2**20), max_batch_bytes=int(self.max_batch_mb * 2**20),
                      request_timeout_s=self.request_timeout_s, job_timeout_s=self.job_timeout_s,
                      tile_timeout_s=self.tile_timeout_s)


def is_loopback(host: str) -> bool:
    """Whether ``host`` only accepts connections from this machine."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _dask_cluster(config: ServerConfig) -> DaskCluster | None:
    if config.scheduler is not None:
        return connect(config.scheduler)
    if config.workers <= 0:
        return None
    memory = int(config.worker_memory_mb * 2**20) if config.worker_memory_mb else None
    return start_local_cluster(config.workers, memory)


def _data_dir(config: ServerConfig) -> Path:
    if config.data_dir is not None:
        return Path(config.data_dir)
    from local_backend.cubes.sample_data import write_sample_collections

    target = config.state_dir / "sample_data"
    write_sample_collections(target)
    return target


def _secure_tokens(app: flask.Flask, signer: TokenSigner) -> None:
    """Replace openeo-driver's unsigned basic-auth token (base64 of the user name) by an HMAC-signed one."""
    from openeo_driver.errors import TokenInvalidException
    from openeo_driver.users import User

    auth = app.extensions["auth_handler"]

    def resolve(access_token: str) -> User:
        user_id = signer.user_of(access_token)
        if user_id is None:
            raise TokenInvalidException()
        return User(user_id=user_id, internal_auth_data={"authentication_method": "basic"})

    auth.build_basic_access_token = signer.build
    auth.parse_basic_auth_header = lambda request: astuple(parse_basic(request.headers.get("Authorization")))
    auth.resolve_basic_access_token = resolve


def _restartable_jobs(app: flask.Flask, jobs: LocalBatchJobs) -> None:
    """Let ``POST /jobs/{id}/results`` restart a job in status ``error`` or ``finished`` too.

    The openEO API says starting has no effect only on a queued or running job; openeo-driver's view starts
    ``created``/``canceled`` jobs only. An interrupted job keeps its finished tiles, so restarting it computes only
    the missing ones.
    """
    from openeo_driver.users import User

    auth = app.extensions["auth_handler"]

    @auth.requires_bearer_auth
    def start_job(job_id: str, user: User) -> flask.Response:
        jobs.start_job(job_id, user)
        return flask.make_response("", 202)

    for endpoint in ("openeo.start_job", "openeo_old.start_job"):
        if endpoint in app.view_functions:
            app.view_functions[endpoint] = start_job


def _json_errors(app: flask.Flask) -> None:
    from werkzeug.exceptions import BadRequest

    def malformed(error: BadRequest) -> tuple[flask.Response, int]:
        exc = MalformedJson(message=f"Malformed request: {error.description}")
        return flask.jsonify(exc.to_dict()), exc.status_code

    app.register_error_handler(BadRequest, malformed)


FILE_FORMATS = {
    "input": {"netCDF": {"gis_data_types": ["raster"], "parameters": {}}, "GTiff": {"gis_data_types": ["raster"],
                                                                                   "parameters": {}}},
    "output": {
        "netCDF": {"title": "netCDF (openEO layout: a variable per band, crs grid mapping)",
                   "gis_data_types": ["raster"], "parameters": {}},
        "GTiff": {"title": "GeoTIFF (one file per date, with CRS)", "gis_data_types": ["raster"], "parameters": {}},
    },
}
"""``GET /file_formats``: what ``save_result`` writes and what ``--data`` reads."""


def _implementation_class() -> Any:
    from openeo_driver.backend import OpenEoBackendImplementation

    class LocalBackendImplementation(OpenEoBackendImplementation):
        """openeo-driver backend with this backend's file formats."""

        def file_formats(self) -> dict:
            return FILE_FORMATS

        def postprocess_capabilities(self, capabilities: dict) -> dict:
            """No ``billing`` (this backend bills nothing; openeo-driver's default has ``"currency": null``)."""
            return {k: v for k, v in capabilities.items() if k != "billing"}

    return LocalBackendImplementation


@dataclass
class Backend:
    """A built server: the Flask app and what has to be closed."""

    app: flask.Flask
    runtime: Runtime
    jobs: LocalBatchJobs
    users: UsersFile
    supervisor: WorkerSupervisor | None = None

    def close(self) -> None:
        """Stop the jobs (marked ``error``, see :meth:`LocalBatchJobs.shutdown`), the supervisor and the cluster."""
        self.jobs.shutdown()
        if self.supervisor is not None:
            self.supervisor.stop()
        if self.runtime.dask is not None:
            self.runtime.dask.close()


def build_backend(config: ServerConfig) -> Backend:
    """Build the openeo-driver app and services for ``config`` (does not bind).

    Raises:
        InsecureBind: for a non-loopback host without any configured user.
    """
    users_file = Path(config.users_file or config.state_dir / "users.json")
    users = UsersFile(users_file)
    if not is_loopback(config.host) and not users.users():
        raise InsecureBind(f"Refusing to listen on {config.host} without users: add one with "
                           f"`s1ndvi users add --users {users_file} NAME` and pass --users {users_file}.")
    if not users.users():
        _log.warning("No users in %s: processing needs `s1ndvi users add --users %s NAME`", users_file, users_file)
    os.environ["S1NDVI_USERS_FILE"] = str(users_file)
    os.environ["OPENEO_BACKEND_CONFIG"] = str(Path(__file__).with_name("driver_config.py"))
    from openeo_driver.config import get_backend_config
    from openeo_driver.views import build_app

    from local_backend.api.conformance import conform_app

    secure_state_dir(config.state_dir)
    sandbox.configure(sandbox.Policy(config.udf_isolation, lambda: len(users.users()), sandbox.SandboxSpec(
        hidden=(str(Path(config.state_dir).resolve()), str(users_file.resolve())))))
    store = JobStore(config.state_dir)
    store.recover()
    dask = _dask_cluster(config)
    if dask is not None:
        quiet_worker_udf_failures(dask.client)
    runtime = Runtime(catalog=LocalCollectionCatalog(_data_dir(config)), work_dir=config.state_dir / "tmp",
                      client=None if dask is None else dask.client, max_sync_bytes=int(config.max_sync_mb * 2**20),
                      tile_size=config.tile_size, dask=dask, limits=config.limits())
    install_dask_callback()
    jobs = LocalBatchJobs(runtime, store)
    udps = user_processes(config.state_dir, config.udp_catalogue, runtime)
    implementation = _implementation_class()(
        catalog=runtime.catalog, batch_jobs=jobs, processing=LocalProcessing(runtime),
        user_defined_processes=udps, config=get_backend_config(force_reload=True))
    app = build_app(implementation)
    app.extensions["s1ndvi_udps"] = bool(implementation.user_defined_processes)  # u:NAME namespaces served
    _secure_tokens(app, TokenSigner.from_key_file(config.state_dir / "token_key"))
    _restartable_jobs(app, jobs)
    result_items.install(app, jobs)
    _json_errors(app)
    conform_app(app, store)
    install_udp_views(app, udps)
    api_endpoints.install(app, store, runtime.catalog, implementation.processing)
    http_hooks.install(app, LoginLimiter(max_failures=config.login_max_failures, lockout_s=config.login_lockout_s),
                       debug=config.debug)
    proxies.install(app, ClientAddress.from_options(config.trusted_proxies))
    supervisor = WorkerSupervisor(dask).start() if dask is not None else None
    return Backend(app=app, runtime=runtime, jobs=jobs, users=users, supervisor=supervisor)


def serve(config: ServerConfig, ready: threading.Event | None = None,
          announce: Callable[[str], None] | None = None) -> None:
    """Build the backend and serve it until interrupted (threaded WSGI server).

    Args:
        config: the options.
        ready: set once the server listens.
        announce: called once it listens with a sentence giving its URL, collections, state folder and users file
            (default: logged at INFO).
    """
    from werkzeug.serving import make_server

    os.umask(PRIVATE_UMASK)
    backend = build_backend(config)
    server = make_server(config.host, config.port, backend.app, threaded=True)
    message = (f"s1ndvi local openEO backend on http://{config.host}:{server.port} (collections: "
               f"{backend.runtime.catalog.data_dir}; state: {config.state_dir}; users: {backend.users.path}); "
               "Ctrl+C stops it")
    (announce or _log.info)(message)
    if ready is not None:
        ready.set()
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        _log.info("Interrupted: shutting down")
    finally:
        server.server_close()
        backend.close()


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port free on ``host`` right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])
