"""Who is running a job, and whether that process still lives: a PID alone is not enough, since
PIDs are reused, so a process is identified by its PID, its start time and its host."""

from __future__ import annotations

import socket
from typing import Any


def process_identity() -> dict[str, Any]:
    """What identifies this process, even after its PID is reused."""
    import psutil

    me = psutil.Process()
    return {
        "RunnerPid": me.pid,
        "RunnerStartTime": me.create_time(),
        "RunnerHost": socket.gethostname(),
    }


def identity_alive(info: dict[str, Any]) -> bool:
    """Whether the process `info` names still runs. Another host's process cannot be checked,
    so it counts as alive: nothing of it is touched."""
    import psutil

    pid = info.get("RunnerPid")
    expected = info.get("RunnerStartTime")
    # Without its start time a PID proves nothing (PIDs are reused): such a process is never
    # taken for the runner, so it is never signalled either.
    if not _is_number(pid) or isinstance(pid, float) or pid <= 0 or not _is_number(expected):
        return False
    if info.get("RunnerHost") not in (None, socket.gethostname()):
        return True
    try:
        process = psutil.Process(pid)
        started = process.create_time()
        if process.status() == psutil.STATUS_ZOMBIE:
            return False
    except (psutil.Error, ValueError, OverflowError):
        return False
    return abs(started - float(expected)) < 1.0


def _is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def runner_label(identity: dict[str, Any]) -> str:
    """The identity as a Docker label value, so `gc` can judge leftovers without the record."""
    return f"{identity['RunnerPid']}/{identity['RunnerStartTime']}/{identity['RunnerHost']}"


def identity_from_label(label: str) -> dict[str, Any]:
    pid, start, host = (label.split("/", 2) + ["", ""])[:3]
    try:
        return {"RunnerPid": int(pid), "RunnerStartTime": float(start), "RunnerHost": host}
    except ValueError:
        return {}
