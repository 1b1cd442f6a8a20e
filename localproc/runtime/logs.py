"""Container output: each line goes live to the terminal prefixed with its instance, and to the
instance's log file in the job's folder."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import TextIO

_COLOURS = ("36", "33", "35", "32", "34", "31")  # cyan, yellow, magenta, green, blue, red


class LogSink:
    def __init__(self, stream: TextIO | None, log_dir: Path, colour: bool = False) -> None:
        self._stream = stream
        self._log_dir = log_dir
        self._colour = colour
        self._lock = threading.Lock()
        log_dir.mkdir(parents=True, exist_ok=True)

    def log_path(self, host: str) -> Path:
        return self._log_dir / f"{host}.log"

    def line(self, host: str, text: str) -> None:
        with self._lock:
            with self.log_path(host).open("a", encoding="utf-8") as log:
                log.write(text + "\n")
            if self._stream is not None:
                self._stream.write(self._prefix(host) + text + "\n")
                self._stream.flush()

    def _prefix(self, host: str) -> str:
        if not self._colour:
            return f"{host} | "
        index = int(host.rsplit("-", 1)[-1]) - 1 if host.rsplit("-", 1)[-1].isdigit() else 0
        return f"\x1b[{_COLOURS[index % len(_COLOURS)]}m{host}\x1b[0m | "


def split_lines(chunks, emit) -> None:  # type: ignore[no-untyped-def]
    """Feed byte chunks (not aligned to lines) and call `emit` once per complete text line."""
    pending = b""
    for chunk in chunks:
        pending += chunk
        *lines, pending = pending.split(b"\n")
        for raw in lines:
            emit(raw.rstrip(b"\r").decode("utf-8", errors="replace"))
    if pending:
        emit(pending.rstrip(b"\r").decode("utf-8", errors="replace"))
