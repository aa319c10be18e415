"""Run the DL model the way a user would: a process graph sent with the stock openeo client to the local backend.

:class:`LocalBackendRun` serves a folder of cubes (one collection per masked protocol cube) on a free loopback port
in a background thread, with a throw-away user, and :func:`backend_dl_method` turns it into a harness method: each
masked cube is found by its NDVI gaps, loaded with ``load_collection``, fused by the project's UDF
(``udf.UDF_PATH``) inside ``apply_neighborhood`` (128 px tiles, 8 px overlap) and downloaded as netCDF.
"""

from __future__ import annotations

import hashlib
import logging
import secrets
import threading
from pathlib import Path
from types import TracebackType
from typing import Any, Optional

import numpy as np
import xarray as xr

from comparison.compare.methods import Method, Prediction
from udf.ingest.cube_io import read_cube, write_cube

_log = logging.getLogger(__name__)

__all__ = ["LocalBackendRun", "backend_available", "backend_dl_method", "cube_key", "fuse_graph", "udf_context"]

_USER = "demo"


def backend_available() -> bool:
    """Whether the backend's optional dependencies (``pip install -e .[backend]``) are importable."""
    try:
        import openeo_driver  # noqa: F401
        import openeo_pg_parser_networkx  # noqa: F401
        import openeo_processes_dask  # noqa: F401
    except ImportError:
        return False
    return True


def cube_key(cube: xr.DataArray) -> str:
    """Collection id of a masked cube: a digest of where its NDVI is observed (protocols differ only there)."""
    seen = np.isfinite(cube.sel(bands="NDVI").values)
    return "S1NDVI_EVAL_" + hashlib.sha1(seen.tobytes()).hexdigest()[:12].upper()


class LocalBackendRun:
    """A local openEO backend over ``cubes`` for the duration of a ``with`` block.

    Args:
        cubes: cubes to serve, each as collection :func:`cube_key` (written into ``work/data``).
        work: folder for collections, users file and backend state.
    """

    def __init__(self, cubes: list[xr.DataArray], work: Path) -> None:
        self.work = Path(work)
        self.data = self.work / "data"
        self.data.mkdir(parents=True, exist_ok=True)
        for cube in cubes:
            write_cube(cube, self.data / f"{cube_key(cube)}.nc")
        self.url = ""
        self.connection: Any = None
        self._server: Any = None
        self._backend: Any = None
        self._thread: Optional[threading.Thread] = None

    def __enter__(self) -> "LocalBackendRun":
        import openeo
        from werkzeug.serving import make_server

        from local_backend.api.server import ServerConfig, build_backend, free_port
        from local_backend.api.users import UsersFile

        password = secrets.token_urlsafe(16)
        users = self.work / "users.json"
        UsersFile(users).add(_USER, password)
        config = ServerConfig(data_dir=self.data, port=free_port(), users_file=users, workers=0,
                              state_dir=self.work / "state")
        self._quiet_server_logs()
        self._backend = build_backend(config)
        self._server = make_server(config.host, config.port, self._backend.app, threaded=True)
        self._thread = threading.Thread(target=self._server.serve_forever, name="s1ndvi-backend", daemon=True)
        self._thread.start()
        self.url = f"http://{config.host}:{config.port}"
        self.connection = openeo.connect(self.url).authenticate_basic(_USER, password)
        _log.info("Local openEO backend on %s serving %s", self.url, sorted(p.stem for p in self.data.glob("*.nc")))
        return self

    _SERVER_LOGGERS = ("local_backend", "openeo_driver", "werkzeug", "openeo_pg_parser_networkx",
                       "openeo_processes_dask", "distributed")

    def _quiet_server_logs(self) -> None:
        """Send the in-process server's log lines to ``work/server.log`` instead of the console."""
        self._log_handler = logging.FileHandler(self.work / "server.log", encoding="utf-8")
        self._log_handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
        self._saved_propagate: dict[str, bool] = {}
        for name in self._SERVER_LOGGERS:
            logger = logging.getLogger(name)
            self._saved_propagate[name] = logger.propagate
            logger.addHandler(self._log_handler)
            logger.propagate = False

    def _restore_logs(self) -> None:
        for name, propagate in getattr(self, "_saved_propagate", {}).items():
            logger = logging.getLogger(name)
            logger.removeHandler(self._log_handler)
            logger.propagate = propagate
        if hasattr(self, "_log_handler"):
            self._log_handler.close()

    def __exit__(self, kind: Optional[type[BaseException]], value: Optional[BaseException],
                 tb: Optional[TracebackType]) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=30)
        if self._backend is not None:
            self._backend.close()
        self._restore_logs()


def fuse_graph(connection: Any, collection_id: str, context: dict) -> Any:
    """The graph a user sends: load the collection, the project UDF through ``apply_neighborhood``."""
    import openeo

    from udf import UDF_PATH

    cube = connection.load_collection(collection_id)
    return cube.apply_neighborhood(
        process=openeo.UDF.from_file(UDF_PATH, context=context),
        size=[{"dimension": "x", "value": 128, "unit": "px"}, {"dimension": "y", "value": 128, "unit": "px"},
              {"dimension": "t", "value": None}],
        overlap=[{"dimension": "x", "value": 8, "unit": "px"}, {"dimension": "y", "value": 8, "unit": "px"}])


def udf_context(weights: Optional[Path] = None) -> dict:
    """The UDF context of the harness: mean and std, linear S1, CPU, the given checkpoint (default: shipped)."""
    context: dict = {"include_uncertainty": True, "s1_units": "linear", "device": "cpu"}
    if weights is not None:
        context["weights"] = str(weights)
    return context


def backend_dl_method(run: LocalBackendRun, weights: Optional[Path] = None) -> Method:
    """The DL model through the backend; predictions are checked to be on the masked cube's labels."""
    context = udf_context(weights)

    def go(masked: xr.DataArray, pixels: np.ndarray) -> Prediction:
        cid = cube_key(masked)
        path = run.work / f"{cid}_fused.nc"
        fuse_graph(run.connection, cid, context).download(str(path), format="netCDF")
        out = read_cube(path)
        for dim in ("t", "y", "x"):
            if not np.array_equal(out[dim].values, masked[dim].values):
                raise ValueError(f"Backend result '{path}' has other {dim} labels than the cube sent "
                                 f"({out[dim].values[:3]}… vs {masked[dim].values[:3]}…)")
        return Prediction(out.sel(bands="NDVI").values, out.sel(bands="NDVI_STD").values,
                          int(masked.sizes["y"] * masked.sizes["x"]))
    return go
