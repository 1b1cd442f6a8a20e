"""A small HTTP/1.1 server whose cost does not grow with its connections: one thread waits on
every connection at once (a selector) and reads each request whole — request line, headers and
Content-Length body — and only then hands it to one of a fixed pool of worker threads, which
answers it. A connection that sends nothing, or a request head slowly, costs a file descriptor,
never a thread, and is closed when its deadline passes (HEAD_SECONDS for a request's line and
headers, IDLE_SECONDS between the requests of a kept-alive connection, BODY_SECONDS for a whole
body from the end of its head, however it trickles); beyond MAX_CONNECTIONS the oldest connection
is closed to make room. An answer is written with a deadline per step (WRITE_PROGRESS_SECONDS
without the client taking any of it closes the connection) and in all (WRITE_SECONDS), so
clients that do not read hold the workers briefly.

Memory is bounded across connections, not only per connection: each request is charged the bytes
it holds (what has arrived, plus at most BODY_ALLOWANCE for the next read of a body still
coming; a declared Content-Length costs nothing until it is sent) from its first byte until its
handler is done, and a request whose charge would take the total over
MAX_BUFFERED_BYTES is answered 503 ThrottlingException and its connection closed, so a crowd of
clients that each send most of a large body cannot make the server hold more than that.

Handlers are `http.server.BaseHTTPRequestHandler` subclasses, as with the standard library's
servers; each instance answers one request read in full, from an in-memory rfile.

This module is the selector thread and the worker pool; http_budgets.py decides what a
connection may cost (the framing of a request, the memory budget, the deadlines of a body and
of an answer).
"""

from __future__ import annotations

import contextlib
import io
import queue
import selectors
import socket
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler
from typing import Any

# What a connection may cost (framing, the memory budget, deadlines) is http_budgets.py's; its
# settings stay importable from here.
from localproc.serve.http_budgets import (
    BODY_ALLOWANCE,
    BODY_SECONDS,
    MAX_BUFFERED_BYTES,
    MAX_HEAD_BYTES,
    REFUSAL_NOTE_SECONDS,
    THROTTLED_ANSWER,
    WRITE_PROGRESS_SECONDS,
    WRITE_SECONDS,
    MemoryBudget,
    _Connection,
    _ProgressWriter,
    bytes_needed,
    complete_request,
)

__all__ = [
    "BODY_ALLOWANCE",
    "BODY_SECONDS",
    "HEAD_SECONDS",
    "IDLE_SECONDS",
    "MAX_BUFFERED_BYTES",
    "MAX_CONNECTIONS",
    "MAX_HEAD_BYTES",
    "REFUSAL_NOTE_SECONDS",
    "WORKERS",
    "WRITE_PROGRESS_SECONDS",
    "WRITE_SECONDS",
    "BoundedHTTPServer",
    "OneRequestHandler",
]

WORKERS = 16
MAX_CONNECTIONS = 512
HEAD_SECONDS = 5.0
IDLE_SECONDS = 30.0
LISTEN_BACKLOG = 64


class OneRequestHandler(BaseHTTPRequestHandler):
    """Answers the one request in `data`; `close_connection` then says whether the connection
    may carry another."""

    def __init__(self, connection: _Connection, data: bytes, server: BoundedHTTPServer) -> None:
        self._data = data
        super().__init__(connection.sock, connection.address, server)  # type: ignore[arg-type]

    def setup(self) -> None:
        self.connection = self.request
        self.connection.settimeout(WRITE_PROGRESS_SECONDS)  # a client that does not read
        self.rfile = io.BytesIO(self._data)
        self.wfile = _ProgressWriter(self.connection)  # type: ignore[assignment]

    def handle(self) -> None:
        self.close_connection = True
        self.handle_one_request()

    def finish(self) -> None:
        with contextlib.suppress(OSError):
            self.wfile.flush()


class BoundedHTTPServer:
    address_family = socket.AF_INET

    def __init__(
        self,
        address: tuple[str, int],
        handler_class: Callable[[_Connection, bytes, BoundedHTTPServer], Any],
        max_body_bytes: int,
        max_buffered_bytes: int = MAX_BUFFERED_BYTES,
    ) -> None:
        self.handler_class = handler_class
        self.max_body_bytes = max_body_bytes
        # One request of the largest size must always fit, whatever the setting.
        self.max_buffered_bytes = max(max_buffered_bytes, max_body_bytes + 2 * MAX_HEAD_BYTES)
        self._budget = MemoryBudget(self.max_buffered_bytes)
        self.socket = socket.socket(self.address_family, socket.SOCK_STREAM)
        try:
            self.socket.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            self.socket.bind(address)
            self.socket.listen(LISTEN_BACKLOG)
        except OSError:
            self.socket.close()
            raise
        self.socket.setblocking(False)
        self.server_address = self.socket.getsockname()
        self._selector = selectors.DefaultSelector()
        self._waker, self._wake_signal = socket.socketpair()
        self._waker.setblocking(False)
        self._wake_signal.setblocking(False)  # a full pipe already means "wake up"
        self._returned: queue.SimpleQueue[_Connection] = queue.SimpleQueue()
        self._work: queue.SimpleQueue[tuple[_Connection, bytes] | None] = queue.SimpleQueue()
        self._waiting: dict[_Connection, None] = {}  # in accept order: the oldest first
        self._shutdown = threading.Event()
        self._stopped = threading.Event()
        self._workers: list[threading.Thread] = []

    # -- what subclasses may override --
    def handle_error(self, request: Any, client_address: Any) -> None:
        pass

    def note_dropped(self, client_address: Any, detail: str) -> None:
        pass

    # -- running --
    def serve_forever(self, poll_interval: float = 0.5) -> None:
        self._stopped.clear()
        self._workers = [
            threading.Thread(target=self._work_loop, name=f"http-worker-{i}", daemon=True)
            for i in range(WORKERS)
        ]
        for worker in self._workers:
            worker.start()
        self._selector.register(self.socket, selectors.EVENT_READ, "listen")
        self._selector.register(self._waker, selectors.EVENT_READ, "wake")
        try:
            while not self._shutdown.is_set():
                self._poll(poll_interval)
        finally:
            with contextlib.suppress(KeyError, ValueError):
                self._selector.unregister(self.socket)
            with contextlib.suppress(KeyError, ValueError):
                self._selector.unregister(self._waker)
            for _ in self._workers:
                self._work.put(None)
            self._stopped.set()

    def shutdown(self) -> None:
        self._shutdown.set()
        with contextlib.suppress(OSError):
            self._wake_signal.send(b"x")
        self._stopped.wait()

    def server_close(self) -> None:
        self.socket.close()
        for connection in list(self._waiting):
            self._close(connection)
        self._selector.close()
        self._waker.close()
        self._wake_signal.close()

    # -- the selector thread --
    def _poll(self, poll_interval: float) -> None:
        moment = time.monotonic()
        nearest = min((c.deadline for c in self._waiting), default=moment + poll_interval)
        timeout = max(0.0, min(poll_interval, nearest - moment))
        for key, _ in self._selector.select(timeout):
            if key.data == "listen":
                self._accept()
            elif key.data == "wake":
                with contextlib.suppress(OSError):
                    while self._waker.recv(4096):
                        pass
            else:
                self._read(key.data)
        while True:
            try:
                connection = self._returned.get_nowait()
            except queue.Empty:
                break
            self._wait_for_request(connection, time.monotonic() + IDLE_SECONDS)
        moment = time.monotonic()
        for connection in [c for c in self._waiting if c.deadline <= moment]:
            if connection.buffer:
                self.note_dropped(
                    connection.address,
                    f"the request did not arrive in time ({len(connection.buffer)} bytes received)",
                )
            self._close(connection)

    def _accept(self) -> None:
        while True:
            try:
                sock, address = self.socket.accept()
            except (BlockingIOError, InterruptedError):
                return
            except OSError:  # out of file descriptors, or the like: try again later
                return
            while len(self._waiting) >= MAX_CONNECTIONS:
                self._close(next(iter(self._waiting)))
            sock.setblocking(False)
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            connection = _Connection(sock, address, time.monotonic() + HEAD_SECONDS)
            self._waiting[connection] = None
            self._selector.register(sock, selectors.EVENT_READ, connection)

    def _wait_for_request(self, connection: _Connection, deadline: float) -> None:
        """Back from a worker: the next request may already be buffered (pipelining)."""
        if not self._charge(connection):
            self._refuse_for_memory(connection)
            return
        if self._dispatch_if_complete(connection):
            return
        connection.deadline = deadline if not connection.buffer else time.monotonic() + HEAD_SECONDS
        try:
            connection.sock.setblocking(False)
            self._selector.register(connection.sock, selectors.EVENT_READ, connection)
        except (OSError, ValueError):
            connection.sock.close()
            return
        self._waiting[connection] = None

    def _read(self, connection: _Connection) -> None:
        try:
            data = connection.sock.recv(65536)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            data = b""
        if not data:
            if connection.buffer:
                self.note_dropped(
                    connection.address,
                    f"the client closed the connection after {len(connection.buffer)} bytes of "
                    "an incomplete request",
                )
            self._close(connection)
            return
        if not connection.buffer:  # a request starts: its head must come soon
            connection.deadline = time.monotonic() + HEAD_SECONDS
        connection.buffer += data
        self._unregister(connection)
        if not self._charge(connection):
            self._refuse_for_memory(connection)
            return
        if not self._dispatch_if_complete(connection):
            self._waiting[connection] = None
            self._selector.register(connection.sock, selectors.EVENT_READ, connection)

    def _dispatch_if_complete(self, connection: _Connection) -> bool:
        length = complete_request(connection, self.max_body_bytes)
        if length is None:
            return False
        self._dispatch(connection, length)
        return True

    def _dispatch(self, connection: _Connection, length: int) -> None:
        with memoryview(connection.buffer) as view:
            request = bytes(view[:length])
            rest = bytearray(view[length:])
        connection.buffer = rest  # a new one: the old, large allocation is freed now
        self._waiting.pop(connection, None)
        self._work.put((connection, request))

    # -- the memory budget (the selector thread and the workers both charge and release) --
    def _charge(self, connection: _Connection) -> bool:
        return self._budget.charge(connection, bytes_needed(connection.buffer, self.max_body_bytes))

    def _release(self, connection: _Connection) -> None:
        self._budget.release(connection)

    def _refuse_for_memory(self, connection: _Connection) -> None:
        """Answer 503 ThrottlingException (best effort: the socket does not block) and close."""
        with contextlib.suppress(OSError):
            connection.sock.send(THROTTLED_ANSWER)
        count = self._budget.refused()
        if count is not None:
            self.note_dropped(
                connection.address,
                f"request refused (503 ThrottlingException): {count} request(s) would take the "
                f"bytes held for requests over {self.max_buffered_bytes // (1024 * 1024)} MiB "
                f"(noted at most every {REFUSAL_NOTE_SECONDS:g} s)",
            )
        self._close(connection)

    def _unregister(self, connection: _Connection) -> None:
        self._waiting.pop(connection, None)
        with contextlib.suppress(KeyError, ValueError):
            self._selector.unregister(connection.sock)

    def _close(self, connection: _Connection) -> None:
        self._unregister(connection)
        self._release(connection)
        with contextlib.suppress(OSError):
            connection.sock.close()

    # -- the workers --
    def _work_loop(self) -> None:
        while True:
            item = self._work.get()
            if item is None:
                return
            connection, request = item
            item = None
            keep = False
            try:
                connection.sock.setblocking(True)
                handler = self.handler_class(connection, request, self)
                keep = not handler.close_connection and not self._shutdown.is_set()
                handler = None
            except Exception:
                self.handle_error(connection.sock, connection.address)
            request = b""
            # The request is answered and freed: what stays charged is what is buffered after
            # it (a pipelined request), which the selector thread charges anew as it reads.
            self._release(connection)
            if keep:
                self._returned.put(connection)
                with contextlib.suppress(OSError):
                    self._wake_signal.send(b"x")
            else:
                with contextlib.suppress(OSError):
                    connection.sock.shutdown(socket.SHUT_RDWR)
                with contextlib.suppress(OSError):
                    connection.sock.close()
