"""What a run keeps for the console to draw, beside the record (paths: records.layout): the plan it
executed, when each phase started and ended, and each instance's memory and CPU over time.

Best effort by design: telemetry is for looking, never for deciding, so a write that fails (a
full disk) loses figures, never the job; readers skip what they cannot parse (a line cut short by
a crash, a file damaged by hand).

phases.json:
    {"Staging": {"Start": T, "End": T}, "Uploading": {...},
     "Instances": {"algo-1": {"Start": T, "End": T, "ExitCode": 0, "Stopped": false,
                              "OomKilled": false}}}
algo-N.usage.jsonl, one sample a line:
    {"T": epoch seconds, "MemoryBytes": current usage, "PeakMemoryBytes": high-water mark,
     "CpuSeconds": CPU time so far}
"""

from __future__ import annotations

import contextlib
import json
import os
import stat
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from localproc.records.durable import atomic_write_text
from localproc.records.layout import JobFolder

MIN_SAMPLE_SECONDS = 1.0  # at most one sample per instance per second is kept
MAX_SERIES_BYTES = 32 << 20  # a series file stops growing here (a week at 1/s is ~50 MB)
_READ_LIMIT = MAX_SERIES_BYTES + 4096


class RunTelemetry:
    """The writer, owned by one run. Thread-safe: the watch's threads note their instances."""

    def __init__(self, folder: JobFolder, clock: Any = time.time) -> None:
        self._folder = folder
        self._clock = clock
        self._lock = threading.Lock()
        self._phases: dict[str, Any] = {"Instances": {}}
        self._last_sample: dict[str, float] = {}
        self._series_bytes: dict[str, int] = {}

    def plan(self, document: dict[str, Any]) -> None:
        self._write(self._folder.plan, json.dumps(document, indent=1))

    @contextlib.contextmanager
    def phase(self, name: str) -> Iterator[None]:
        """`Staging` or `Uploading`: its start now, its end when the block is left."""
        self._set(name, {"Start": self._clock()})
        try:
            yield
        finally:
            with self._lock:
                self._phases[name]["End"] = self._clock()
            self._flush()

    def containers_started(self, hosts: list[str]) -> None:
        moment = self._clock()
        with self._lock:
            for host in hosts:
                self._phases["Instances"][host] = {"Start": moment}
        self._flush()

    def container_ended(self, host: str, exit_code: int, stopped: bool, oom_killed: bool) -> None:
        with self._lock:
            entry = self._phases["Instances"].setdefault(host, {})
            entry.update(
                {"End": self._clock(), "ExitCode": exit_code, "Stopped": stopped,
                 "OomKilled": oom_killed}
            )  # fmt: skip
        self._flush()

    def sample(
        self,
        host: str,
        memory_bytes: int | None,
        peak_memory_bytes: int | None,
        cpu_seconds: float | None,
    ) -> None:
        moment = self._clock()
        with self._lock:
            if moment - self._last_sample.get(host, float("-inf")) < MIN_SAMPLE_SECONDS:
                return
            self._last_sample[host] = moment
            line = json.dumps(
                {"T": round(moment, 3), "MemoryBytes": memory_bytes,
                 "PeakMemoryBytes": peak_memory_bytes, "CpuSeconds": cpu_seconds}
            ).encode() + b"\n"  # fmt: skip
            written = self._series_bytes.get(host, 0)
            if written + len(line) > MAX_SERIES_BYTES:
                return
            self._series_bytes[host] = written + len(line)
        path = self._folder.usage_series(host)
        with contextlib.suppress(OSError):
            path.parent.mkdir(mode=0o700, exist_ok=True)
            fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o600)
            try:
                os.write(fd, line)
            finally:
                os.close(fd)

    def _set(self, name: str, value: Any) -> None:
        with self._lock:
            self._phases[name] = value
        self._flush()

    def _flush(self) -> None:
        with self._lock:
            text = json.dumps(self._phases)
        self._write(self._folder.phases, text)

    def _write(self, path: Path, text: str) -> None:
        with contextlib.suppress(OSError):
            path.parent.mkdir(mode=0o700, exist_ok=True)
            atomic_write_text(path, text)


# -- readers -------------------------------------------------------------------------------------
def read_phases(folder: JobFolder) -> dict[str, Any]:
    """phases.json as written, or {} when there is none (a job that ran no container, an older
    localproc) or it cannot be read."""
    value = _read_json(folder.phases)
    return value if isinstance(value, dict) else {}


def read_plan(folder: JobFolder) -> dict[str, Any] | None:
    value = _read_json(folder.plan)
    return value if isinstance(value, dict) else None


def read_usage_series(folder: JobFolder, host: str) -> list[dict[str, float | int | None]]:
    """An instance's samples in time order; lines that are not a sample are skipped."""
    data = _read_bytes(folder.usage_series(host))
    samples = []
    for raw in (data or b"").splitlines():
        try:
            item = json.loads(raw)
        except ValueError:
            continue
        if isinstance(item, dict) and _number(item.get("T")):
            samples.append(
                {key: item.get(key) if _number(item.get(key)) else None
                 for key in ("T", "MemoryBytes", "PeakMemoryBytes", "CpuSeconds")}
            )  # fmt: skip
    samples.sort(key=lambda s: s["T"] or 0)
    return samples


def _number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _read_json(path: Path) -> Any:
    data = _read_bytes(path)
    if data is None:
        return None
    try:
        return json.loads(data)
    except ValueError:
        return None


def _read_bytes(path: Path) -> bytes | None:
    # localproc writes these files, but never follow a link or block on a FIFO found there.
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError:
        return None
    with os.fdopen(fd, "rb") as handle:
        if not stat.S_ISREG(os.fstat(handle.fileno()).st_mode):
            return None
        return handle.read(_READ_LIMIT)
