"""An instance's log copied from the Docker engine into the sink: followed live with the
engine's timestamps, then, once the container has ended, caught up from the engine's complete
log (the follow stream can end a moment before the engine has logged the last output)."""

from __future__ import annotations

import contextlib
import re
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from localproc.runtime.protocol import LogSinkLike

if TYPE_CHECKING:
    from docker.models.containers import Container

# After its container has ended, an instance's log stream that delivers nothing for this long
# is closed, and the rest of the log read from the engine's complete log.
LOG_QUIET_SECONDS = 10.0
FIRST_TAIL = 16  # log entries first asked for when catching up; grows sixteenfold per retry


@dataclass
class _LogProgress:
    """How far an instance's log has been received: the engine's timestamp of the last entry
    (a line, or a piece of a long one) and how many entries carried that same timestamp."""

    last_stamp: bytes | None = None
    same_stamp: int = 0
    received: int = 0  # bytes, to tell a stream that still delivers from a stuck one
    stream: object | None = None  # the open follow stream, closed if it gets stuck
    exited: threading.Event = field(default_factory=threading.Event)

    def take(self, frame: bytes) -> memoryview:
        """One entry as the engine sends it with timestamps: `STAMP payload`; returns the
        payload and remembers the stamp."""
        space = frame.find(b" ")
        stamp = frame[:space]
        if stamp == self.last_stamp:
            self.same_stamp += 1
        else:
            self.last_stamp, self.same_stamp = stamp, 1
        self.received += len(frame)
        return memoryview(frame)[space + 1 :]


class DockerLogFollower:
    """Follows one container's log on a daemon thread (see the module docstring)."""

    def __init__(self, host: str, container: Container, sink: LogSinkLike) -> None:
        self._host = host
        self._container = container
        self._sink = sink
        self._progress = _LogProgress()
        self._thread = threading.Thread(target=self._stream_logs, daemon=True)
        self._thread.start()

    def exited(self) -> None:
        self._progress.exited.set()

    def finish(self) -> None:
        """The job ends only once every byte of the instance's log is saved. A stream that goes
        on delivering is waited for however long it takes; one that delivers nothing for
        LOG_QUIET_SECONDS after its container ended is closed, which makes its thread read
        the rest from the engine's complete log."""
        host, thread, progress = self._host, self._thread, self._progress
        seen, quiet_since, closed = -1, time.monotonic(), False
        while thread.is_alive():
            thread.join(timeout=0.5)
            if progress.received != seen:
                seen, quiet_since = progress.received, time.monotonic()
            elif time.monotonic() - quiet_since > LOG_QUIET_SECONDS:
                if closed:
                    self._sink.note(host, "the engine stopped sending this log; it may be cut")
                    return
                closed, quiet_since = True, time.monotonic()
                with contextlib.suppress(Exception):
                    progress.stream.close()  # type: ignore[union-attr]

    def _stream_logs(self) -> None:
        """Follow the instance's log, then, once its container has ended, read whatever the
        follow stream missed (it can end a moment before the engine has logged the last
        output) from the engine's complete log."""
        import docker.errors

        host, container, progress = self._host, self._container, self._progress
        try:
            stream = container.logs(stream=True, follow=True, timestamps=True)
            progress.stream = stream
            for frame in stream:
                self._sink.write(host, progress.take(frame))
        except Exception:  # noqa: BLE001 - any end of the stream: the catch-up reads the rest
            pass
        progress.exited.wait()
        try:
            self._catch_up(host, container, progress)
        except docker.errors.DockerException as err:
            self._sink.note(host, f"the rest of this log could not be read: {err}")
        finally:
            self._sink.end(host)

    def _catch_up(self, host: str, container: Container, progress: _LogProgress) -> None:
        """Write the entries of the complete log that come after the last one received. The
        engine reads a log's tail from its end, so asking for the last few entries first (and
        sixteen times more while the first one returned is still newer than what we have)
        costs little however long the log is; nothing is held in memory meanwhile."""
        tail: int | str = FIRST_TAIL if progress.last_stamp is not None else "all"
        last = _stamp_key(progress.last_stamp) if progress.last_stamp is not None else None
        while True:
            stream = container.logs(stream=True, follow=False, timestamps=True, tail=tail)
            try:
                if self._write_after(host, stream, progress, last, whole=tail == "all"):
                    return
            finally:
                stream.close()
            assert isinstance(tail, int)
            tail = tail * 16 if tail < 1 << 20 else "all"

    def _write_after(
        self,
        host: str,
        entries: Iterable[bytes],
        progress: _LogProgress,
        last: tuple[int, int] | None,
        whole: bool,
    ) -> bool:
        """False when the first entry is not older than the last one received (several entries
        may share a timestamp): a longer tail is needed to find where to resume."""
        skipping, same_seen, first = last is not None, 0, True
        same_before = progress.same_stamp
        for frame in entries:
            if skipping:
                key = _stamp_key(frame[: frame.find(b" ")])
                if first and key >= last and not whole:  # type: ignore[operator]
                    return False
                first = False
                if key < last:  # type: ignore[operator]
                    continue
                if key == last:
                    same_seen += 1
                    if same_seen <= same_before:
                        continue
                skipping = False
            self._sink.write(host, progress.take(frame))
        return True


_STAMP = re.compile(rb"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(?:\.(\d+))?(Z|[+-]\d\d:\d\d)")


def _stamp_key(stamp: bytes) -> tuple[int, int]:
    """An engine log timestamp (RFC 3339 with nanoseconds) as (epoch seconds, nanoseconds)."""
    from datetime import datetime

    match = _STAMP.fullmatch(stamp)
    if match is None:
        return (0, 0)
    zone = b"+00:00" if match[3] == b"Z" else match[3]
    seconds = int(datetime.fromisoformat((match[1] + zone).decode()).timestamp())
    return seconds, int((match[2] or b"").ljust(9, b"0")[:9])
