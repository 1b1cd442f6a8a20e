"""One stream's events: an instance's log file turned into event spans and timestamps as the
file grows (see cloudwatch_logs.py for how lines become events and get their timestamps), and
read back by span. Knows nothing of jobs or of the API."""

from __future__ import annotations

import os
import stat
import threading
from array import array
from pathlib import Path
from typing import Any

from localproc.records.store import now

# CloudWatch's limit: an event of at most 256 KiB less 26 bytes of overhead.
EVENT_OVERHEAD = 26
MAX_EVENT_BYTES = 256 * 1024 - EVENT_OVERHEAD
_READ_CHUNK = 4 * 1024 * 1024


class _StreamIndex:
    """The events of one instance's log file: byte span and timestamp of each, added as the file
    grows. Thread-safe; reading never blocks on the writer."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.inode: int | None = None
        self.indexed = 0  # bytes of the file turned into events
        self.starts = array("q")
        self.ends = array("q")
        self.stamps = array("q")  # milliseconds, never decreasing
        self.ingested = array("q")
        self.lock = threading.Lock()

    def _reset(self, inode: int) -> None:
        self.inode = inode
        self.indexed = 0
        for column in (self.starts, self.ends, self.stamps, self.ingested):
            del column[:]

    def refresh(self, floor_ms: int, ceiling_ms: int | None, ended: bool) -> bool:
        """Index what the file gained; False when it is gone or not a regular file (the job
        deleted, a FIFO, a directory): the stream is then not served."""
        with self.lock:
            try:
                handle = _open_log(self.path)
            except OSError:
                return False
            with handle:
                info = os.fstat(handle.fileno())
                if info.st_ino != self.inode or info.st_size < self.indexed:
                    self._reset(info.st_ino)  # a new file (the job was deleted and run again)
                if info.st_size == self.indexed:
                    return True
                observed = now_ms()
                stamp = min(info.st_mtime_ns // 1_000_000, observed)
                if ceiling_ms is not None:
                    stamp = min(stamp, ceiling_ms)
                stamp = max(stamp, floor_ms, self.stamps[-1] if self.stamps else 0)
                self._index(handle, info.st_size, ended, stamp, max(observed, stamp))
            return True

    def _index(self, handle: Any, size: int, ended: bool, stamp: int, ingested: int) -> None:
        handle.seek(self.indexed)
        position = self.indexed
        pending = b""  # the start of a line not yet ended, from position - len(pending)
        while position < size:
            chunk = handle.read(min(_READ_CHUNK, size - position))
            if not chunk:
                break
            data = pending + chunk
            base = position - len(pending)
            position += len(chunk)
            start = 0
            while True:
                newline = data.find(b"\n", start)
                if newline < 0:
                    break
                self._add_line(data, base, start, newline, stamp, ingested)
                start = newline + 1
            pending = data[start:]
            # An endless line is cut into events as it comes, keeping memory bounded.
            while len(pending) > MAX_EVENT_BYTES:
                cut = _char_boundary(pending, MAX_EVENT_BYTES)
                self._append(base + start, base + start + cut, stamp, ingested)
                start += cut
                pending = pending[cut:]
        self.indexed = position - len(pending)
        if ended and pending:
            self._add_line(pending, self.indexed, 0, len(pending), stamp, ingested)
            self.indexed = position

    def _add_line(
        self, data: bytes, base: int, start: int, end: int, stamp: int, ingested: int
    ) -> None:
        stop = end - 1 if end > start and data[end - 1 : end] == b"\r" else end
        while stop - start > MAX_EVENT_BYTES:
            cut = _char_boundary(data[start : start + MAX_EVENT_BYTES + 4], MAX_EVENT_BYTES)
            self._append(base + start, base + start + cut, stamp, ingested)
            start += cut
        self._append(base + start, base + stop, stamp, ingested)

    def _append(self, start: int, end: int, stamp: int, ingested: int) -> None:
        self.starts.append(start)
        self.ends.append(end)
        self.stamps.append(stamp)
        self.ingested.append(ingested)

    def __len__(self) -> int:
        return len(self.stamps)

    def messages(self, first: int, last: int) -> list[str]:
        """The messages of events first..last-1, read in one go."""
        if first >= last:
            return []
        with self.lock:
            starts, ends = self.starts[first:last], self.ends[first:last]
        origin = starts[0]
        try:
            handle = _open_log(self.path)
        except OSError:
            raise _Vanished from None
        with handle:
            if os.fstat(handle.fileno()).st_ino != self.inode:
                raise _Vanished  # replaced since indexed: these spans are not its lines
            handle.seek(origin)
            data = handle.read(ends[-1] - origin)
        return [
            data[s - origin : e - origin].decode("utf-8", errors="replace")
            for s, e in zip(starts, ends, strict=True)
        ]

    def size_of(self, index: int) -> int:
        return self.ends[index] - self.starts[index] + EVENT_OVERHEAD


class _Vanished(Exception):
    """The stream's file went away (or was replaced) after it was indexed."""


def _open_log(path: Path) -> Any:
    """`path` opened for reading if it is a regular file; OSError otherwise. Never blocks on a
    FIFO and never follows a symbolic link (lstat first, then O_NONBLOCK|O_NOFOLLOW, and the
    opened file checked again)."""
    if not stat.S_ISREG(os.lstat(path).st_mode):
        raise OSError(f"{path} is not a regular file")
    descriptor = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_NOFOLLOW | os.O_CLOEXEC)
    try:
        if not stat.S_ISREG(os.fstat(descriptor).st_mode):
            raise OSError(f"{path} is not a regular file")
        os.set_blocking(descriptor, True)
        return os.fdopen(descriptor, "rb")
    except BaseException:
        os.close(descriptor)
        raise


def _char_boundary(data: bytes, limit: int) -> int:
    """The largest cut at or below `limit` that does not split a UTF-8 character."""
    cut = limit
    while cut > limit - 4 and cut < len(data) and (data[cut] & 0xC0) == 0x80:
        cut -= 1
    return cut if cut > limit - 4 else limit


def now_ms() -> int:
    return int(now().timestamp() * 1000)
