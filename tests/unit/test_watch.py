"""The engine-neutral watch (execution/watch.py) against a fake `Engine`: the first failure
stops the others, the deadline and stop requests stop every instance, a kill request kills.
No Docker: this is what a second engine implementation plugs into."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path

from localproc.execution.outcome import DEADLINE_REASON
from localproc.execution.stop import StopSignal
from localproc.execution.watch import Watch
from localproc.runtime.logs import LogSink
from localproc.runtime.protocol import InstanceExit, UsageSample


class _Follower:
    def __init__(self, sink: LogSink, host: str) -> None:
        self.sink, self.host = sink, host

    def exited(self) -> None:
        self.sink.write(self.host, b"bye\n")

    def finish(self) -> None:
        self.sink.end(self.host)


class FakeEngine:
    """Instances that end by themselves after `runs[host]` seconds with `codes[host]`, or when
    stopped (143) or killed (137)."""

    def __init__(self, runs: dict[str, float | None], codes: dict[str, int]) -> None:
        self.runs, self.codes = runs, codes
        self.ended = {host: threading.Event() for host in runs}
        self.exit: dict[str, int] = {}
        self.calls: list[tuple[str, str]] = []

    def start_instances(self) -> None:
        for host, seconds in self.runs.items():
            if seconds is not None:
                threading.Timer(seconds, self._end, (host, self.codes.get(host, 0))).start()

    def _end(self, host: str, code: int) -> None:
        self.exit.setdefault(host, code)
        self.ended[host].set()

    def wait(self, host: str) -> InstanceExit:
        self.ended[host].wait()
        return InstanceExit(self.exit[host], False)

    def stop(self, host: str, grace_seconds: float) -> None:
        self.calls.append(("stop", host))
        self._end(host, 143)

    def kill(self, host: str) -> None:
        self.calls.append(("kill", host))
        self._end(host, 137)

    def follow_log(self, host: str, sink: LogSink) -> _Follower:
        return _Follower(sink, host)

    def stats(self, host: str) -> Iterator[UsageSample]:
        yield UsageSample(100 * 2**20, 0.5)


def watch(  # type: ignore[no-untyped-def]
    tmp_path: Path, engine: FakeEngine, stop: StopSignal, deadline: float | None = None
):
    stopping: list[bool] = []
    sink = LogSink(None, tmp_path / "logs")
    hosts = list(engine.runs)
    runner = Watch(engine, hosts, sink, stop, 0.1, lambda: stopping.append(True))  # type: ignore[arg-type]
    return runner.run(deadline), stopping


def test_every_instance_ending_well_gives_their_results_in_host_order(tmp_path: Path) -> None:
    engine = FakeEngine({"algo-1": 0.2, "algo-2": 0.05}, {})
    results, stopping = watch(tmp_path, engine, StopSignal())
    assert [(r.host, r.exit_code, r.stopped_by_us) for r in results] == [
        ("algo-1", 0, False),
        ("algo-2", 0, False),
    ]
    assert results[0].peak_memory_bytes == 100 * 2**20 and not stopping and not engine.calls
    assert (tmp_path / "logs" / "algo-1.log").read_bytes() == b"bye\n"


def test_the_first_failure_stops_the_others_which_count_as_stopped_by_us(tmp_path: Path) -> None:
    engine = FakeEngine({"algo-1": None, "algo-2": 0.05}, {"algo-2": 3})
    stop = StopSignal()
    results, stopping = watch(tmp_path, engine, stop)
    assert [(r.exit_code, r.stopped_by_us) for r in results] == [(143, True), (3, False)]
    assert engine.calls[0] == ("stop", "algo-1") and not stop.requested and not stopping


def test_the_deadline_stops_every_instance_and_says_so(tmp_path: Path) -> None:
    engine = FakeEngine({"algo-1": None, "algo-2": None}, {})
    stop = StopSignal()
    started = time.monotonic()
    results, stopping = watch(tmp_path, engine, stop, deadline=time.monotonic() + 0.3)
    assert stop.reason == DEADLINE_REASON and stopping == [True]
    assert time.monotonic() - started < 2
    assert all(r.stopped_by_us and r.exit_code == 143 for r in results)


def test_a_kill_request_kills_at_once(tmp_path: Path) -> None:
    engine = FakeEngine({"algo-1": None}, {})
    stop = StopSignal()
    threading.Timer(0.1, stop.request, ("interrupted (Ctrl-C)", True)).start()
    results, stopping = watch(tmp_path, engine, stop)
    assert ("kill", "algo-1") in engine.calls and results[0].exit_code == 137
    assert stopping == [True]


def test_the_watch_records_each_container_s_times_outcome_and_samples(tmp_path: Path) -> None:
    from localproc.records.layout import StateDir
    from localproc.records.telemetry import RunTelemetry, read_phases, read_usage_series

    folder = StateDir(tmp_path).job("watched")
    folder.path.mkdir(parents=True)
    engine = FakeEngine({"algo-1": None, "algo-2": 0.05}, {"algo-2": 3})
    sink = LogSink(None, tmp_path / "logs")
    telemetry = RunTelemetry(folder)
    Watch(engine, ["algo-1", "algo-2"], sink, StopSignal(), 0.1, lambda: None, telemetry).run(None)  # type: ignore[arg-type]
    phases = read_phases(folder)["Instances"]
    assert phases["algo-1"]["ExitCode"] == 143 and phases["algo-1"]["Stopped"] is True
    assert phases["algo-2"]["ExitCode"] == 3 and phases["algo-2"]["Stopped"] is False
    assert phases["algo-2"]["Start"] <= phases["algo-2"]["End"]
    for host in ("algo-1", "algo-2"):  # sampled on threads of their own: may come just after
        deadline = time.monotonic() + 10
        while not read_usage_series(folder, host) and time.monotonic() < deadline:
            time.sleep(0.01)
        assert read_usage_series(folder, host)[0]["PeakMemoryBytes"] == 100 * 2**20
