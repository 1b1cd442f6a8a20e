"""What of a file is uploaded: a private copy taken on an open file descriptor, never through a
symlink and never of a FIFO or device (see continuous.py's docstring), hashed on the way and
marked torn when the file changed while it was copied."""

from __future__ import annotations

import errno
import hashlib
import os
import stat
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from localproc.transfer.continuous_state import Signature, _signature

# A snapshot taken this close to the file's last change cannot prove by (size, mtime, ctime) that
# no write followed in the same timestamp tick (git's "racy clean" problem; some filesystems keep
# whole or even two-second times), so the final pass compares such files by content.
RACY_NS = 2_000_000_000
_COPY_CHUNK = 1024 * 1024


@dataclass
class _Snapshot:
    temp: Path
    signature: Signature
    digest: bytes
    size: int
    racy: bool
    torn: bool


class _NotRegular(Exception):
    def __init__(self, kind: str) -> None:
        super().__init__(kind)
        self.kind = kind


def _snapshot(folder: Path, relative: str, scratch: Path) -> _Snapshot:
    """Copy the file to a private temp file in `scratch`, hashing it on the way.

    Every component is opened relative to its parent with O_NOFOLLOW, so neither the file nor a
    folder on its way can be a symlink, even one planted between our look and our open; the
    type is checked before opening (no open of a FIFO or device at all) and again by fstat.
    """
    source = _open_regular(folder, relative)
    try:
        before = os.fstat(source)
        if not stat.S_ISREG(before.st_mode):
            raise _NotRegular(_kind(before.st_mode))
        started = time.time_ns()
        handle, temp_name = tempfile.mkstemp(dir=scratch)
        temp = Path(temp_name)
        try:
            hasher = hashlib.blake2b(digest_size=20)
            size = 0
            with os.fdopen(handle, "wb") as out:
                while chunk := os.read(source, _COPY_CHUNK):
                    hasher.update(chunk)
                    out.write(chunk)
                    size += len(chunk)
            after = os.fstat(source)
        except BaseException:
            temp.unlink(missing_ok=True)
            raise
    finally:
        os.close(source)
    signature = _signature(after)
    return _Snapshot(
        temp=temp,
        signature=signature,
        digest=hasher.digest(),
        size=size,
        racy=started - max(after.st_mtime_ns, after.st_ctime_ns) < RACY_NS,
        torn=_signature(before) != signature or size != after.st_size,
    )


def _open_regular(folder: Path, relative: str) -> int:
    """A descriptor of the regular file `relative` below `folder`, every component opened
    relative to its parent with O_NOFOLLOW; _NotRegular for a symlink, FIFO, device or socket
    (looked at before opening: no open of a FIFO or device at all)."""
    parts = relative.split("/")
    directory = os.open(folder, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC)
    try:
        for part in parts[:-1]:
            inner = os.open(
                part, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=directory
            )
            os.close(directory)
            directory = inner
        mode = os.stat(parts[-1], dir_fd=directory, follow_symlinks=False).st_mode
        if stat.S_ISDIR(mode):
            raise IsADirectoryError(errno.EISDIR, "is a folder now", relative)
        if not stat.S_ISREG(mode):
            raise _NotRegular(_kind(mode))
        try:
            source = os.open(
                parts[-1],
                os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_NOCTTY | os.O_CLOEXEC,
                dir_fd=directory,
            )
        except OSError as err:
            if err.errno == errno.ELOOP:
                raise _NotRegular("symbolic link") from err
            raise
    finally:
        os.close(directory)
    return source


def _kind(mode: int) -> str:
    if stat.S_ISLNK(mode):
        return "symbolic link"
    if stat.S_ISFIFO(mode):
        return "FIFO"
    if stat.S_ISSOCK(mode):
        return "socket"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "device"
    if stat.S_ISDIR(mode):
        return "folder"
    return "special file"
