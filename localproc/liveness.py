"""Who is running a job, and whether that process still lives: a PID alone is not enough, since
PIDs are reused, so a process is identified by its PID, its start time and its host.

`RunnerIdentity` is the typed form; in a record (and in a claim file) it is the members
`RunnerPid`, `RunnerStartTime`, `RunnerHost`; on a Docker object it is one label value,
`PID/START/HOST`. The dict functions below (`process_identity`, `identity_alive`,
`runner_label`, `identity_from_label`) are the same rules for callers that hold dicts."""

from __future__ import annotations

import socket
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class RunnerIdentity:
    """A process, told apart from any later process that reuses its PID."""

    pid: int
    start_time: float  # as psutil gives it: seconds since the epoch
    host: str | None  # None: this host (a record written by hand may lack it)

    @classmethod
    def current(cls) -> RunnerIdentity:
        """This process."""
        import psutil

        me = psutil.Process()
        return cls(me.pid, me.create_time(), socket.gethostname())

    @classmethod
    def from_record(cls, info: Mapping[str, Any] | None) -> RunnerIdentity | None:
        """The identity in a record's (or claim's) members, or None when they name no process
        that could be checked: a PID without its start time proves nothing."""
        info = info or {}
        pid, start, host = (
            info.get("RunnerPid"),
            info.get("RunnerStartTime"),
            info.get("RunnerHost"),
        )
        if not _is_number(pid) or isinstance(pid, float) or pid <= 0 or not _is_number(start):
            return None
        # A host that is not a string is not this host: its process is never touched.
        return cls(pid, start, host if host is None or isinstance(host, str) else str(host))

    @classmethod
    def from_label(cls, label: str) -> RunnerIdentity | None:
        """The identity a Docker label value (`label()`) names, or None for a malformed one."""
        pid, start, host = (label.split("/", 2) + ["", ""])[:3]
        try:
            return cls(int(pid), float(start), host)
        except ValueError:
            return None

    def label(self) -> str:
        """As a Docker label value, so `gc` can judge leftovers without the record."""
        return f"{self.pid}/{self.start_time}/{self.host}"

    def to_record(self) -> dict[str, Any]:
        """The record's members (`RunnerPid`, `RunnerStartTime`, `RunnerHost`; no host: none)."""
        members: dict[str, Any] = {"RunnerPid": self.pid, "RunnerStartTime": self.start_time}
        return members if self.host is None else {**members, "RunnerHost": self.host}

    def on_this_host(self) -> bool:
        return self.host in (None, socket.gethostname())

    def alive(self) -> bool:
        """Whether the process still runs. Another host's process cannot be checked, so it
        counts as alive: nothing of it is touched."""
        import psutil

        if not self.on_this_host():
            return True
        try:
            process = psutil.Process(self.pid)
            started = process.create_time()
            if process.status() == psutil.STATUS_ZOMBIE:
                return False
        except (psutil.Error, ValueError, OverflowError):
            return False
        return abs(started - float(self.start_time)) < 1.0


def process_identity() -> dict[str, Any]:
    """What identifies this process, even after its PID is reused (the record's members)."""
    return RunnerIdentity.current().to_record()


def identity_alive(info: dict[str, Any]) -> bool:
    """Whether the process `info` names still runs. Another host's process cannot be checked,
    so it counts as alive: nothing of it is touched."""
    # Without its start time a PID proves nothing (PIDs are reused): such a process is never
    # taken for the runner, so it is never signalled either.
    identity = RunnerIdentity.from_record(info)
    if identity is None:
        return False
    if info.get("RunnerHost") not in (None, socket.gethostname()):
        return True  # also a host that is not a string: it is not this one
    return identity.alive()


def _is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def runner_label(identity: dict[str, Any]) -> str:
    """The identity as a Docker label value, so `gc` can judge leftovers without the record."""
    return f"{identity['RunnerPid']}/{identity['RunnerStartTime']}/{identity['RunnerHost']}"


def identity_from_label(label: str) -> dict[str, Any]:
    identity = RunnerIdentity.from_label(label)
    return {} if identity is None else identity.to_record()
