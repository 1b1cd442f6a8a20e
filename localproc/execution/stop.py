"""The run's one stop signal: set by signal handlers, the deadline and `request_stop`; read by
staging (no further download), the watch (stop or kill the containers) and the uploads (a
second Ctrl-C abandons them). And `giving_up_on_signals`, for a caller that waits on a run it
started (`run --detach`)."""

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


# Dispositions that say nothing of the caller's own: the interpreter's default, or the one a
# shell without job control gives a background command (SIGINT ignored).
_NOT_THE_CALLERS_OWN = (signal.default_int_handler, signal.SIG_DFL, signal.SIG_IGN, None)


@contextlib.contextmanager
def giving_up_on_signals() -> Iterator[StopSignal]:
    """Inside, SIGINT (Ctrl-C) and SIGTERM only set the yielded signal; the block polls it where
    it can act on it. Never a KeyboardInterrupt where it lands: one inside subprocess.Popen loses
    a child that already runs. As for `run` in the foreground, also when SIGINT was ignored on
    entry (a background command of a shell without job control). A handler of the caller's own
    (a pipeline's stop) is left in place. Only in the main thread (elsewhere: nothing)."""
    stop = StopSignal()
    if threading.current_thread() is not threading.main_thread():
        yield stop
        return

    def on_signal(signum: int, _frame: Any) -> None:
        stop.request("interrupted (Ctrl-C)" if signum == signal.SIGINT else "stop requested")

    previous = {
        signum: signal.signal(signum, on_signal)
        for signum in (signal.SIGINT, signal.SIGTERM)
        if signal.getsignal(signum) in _NOT_THE_CALLERS_OWN
    }
    try:
        yield stop
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, signal.SIG_DFL if handler is None else handler)
