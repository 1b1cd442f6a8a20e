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
    if not isinstance(pid, int) or isinstance(pid, bool):
        return False
    if info.get("RunnerHost") not in (None, socket.gethostname()):
        return True
    try:
        process = psutil.Process(pid)
        started = process.create_time()
        if process.status() == psutil.STATUS_ZOMBIE:
            return False
    except psutil.Error:
        return False
    expected = info.get("RunnerStartTime")
    if not isinstance(expected, int | float) or isinstance(expected, bool):
        return expected is None
    return abs(started - float(expected)) < 1.0
