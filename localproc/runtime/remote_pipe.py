"""Pipe mode through the Engine API: the bytes the pipe feeder (transfer/pipe.py) writes into a
local FIFO go, over an attached `exec` of `sh -c 'exec cat > FIFO'` in the instance, into the
FIFO inside the instance's volume. No host FIFO is shared with the engine.

End of stream: when the feeder closes its end (every object written), the exec's stdin is
half-closed, `cat` sees end-of-file and closes the container's FIFO, and the job's reader sees
end-of-file, as with a local FIFO. A reader that closes early makes `cat` exit; the pump then
closes the local FIFO, and the feeder sees a closed pipe (EPIPE), as it would locally.

Needs `sh` and `cat` in the image (any image with a shell has them); the error names it
otherwise.
"""

from __future__ import annotations

import contextlib
import errno
import os
import select
import socket
import threading
from pathlib import Path
from typing import Any

CHUNK_BYTES = 1024 * 1024
_POLL_MS = 100


class PipePump:
    """Copies the local FIFO at `fifo` into `container_fifo` inside the running container."""

    def __init__(self, client: Any, container_id: str, fifo: Path, container_fifo: str) -> None:
        self._client = client
        self._container_id = container_id
        self._fifo = fifo
        self._container_fifo = container_fifo
        self._stop = threading.Event()
        self._socket: socket.socket | None = None
        self.error: str | None = None
        self.bytes_copied = 0
        self._thread = threading.Thread(target=self._run, name=f"pipe-pump-{fifo.name}",
                                        daemon=True)  # fmt: skip

    def start(self) -> None:
        self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        self._stop.set()
        if self._socket is not None:
            with contextlib.suppress(Exception):  # whatever the transport: it is going
                self._socket.shutdown(socket.SHUT_RDWR)
            with contextlib.suppress(Exception):
                self._socket.close()
        self._thread.join(timeout)

    def _run(self) -> None:
        try:
            raw = self._attach()
        except Exception as err:  # the engine's error, or no shell in the image
            self.error = f"streaming into {self._container_fifo} failed: {err}"
            return
        try:
            self._copy(raw)
        except OSError as err:
            if err.errno not in (errno.EPIPE, errno.ECONNRESET, errno.EBADF, errno.ENOTCONN):
                self.error = f"streaming into {self._container_fifo} failed: {err}"
        except Exception as err:  # a transport's socket that lacks a call: the job's error
            self.error = f"streaming into {self._container_fifo} failed: {err!r}"
        finally:
            with contextlib.suppress(OSError):
                raw.close()

    def _attach(self) -> socket.socket:
        api = self._client.api
        script = 'exec cat > "$0"'
        created = api.exec_create(
            self._container_id, ["sh", "-c", script, self._container_fifo],
            stdin=True, stdout=False, stderr=False,
        )  # fmt: skip
        response = api.exec_start(created["Id"], socket=True)
        # tcp:// and unix://: the SDK wraps the hijacked socket; ssh:// (the system's ssh): a
        # pipe from ssh's stdout whose `channel` is the SDK's socket over the ssh process.
        raw = getattr(response, "_sock", None) or getattr(response, "channel", None) or response
        self._socket = raw
        return raw

    def _copy(self, raw: socket.socket) -> None:
        """Local FIFO → socket until the feeder closes its end, or the stop."""
        fd = os.open(self._fifo, os.O_RDONLY | os.O_NONBLOCK | os.O_NOFOLLOW | os.O_CLOEXEC)
        try:
            readable = select.poll()
            readable.register(fd, select.POLLIN)
            while not self._stop.is_set():
                events = readable.poll(_POLL_MS)
                if not events:
                    continue  # no writer yet, or nothing written yet (Linux: no POLLHUP before
                    # a writer has come and gone)
                try:
                    data = os.read(fd, CHUNK_BYTES)
                except BlockingIOError:
                    continue
                if not data:  # the feeder wrote everything and closed its end
                    self._end_of_stream(raw)
                    return
                raw.sendall(data)
                self.bytes_copied += len(data)
        finally:
            os.close(fd)  # the feeder sees EPIPE from here on

    def _end_of_stream(self, raw: socket.socket) -> None:
        """Half-close, so that `cat` sees end-of-file, and wait for the exec to end. Over the
        system's ssh the write half is the ssh process's stdin: closing it makes
        `docker system dial-stdio` on the other side half-close its connection."""
        process = getattr(raw, "proc", None)
        if process is not None:
            process.stdin.close()
        else:
            raw.shutdown(socket.SHUT_WR)
        self._drain(raw)

    def _drain(self, raw: socket.socket) -> None:
        """Wait until the exec has ended (`cat` closed the container's FIFO)."""
        raw.settimeout(1.0)
        while not self._stop.is_set():
            try:
                if not raw.recv(65536):
                    return
            except TimeoutError:
                continue
