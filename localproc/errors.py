"""Errors a user can cause or meet, each carrying the AWS error code and the exit status of `run`.

Library code raises these; only the command boundary (cli, server) turns them into output and
exit codes.
"""

from __future__ import annotations

from enum import IntEnum


class ExitStatus(IntEnum):
    """Exit codes of `localproc run` (CONTRACT.md)."""

    COMPLETED = 0
    FAILED = 1
    REJECTED = 2  # nothing started: validation error, name in use, usage
    STOPPED = 3
    CANNOT_RUN_HERE = 4  # no Docker engine, S3 unreachable, image missing and not pullable


class LocalprocError(Exception):
    """Base of every error meant for the user. `code` is the AWS error code where one applies."""

    code: str = "LocalprocError"
    exit_status: ExitStatus = ExitStatus.REJECTED

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def __str__(self) -> str:
        return self.message


class PayloadError(LocalprocError):
    """The payload file cannot be read or is not a JSON object."""

    code = "InvalidPayload"


class ValidationException(LocalprocError):
    """The request breaks the service model or a documented service rule.

    `problems` holds each problem in the service's own wording; the message joins them the way the
    service does: `2 validation errors detected: Value ... ; Value ...`.
    """

    code = "ValidationException"

    def __init__(self, problems: list[str]) -> None:
        self.problems = list(problems)
        count = len(self.problems)
        noun = "error" if count == 1 else "errors"
        super().__init__(f"{count} validation {noun} detected: " + "; ".join(self.problems))

    @classmethod
    def single(cls, message: str) -> ValidationException:
        """A service rule broken by an operation (not a payload field): the message as is."""
        error = cls([message])
        error.message = message
        return error


class ParameterValidationError(LocalprocError):
    """Client-side parameter checks botocore makes before sending (unknown member, wrong type)."""

    code = "ParamValidationError"

    def __init__(self, problems: list[str]) -> None:
        self.problems = list(problems)
        super().__init__("Parameter validation failed:\n" + "\n".join(self.problems))


class ResourceInUse(LocalprocError):
    code = "ResourceInUse"


class ResourceNotFound(LocalprocError):
    code = "ResourceNotFound"


class ResourceLimitExceeded(LocalprocError):
    code = "ResourceLimitExceeded"


class DamagedRecord(LocalprocError):
    """A job's record cannot be read (truncated, not JSON, not a record): only that job is
    affected. `path` is the record file."""

    code = "DamagedRecord"

    def __init__(self, name: str, path: object, problem: str) -> None:
        super().__init__(
            f"The record of processing job {name} ({path}) is damaged: {problem}. It cannot be "
            f"described or stopped; delete the job (`localproc delete {name}`, or "
            "DeleteProcessingJob) to remove it and free the name."
        )
        self.name = name
        self.path = path
        self.problem = problem


class CannotRunHere(LocalprocError):
    """Something this host lacks: a Docker engine, a reachable S3 endpoint, the image."""

    code = "CannotRunHere"
    exit_status = ExitStatus.CANNOT_RUN_HERE


class JobFailure(Exception):
    """Ends a started job as Failed. `reason` is the FailureReason, e.g. `ClientError: ...`.

    Not a LocalprocError: a failed job is an outcome recorded on the job, not a rejected command.
    """

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def client_error(message: str) -> JobFailure:
    return JobFailure(f"ClientError: {message}")


def algorithm_error(message: str) -> JobFailure:
    return JobFailure(f"AlgorithmError: {message}")


def internal_error(message: str) -> JobFailure:
    return JobFailure(f"InternalServerError: {message}")
