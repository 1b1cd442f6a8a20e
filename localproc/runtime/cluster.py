"""Run a job's instances: create and start every container concurrently, stream their logs, wait
for all of them, and stop the rest as soon as one fails (SIGTERM, grace period, SIGKILL)."""

from __future__ import annotations

import contextlib
import queue
import threading
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import TYPE_CHECKING

from localproc.runtime.engine import ContainerSpec, DockerEngine
from localproc.runtime.logs import LogSink, split_lines

if TYPE_CHECKING:
    from docker.models.containers import Container


@dataclass(frozen=True)
class InstanceResult:
    host: str
    exit_code: int
    oom_killed: bool
    stopped_by_us: bool  # stopped because another instance failed or the job was stopped


class ClusterRun:
    def __init__(
        self,
        engine: DockerEngine,
        specs: Sequence[ContainerSpec],
        sink: LogSink,
        stop_grace_seconds: float,
    ) -> None:
        self._engine = engine
        self._specs = list(specs)
        self._sink = sink
        self._grace = stop_grace_seconds
        self._containers: dict[str, Container] = {}
        self._stopping: set[str] = set()
        self._lock = threading.Lock()

    def create(self) -> None:
        """Create every container concurrently; raises the engine's error if one cannot be made."""
        with ThreadPoolExecutor(max_workers=max(1, len(self._specs))) as pool:
            created = list(pool.map(self._engine.create_container, self._specs))
        self._containers = {spec.hostname: c for spec, c in zip(self._specs, created, strict=True)}

    def run(self) -> list[InstanceResult]:
        """Start all containers, wait for every one to end; returns results in host order."""
        finished: queue.Queue[InstanceResult] = queue.Queue()
        log_threads = []
        for host, container in self._containers.items():
            thread = threading.Thread(target=self._stream_logs, args=(host, container), daemon=True)
            log_threads.append(thread)
        with ThreadPoolExecutor(max_workers=len(self._containers)) as pool:
            list(pool.map(lambda c: c.start(), self._containers.values()))
        for thread in log_threads:
            thread.start()
        for host, container in self._containers.items():
            threading.Thread(
                target=self._wait, args=(host, container, finished), daemon=True
            ).start()

        results: dict[str, InstanceResult] = {}
        while len(results) < len(self._containers):
            result = finished.get()
            results[result.host] = result
            if result.exit_code != 0:
                self.stop_all(except_host=result.host)
        for thread in log_threads:
            thread.join(timeout=5)
        return [results[host] for host in self._containers]

    def stop_all(self, except_host: str | None = None) -> None:
        """SIGTERM every running container, SIGKILL after the grace period (in the background)."""
        for host, container in self._containers.items():
            with self._lock:
                if host == except_host or host in self._stopping:
                    continue
                self._stopping.add(host)
            threading.Thread(target=self._stop, args=(container,), daemon=True).start()

    def _stop(self, container: Container) -> None:
        import docker.errors

        # An error here means the container is already gone: nothing left to stop.
        with contextlib.suppress(docker.errors.DockerException):
            container.stop(timeout=int(self._grace))

    def _stream_logs(self, host: str, container: Container) -> None:
        import docker.errors

        try:
            chunks = container.logs(stream=True, follow=True)
            split_lines(chunks, lambda text: self._sink.line(host, text))
        except docker.errors.DockerException as err:
            self._sink.line(host, f"[localproc] log stream ended early: {err}")

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
        finished.put(InstanceResult(host, exit_code, oom_killed, stopped))
