"""What one connection of httpserve.py's server may cost, and for how long: the framing that tells
how many bytes a request will hold once it is whole (its head, then its Content-Length body),
the deadline of a body, the memory budget that every connection's request is charged against,
and the write deadlines of an answer.

The selector thread and the workers both charge and release: a request is charged from its first
byte until its handler is done (see httpserve.py's docstring), so the budget is the one piece of
state they share, behind its own lock.
"""

from __future__ import annotations

import re
import socket
import threading
import time
from dataclasses import dataclass, field
from typing import Any

BODY_SECONDS = 60.0  # for a whole body, from the end of its head (bytes do not extend it)
WRITE_SECONDS = 30.0  # for a whole answer
WRITE_PROGRESS_SECONDS = 2.0  # a client that takes none of its answer for this long is dropped
BODY_ALLOWANCE = 64 * 1024  # charged beyond a body's received bytes: what the next read may add
MAX_HEAD_BYTES = 64 * 1024
MAX_BUFFERED_BYTES = 64 * 1024 * 1024  # requests' bytes held at once, all connections together
REFUSAL_NOTE_SECONDS = 10.0  # refusals for memory are noted at most this often
_CONTENT_LENGTH = re.compile(rb"^content-length:[ \t]*([^\r\n]*)", re.IGNORECASE | re.MULTILINE)
_CHUNKED = re.compile(rb"^transfer-encoding:[^\r\n]*chunked", re.IGNORECASE | re.MULTILINE)
_THROTTLED_BODY = (
    b'{"__type": "ThrottlingException", "message": "The server is holding as many '
    b'request bytes as it may; retry later."}'
)
THROTTLED_ANSWER = (
    b"HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/x-amz-json-1.1\r\n"
    b"Content-Length: %d\r\nConnection: close\r\n\r\n%s" % (len(_THROTTLED_BODY), _THROTTLED_BODY)
)


@dataclass(eq=False)
class _Connection:
    sock: socket.socket
    address: Any
    deadline: float
    buffer: bytearray = field(default_factory=bytearray)
    charged: int = 0  # bytes of MAX_BUFFERED_BYTES this connection's request holds
    body_deadline: float | None = None  # set once, when the head of a request with a body is in


def request_length(buffer: bytearray, max_body_bytes: int) -> tuple[int, int] | None:
    """(head length, body length) of the request at the start of `buffer`, once its head is in;
    None before."""
    head_end = buffer.find(b"\r\n\r\n", 0, MAX_HEAD_BYTES + 4)
    if head_end < 0:
        return None
    head = bytes(buffer[: head_end + 4])
    body_length = 0
    if not _CHUNKED.search(head):
        found = _CONTENT_LENGTH.search(head)
        text = found.group(1).strip() if found else b"0"
        body_length = int(text) if text.isdigit() else 0  # a bad one: the handler says so
        if body_length > max_body_bytes:
            body_length = 0
    return head_end + 4, body_length


def bytes_needed(buffer: bytearray, max_body_bytes: int) -> int:
    """The bytes the connection holds, and what its next read may add to a body still coming
    (BODY_ALLOWANCE at most): a declared Content-Length costs nothing until sent."""
    lengths = request_length(buffer, max_body_bytes)
    if lengths is None:
        return len(buffer)
    return len(buffer) + min(max(sum(lengths) - len(buffer), 0), BODY_ALLOWANCE)


def complete_request(connection: _Connection, max_body_bytes: int) -> int | None:
    """The length of the request at the start of the connection's buffer when it is all there
    (or when its head is already too long, for the handler to refuse); None while more must
    come. The first time a body is awaited its deadline is set, BODY_SECONDS from the head,
    however slowly the body then trickles."""
    buffer = connection.buffer
    lengths = request_length(buffer, max_body_bytes)
    if lengths is None:
        return len(buffer) if len(buffer) > MAX_HEAD_BYTES else None
    head_length, body_length = lengths
    if body_length and len(buffer) < head_length + body_length:
        if connection.body_deadline is None:
            connection.body_deadline = time.monotonic() + BODY_SECONDS
        connection.deadline = connection.body_deadline
        return None
    connection.body_deadline = None
    return head_length + body_length


class MemoryBudget:
    """The bytes all connections' requests may hold at once. Thread-safe."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._charged = 0
        self._lock = threading.Lock()
        self._refused_unnoted = 0
        self._refusal_noted = float("-inf")

    def charge(self, connection: _Connection, needed: int) -> bool:
        """Charge `connection` for `needed` bytes in all; False, and nothing charged, when the
        total would exceed the budget."""
        with self._lock:
            more = needed - connection.charged
            if more > 0 and self._charged + more > self.limit:
                return False
            self._charged += more
            connection.charged = needed
            return True

    def release(self, connection: _Connection) -> None:
        with self._lock:
            self._charged -= connection.charged
            connection.charged = 0

    def refused(self) -> int | None:
        """Count one refusal; the number of refusals to note now (at most every
        REFUSAL_NOTE_SECONDS), or None. Called by the selector thread only."""
        self._refused_unnoted += 1
        moment = time.monotonic()
        if moment - self._refusal_noted < REFUSAL_NOTE_SECONDS:
            return None
        count, self._refused_unnoted = self._refused_unnoted, 0
        self._refusal_noted = moment
        return count


class _ProgressWriter:
    """The handler's wfile: sends with a deadline for the whole answer (WRITE_SECONDS) and for
    each step (the socket's timeout, WRITE_PROGRESS_SECONDS): a client that stops reading costs
    a worker that long, not WRITE_SECONDS per round. TimeoutError ends the request (the
    standard handler then closes the connection)."""

    def __init__(self, sock: socket.socket) -> None:
        self._sock = sock
        self._deadline = time.monotonic() + WRITE_SECONDS

    def write(self, data: bytes) -> int:
        with memoryview(data) as view:
            sent = 0
            while sent < len(view):
                if time.monotonic() > self._deadline:
                    raise TimeoutError("the client did not take its answer in time")
                sent += self._sock.send(view[sent:])
        return len(data)

    def allow_more(self, seconds: float) -> None:
        """More time for this answer: a file streamed out earns time by its length."""
        self._deadline += seconds

    def flush(self) -> None:
        pass

    def writable(self) -> bool:
        return True
