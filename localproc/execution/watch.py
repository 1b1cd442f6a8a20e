"""Watch a started job's instances until every one has ended: its logs and usage samples
streamed, the deadline (MaxRuntimeInSeconds), stop requests, and the first instance that fails
stopping the others (SIGTERM, grace period, SIGKILL, by the engine). Engine-neutral: it drives
an `Engine` (runtime/protocol.py)."""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable, Sequence

from localproc.execution.outcome import DEADLINE_REASON, InstanceResult
from localproc.execution.stop import StopSignal
from localproc.records.telemetry import RunTelemetry
from localproc.runtime.logs import LogSink
from localproc.runtime.protocol import Engine, LogFollower

STOP_CHECK_SECONDS = 0.2


class _Usage:
    def __init__(self) -> None:
        self.peak_memory_bytes: int | None = None
        self.cpu_seconds: float | None = None


class Watch:
    def __init__(
        self,
        engine: Engine,
        hosts: Sequence[str],
        sink: LogSink,
        stop: StopSignal,
        grace_seconds: float,
        on_stopping: Callable[[], None],
        telemetry: RunTelemetry | None = None,
    ) -> None:
        self._engine = engine
        self._hosts = list(hosts)
        self._sink = sink
        self._stop = stop
        self._grace = grace_seconds
        self._on_stopping = on_stopping  # called once, when a stop of the whole job begins
        self._telemetry = telemetry  # the console's figures: phase times, usage samples
        self._stopping_announced = False
        self._stopping: set[str] = set()
        self._killed = False
        self._lock = threading.Lock()
        self._usage = {host: _Usage() for host in self._hosts}
        self._followers: dict[str, LogFollower] = {}

    def run(self, deadline: float | None) -> list[InstanceResult]:
        """Start every instance and wait for all of them; results in host order. `deadline`
        (time.monotonic) is when the job is stopped (MaxRuntimeInSeconds); a stop request takes
        effect within a fraction of a second."""
        finished: queue.Queue[InstanceResult] = queue.Queue()
        self._engine.start_instances()
        if self._telemetry is not None:
            self._telemetry.containers_started(self._hosts)
        self._followers = {host: self._engine.follow_log(host, self._sink) for host in self._hosts}
        for host in self._hosts:
            threading.Thread(target=self._sample_usage, args=(host,), daemon=True).start()
            threading.Thread(target=self._wait, args=(host, finished), daemon=True).start()
        results: dict[str, InstanceResult] = {}
        while len(results) < len(self._hosts):
            self._act_on_stop_request(deadline)
            try:
                result = finished.get(timeout=_wake_after(deadline))
            except queue.Empty:
                continue
            results[result.host] = result
            if result.exit_code != 0:
                self._stop_all(except_host=result.host)
        for host in self._hosts:
            self._followers[host].finish()
        self._sink.close()
        return [results[host] for host in self._hosts]

    def _act_on_stop_request(self, deadline: float | None) -> None:
        if deadline is not None and time.monotonic() >= deadline and not self._stop.requested:
            self._stop.request(DEADLINE_REASON)
        if self._stop.requested and not self._stopping_announced:
            self._stopping_announced = True
            self._on_stopping()
        if self._stop.kill_now and not self._killed:
            self._killed = True
            for host in self._hosts:
                self._engine.kill(host)
        elif self._stop.requested:
            self._stop_all()

    def _stop_all(self, except_host: str | None = None) -> None:
        """Stop every instance not being stopped yet, each in the background."""
        for host in self._hosts:
            with self._lock:
                if host == except_host or host in self._stopping:
                    continue
                self._stopping.add(host)
            threading.Thread(
                target=self._engine.stop, args=(host, self._grace), daemon=True
            ).start()

    def _sample_usage(self, host: str) -> None:
        usage = self._usage[host]
        for sample in self._engine.stats(host):
            if self._telemetry is not None:
                self._telemetry.sample(
                    host, sample.memory_bytes, sample.peak_memory_bytes, sample.cpu_seconds
                )
            if sample.peak_memory_bytes:
                usage.peak_memory_bytes = max(
                    usage.peak_memory_bytes or 0, sample.peak_memory_bytes
                )
            if sample.cpu_seconds:
                usage.cpu_seconds = max(usage.cpu_seconds or 0.0, sample.cpu_seconds)

    def _wait(self, host: str, finished: queue.Queue[InstanceResult]) -> None:
        ended = self._engine.wait(host)
        with self._lock:
            stopped = host in self._stopping
        self._followers[host].exited()
        if self._telemetry is not None:
            self._telemetry.container_ended(host, ended.exit_code, stopped, ended.oom_killed)
        usage = self._usage[host]
        finished.put(
            InstanceResult(
                host, ended.exit_code, ended.oom_killed, stopped,
                usage.peak_memory_bytes, usage.cpu_seconds,
            )
        )  # fmt: skip


def _wake_after(deadline: float | None) -> float:
    # Results arrive through the queue at once; the timeout only bounds how late a stop request
    # or the deadline is noticed. Once the deadline has passed (the job is stopping), the plain
    # interval: a timeout of zero would turn the wait into a busy loop for the grace period.
    remaining = None if deadline is None else deadline - time.monotonic()
    if remaining is None or remaining <= 0:
        return STOP_CHECK_SECONDS
    return min(STOP_CHECK_SECONDS, remaining)
