"""Transfer progress on a terminal: one line per phase ("staging inputs", "uploading outputs")
with files and bytes done out of the total, and the rate, drawn by rich.

Nothing at all is written when the stream is not a terminal or progress is disabled (`--json`):
logs, pipes and machine-readable output stay clean. rich is imported only when a phase is shown,
so importing this module (and `localproc --help`) does not pay for it.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, TextIO

if TYPE_CHECKING:
    from rich.progress import Progress, TaskID


class PhaseHandle:
    """Counts what one phase has done; `advance` may be called from any thread (uploads and
    downloads run in thread pools)."""

    def __init__(
        self,
        total_files: int | None,
        total_bytes: int | None,
        progress: Progress | None = None,
        task: TaskID | None = None,
    ) -> None:
        self.total_files = total_files
        self.total_bytes = total_bytes
        self.files_done = 0
        self.bytes_done = 0
        self._lock = threading.Lock()
        self._progress = progress
        self._task = task

    def advance(self, files: int = 0, bytes: int = 0) -> None:  # "bytes" is the API's word
        with self._lock:
            self.files_done += files
            self.bytes_done += bytes
            if self._progress is None or self._task is None:
                return
            # Under our lock so that two threads cannot publish their counts out of order.
            self._progress.update(self._task, completed=self.bytes_done, files=self._files_text())

    def _files_text(self) -> str:
        if self.total_files is None:
            return f"{self.files_done} files"
        return f"{self.files_done}/{self.total_files} files"


class TransferProgress:
    """Progress lines on `stream`, shown only when `enabled` and the stream is a terminal.

    `force_terminal` is for tests and callers that know better than `isatty()` (rich's own
    option of that name); None asks the stream.
    """

    def __init__(
        self, stream: TextIO, enabled: bool, *, force_terminal: bool | None = None
    ) -> None:
        self._stream = stream
        self._force_terminal = force_terminal
        self.enabled = enabled and (
            force_terminal if force_terminal is not None else _is_terminal(stream)
        )

    @contextmanager
    def phase(
        self, description: str, total_files: int | None, total_bytes: int | None
    ) -> Iterator[PhaseHandle]:
        """One line for the duration of the block; None totals mean "not known in advance"
        (continuous uploads). The line stays on screen, complete, when the block ends."""
        if not self.enabled:
            yield PhaseHandle(total_files, total_bytes)
            return
        progress = self._make_progress()
        handle = PhaseHandle(total_files, total_bytes, progress)
        task = progress.add_task(
            description,
            # rich shows a pulsing bar and no total for None; a zero total would mean "done".
            total=total_bytes if total_bytes else None,
            files=handle._files_text(),
        )
        handle._task = task
        with progress:
            yield handle
            if not total_bytes:
                # Let an open-ended phase end as a full bar instead of a pulsing one.
                progress.update(
                    task, total=handle.bytes_done or 1, completed=handle.bytes_done or 1
                )

    def _make_progress(self) -> Progress:
        from rich.console import Console
        from rich.progress import (
            BarColumn,
            DownloadColumn,
            Progress,
            TextColumn,
            TimeElapsedColumn,
            TransferSpeedColumn,
        )

        console_options: dict[str, Any] = {"file": self._stream}
        if self._force_terminal is not None:
            console_options["force_terminal"] = self._force_terminal
        return Progress(
            TextColumn("{task.description}"),
            BarColumn(bar_width=24),
            TextColumn("{task.fields[files]}"),
            DownloadColumn(),
            TransferSpeedColumn(),
            TimeElapsedColumn(),
            console=Console(**console_options),
            # Few redraws: the line is for people, and each redraw costs the transfer threads.
            refresh_per_second=4,
        )


def _is_terminal(stream: TextIO) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):  # no isatty, or a closed stream
        return False
