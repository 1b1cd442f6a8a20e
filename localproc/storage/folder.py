"""The folder store: `s3://BUCKET/KEY` served from `ROOT/BUCKET/KEY`, no AWS account needed.

It behaves like S3 where a job can tell: listings are in S3 order and match key prefixes as
strings (`data/part` matches `data/part-1` and `data/partition/x`), a missing bucket folder is
NoSuchBucket, and uploads appear whole or not at all. Nothing outside ROOT is ever read or
written: symlinks are followed only when they point inside ROOT, and keys that cannot be a path
below their bucket folder (`..`, empty segments) are refused.
"""

from __future__ import annotations

import os
import shutil
import stat
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from localproc.storage import TEMP_PREFIX, ObjectInfo, replacing
from localproc.storage.errors import StoreError

_COPY_CHUNK = 1 << 20


class FolderStore:
    """Objects stored as files under `root`; the first level of folders are the buckets."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        # Containment checks compare real paths, so symlinks cannot lead outside the root.
        self._real_root = self.root.resolve()

    def describe(self) -> str:
        return f"folder {self.root}"

    def list_objects(self, bucket: str, prefix: str) -> list[ObjectInfo]:
        bucket_dir = self._bucket_dir(bucket)
        # Start the walk at the deepest folder the prefix names; the rest of the prefix then
        # filters names as a string, the way S3 prefixes work.
        folder_part, _, _ = prefix.rpartition("/")
        start = bucket_dir
        if folder_part:
            segments = _segments(folder_part)
            if segments is None:
                return []  # e.g. `a//b`: no file can have such a key
            start = bucket_dir.joinpath(*segments)
        if not self._is_inside_root(start) or not start.is_dir():
            return []
        found = _Walk(self._real_root, bucket, prefix).run(start, folder_part)
        # Python orders str by code point, which is exactly the UTF-8 byte order S3 uses.
        return sorted(found, key=lambda info: info.key)

    def head_object(self, bucket: str, key: str) -> ObjectInfo | None:
        path = self._object_path(bucket, key)
        if path is None:
            return None
        try:
            st = path.stat()
        except (FileNotFoundError, NotADirectoryError):
            return None
        except PermissionError as exc:
            raise _access_denied(bucket, key, exc) from exc
        if not stat.S_ISREG(st.st_mode):
            return None
        return _info(bucket, key, st)

    def download_file(self, obj: ObjectInfo, dest: Path) -> None:
        path = self._object_path(obj.bucket, obj.key)
        source = _open_regular(path, obj) if path is not None else None
        if source is None:
            raise _no_such_key(obj.bucket, obj.key, self.root)
        with source, replacing(dest) as target:
            shutil.copyfileobj(source, target, _COPY_CHUNK)

    @contextmanager
    def open_object(self, obj: ObjectInfo) -> Iterator[BinaryIO]:
        """The object's file opened for reading; reads go straight to the file, so nothing is
        held in memory beyond the caller's own buffers.

        When `obj` carries an ETag, the file must still have it (same size and modification
        time), as S3 refuses a conditional GET of a replaced object: a job streams the version
        that was listed, or fails, never a mix.
        """
        path = self._object_path(obj.bucket, obj.key)
        source = _open_regular(path, obj) if path is not None else None
        if source is None:
            raise _no_such_key(obj.bucket, obj.key, self.root)
        with source:
            if obj.etag is not None:
                current = _info(obj.bucket, obj.key, os.fstat(source.fileno())).etag
                if current != obj.etag:
                    raise StoreError(
                        f"PreconditionFailed: s3://{obj.bucket}/{obj.key} in folder {self.root} "
                        "changed after it was listed",
                        code="PreconditionFailed",
                        bucket=obj.bucket,
                        key=obj.key,
                    )
            yield source

    def upload_file(
        self, source: Path, bucket: str, key: str, kms_key_id: str | None = None
    ) -> None:
        """Copy `source` to ROOT/BUCKET/KEY, creating the folders below the bucket folder.

        The bucket folder itself must exist, as an S3 bucket must. `kms_key_id` is accepted for
        interface compatibility and ignored: a folder has no encryption to record it in.
        """
        bucket_dir = self._bucket_dir(bucket)
        segments = _segments(key)
        if segments is None:
            raise StoreError(
                f"InvalidKey: cannot store s3://{bucket}/{key} in folder {self.root}: the key "
                "must be a relative path below the bucket folder (no empty, '.' or '..' "
                "segments, no leading or trailing '/')",
                code="InvalidKey",
                bucket=bucket,
                key=key,
            )
        dest = bucket_dir.joinpath(*segments)
        # A symlinked folder on the way could point anywhere; refuse rather than write outside.
        if not self._is_inside_root(dest.parent):
            raise StoreError(
                f"InvalidKey: s3://{bucket}/{key} would be written outside folder {self.root} "
                "through a symbolic link",
                code="InvalidKey",
                bucket=bucket,
                key=key,
            )
        with open(source, "rb") as src:
            try:
                with replacing(dest) as target:
                    shutil.copyfileobj(src, target, _COPY_CHUNK)
            except (IsADirectoryError, NotADirectoryError, FileExistsError) as exc:
                # S3 lets `a` and `a/b` coexist; a folder cannot hold both a file and a folder
                # under one name.
                raise StoreError(
                    f"InvalidKey: cannot store s3://{bucket}/{key} in folder {self.root}: a file "
                    f"and a folder would share a path ({exc})",
                    code="InvalidKey",
                    bucket=bucket,
                    key=key,
                ) from exc

    # --- paths --------------------------------------------------------------------------------

    def _bucket_dir(self, bucket: str) -> Path:
        if not bucket or "/" in bucket or bucket in (".", "..") or "\0" in bucket:
            raise StoreError(
                f"InvalidBucketName: {bucket!r} cannot be a bucket folder in {self.root}",
                code="InvalidBucketName",
                bucket=bucket,
            )
        bucket_dir = self.root / bucket
        if not bucket_dir.is_dir() or not self._is_inside_root(bucket_dir):
            raise StoreError(
                f"NoSuchBucket: bucket {bucket!r} does not exist: there is no folder "
                f"{bucket_dir} (the folder store serves s3://BUCKET/KEY from "
                f"{self.root}/BUCKET/KEY)",
                code="NoSuchBucket",
                bucket=bucket,
            )
        return bucket_dir

    def _object_path(self, bucket: str, key: str) -> Path | None:
        """The file that holds the object, or None when no file inside the root can hold it."""
        segments = _segments(key)
        if segments is None:
            return None
        path = self._bucket_dir(bucket).joinpath(*segments)
        return path if self._is_inside_root(path) else None

    def _is_inside_root(self, path: Path) -> bool:
        return path.resolve().is_relative_to(self._real_root)


@dataclass
class _Walk:
    """One listing: a depth-first walk that follows symlinks only inside the root, visits each
    real folder once (symlink loops end), and keeps regular files whose key has the prefix."""

    real_root: Path
    bucket: str
    prefix: str

    def run(self, start: Path, start_key: str) -> list[ObjectInfo]:
        found: list[ObjectInfo] = []
        visited: set[Path] = set()
        pending = [(start, start_key)]
        while pending:
            folder, folder_key = pending.pop()
            real = folder.resolve()
            if real in visited:
                continue
            visited.add(real)
            for entry in _entries(folder, self.bucket):
                key = f"{folder_key}/{entry.name}" if folder_key else entry.name
                self._visit(entry, key, found, pending)
        return found

    def _visit(
        self,
        entry: os.DirEntry[str],
        key: str,
        found: list[ObjectInfo],
        pending: list[tuple[Path, str]],
    ) -> None:
        if entry.name.startswith(TEMP_PREFIX) or not _is_utf8(key):
            return  # a half-written upload, or a name no S3 key can have
        st = self._stat(entry)
        if st is None:
            return
        if stat.S_ISDIR(st.st_mode):
            # Descend only where keys with the prefix can be found.
            if key.startswith(self.prefix) or self.prefix.startswith(key + "/"):
                pending.append((Path(entry.path), key))
        elif stat.S_ISREG(st.st_mode) and key.startswith(self.prefix):
            found.append(_info(self.bucket, key, st))

    def _stat(self, entry: os.DirEntry[str]) -> os.stat_result | None:
        """The entry's own status, or its target's when it is a symlink into the root; None for
        links leading outside the root and dangling ones."""
        try:
            if not entry.is_symlink():
                return entry.stat(follow_symlinks=False)
            if not Path(entry.path).resolve().is_relative_to(self.real_root):
                return None
            return entry.stat(follow_symlinks=True)
        except (FileNotFoundError, NotADirectoryError):
            return None  # removed while we walked, or a dangling link


def _entries(folder: Path, bucket: str) -> list[os.DirEntry[str]]:
    try:
        with os.scandir(folder) as entries:
            return list(entries)
    except (FileNotFoundError, NotADirectoryError):
        return []  # removed while we walked
    except PermissionError as exc:
        # S3 denies a listing as a whole; a half listing would silently stage too little.
        raise _access_denied(bucket, None, exc) from exc


def _segments(key: str) -> list[str] | None:
    """The path segments of a key, or None when the key cannot name a file below a folder."""
    segments = key.split("/")
    if any(s in ("", ".", "..") or "\0" in s for s in segments):
        return None
    return segments


def _is_utf8(key: str) -> bool:
    # Undecodable file names arrive as lone surrogates; S3 keys are always valid UTF-8.
    try:
        key.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _info(bucket: str, key: str, st: os.stat_result) -> ObjectInfo:
    # Size and modification time are a cheap fingerprint that changes when a file is rewritten.
    return ObjectInfo(
        bucket=bucket, key=key, size=st.st_size, etag=f"{st.st_size}-{st.st_mtime_ns}"
    )


def _open_regular(path: Path, obj: ObjectInfo) -> BinaryIO | None:
    """Open the object's file for reading, or None when it is missing or not a regular file."""
    try:
        # O_NONBLOCK: opening a FIFO for reading would otherwise wait for a writer forever.
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    except (FileNotFoundError, NotADirectoryError):
        return None
    except PermissionError as exc:
        raise _access_denied(obj.bucket, obj.key, exc) from exc
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        return None
    return os.fdopen(fd, "rb")


def _access_denied(bucket: str, key: str | None, exc: OSError) -> StoreError:
    where = f"s3://{bucket}/{key}" if key is not None else f"bucket {bucket!r}"
    return StoreError(
        f"AccessDenied: cannot read {where}: {exc}", code="AccessDenied", bucket=bucket, key=key
    )


def _no_such_key(bucket: str, key: str, root: Path) -> StoreError:
    return StoreError(
        f"NoSuchKey: s3://{bucket}/{key} does not exist in folder {root}",
        code="NoSuchKey",
        bucket=bucket,
        key=key,
    )
