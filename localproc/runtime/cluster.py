"""Run a job's instances: create and start every container concurrently, stream their logs, wait
for all of them, and stop the rest as soon as one fails (SIGTERM, grace period, SIGKILL)."""

from __future__ import annotations

import contextlib
import math
import queue
import re
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from localproc.runtime.engine import ContainerSpec, DockerEngine, engine_errors
from localproc.runtime.logs import LogSink

if TYPE_CHECKING:
    from docker.models.containers import Container


STOP_CHECK_SECONDS = 0.2
DEADLINE_REASON = "deadline"
# After its container has ended, an instance's log stream that delivers nothing for this long
# is closed, and the rest of the log read from the engine's complete log.
LOG_QUIET_SECONDS = 10.0
FIRST_TAIL = 16  # log entries first asked for when catching up; grows sixteenfold per retry


@dataclass(frozen=True)
class InstanceResult:
    host: str
    exit_code: int
    oom_killed: bool
    stopped_by_us: bool  # stopped because another instance failed or the job was stopped
    peak_memory_bytes: int | None = None  # None when the engine gave no sample (very short run)
    cpu_seconds: float | None = None


@dataclass
class _Usage:
    peak_memory_bytes: int | None = None
    cpu_seconds: float | None = None


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


class ClusterRun:
    def __init__(
        self,
        engine: DockerEngine,
        specs: Sequence[ContainerSpec],
        sink: LogSink,
        stop_grace_seconds: float,
        on_stopping: Callable[[], None] | None = None,
    ) -> None:
        self._engine = engine
        self._specs = list(specs)
        self._sink = sink
        self._grace = stop_grace_seconds
        self._on_stopping = on_stopping  # called once, when a stop of the whole job begins
        self._stopping_announced = False
        self._containers: dict[str, Container] = {}
        self._stopping: set[str] = set()
        self._lock = threading.Lock()
        self.stop_reason: str | None = None  # set when the job as a whole is being stopped
        self._kill_requested = False
        self._killed = False
        self._usage: dict[str, _Usage] = {spec.hostname: _Usage() for spec in self._specs}
        self._logs = {spec.hostname: _LogProgress() for spec in self._specs}

    def create(self) -> None:
        """Create every container concurrently; raises the engine's error if one cannot be made."""
        with ThreadPoolExecutor(max_workers=max(1, len(self._specs))) as pool:
            created = list(pool.map(self._engine.create_container, self._specs))
        # (EngineError from any creation propagates; the caller removes what was made.)
        self._containers = {spec.hostname: c for spec, c in zip(self._specs, created, strict=True)}

    def run(self, deadline: float | None = None) -> list[InstanceResult]:
        """Start all containers and wait for every one to end; returns results in host order.

        `deadline` (time.monotonic) is when every container is stopped (MaxRuntimeInSeconds).
        A stop requested with `request_stop` (from a signal handler or another thread) takes
        effect within a fraction of a second.
        """
        finished: queue.Queue[InstanceResult] = queue.Queue()
        log_threads = [
            threading.Thread(target=self._stream_logs, args=(host, c), daemon=True)
            for host, c in self._containers.items()
        ]
        with (
            engine_errors("starting containers"),
            ThreadPoolExecutor(max_workers=len(self._containers)) as pool,
        ):
            list(pool.map(lambda c: c.start(), self._containers.values()))
        for thread in log_threads:
            thread.start()
        for host, container in self._containers.items():
            threading.Thread(target=self._sample_usage, args=(host, container), daemon=True).start()
            threading.Thread(
                target=self._wait, args=(host, container, finished), daemon=True
            ).start()

        results: dict[str, InstanceResult] = {}
        while len(results) < len(self._containers):
            self._act_on_stop_request(deadline)
            try:
                result = finished.get(timeout=self._wake_after(deadline))
            except queue.Empty:
                continue
            results[result.host] = result
            if result.exit_code != 0:
                self.stop_all(except_host=result.host)
        for thread, host in zip(log_threads, self._containers, strict=True):
            self._await_log(host, thread)
        self._sink.close()
        return [results[host] for host in self._containers]

    def _await_log(self, host: str, thread: threading.Thread) -> None:
        """The job ends only once every byte of the instance's log is saved. A stream that goes
        on delivering is waited for however long it takes; one that delivers nothing for
        LOG_QUIET_SECONDS after its container ended is closed, which makes its thread read
        the rest from the engine's complete log."""
        progress = self._logs[host]
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

    def request_stop(self, reason: str, immediately: bool = False) -> None:
        """Ask for every container to be stopped. Safe to call from a signal handler: it only
        sets fields, which the waiting loop acts on."""
        if self.stop_reason is None:
            self.stop_reason = reason
        self._kill_requested = self._kill_requested or immediately

    def _act_on_stop_request(self, deadline: float | None) -> None:
        if deadline is not None and time.monotonic() >= deadline and self.stop_reason is None:
            self.stop_reason = DEADLINE_REASON
        if self.stop_reason is not None and not self._stopping_announced:
            self._stopping_announced = True
            if self._on_stopping is not None:
                self._on_stopping()
        if self._kill_requested and not self._killed:
            self._killed = True
            self.kill_all()
        elif self.stop_reason is not None:
            self.stop_all()

    def _wake_after(self, deadline: float | None) -> float:
        # Results arrive through the queue at once; the timeout only bounds how late a stop
        # request or the deadline is noticed.
        # Once the deadline has passed (the job is stopping), the plain interval: a timeout of
        # zero would turn the wait into a busy loop for the whole grace period.
        remaining = None if deadline is None else deadline - time.monotonic()
        if remaining is None or remaining <= 0:
            return STOP_CHECK_SECONDS
        return min(STOP_CHECK_SECONDS, remaining)

    def stop_all(self, except_host: str | None = None) -> None:
        """SIGTERM every running container, SIGKILL after the grace period (in the background)."""
        for host, container in self._containers.items():
            with self._lock:
                if host == except_host or host in self._stopping:
                    continue
                self._stopping.add(host)
            threading.Thread(target=self._stop, args=(container,), daemon=True).start()

    def kill_all(self) -> None:
        """SIGKILL every container at once (a second Ctrl-C)."""
        import docker.errors

        for container in self._containers.values():
            with contextlib.suppress(docker.errors.DockerException):
                container.kill()

    def _stop(self, container: Container) -> None:
        import docker.errors

        # An error here means the container is already gone: nothing left to stop.
        with contextlib.suppress(docker.errors.DockerException):
            # The engine counts the grace period in whole seconds: never less than asked.
            container.stop(timeout=math.ceil(self._grace))

    def _stream_logs(self, host: str, container: Container) -> None:
        """Follow the instance's log, then, once its container has ended, read whatever the
        follow stream missed (it can end a moment before the engine has logged the last
        output) from the engine's complete log."""
        import docker.errors

        progress = self._logs[host]
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

    def _sample_usage(self, host: str, container: Container) -> None:
        """Peak memory and CPU time from the engine's stats stream (about one sample a second,
        the first at once); the cgroup's own high-water mark is used where it reports one."""
        import docker.errors

        usage = self._usage[host]
        try:
            for sample in container.stats(stream=True, decode=True):
                memory = sample.get("memory_stats") or {}
                peak = memory.get("max_usage") or memory.get("usage")
                if peak:
                    usage.peak_memory_bytes = max(usage.peak_memory_bytes or 0, int(peak))
                total = (sample.get("cpu_stats") or {}).get("cpu_usage", {}).get("total_usage")
                if total:
                    usage.cpu_seconds = max(usage.cpu_seconds or 0.0, total / 1e9)
        except docker.errors.DockerException:
            pass  # the container is gone: the samples taken so far stand

    def _wait(self, host: str, container: Container, finished: queue.Queue) -> None:
        import docker.errors

        try:
            exit_code = int(container.wait()["StatusCode"])
            container.reload()
            oom_killed = bool(container.attrs.get("State", {}).get("OOMKilled"))
        except docker.errors.DockerException:
            exit_code, oom_killed = -1, False
        with self._lock:
            stopped = host in self._stopping
        self._logs[host].exited.set()
        usage = self._usage[host]
        finished.put(
            InstanceResult(
                host, exit_code, oom_killed, stopped, usage.peak_memory_bytes, usage.cpu_seconds
            )
        )


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
