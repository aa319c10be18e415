"""openeo-driver ``BatchJobs`` service: jobs persisted by :class:`JobStore`, run on a thread pool."""

import functools
import logging
import shutil
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from typing import Any

from openeo_driver.backend import BatchJobMetadata, BatchJobs
from openeo_driver.errors import JobNotFinishedException, JobNotFoundException, OpenEOApiException
from openeo_driver.users import User

from local_backend.api.input_checks import check_job_metadata
from local_backend.errors import ExecutionCanceled, InputInvalid
from local_backend.executor import Runtime, check_graph, evaluate_graph
from local_backend.jobs.log import set_job_log_sink
from local_backend.jobs.store import JobStore, now
from local_backend.limits import Guard
from local_backend.processes.save import MEDIA_TYPES

_log = logging.getLogger(__name__)

LOG_LEVELS = ("debug", "info", "warning", "error")
"""openEO log levels, lowest first."""


class _JobLogHandler(logging.Handler):
    """Copies a job's log records into its ``logs.jsonl``."""

    def __init__(self, store: JobStore, job_id: str) -> None:
        super().__init__(level=logging.INFO)
        self.store, self.job_id = store, job_id

    def emit(self, record: logging.LogRecord) -> None:
        level = record.levelname.lower()
        self.store.append_log(self.job_id, level if level in LOG_LEVELS else "error", record.getMessage())


_FINAL_LINES = {"finished": "Job finished in {seconds:.1f} s.", "error": "Job ended with an error after {seconds:.1f} s.",
                "canceled": "Job canceled after {seconds:.1f} s."}
"""The last line of a job's log, by final status."""


def _offset(offset: str) -> int:
    try:
        return int(offset)
    except ValueError:
        raise InputInvalid(message=f"Log 'offset' must be the id of a log entry (an integer), got {offset[:40]!r}.") \
            from None


def _parse_time(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value) if value else None


class LocalBatchJobs(BatchJobs):
    """Create, start, list, delete batch jobs; results and logs on disk."""

    def __init__(self, runtime: Runtime, store: JobStore, max_parallel: int = 1) -> None:
        super().__init__()
        self.runtime, self.store = runtime, store
        self._pool = ThreadPoolExecutor(max_workers=max_parallel, thread_name_prefix="s1ndvi-job")
        self._guards: dict[str, Guard] = {}
        self._guards_lock = threading.Lock()
        set_job_log_sink(store.append_log)

    def _record(self, job_id: str, user_id: str) -> dict[str, Any]:
        record = self.store.get(job_id)
        if record is None or record["user_id"] != user_id:
            raise JobNotFoundException(job_id=job_id)
        return record

    @staticmethod
    def _metadata(record: dict[str, Any]) -> BatchJobMetadata:
        return BatchJobMetadata(
            id=record["id"], status=record["status"], created=_parse_time(record["created"]),
            updated=_parse_time(record["updated"]), started=_parse_time(record["started"]),
            finished=_parse_time(record["finished"]), title=record["title"], description=record["description"],
            process=record["process"], job_options=record["job_options"], progress=record.get("progress"))

    def create_job(self, *, user: User, process: dict, api_version: str, metadata: dict,
                   job_options: dict | None = None) -> BatchJobMetadata:
        """Store a new job in status ``created``."""
        if not isinstance(process, dict) or not isinstance(process.get("process_graph"), dict):
            raise OpenEOApiException(message="The job needs a 'process' with a 'process_graph' object.",
                                     code="ProcessGraphMissing", status_code=400)
        check_job_metadata(metadata)
        resolver = self.runtime.resolver
        expand = None if resolver is None else functools.partial(resolver.expand, user_id=user.user_id)
        check_graph(process["process_graph"], expand)  # what POST /result refuses is refused here, not when it runs
        stamp = now()
        record = {"id": f"j-{uuid.uuid4().hex[:16]}", "user_id": user.user_id, "status": "created",
                  "title": metadata.get("title"), "description": metadata.get("description"), "process": process,
                  "job_options": job_options, "created": stamp, "updated": stamp}
        self.store.insert(record)
        self.store.append_log(record["id"], "info", "Job created.")
        return self._metadata(self.store.get(record["id"]) or record)

    def get_job_info(self, job_id: str, user_id: str) -> BatchJobMetadata:
        """Metadata of one of the user's jobs."""
        return self._metadata(self._record(job_id, user_id))

    def get_user_jobs(self, user_id: str, limit: int | None = None,
                      request_parameters: dict | None = None) -> list[BatchJobMetadata]:
        """The user's jobs, newest first."""
        jobs = [self._metadata(r) for r in self.store.for_user(user_id)]
        return jobs[:limit] if limit else jobs

    def start_job(self, job_id: str, user: User) -> None:
        """Queue a job (a finished or failed job is run again)."""
        record = self._record(job_id, user.user_id)
        if record["status"] in ("queued", "running"):
            return
        shutil.rmtree(self.store.results_dir(job_id), ignore_errors=True)
        self.store.update(job_id, status="queued", error=None, started=None, finished=None, progress=None)
        self.store.append_log(job_id, "info", "Job queued.")
        self._pool.submit(self._run, job_id)

    def _run(self, job_id: str) -> None:
        record = self.store.get(job_id)
        if record is None or record["status"] != "queued":
            return
        logger = logging.getLogger(f"{__name__}.job.{job_id}")
        handler = _JobLogHandler(self.store, job_id)
        logger.addHandler(handler)
        guard = self.runtime.limits.guard(sync=False)
        with self._guards_lock:
            self._guards[job_id] = guard
        self.store.update(job_id, status="running", started=now())
        started = time.monotonic()
        logger.info("Job started (time limit %s).", f"{guard.timeout_s:g} s" if guard.timeout_s else "none")
        try:
            final = self._evaluate(job_id, record, logger, guard)
        finally:
            logger.removeHandler(handler)
            with self._guards_lock:
                self._guards.pop(job_id, None)
        current = self.store.get(job_id)
        if current is not None and current["status"] == "running":
            self.store.update(job_id, status=final, finished=now())
            self.store.append_log(job_id, "error" if final == "error" else "info",
                                  _FINAL_LINES[final].format(seconds=time.monotonic() - started))

    def _evaluate(self, job_id: str, record: dict[str, Any], logger: logging.Logger, guard: Guard) -> str:
        """Run the job's graph; returns the final status (the failure is in the job log and record)."""
        try:
            execution = self.runtime.execution(
                self.store.results_dir(job_id), sync=False, log=logger, guard=guard, job_id=job_id,
                tile_dir=self.store.tiles_dir(job_id),
                progress=lambda percent: self.store.update(job_id, progress=round(percent, 1)),
                user_id=record["user_id"])
            evaluate_graph(record["process"]["process_graph"], execution)
            if not execution.outputs:
                raise OpenEOApiException(message="The job wrote no result (no raster cube to save).",
                                         code="ProcessGraphInvalid", status_code=400)
            shutil.rmtree(self.store.tiles_dir(job_id), ignore_errors=True)
            logger.info("Job finished: %s", [p.name for p in execution.outputs])
            return "finished"
        except ExecutionCanceled as exc:
            logger.info("Job stopped: %s", exc.message)
            return "canceled"
        except OpenEOApiException as exc:
            logger.error("Job failed: %s: %s", exc.code, exc.message)
            self.store.update(job_id, error=f"{exc.code}: {exc.message}")
        except Exception as exc:  # noqa: BLE001 - a job failure is recorded, the server keeps serving
            _log.exception("Job %s failed", job_id)
            logger.error("Job failed: Internal: %s: %s", type(exc).__name__, exc)
        return "error"

    def get_result_assets(self, job_id: str, user_id: str) -> dict[str, dict]:
        """Result files of a finished job, as openeo-driver assets (served from ``output_dir``)."""
        record = self._record(job_id, user_id)
        if record["status"] != "finished":
            raise JobNotFinishedException(job_id)
        folder = self.store.results_dir(job_id)
        assets = {}
        for path in sorted(folder.iterdir()) if folder.exists() else []:
            media = MEDIA_TYPES["netCDF" if path.suffix == ".nc" else "GTiff"]
            assets[path.name] = {"output_dir": str(folder), "type": media, "roles": ["data"],
                                 "file:size": path.stat().st_size, "title": path.name}
        return assets

    def get_results(self, job_id: str, user_id: str) -> dict[str, dict]:
        """Deprecated openeo-driver name of :meth:`get_result_assets`."""
        return self.get_result_assets(job_id, user_id)

    def get_log_entries(self, job_id: str, *, user_id: str, offset: str | None = None, limit: int | None = None,
                        level: str = "debug") -> list[dict]:
        """Log entries of a job (after ``offset`` when given, at most ``limit``)."""
        self._record(job_id, user_id)
        floor = LOG_LEVELS.index(level) if level in LOG_LEVELS else 0
        entries = [e for e in self.store.logs(job_id) if LOG_LEVELS.index(e["level"]) >= floor]
        if offset is not None:
            after = _offset(offset)
            entries = [e for e in entries if int(e["id"]) > after]
        return entries[:limit] if limit else entries

    def cancel_job(self, job_id: str, user_id: str) -> None:
        """Mark a queued or running job canceled (a running evaluation finishes, its result is discarded)."""
        record = self._record(job_id, user_id)
        if record["status"] in ("queued", "running"):
            self.store.update(job_id, status="canceled", finished=now())
            self.store.append_log(job_id, "warning", "Job canceled by the user.")
            with self._guards_lock:
                guard = self._guards.get(job_id)
            if guard is not None:
                guard.cancel("the job was canceled by the user")

    def delete_job(self, job_id: str, user_id: str) -> None:
        """Cancel a job and remove its record, logs and results."""
        self._record(job_id, user_id)
        self.cancel_job(job_id, user_id)
        self.store.delete(job_id)

    def shutdown(self, wait_s: float = 10.0) -> None:
        """Stop accepting jobs; queued and running ones are marked ``error`` with the documented message.

        Running evaluations are told to stop and get ``wait_s`` seconds to do so (a UDF running in the server
        process itself, ``--workers 0``, cannot be interrupted).
        """
        with self._guards_lock:
            guards = list(self._guards.values())
        for guard in guards:
            guard.cancel("the server is shutting down", shutting_down=True)
        self.store.recover()
        self._pool.shutdown(wait=False, cancel_futures=True)
        deadline = time.monotonic() + wait_s
        while self._guards and time.monotonic() < deadline:
            time.sleep(0.1)
        set_job_log_sink(None)
