"""Transfer progress: drawn on a terminal (a real pseudo-terminal here), silent anywhere else."""

from __future__ import annotations

import fcntl
import io
import os
import pty
import re
import struct
import subprocess
import sys
import termios
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TextIO

from localproc.transfer.progress import TransferProgress

MB = 1024 * 1024
ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")


class Terminal:
    """A pseudo-terminal: `stream` is its writable side (isatty() is true), everything written
    is collected from the other side by a thread, so writers never block on a full buffer."""

    def __init__(self) -> None:
        self._controller, self._device = pty.openpty()
        # A real size: rich lays the line out for the terminal's width.
        fcntl.ioctl(self._device, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 120, 0, 0))
        self.stream: TextIO = os.fdopen(self._device, "w", encoding="utf-8", closefd=False)
        self._chunks: list[bytes] = []
        self._reader = threading.Thread(target=self._read)
        self._reader.start()

    def _read(self) -> None:
        while True:
            try:
                chunk = os.read(self._controller, 65536)
            except OSError:  # EIO: the device side is closed
                return
            if not chunk:
                return
            self._chunks.append(chunk)

    def close(self) -> str:
        """Everything written, without the escape sequences."""
        self.stream.flush()
        self.stream.close()
        os.close(self._device)
        self._reader.join(timeout=10)
        os.close(self._controller)
        text = b"".join(self._chunks).decode("utf-8", errors="replace")
        return ANSI.sub("", text)


@contextmanager
def terminal() -> Iterator[Terminal]:
    term = Terminal()
    try:
        yield term
    finally:
        if not term.stream.closed:
            term.close()


def run_two_phases(progress: TransferProgress) -> None:
    with progress.phase("staging inputs", total_files=3, total_bytes=3 * MB) as phase:
        workers = [threading.Thread(target=phase.advance, args=(1, MB)) for _ in range(3)]
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.join()
    with progress.phase("uploading outputs", total_files=2, total_bytes=1000) as phase:
        phase.advance(files=1, bytes=400)
        phase.advance(files=1, bytes=600)


def test_progress_is_drawn_on_a_terminal_one_line_per_phase() -> None:
    with terminal() as term:
        run_two_phases(TransferProgress(term.stream, enabled=True))
        output = term.close()
    final_lines = [line.strip() for line in re.split(r"[\r\n]", output) if line.strip()]
    staging = [line for line in final_lines if line.startswith("staging inputs")]
    uploading = [line for line in final_lines if line.startswith("uploading outputs")]
    assert staging and uploading, output
    # The last drawing of each line shows the phase complete, with files, bytes and a rate.
    assert "3/3 files" in staging[-1]
    assert "3.1/3.1 MB" in staging[-1]
    assert re.search(r"(\d+(\.\d+)? [kMG]?B/s|\?)", staging[-1]), staging[-1]
    assert "2/2 files" in uploading[-1]
    assert "1.0/1.0 kB" in uploading[-1]
    # Each phase ends on its own line: the staging line stays above the uploading one.
    assert output.rstrip().splitlines()[-1].strip().startswith("uploading outputs")


def test_unknown_totals_count_up() -> None:
    with terminal() as term:
        progress = TransferProgress(term.stream, enabled=True)
        with progress.phase("uploading outputs", total_files=None, total_bytes=None) as phase:
            for _ in range(4):
                phase.advance(files=1, bytes=250)
        output = term.close()
    last = [line for line in re.split(r"[\r\n]", output) if "uploading outputs" in line][-1]
    assert "4 files" in last
    assert "1.0 kB" in last


def test_nothing_is_written_to_a_stream_that_is_not_a_terminal() -> None:
    stream = io.StringIO()
    run_two_phases(TransferProgress(stream, enabled=True))
    assert stream.getvalue() == ""

    read_end, write_end = os.pipe()
    with os.fdopen(write_end, "w") as pipe:
        run_two_phases(TransferProgress(pipe, enabled=True))
    with os.fdopen(read_end, "rb") as reader:
        assert reader.read() == b""


def test_nothing_is_written_when_disabled_even_on_a_terminal() -> None:
    with terminal() as term:
        progress = TransferProgress(term.stream, enabled=False)
        with progress.phase("staging inputs", total_files=2, total_bytes=10) as phase:
            phase.advance(files=2, bytes=10)
        assert (phase.files_done, phase.bytes_done) == (2, 10)  # still counted
        assert term.close() == ""


def test_force_terminal_draws_on_any_stream() -> None:
    stream = io.StringIO()
    run_two_phases(TransferProgress(stream, enabled=True, force_terminal=True))
    assert "uploading outputs" in ANSI.sub("", stream.getvalue())


def test_importing_the_module_does_not_import_rich() -> None:
    script = "import sys, localproc.transfer.progress; print('rich' in sys.modules)"
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == "False"
