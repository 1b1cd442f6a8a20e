"""The input cache: an object downloaded once is not downloaded again while it is unchanged.

Entries live under `<state dir>/cache/objects/` (0700), keyed by a hash of (bucket, key, ETag,
size), so a changed object (new ETag) is a new entry. Containers get writable input folders, so
an entry must never share its inode with a staged file: a container writing into a hard link
(and putting the modification time back) would change what later jobs are served while S3 holds
the original. Staging therefore gets a copy of the entry, made by the kernel (a reflink where
the filesystem has them, which costs nothing until written; else copy_file_range), never a
link. Each entry also keeps, beside it, the inode, size, modification and change time it had
when cached; the change time is set by the kernel on every write and cannot be put back, so an
entry that no longer matches (changed by anything at all) is thrown away instead of being
served. The cache is trimmed to its size cap, least recently used first, after each staging and
by `localproc gc`.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import json
import os
import shutil
import tempfile
from pathlib import Path

from localproc.files import private_dir
from localproc.storage import ObjectInfo, ObjectStore

DEFAULT_CAP_BYTES = 10 * 2**30


class InputCache:
    def __init__(self, root: Path, cap_bytes: int = DEFAULT_CAP_BYTES) -> None:
        self.root = root / "objects"
        self.cap_bytes = cap_bytes

    @staticmethod
    def cacheable(obj: ObjectInfo) -> bool:
        return bool(obj.etag)  # without an ETag, "unchanged" cannot be told

    def _entry(self, obj: ObjectInfo) -> Path:
        identity = "\0".join([obj.bucket, obj.key, obj.etag or "", str(obj.size)])
        return self.root / hashlib.sha256(identity.encode()).hexdigest()

    def lookup(self, obj: ObjectInfo) -> Path | None:
        """The cached file for `obj`, if present and untouched since it was cached."""
        entry = self._entry(obj)
        meta = entry.with_suffix(".json")
        try:
            recorded = json.loads(meta.read_text())
            status = entry.lstat()
        except (OSError, ValueError):
            return None
        if _identity(status) != recorded.get("identity"):
            self._discard(entry)  # changed since it was cached: it cannot be trusted
            return None
        os.utime(meta)  # last use, for trimming
        return entry

    def fetch(self, obj: ObjectInfo, store: ObjectStore) -> Path:
        """The cached file for `obj`, downloading it into the cache first if needed."""
        cached = self.lookup(obj)
        if cached is not None:
            return cached
        entry = self._entry(obj)
        private_dir(self.root.parent)
        private_dir(self.root)
        store.download_file(obj, entry)  # temp file + rename: never half an entry
        os.chmod(entry, 0o600)  # before the identity is taken: chmod changes the ctime
        meta = {"identity": _identity(entry.lstat()), "bucket": obj.bucket, "key": obj.key,
                "etag": obj.etag}  # fmt: skip
        _atomic_write(entry.with_suffix(".json"), json.dumps(meta))
        return entry

    def trim(self) -> int:
        """Remove least recently used entries until the cache fits its cap; returns bytes freed."""
        if not self.root.is_dir():
            return 0
        entries = []
        for meta in self.root.glob("*.json"):
            entry = meta.with_suffix("")
            try:
                entries.append((meta.stat().st_mtime_ns, entry.stat().st_size, entry))
            except OSError:
                self._discard(entry)
        total = sum(size for _, size, _ in entries)
        freed = 0
        for _, size, entry in sorted(entries):
            if total - freed <= self.cap_bytes:
                break
            self._discard(entry)
            freed += size
        return freed

    def _discard(self, entry: Path) -> None:
        for path in (entry.with_suffix(".json"), entry):
            with contextlib.suppress(FileNotFoundError):
                path.unlink()


def _identity(status: os.stat_result) -> list[int]:
    """What changes whenever the file's content does (or anything else about its inode)."""
    return [status.st_ino, status.st_size, status.st_mtime_ns, status.st_ctime_ns]


def link_or_copy(source: Path, dest: Path) -> None:
    """Hard-link (instant, no extra space); copy where a link cannot be made (another device).
    Only for files of one job's own staging: never for a cache entry (see copy_from_cache)."""
    try:
        os.link(source, dest)
    except OSError as err:
        if err.errno not in (errno.EXDEV, errno.EPERM, errno.EMLINK):
            raise
        shutil.copyfile(source, dest)


FICLONE = 0x40049409  # ioctl: make dest share source's blocks copy-on-write (btrfs, XFS)


def copy_from_cache(entry: Path, dest: Path) -> None:
    """A file of its own for `dest` with the entry's content: a reflink where the filesystem
    can (instant, and a write to either file leaves the other alone), else a kernel-side copy
    (shutil.copyfile uses sendfile/copy_file_range on Linux)."""
    with open(entry, "rb") as source, open(dest, "wb") as target:
        try:
            import fcntl

            fcntl.ioctl(target.fileno(), FICLONE, source.fileno())
            return
        except (OSError, ImportError):
            pass  # not a filesystem with reflinks: copy
    shutil.copyfile(entry, dest)


def _atomic_write(path: Path, text: str) -> None:
    fd, temp = tempfile.mkstemp(prefix=".meta-", dir=path.parent)
    with os.fdopen(fd, "w") as handle:
        handle.write(text)
    os.replace(temp, path)
