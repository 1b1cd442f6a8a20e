"""Writing a record so that it survives a crash and a full disk.

A record is replaced atomically (temp file, fsync, rename), so a reader never sees half a
record. A container can fill the disk the state dir is on, and that must not wedge the job: a
record file is padded with trailing whitespace (still JSON) to RECORD_GROWTH_BYTES more than it
holds, and the previous version is kept as a spare. When a new temp file cannot be written for
want of space, the new record is written into the spare's blocks instead, which needs none, and
renamed into place."""

from __future__ import annotations

import contextlib
import errno
import json
import os
import tempfile
from pathlib import Path
from typing import Any

from localproc.records.layout import CLAIM_TEMP_PREFIX, RECORD_TEMP_PREFIX, JobFolder

# A record file is padded this far past what it holds, so that the next version fits into the
# spare's blocks: from one version to the next a record grows by at most its end (FailureReason
# and ExitMessage of up to 1,024 characters each, 12 bytes a character when JSON escapes them)
# and the usage lines of its instances.
RECORD_GROWTH_BYTES = 64 * 1024


def record_text(record: dict[str, Any]) -> str:
    """The record as it is written (before its padding)."""
    return json.dumps(record, indent=2)


def write_first_spare(folder: JobFolder, record: dict[str, Any]) -> None:
    """A spare from the start: the first update may already meet a full disk."""
    write_padded(folder.spare, record_text(record))


def write_record(folder: JobFolder, record: dict[str, Any]) -> None:
    """Replace the folder's record atomically; on a full disk, through the spare's blocks."""
    text = record_text(record)
    try:
        temp = _write_padded_temp(folder.path, text)
    except OSError as err:
        if err.errno not in (errno.ENOSPC, errno.EDQUOT):
            raise
        _write_through_spare(folder, text)
        return
    # The version being replaced becomes the spare (a link needs no data blocks): it is padded
    # RECORD_GROWTH_BYTES past what it held, so the next version fits into its blocks.
    if folder.record.exists():
        with contextlib.suppress(OSError):
            with contextlib.suppress(FileNotFoundError):
                os.unlink(folder.spare_next)
            os.link(folder.record, folder.spare_next)
            os.replace(folder.spare_next, folder.spare)
    os.replace(temp, folder.record)


def _write_through_spare(folder: JobFolder, text: str) -> None:
    try:
        fd = os.open(folder.spare, os.O_WRONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
    except FileNotFoundError:
        raise OSError(errno.ENOSPC, "no space left on device, and no spare record") from None
    try:
        size = os.fstat(fd).st_size
        if len(text.encode()) > size:
            raise OSError(errno.ENOSPC, "no space left on device, and the spare is too small")
        _write_all(fd, _padding(text, size))  # the spare's own blocks: nothing to allocate
        os.fsync(fd)
    finally:
        os.close(fd)
    # Keep the version being replaced as the next spare where a link can still be made.
    linked = False
    with contextlib.suppress(OSError):
        os.link(folder.record, folder.spare_next)
        linked = True
    os.replace(folder.spare, folder.record)
    if linked:
        os.replace(folder.spare_next, folder.spare)


def _padding(text: str, size: int) -> bytes:
    data = text.encode()
    return data + b" " * (size - len(data) - 1) + b"\n" if size > len(data) else data


def _padded_size(text: str) -> int:
    return len(text.encode()) + RECORD_GROWTH_BYTES


def _write_padded_temp(folder: Path, text: str) -> Path:
    fd, temp = tempfile.mkstemp(prefix=RECORD_TEMP_PREFIX, dir=folder)
    try:
        try:
            _write_all(fd, _padding(text, _padded_size(text)))
            os.fsync(fd)
        finally:
            os.close(fd)
    except BaseException:
        Path(temp).unlink(missing_ok=True)
        raise
    return Path(temp)


def write_padded(path: Path, text: str) -> None:
    temp = _write_padded_temp(path.parent, text)
    os.replace(temp, path)


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


def atomic_write_text(path: Path, text: str) -> None:
    fd, temp = tempfile.mkstemp(prefix=CLAIM_TEMP_PREFIX, dir=path.parent)
    try:
        try:
            _write_all(fd, text.encode())
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(temp, path)
    except BaseException:
        Path(temp).unlink(missing_ok=True)
        raise
