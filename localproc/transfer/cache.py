"""The input cache: an object downloaded once is not downloaded again while it is unchanged.

Entries live under `<state dir>/cache/objects/`, keyed by a hash of (bucket, key, ETag, size),
so a changed object (new ETag) is a new entry. Staging hard-links an entry into the instance's
folder (copying where a link is impossible). Because containers get writable input folders, a
container could change a linked file in place; each entry therefore keeps, beside it, the size
and modification time it had when cached, and an entry that no longer matches is thrown away
instead of being served. The cache is trimmed to its size cap, least recently used first, after
each staging and by `localproc gc`.
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
        if (status.st_size, status.st_mtime_ns) != (recorded["size"], recorded["mtime_ns"]):
            self._discard(entry)  # changed in place through a staged hard link
            return None
        os.utime(meta)  # last use, for trimming
        return entry

    def fetch(self, obj: ObjectInfo, store: ObjectStore) -> Path:
        """The cached file for `obj`, downloading it into the cache first if needed."""
        cached = self.lookup(obj)
        if cached is not None:
            return cached
        entry = self._entry(obj)
        self.root.mkdir(parents=True, exist_ok=True)
        store.download_file(obj, entry)  # temp file + rename: never half an entry
        status = entry.lstat()
        meta = {"size": status.st_size, "mtime_ns": status.st_mtime_ns, "bucket": obj.bucket,
                "key": obj.key, "etag": obj.etag}  # fmt: skip
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


def link_or_copy(source: Path, dest: Path) -> None:
    """Hard-link (instant, no extra space); copy where a link cannot be made (another device)."""
    try:
        os.link(source, dest)
    except OSError as err:
        if err.errno not in (errno.EXDEV, errno.EPERM, errno.EMLINK):
            raise
        shutil.copyfile(source, dest)


def _atomic_write(path: Path, text: str) -> None:
    fd, temp = tempfile.mkstemp(prefix=".meta-", dir=path.parent)
    with os.fdopen(fd, "w") as handle:
        handle.write(text)
    os.replace(temp, path)
