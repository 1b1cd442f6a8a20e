"""Run a job's instances: create and start every container concurrently, stream their logs, wait
for all of them, and stop the rest as soon as one fails (SIGTERM, grace period, SIGKILL)."""

from __future__ import annotations

import contextlib
import math
import queue
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import TYPE_CHECKING

from localproc.runtime.engine import ContainerSpec, DockerEngine, engine_errors
from localproc.runtime.logs import LogSink, split_lines

if TYPE_CHECKING:
    from docker.models.containers import Container


STOP_CHECK_SECONDS = 0.2
DEADLINE_REASON = "deadline"


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
        self._received: dict[str, int] = {spec.hostname: 0 for spec in self._specs}

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
        for thread, (host, container) in zip(log_threads, self._containers.items(), strict=True):
            thread.join(timeout=5)
            if not thread.is_alive():
                self._emit_missing_tail(host, container)
        return [results[host] for host in self._containers]

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
        if deadline is None:
            return STOP_CHECK_SECONDS
        return max(0.0, min(STOP_CHECK_SECONDS, deadline - time.monotonic()))

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
        import docker.errors

        def counted(chunks: Iterable[bytes]) -> Iterator[bytes]:
            for chunk in chunks:
                self._received[host] += len(chunk)
                yield chunk

        try:
            chunks = container.logs(stream=True, follow=True)
            split_lines(counted(chunks), lambda text: self._sink.line(host, text))
        except docker.errors.DockerException as err:
            self._sink.line(host, f"[localproc] log stream ended early: {err}")

    def _emit_missing_tail(self, host: str, container: Container) -> None:
        """A follow stream can end a moment before the engine has logged a container's last
        output (a final line without a newline, most often); the complete log, read once the
        container has ended, holds it."""
        import docker.errors

        try:
            complete = container.logs(stdout=True, stderr=True)
        except docker.errors.DockerException:
            return
        tail = complete[self._received[host] :]
        if tail:
            split_lines([tail], lambda text: self._sink.line(host, text))

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
        usage = self._usage[host]
        finished.put(
            InstanceResult(
                host, exit_code, oom_killed, stopped, usage.peak_memory_bytes, usage.cpu_seconds
            )
        )
