"""The S3 store: boto3 with its normal configuration (profile, region, endpoint, credentials).

boto3, botocore and s3transfer are imported inside functions so that importing this module
costs nothing until a store is actually opened.
"""

from __future__ import annotations

import contextlib
import io
import shutil
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO
from urllib.parse import urlsplit

from localproc.storage import ObjectInfo, replacing
from localproc.storage.errors import StoreError, StoreUnreachable

if TYPE_CHECKING:
    from botocore.exceptions import ClientError

_MB = 1024 * 1024
# Transfers split into 8 MB parts, ten at a time per object: the AWS CLI's defaults, which keep
# a single large object fast without holding more than a few parts in memory.
_PART_SIZE = 8 * _MB
_CONCURRENCY = 10
# Callers run several transfers in parallel, each using up to _CONCURRENCY connections; too small
# a pool makes botocore discard connections and warn.
_POOL_CONNECTIONS = 64
# Reads of a streamed object go through a buffer this big; larger reads bypass it.
_STREAM_BUFFER = 256 * 1024
# A small object whose body breaks off while it is read is fetched again, this many times in all.
_BODY_ATTEMPTS = 3
# Failures without an S3 error code (a read timeout, a body shorter than announced) may pass;
# an S3 error (NoSuchKey, AccessDenied, PreconditionFailed) will not.
_RETRYABLE_BODY_ERRORS = frozenset({"StoreError"})

_WHAT_TO_DO = (
    "Start the endpoint or point localproc at a reachable one with --s3-endpoint-url, serve "
    "buckets from a folder with --s3-root DIR, or check the AWS configuration (AWS_PROFILE, "
    "AWS_REGION, AWS_ENDPOINT_URL_S3, credentials)."
)

# Error codes meaning the credentials themselves are unusable: a problem of this host's
# configuration, like having none, rather than of one bucket or object.
_BAD_CREDENTIALS = frozenset(
    {
        "InvalidAccessKeyId",
        "SignatureDoesNotMatch",
        "ExpiredToken",
        "InvalidToken",
        "TokenRefreshRequired",
    }
)


class S3Store:
    """Objects in S3, or in any S3-compatible endpoint (MinIO, moto, LocalStack).

    `endpoint_url` None leaves the endpoint to boto3, which honours AWS_ENDPOINT_URL_S3 and
    AWS_ENDPOINT_URL; `region` None takes the session's configured region, else us-east-1.
    `retry_attempts` counts the first try; `list_page_size` exists so tests can exercise paging
    without creating thousands of objects.
    """

    def __init__(
        self,
        endpoint_url: str | None = None,
        region: str | None = None,
        *,
        retry_attempts: int = 3,
        list_page_size: int | None = None,
    ) -> None:
        import boto3.session
        from botocore.config import Config
        from botocore.exceptions import ProfileNotFound

        _hand_transfer_buffers_back_to_the_os()

        try:
            session = boto3.session.Session()
        except ProfileNotFound as exc:
            raise StoreUnreachable(f"Cannot use S3: {exc}. {_WHAT_TO_DO}") from exc
        self.region = region or session.region_name or "us-east-1"
        config = Config(
            retries={"mode": "standard", "max_attempts": retry_attempts},
            max_pool_connections=_POOL_CONNECTIONS,
            connect_timeout=10,
            read_timeout=60,
        )
        # boto3 clients are thread-safe (sessions are not), so one client serves all transfers.
        self._client: Any = session.client(
            "s3", endpoint_url=endpoint_url, region_name=self.region, config=config
        )
        self._list_page_size = list_page_size

    @property
    def endpoint_url(self) -> str:
        """The endpoint boto3 resolved, whether from the argument, the environment or AWS."""
        return str(self._client.meta.endpoint_url)

    def describe(self) -> str:
        if _is_aws(self.endpoint_url):
            return f"S3 (AWS, region {self.region})"
        return f"S3 endpoint {self.endpoint_url}"

    def list_objects(self, bucket: str, prefix: str) -> list[ObjectInfo]:
        paging: dict[str, int] = {}
        if self._list_page_size is not None:
            paging["PageSize"] = self._list_page_size
        found: list[ObjectInfo] = []
        with self._translated("list", bucket, None, prefix=prefix):
            pages = self._client.get_paginator("list_objects_v2").paginate(
                Bucket=bucket, Prefix=prefix, PaginationConfig=paging
            )
            # S3 returns each page, and pages one after another, in UTF-8 byte order of keys.
            for page in pages:
                for item in page.get("Contents", []):
                    found.append(
                        ObjectInfo(bucket, item["Key"], int(item["Size"]), _etag(item.get("ETag")))
                    )
        return found

    def head_object(self, bucket: str, key: str) -> ObjectInfo | None:
        from botocore.exceptions import ClientError

        with self._translated("read", bucket, key):
            try:
                response = self._client.head_object(Bucket=bucket, Key=key)
            except ClientError as exc:
                # HEAD responses carry no body, so a missing bucket also shows as a bare 404.
                if _code(exc) in ("404", "NoSuchKey", "NotFound"):
                    return None
                raise
        return ObjectInfo(bucket, key, int(response["ContentLength"]), _etag(response.get("ETag")))

    def download_file(self, obj: ObjectInfo, dest: Path) -> None:
        """Download an object below the part size with one GET, and a larger one through
        s3transfer: ranged parts in parallel.

        A transfer manager costs about 5 ms of CPU to set up (its thread pools), as much as the
        GET of a small object itself: staging thousands of small objects would pay it each time.
        Either way the download is conditional on the listing's ETag (If-Match, or s3transfer's
        conditional ranged GETs), so an object replaced while it downloads fails the download
        instead of producing a mix of two versions.
        """
        if obj.size < _PART_SIZE:
            self._download_whole(obj, dest)
            return
        from boto3.s3.transfer import create_transfer_manager

        subscribers = [] if obj.etag is None else [_known_object(obj)]
        with (
            self._translated("download", obj.bucket, obj.key),
            replacing(dest) as target,
            create_transfer_manager(self._client, _transfer_config()) as manager,
        ):
            manager.download(obj.bucket, obj.key, target, subscribers=subscribers).result()

    def _download_whole(self, obj: ObjectInfo, dest: Path) -> None:
        """One streamed GET into `dest`. botocore retries the request; a body cut short while
        being read (connection reset, read timeout) is fetched again, as s3transfer would."""
        for attempt in range(1, _BODY_ATTEMPTS + 1):
            try:
                with self.open_object(obj) as stream, replacing(dest) as target:
                    shutil.copyfileobj(stream, target, _STREAM_BUFFER)
                return
            except StoreError as err:
                if err.code not in _RETRYABLE_BODY_ERRORS or attempt == _BODY_ATTEMPTS:
                    raise

    @contextmanager
    def open_object(self, obj: ObjectInfo) -> Iterator[BinaryIO]:
        """One GET whose body is read from the connection as the caller reads, never buffered
        whole.

        With the listing's ETag the GET is conditional (If-Match), like `download_file`'s ranged
        GETs: an object replaced since it was listed fails with PreconditionFailed instead of
        delivering another version than the plan showed. Errors while reading the body (the
        connection dropped, a body shorter than its Content-Length) raise StoreError.
        """
        conditions = {} if obj.etag is None else {"IfMatch": f'"{obj.etag}"'}
        with self._translated("read", obj.bucket, obj.key):
            response = self._client.get_object(Bucket=obj.bucket, Key=obj.key, **conditions)
        raw = _TranslatedBody(
            response["Body"], lambda: self._translated("read", obj.bucket, obj.key)
        )
        # Closing the stream closes the HTTP response, which frees the connection even when the
        # caller stops reading early (a pipe reader that went away).
        with io.BufferedReader(raw, buffer_size=_STREAM_BUFFER) as stream:
            yield stream

    def upload_file(
        self, source: Path, bucket: str, key: str, kms_key_id: str | None = None
    ) -> None:
        """Upload through s3transfer (multipart above 8 MB); with `kms_key_id`, as SSE-KMS."""
        # The transfer manager is used directly rather than `client.upload_file`, which would
        # wrap a ClientError into S3UploadFailedError and hide its error code.
        from boto3.s3.transfer import create_transfer_manager

        extra_args: dict[str, str] = {}
        if kms_key_id:
            extra_args = {"ServerSideEncryption": "aws:kms", "SSEKMSKeyId": kms_key_id}
        if source.stat().st_size < _PART_SIZE:
            # One PUT, without a transfer manager's set-up (see download_file). The body is a
            # file, so botocore can rewind it for each retry.
            with self._translated("upload", bucket, key), source.open("rb") as body:
                self._client.put_object(Bucket=bucket, Key=key, Body=body, **extra_args)
            return
        with (
            self._translated("upload", bucket, key),
            create_transfer_manager(self._client, _transfer_config()) as manager,
        ):
            manager.upload(str(source), bucket, key, extra_args=extra_args).result()

    # --- errors -------------------------------------------------------------------------------

    @contextmanager
    def _translated(
        self, action: str, bucket: str, key: str | None, *, prefix: str | None = None
    ) -> Iterator[None]:
        """Turn boto3's exceptions into StoreUnreachable (this host cannot use S3) or StoreError
        (this request failed), each naming the endpoint, the bucket and the key."""
        from botocore import exceptions as boto
        from s3transfer import exceptions as s3x

        # Raised when a ranged GET finds another ETag than the listing's; older s3transfer
        # versions do not have it (nor the check).
        changed = getattr(s3x, "S3DownloadFailedError", _NeverRaised)

        where = _where(bucket, key, prefix)
        unreachable = (
            boto.ConnectionError,  # refused, DNS failure, TLS, proxy, connect timeout
            boto.ConnectionClosedError,
            boto.NoCredentialsError,
            boto.PartialCredentialsError,
            boto.CredentialRetrievalError,
            boto.TokenRetrievalError,
            boto.ProfileNotFound,
        )
        try:
            yield
        except boto.ClientError as exc:
            raise self._client_error(exc, action, where, bucket, key) from exc
        except changed as exc:
            raise StoreError(
                f"PreconditionFailed: {where} changed while it was being downloaded: {exc}",
                code="PreconditionFailed",
                bucket=bucket,
                key=key,
            ) from exc
        except unreachable as exc:
            raise StoreUnreachable(
                f"Cannot {action} {where}: {self.describe()} is not usable from here: {exc}. "
                f"{_WHAT_TO_DO}"
            ) from exc
        except (boto.BotoCoreError, s3x.RetriesExceededError) as exc:
            raise StoreError(
                f"Cannot {action} {where} at {self.describe()}: {exc}", bucket=bucket, key=key
            ) from exc

    def _client_error(
        self, exc: ClientError, action: str, where: str, bucket: str, key: str | None
    ) -> Exception:
        code = _code(exc)
        detail = exc.response.get("Error", {}).get("Message") or str(exc)
        if code in _BAD_CREDENTIALS:
            return StoreUnreachable(
                f"Cannot {action} {where}: {self.describe()} rejected the credentials "
                f"({code}: {detail}). {_WHAT_TO_DO}"
            )
        if code == "NoSuchBucket":
            message = f"NoSuchBucket: bucket {bucket!r} does not exist at {self.describe()}"
        elif code in ("NoSuchKey", "404", "NotFound"):
            code = "NoSuchKey"
            message = f"NoSuchKey: {where} does not exist at {self.describe()}"
        elif code in ("AccessDenied", "403", "Forbidden"):
            code = "AccessDenied"
            message = (
                f"AccessDenied: not allowed to {action} {where} at {self.describe()}; check the "
                "permissions of the credentials in use"
            )
        elif code in ("PreconditionFailed", "412"):
            message = f"PreconditionFailed: {where} changed while it was being downloaded"
        else:
            message = f"{code}: cannot {action} {where} at {self.describe()}: {detail}"
        return StoreError(message, code=code, bucket=bucket, key=key)


class _TranslatedBody(io.RawIOBase):
    """botocore's StreamingBody as a raw stream whose read errors are StoreError/StoreUnreachable
    like every other failure of this store, whatever the caller does with the exception."""

    def __init__(self, body: Any, translated: Callable[[], AbstractContextManager[None]]) -> None:
        super().__init__()
        self._body = body
        self._translated = translated

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        view = memoryview(buffer).cast("B")
        with self._translated():
            # StreamingBody checks the byte count against Content-Length at the end, so a
            # truncated body raises here instead of looking like a shorter object.
            data = self._body.read(len(view))
        view[: len(data)] = data
        return len(data)

    def close(self) -> None:
        if not self.closed:
            self._body.close()
        super().close()


_M_MMAP_THRESHOLD = -3  # glibc's mallopt parameter (malloc.h)


def _hand_transfer_buffers_back_to_the_os() -> None:
    """Transfers read bodies in 256 KiB chunks from many threads. glibc serves such blocks with
    mmap at first, but raises its threshold each time one is freed, after which they come from
    per-thread heaps that keep the memory: moving 512 MiB then held about 120 MiB instead of 60.
    A fixed threshold keeps every block above 128 KiB on mmap, returned to the system when freed.
    Other C libraries (musl, macOS) manage this themselves: nothing to do there."""
    import ctypes

    with contextlib.suppress(OSError, AttributeError):  # no mallopt: not glibc
        ctypes.CDLL(None).mallopt(_M_MMAP_THRESHOLD, 128 * 1024)


class _NeverRaised(Exception):
    """Stands in for an exception class the installed library does not have."""


def _transfer_config() -> Any:
    from boto3.s3.transfer import TransferConfig

    return TransferConfig(
        multipart_threshold=_PART_SIZE,
        multipart_chunksize=_PART_SIZE,
        max_concurrency=_CONCURRENCY,
        # The CRT client, when installed, would ignore the size and ETag handed to downloads.
        preferred_transfer_client="classic",
    )


def _known_object(obj: ObjectInfo) -> Any:
    from s3transfer.subscribers import BaseSubscriber

    class KnownObject(BaseSubscriber):  # type: ignore[misc]
        def on_queued(self, future: Any, **kwargs: Any) -> None:
            future.meta.provide_transfer_size(obj.size)
            future.meta.provide_object_etag(f'"{obj.etag}"')

    return KnownObject()


def _code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", "Unknown"))


def _etag(raw: str | None) -> str | None:
    return raw.strip('"') if raw else None


def _where(bucket: str, key: str | None, prefix: str | None) -> str:
    if key is not None:
        return f"s3://{bucket}/{key}"
    return f"s3://{bucket}/{prefix or ''}"


def _is_aws(endpoint_url: str) -> bool:
    host = (urlsplit(endpoint_url).hostname or "").lower()
    return host.endswith((".amazonaws.com", ".amazonaws.com.cn"))
