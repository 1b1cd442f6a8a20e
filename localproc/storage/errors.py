"""Errors of the object stores.

`StoreUnreachable` is a property of this host (no endpoint, no credentials): `run` exits with
"could not run here". `StoreError` is about one bucket or object (missing, denied, refused); the
caller decides whether it fails a job (`ClientError: ...`) or rejects a command.
"""

from __future__ import annotations

from localproc.errors import CannotRunHere


class StoreUnreachable(CannotRunHere):
    """The object store cannot be used from here at all: connection refused, DNS failure, no
    credentials. The message names the endpoint and what to do about it."""

    code = "StoreUnreachable"


class StoreError(Exception):
    """One request to the store failed: NoSuchBucket, NoSuchKey, AccessDenied, or any other error
    the store reported. `code` is the S3 error code where there is one."""

    def __init__(
        self,
        message: str,
        *,
        code: str = "StoreError",
        bucket: str | None = None,
        key: str | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.code = code
        self.bucket = bucket
        self.key = key

    def __str__(self) -> str:
        return self.message
