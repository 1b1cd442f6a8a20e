"""Object stores behind one small interface: S3 through boto3, or a local folder (`--s3-root`).

This package is the only place that imports boto3, botocore or s3transfer, and it imports them
lazily (in `S3Store`), so `import localproc.storage` stays instant and `localproc --help` never
pays for boto3.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO, Protocol, runtime_checkable

from localproc.s3uri import parse_s3_uri
from localproc.storage.errors import StoreError, StoreUnreachable

if TYPE_CHECKING:
    from localproc.storage.folder import FolderStore
    from localproc.storage.s3 import S3Store

__all__ = [
    "FolderStore",
    "ObjectInfo",
    "ObjectStore",
    "S3Store",
    "StoreError",
    "StoreUnreachable",
    "open_store",
    "parse_s3_uri",
]


@dataclass(frozen=True)
class ObjectInfo:
    """One stored object as a listing or a HEAD reports it.

    `etag` is an opaque fingerprint that changes when the content does: S3's ETag without its
    surrounding quotes, or the folder store's `size-mtime_ns`. None when the store gave none.
    """

    bucket: str
    key: str
    size: int
    etag: str | None


@runtime_checkable
class ObjectStore(Protocol):
    """What the rest of localproc needs from an object store, and nothing more."""

    def describe(self) -> str:
        """Where objects come from, for messages and `plan`: `folder /data`,
        `S3 endpoint http://127.0.0.1:5000`, `S3 (AWS, region us-east-1)`."""
        ...

    def list_objects(self, bucket: str, prefix: str) -> list[ObjectInfo]:
        """Every object whose key starts with `prefix`, in S3 order (keys sorted by their UTF-8
        bytes). Keys ending in `/` are included; callers that stage files skip them."""
        ...

    def head_object(self, bucket: str, key: str) -> ObjectInfo | None:
        """The object, or None when there is no object under that key."""
        ...

    def download_file(self, obj: ObjectInfo, dest: Path) -> None:
        """Stream the object to `dest` (parents created). The content goes to a temporary file in
        dest's folder that is renamed onto `dest` only when complete, so no half-written file
        remains when the download fails."""
        ...

    def upload_file(
        self, source: Path, bucket: str, key: str, kms_key_id: str | None = None
    ) -> None:
        """Store the file at `source` as `s3://bucket/key`, encrypted with `kms_key_id` when
        given (SSE-KMS)."""
        ...

    def open_object(self, obj: ObjectInfo) -> AbstractContextManager[BinaryIO]:
        """The object's content as a readable stream, for `with store.open_object(obj) as f:`.

        The content is streamed as it is read (never held whole in memory); the stream may not be
        seekable. A missing object or bucket raises StoreError when the block is entered; reads
        that fail part-way raise StoreError too (StoreUnreachable when the store cannot be used
        at all). Where the store can tell, an object whose content no longer matches `obj.etag`
        fails with StoreError code `PreconditionFailed` instead of mixing two versions.
        """
        ...


def open_store(s3_root: Path | None, endpoint_url: str | None, region: str | None) -> ObjectStore:
    """The store the settings ask for: the folder store when `s3_root` is given (no AWS account
    needed; endpoint and region are then irrelevant), otherwise S3 through boto3's configuration."""
    if s3_root is not None:
        from localproc.storage.folder import FolderStore

        return FolderStore(s3_root)
    from localproc.storage.s3 import S3Store

    return S3Store(endpoint_url, region)


def __getattr__(name: str) -> object:
    # The store classes are exported lazily so that importing this package never imports boto3.
    if name == "FolderStore":
        from localproc.storage.folder import FolderStore

        return FolderStore
    if name == "S3Store":
        from localproc.storage.s3 import S3Store

        return S3Store
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


# --- writing files safely -----------------------------------------------------------------------

# Temporary files carry this prefix so that the folder store's listing can skip half-written
# uploads, and so that leftovers are recognisable.
TEMP_PREFIX = ".localproc-tmp-"


@contextmanager
def replacing(dest: Path) -> Iterator[BinaryIO]:
    """Yield a binary file that becomes `dest` when the block ends without an error.

    The file is a sibling of `dest` (same filesystem, so the final rename is atomic) and is
    removed if anything fails, including KeyboardInterrupt. It is created with mode 0o666 minus
    the umask, like a normal file, because containers may read it as another user.
    """
    dest.parent.mkdir(parents=True, exist_ok=True)
    temp = dest.parent / f"{TEMP_PREFIX}{secrets.token_hex(8)}"
    fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
    try:
        with os.fdopen(fd, "wb") as stream:
            yield stream
        os.replace(temp, dest)
    except BaseException:
        temp.unlink(missing_ok=True)
        raise
