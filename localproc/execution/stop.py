"""The run's one stop signal: set by signal handlers, the deadline and `request_stop`; read by
staging (no further download), the watch (stop or kill the containers) and the uploads (a
second Ctrl-C abandons them)."""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Iterator
from typing import Any


class StopSignal:
    """Only sets fields, so it is safe to call from a signal handler."""

    def __init__(self) -> None:
        self.reason: str | None = None  # the first reason given wins
        self.kill_now = False  # kill the containers at once, abandon the uploads

    def request(self, reason: str, immediately: bool = False) -> None:
        if self.reason is None:
            self.reason = reason
        self.kill_now = self.kill_now or immediately

    @property
    def requested(self) -> bool:
        return self.reason is not None


@contextlib.contextmanager
def stop_on_signals(stop: StopSignal) -> Iterator[None]:
    """SIGINT and SIGTERM stop the job instead of ending this process; a second SIGINT kills
    the containers and abandons the uploads. Only in the main thread (elsewhere: nothing)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    interrupts = 0

    def on_interrupt(signum: int, _frame: Any) -> None:
        nonlocal interrupts
        interrupts += 1
        stop.request("interrupted (Ctrl-C)", immediately=interrupts > 1)

    def on_terminate(signum: int, _frame: Any) -> None:
        stop.request("stop requested")

    previous = {
        signal.SIGINT: signal.signal(signal.SIGINT, on_interrupt),
        signal.SIGTERM: signal.signal(signal.SIGTERM, on_terminate),
    }
    try:
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
