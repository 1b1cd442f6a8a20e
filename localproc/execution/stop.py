"""The run's one stop signal: set by signal handlers, the deadline and `request_stop`; read by
staging (no further download), the watch (stop or kill the containers) and the uploads (a
second Ctrl-C abandons them). And `interrupts_deferred`, for code that must not be cut short
by a Ctrl-C between two steps."""

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


@contextlib.contextmanager
def interrupts_deferred() -> Iterator[None]:
    """A SIGINT (Ctrl-C) that comes inside is taken at the end of the block instead of where it
    lands: code that starts a process cannot lose it half-started (a KeyboardInterrupt inside
    subprocess.Popen loses a child that already runs). It is raised again, to the handler that
    was in place, on the way out, also when the block raises. Only in the main thread (signal
    handlers run nowhere else)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    received: list[int] = []
    previous = signal.signal(signal.SIGINT, lambda signum, _frame: received.append(signum))
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, signal.SIG_DFL if previous is None else previous)
        if received:
            signal.raise_signal(signal.SIGINT)  # the default handler raises KeyboardInterrupt
