"""Container output: every byte goes, raw, to the instance's log file in the job's folder, and
each line goes live to the terminal prefixed with its instance.

Linear time and bounded memory whatever the container prints: each instance's log file stays
open for the whole run (buffered, flushed within a fraction of a second so `logs --follow` and
readers of the file see it live), and the terminal copy holds at most one line of up to
TERMINAL_LINE_LIMIT bytes per instance: a longer line is cut there, with a marker, on the
terminal only; the saved log keeps every byte.

A full disk (a container can fill the disk the job's folder is on) does not end the run: what
cannot be written yet waits in memory, up to LOG_BACKLOG_LIMIT bytes per instance, and is
written as soon as space comes back; only beyond that cap, or when the run ends with the disk
still full, is output lost, and the terminal says how many bytes.

What reaches the terminal is text: control characters are shown as escapes (`printable_line`);
the saved log keeps the container's bytes as they were."""

from __future__ import annotations

import errno
import os
import threading
from pathlib import Path
from typing import TextIO

from localproc.printable import printable_line

_COLOURS = ("36", "33", "35", "32", "34", "31")  # cyan, yellow, magenta, green, blue, red
TERMINAL_LINE_LIMIT = 64 * 1024  # bytes of one line shown on the terminal
FLUSH_SECONDS = 0.2  # how long written output may wait in a buffer before reaching the file
_FILE_BUFFER = 1 << 20  # written out when this much is waiting, else every FLUSH_SECONDS
LOG_BACKLOG_LIMIT = 64 << 20  # bytes kept in memory per instance while the disk is full


class _LogFile:
    """One instance's saved log: appends, buffered, that survive a full disk."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._fd: int | None = None
        self._pending = bytearray()
        self.lost = 0  # bytes dropped: backlog over its cap, or still unwritten at the end
        self.problem: str | None = None  # why writing fails now (None: it works)

    def write(self, data: bytes | memoryview) -> None:
        self._pending += data
        if len(self._pending) >= _FILE_BUFFER:
            self.flush()
        overflow = len(self._pending) - LOG_BACKLOG_LIMIT
        if overflow > 0:  # still failing: keep the newest output, count the rest
            del self._pending[:overflow]
            self.lost += overflow

    def flush(self) -> None:
        try:
            if self._fd is None:
                self._fd = os.open(
                    self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o644
                )
            while self._pending:
                written = os.write(self._fd, self._pending)
                del self._pending[:written]
            self.problem = None
        except OSError as err:
            if err.errno not in (errno.ENOSPC, errno.EDQUOT, errno.EIO, errno.EFBIG):
                raise
            self.problem = err.strerror or str(err)

    def close(self) -> None:
        self.flush()
        self.lost += len(self._pending)
        self._pending.clear()
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None


class _Lines:
    """Splits one instance's byte stream into lines for the terminal, in linear time; a line
    longer than `limit` is cut at `limit` and the rest of it skipped."""

    def __init__(self, limit: int, marker: bytes) -> None:
        self._limit = limit
        self._marker = marker
        self._pending = bytearray()
        self._cutting = False  # skipping the rest of a line already cut

    def feed(self, data: bytes | memoryview) -> list[bytes]:
        data = bytes(data)  # one copy per chunk: bytes.find then scans it in linear time
        lines: list[bytes] = []
        start, size = 0, len(data)
        while start < size:
            newline = data.find(b"\n", start)
            end = size if newline < 0 else newline
            if not self._cutting:
                room = self._limit - len(self._pending)
                self._pending += data[start : min(end, start + room)]
                if end - start > room:
                    lines.append(bytes(self._pending) + self._marker)
                    self._pending.clear()
                    self._cutting = True
            if newline < 0:
                break
            if not self._cutting:
                lines.append(bytes(self._pending))
            self._pending.clear()
            self._cutting = False
            start = newline + 1
        return lines

    def rest(self) -> list[bytes]:
        """The final line when the stream ends without a newline."""
        line, cut = bytes(self._pending), self._cutting
        self._pending.clear()
        self._cutting = False
        return [line] if line and not cut else []


class LogSink:
    def __init__(self, stream: TextIO | None, log_dir: Path, colour: bool = False) -> None:
        self._stream = stream
        self._log_dir = log_dir
        self._colour = colour
        self._lock = threading.Lock()
        self._files: dict[str, _LogFile] = {}
        self._warned: set[str] = set()  # instances whose log writing failure was said
        self._lines: dict[str, _Lines] = {}
        self._dirty: set[str] = set()
        self._closed = threading.Event()
        log_dir.mkdir(parents=True, exist_ok=True)
        self._flusher = threading.Thread(target=self._flush_regularly, daemon=True)
        self._flusher.start()

    def log_path(self, host: str) -> Path:
        return self._log_dir / f"{host}.log"

    def write(self, host: str, data: bytes | memoryview) -> None:
        """Bytes the container wrote: all of them to the saved log; whole lines to the
        terminal."""
        with self._lock:
            log = self._files.get(host)
            if log is None:
                log = self._files[host] = _LogFile(self.log_path(host))
            log.write(data)
            self._dirty.add(host)
            self._say_if_failing(host)
            if self._stream is not None:
                self._show(host, self._splitter(host).feed(data))

    def end(self, host: str) -> None:
        """The instance's output is complete: show its last line, put everything in the file."""
        with self._lock:
            if self._stream is not None and host in self._lines:
                self._show(host, self._lines[host].rest())
            if host in self._files:
                self._files[host].flush()
                self._dirty.discard(host)
                self._say_if_failing(host)

    def note(self, host: str, text: str) -> None:
        """localproc's own remark about an instance's log: on the terminal, never in the saved
        log, which holds only what the container wrote."""
        with self._lock:
            self._say(host, text)

    def close(self) -> None:
        self._closed.set()
        with self._lock:
            for host in list(self._files):
                if self._stream is not None and host in self._lines:
                    self._show(host, self._lines[host].rest())
                log = self._files.pop(host)
                log.close()
                if log.lost:
                    self._say(
                        host,
                        f"{log.lost} bytes of this instance's output could not be saved to "
                        f"{log.path} ({log.problem or 'the disk was full'})",
                    )
            self._dirty.clear()

    def _splitter(self, host: str) -> _Lines:
        lines = self._lines.get(host)
        if lines is None:
            marker = (
                f" [… line cut at {TERMINAL_LINE_LIMIT} bytes on the terminal; the saved log "
                f"{self.log_path(host)} has all of it]"
            ).encode()
            lines = self._lines[host] = _Lines(TERMINAL_LINE_LIMIT, marker)
        return lines

    def _show(self, host: str, lines: list[bytes]) -> None:
        if not lines:
            return
        prefix = self._prefix(host)
        self._to_terminal(
            "".join(
                prefix + printable_line(raw.rstrip(b"\r").decode("utf-8", errors="replace")) + "\n"
                for raw in lines
            )
        )

    def _flush_regularly(self) -> None:
        while not self._closed.wait(FLUSH_SECONDS):
            with self._lock:
                for host in self._dirty:
                    self._files[host].flush()
                    self._say_if_failing(host)
                # A log the disk could not take yet is tried again at the next round.
                self._dirty = {host for host in self._dirty if self._files[host].problem}

    def _say_if_failing(self, host: str) -> None:
        """Once per instance: its saved log cannot be written now (the lock is held)."""
        log = self._files.get(host)
        if log is None or log.problem is None or host in self._warned:
            return
        self._warned.add(host)
        self._say(
            host,
            f"cannot write the saved log {log.path} ({log.problem}); its output waits in "
            f"memory (up to {LOG_BACKLOG_LIMIT >> 20} MiB) until it can be written",
        )

    def _say(self, host: str, text: str) -> None:
        self._to_terminal(self._prefix(host) + f"[localproc] {printable_line(text)}\n")

    def _to_terminal(self, text: str) -> None:
        """The live copy; a terminal or pipe that went away (`run … | head`) ends only the live
        copy: the saved log goes on receiving every byte."""
        if self._stream is None:
            return
        try:
            self._stream.write(text)
            self._stream.flush()
        except (OSError, ValueError):  # BrokenPipeError, a closed stream
            self._stream = None

    def _prefix(self, host: str) -> str:
        if not self._colour:
            return f"{host} | "
        index = int(host.rsplit("-", 1)[-1]) - 1 if host.rsplit("-", 1)[-1].isdigit() else 0
        return f"\x1b[{_COLOURS[index % len(_COLOURS)]}m{host}\x1b[0m | "
