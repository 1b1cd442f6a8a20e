"""A TCP proxy for tests: an S3 endpoint that hangs on demand, as a real one can."""

from __future__ import annotations

import contextlib
import select
import socket
import threading


class FreezableProxy:
    """A TCP proxy on 127.0.0.1 in front of the S3 endpoint; `freeze()` makes it stop passing
    bytes either way (connections stay open, as with a hung endpoint), `thaw()` resumes."""

    def __init__(self, target: tuple[str, int]) -> None:
        self.target = target
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.passing = threading.Event()
        self.passing.set()
        self.closed = False
        threading.Thread(target=self._accept, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def freeze(self) -> None:
        self.passing.clear()

    def thaw(self) -> None:
        self.passing.set()

    def close(self) -> None:
        self.closed = True
        self.passing.set()
        self.listener.close()

    def _accept(self) -> None:
        while not self.closed:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            upstream = socket.create_connection(self.target)
            for source, sink in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pipe, args=(source, sink), daemon=True).start()

    def _pipe(self, source: socket.socket, sink: socket.socket) -> None:
        try:
            while not self.closed:
                ready, _, _ = select.select([source], [], [], 0.1)
                if not ready:
                    continue
                self.passing.wait()
                data = source.recv(65536)
                if not data:
                    break
                self.passing.wait()
                sink.sendall(data)
        except OSError:
            pass
        finally:
            for end in (source, sink):
                with contextlib.suppress(OSError):
                    end.shutdown(socket.SHUT_RDWR)
