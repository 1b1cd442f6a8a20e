"""How the HTTP front door answers a user error: the one mapping of LocalprocError to the
service's error responses (HTTP status, `__type`, `message`)."""

from __future__ import annotations

from typing import Any

from localproc.errors import CannotRunHere, DamagedRecord, LocalprocError, ParameterValidationError
from localproc.service.detach import DetachedRunRejected

SERVICE_CODES = frozenset(
    {"ValidationException", "ResourceInUse", "ResourceNotFound", "ResourceLimitExceeded"}
)


class ApiError(Exception):
    """An error response: HTTP status and the body botocore parses (`__type`, `message`)."""

    def __init__(self, code: str, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.status = status

    def body(self) -> dict[str, Any]:
        return {"__type": self.code, "message": self.message}


def api_error(err: LocalprocError) -> ApiError:
    """A library error as the service sends it."""
    if isinstance(err, DetachedRunRejected):
        return _rejected_run(err)
    if isinstance(err, ParameterValidationError):
        # botocore checks these before sending; a raw request reaches the service, which says
        # ValidationException.
        return ApiError("ValidationException", err.message)
    if isinstance(err, DamagedRecord):
        # The library's message tells a CLI user what to type and where the file is; an API
        # client gets the API's words.
        return ApiError(
            err.code,
            f"The record of processing job {err.name} is damaged: {err.problem}. It cannot be "
            "described or stopped; DeleteProcessingJob removes it and frees the name.",
        )
    return ApiError(err.code, err.message)


def _rejected_run(err: DetachedRunRejected) -> ApiError:
    """The background run refused the job before recording it. Its own code is kept when it is
    one of the service's (e.g. ResourceInUse when two requests race for one name); anything the
    host lacks (no Docker engine, image missing and not pullable, S3 unreachable, a feature this
    version cannot run) is `CannotRunHere`, localproc's own code for it."""
    code = "ValidationException" if err.code == "ParamValidationError" else err.code
    return ApiError(code if code in SERVICE_CODES else CannotRunHere.code, err.message)
