"""`DOCKER_HOST=ssh://[USER@]HOST[:PORT]` the way the Docker CLI does it: the system's `ssh` runs
`docker system dial-stdio` on the engine's machine, one ssh process per connection, so
~/.ssh/config, agents and known hosts work as they do for `docker`. The Docker SDK's own ssh
transport needs paramiko, whose import alone would add ~0.1 s to every run on every engine; here
a unix socket in a private folder stands for the engine, each connection to it piped through its
own `ssh` (half-closes passed on: Pipe mode relies on them)."""

from __future__ import annotations

import atexit
import contextlib
import os
import shutil
import socket
import subprocess
import tempfile
import threading
import urllib.parse
from pathlib import Path

CHUNK_BYTES = 64 * 1024


class SshTunnel:
    def __init__(self, url: str) -> None:
        parsed = urllib.parse.urlparse(url)
        if parsed.scheme != "ssh" or not parsed.hostname:
            raise ValueError(f"not an ssh:// engine address: {url}")
        self._folder = Path(tempfile.mkdtemp(prefix="localproc-ssh-"))  # 0700
        # One ssh connection shared by all (a run opens a dozen: logs, stats, each container),
        # instead of a handshake each; it ends with this process (`close`), or 5 s after its
        # last session where the process ends without running `close`.
        self._ssh = ["ssh", "-o", "ControlMaster=auto", "-o", f"ControlPath={self._folder}/cm",
                     "-o", "ControlPersist=5"]  # fmt: skip
        if parsed.username:
            self._ssh += ["-l", parsed.username]
        if parsed.port:
            self._ssh += ["-p", str(parsed.port)]
        self._host = parsed.hostname
        self.command = [*self._ssh, "--", parsed.hostname, "docker system dial-stdio"]
        self.socket_path = self._folder / "docker.sock"
        self._listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self._listener.bind(str(self.socket_path))
        self._listener.listen(32)
        self._closed = False
        self.last_error = ""  # ssh's own words when a connection failed
        threading.Thread(target=self._accept, name="ssh-tunnel", daemon=True).start()
        atexit.register(self.close)

    @property
    def url(self) -> str:
        return f"unix://{self.socket_path}"

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        with contextlib.suppress(OSError):
            self._listener.close()
        if (self._folder / "cm").exists():  # the shared connection, if one was made
            with contextlib.suppress(OSError, subprocess.SubprocessError):
                subprocess.run([*self._ssh, "-O", "exit", "--", self._host],
                               capture_output=True, timeout=10, check=False)  # fmt: skip
        shutil.rmtree(self._folder, ignore_errors=True)

    def _accept(self) -> None:
        while not self._closed:
            try:
                conn, _ = self._listener.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn: socket.socket) -> None:
        process = subprocess.Popen(
            self.command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            start_new_session=True,  # Ctrl-C is the run's to handle, not ssh's
        )  # fmt: skip
        assert process.stdin is not None and process.stdout is not None
        upstream = threading.Thread(target=self._to_ssh, args=(conn, process), daemon=True)
        upstream.start()
        try:
            while data := os.read(process.stdout.fileno(), CHUNK_BYTES):
                conn.sendall(data)
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_WR)
        except OSError:
            pass
        finally:
            upstream.join(timeout=5)
            with contextlib.suppress(OSError):
                conn.close()
            if process.poll() is None:
                process.terminate()
            assert process.stderr is not None
            errors = process.stderr.read()
            process.wait(timeout=10)
            if process.returncode not in (0, -15) and errors:
                self.last_error = errors.decode(errors="replace").strip()

    @staticmethod
    def _to_ssh(conn: socket.socket, process: subprocess.Popen[bytes]) -> None:
        assert process.stdin is not None
        try:
            while data := conn.recv(CHUNK_BYTES):
                process.stdin.write(data)
                process.stdin.flush()
        except OSError:
            pass
        finally:
            with contextlib.suppress(OSError):
                process.stdin.close()  # the client's half-close, passed on
