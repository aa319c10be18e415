"""Errors of the local backend: one class per failure, each an openEO API error (``code``, HTTP status, message).

The openEO API error codes follow https://api.openeo.org/#section/API-Principles/Error-Handling; the classes
subclass :class:`openeo_driver.errors.OpenEOApiException` so that openeo-driver renders them as
``{"code", "message", "id"}`` JSON with the right status. Failures that are not about a request (a bad users file,
a refused bind address) are plain Python exceptions.
"""

try:
    from openeo_driver.errors import OpenEOApiException
except ImportError:  # backend extra not installed: only `s1ndvi users` works, and it raises no API error

    class OpenEOApiException(Exception):  # type: ignore[no-redef]
        """Stand-in base so that this module imports without openeo-driver (``pip install -e .[backend]``)."""

        status_code, code = 500, "Internal"

        def __init__(self, message: str | None = None, **kwargs: object) -> None:
            super().__init__(message)
            self.message = message

__all__ = [
    "BackendDependencyMissing",
    "ClientDisconnected",
    "CollectionNotFound",
    "CollectionReadError",
    "CredentialsMalformed",
    "CubeTooLarge",
    "ExecutionCanceled",
    "InsecureBind",
    "InputInvalid",
    "JobFailed",
    "JobMetadataInvalid",
    "MalformedJson",
    "MethodNotAllowed",
    "ProcessParameterInvalid",
    "ProcessUnsupported",
    "ProcessingTimeout",
    "ResultTooLarge",
    "SarBackscatterUnsupported",
    "TemporalExtentInvalid",
    "TooManyRequests",
    "UdfError",
    "UdfRuntimeError",
    "USER_ERRORS",
    "UsersFileError",
    "WorkersUnavailable",
]


class BackendDependencyMissing(ImportError):
    """An optional dependency of the backend (openeo-driver, processes-dask, ...) is not installed."""


class UsersFileError(ValueError):
    """The users file is missing, unreadable or malformed, or a user entry (name, password) was refused."""


class InsecureBind(ValueError):
    """The server was asked to listen on a non-loopback address without configured users."""


class CollectionReadError(ValueError):
    """A file under ``--data`` cannot be read as a collection."""


class MalformedJson(OpenEOApiException):
    """The request body is not valid JSON."""

    status_code = 400
    code = "BadRequest"


class CollectionNotFound(OpenEOApiException):
    """``load_collection`` asked for an id that is not served."""

    status_code = 404
    code = "CollectionNotFound"

    def __init__(self, collection_id: str, available: list[str]) -> None:
        super().__init__(message=f"Collection '{collection_id}' does not exist; available collections: {available}.")


class ProcessUnsupported(OpenEOApiException):
    """A process graph uses a process id this backend does not implement."""

    status_code = 400
    code = "ProcessUnsupported"

    def __init__(self, process_id: str, namespace: str | None = None) -> None:
        where = f"namespace '{namespace}'" if namespace else "this backend (see GET /processes)"
        super().__init__(message=f"Process with identifier '{process_id}' is not available in {where}.")


class ProcessParameterInvalid(OpenEOApiException):
    """A process argument has a value the process cannot use."""

    status_code = 400
    code = "ProcessParameterInvalid"

    def __init__(self, process: str, parameter: str, reason: str) -> None:
        super().__init__(
            message=f"The value passed for parameter '{parameter}' in process '{process}' is invalid: {reason}"
        )


class TemporalExtentInvalid(OpenEOApiException):
    """A date outside the range a cube's time axis can hold, or an interval that ends before it starts."""

    status_code = 400
    code = "TemporalExtentInvalid"

    def __init__(self, message: str) -> None:
        super().__init__(message=message)


class SarBackscatterUnsupported(ProcessParameterInvalid):
    """``sar_backscatter`` asked for a coefficient or correction the local data cannot provide."""


class UdfError(OpenEOApiException):
    """The user's UDF raised an exception; its message is passed on."""

    status_code = 400
    code = "UdfError"

    def __init__(self, reason: str) -> None:
        super().__init__(message=f"The UDF failed: {reason}")


class ResultTooLarge(OpenEOApiException):
    """A synchronous request would produce more data than the configured limit."""

    status_code = 413
    code = "ProcessGraphComplexity"

    def __init__(self, nbytes: int, limit: int) -> None:
        super().__init__(
            message=(
                f"The requested data ({nbytes / 2**20:.1f} MiB) exceeds the limit for synchronous processing "
                f"({limit / 2**20:.1f} MiB). Please use a batch job instead (e.g. `cube.execute_batch(...)` or "
                f"`connection.create_job(...)`), or reduce the spatial/temporal extent."
            )
        )


class UdfRuntimeError(RuntimeError):
    """A UDF raised inside a worker; carries the exception's type and message as plain text (always picklable)."""


class InputInvalid(OpenEOApiException):
    """A request field has a type or value the API does not allow (names the field and what was expected)."""

    status_code = 400
    code = "BadRequest"


class JobMetadataInvalid(InputInvalid):
    """A batch job's ``title``, ``description``, ``plan`` or ``budget`` has the wrong JSON type."""

    def __init__(self, field: str, value: object, expected: str) -> None:
        super().__init__(message=f"Job field '{field}' must be {expected}, got {type(value).__name__} {value!r:.80}.")


class JobFailed(OpenEOApiException):
    """Results of a batch job in status ``error`` were requested (API: 424 with the job's last error)."""

    status_code = 424

    def __init__(self, code: str, message: str, log_id: str) -> None:
        super().__init__(message=message, code=code, id=log_id)


class MethodNotAllowed(OpenEOApiException):
    """The path exists but not with this HTTP method (405; the response lists the allowed ones in ``Allow``)."""

    status_code = 405
    code = "MethodNotAllowed"

    def __init__(self, method: str, path: str, allowed: list[str]) -> None:
        super().__init__(message=f"Method {method} is not allowed on {path}; allowed: {', '.join(allowed)}.")


class CubeTooLarge(OpenEOApiException):
    """A process would produce a cube larger than the request's (or batch job's) limit."""

    status_code = 413
    code = "ProcessGraphComplexity"

    def __init__(self, process_id: str, nbytes: int, limit: int, sync: bool, shape: object = None) -> None:
        where = ("for synchronous processing (--max-sync-mb); use a batch job or reduce the extent" if sync
                 else "for a batch job (--max-batch-mb); reduce the extent or the resolution")
        super().__init__(message=f"The output of '{process_id}' ({nbytes / 2**20:.1f} MiB, {shape}) exceeds the limit "
                                 f"of {limit / 2**20:.1f} MiB {where}.")


class ProcessingTimeout(OpenEOApiException):
    """A request, batch job or UDF tile ran past its time limit."""

    status_code = 408
    code = "RequestTimeout"


class ExecutionCanceled(OpenEOApiException):
    """The evaluation was stopped on purpose (job canceled, server shutting down)."""

    status_code = 409
    code = "JobCanceled"


class ClientDisconnected(OpenEOApiException):
    """The HTTP client of a synchronous request closed its connection; nobody waits for the result."""

    status_code = 499
    code = "ClientDisconnected"


class WorkersUnavailable(OpenEOApiException):
    """No dask worker is available to run UDF tiles."""

    status_code = 503
    code = "WorkersUnavailable"


class CredentialsMalformed(OpenEOApiException):
    """An ``Authorization: Basic`` header that is not strict base64 of ``user:password`` with a valid user name."""

    status_code = 401
    code = "AuthenticationRequired"

    def __init__(self, message: str) -> None:
        super().__init__(message=message)


class TooManyRequests(OpenEOApiException):
    """Too many failed logins for a user or from an address; ``retry_after`` says when to try again."""

    status_code = 429
    code = "TooManyRequests"

    def __init__(self, message: str, retry_after: int) -> None:
        super().__init__(message=message)
        self.retry_after = retry_after


USER_ERRORS: tuple[type[Exception], ...] = (BackendDependencyMissing, UsersFileError, InsecureBind, CollectionReadError)
"""Errors of the backend's commands caused by the user's input or setup: ``s1ndvi`` prints them on one line."""
