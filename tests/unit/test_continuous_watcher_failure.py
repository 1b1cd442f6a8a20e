"""Continuous uploads survive the failure of the file watcher itself: watchdog's inotify thread
dies (KeyError) when folders are renamed back and forth while it adds and removes watches. The
uploader must notice, say so in one line (no traceback), go on by polling, and still upload
promptly — not only at its slow safety-net sweep or at the end."""

from __future__ import annotations

import os
import shutil
import threading
import time
from pathlib import Path

import pytest

from localproc.payload.job import OutputSpec
from localproc.storage.folder import FolderStore
from localproc.transfer.continuous import POLL_SECONDS, ContinuousTarget, ContinuousUploader

CHURN_SECONDS = 20  # at most; it ends as soon as the watcher has failed
SWEEP_SECONDS = 600  # the safety net must not be what uploads the late file


def _churn(folder: Path, worker: int, until: float, done: threading.Event) -> None:
    """Folders created, renamed away and back, emptied: the pattern that kills the watcher."""
    round_ = 0
    while time.monotonic() < until and not done.is_set():
        here = folder / f"d{worker}"
        (here / "x" / "y").mkdir(parents=True, exist_ok=True)
        (here / "x" / "f").write_text("1")
        os.rename(here, folder / f"r{worker}")
        os.rename(folder / f"r{worker}", here)
        os.rename(here / "x", folder / f"x{worker}")
        os.rename(folder / f"x{worker}", here / "x")
        if round_ % 3 == 0:
            shutil.rmtree(here)
        round_ += 1


def _watcher_dead() -> bool:
    """watchdog runs one inotify reader thread per process; it has died."""
    from watchdog.observers.inotify_c import InotifyFD

    instance = InotifyFD._instance
    return instance is not None and not instance.is_alive()


def test_uploads_go_on_promptly_after_the_inotify_watcher_dies(
    tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "s3" / "bucket").mkdir(parents=True)
    folder = tmp_path / "out"
    folder.mkdir()
    warnings: list[str] = []
    failed = threading.Event()

    output = OutputSpec("o", False, "s3://bucket/o", "/opt/ml/processing/o", "Continuous", None)
    uploader = ContinuousUploader(
        [ContinuousTarget("algo-1", output, folder)],
        FolderStore(tmp_path / "s3"),
        None,
        warn=warnings.append,
        scratch_dir=tmp_path,
        sweep_seconds=SWEEP_SECONDS,
    )
    uploader.start()
    try:
        until = time.monotonic() + CHURN_SECONDS
        workers = [
            threading.Thread(target=_churn, args=(folder, n, until, failed)) for n in range(4)
        ]
        for worker in workers:
            worker.start()
        while any(worker.is_alive() for worker in workers):
            # Old code leaves the dead reader in place; the uploader replaces it and says so.
            if _watcher_dead() or any("watcher" in message for message in warnings):
                failed.set()
            time.sleep(0.05)
        if not failed.is_set():
            pytest.skip("the watcher did not fail within the churn this time")

        (folder / "late.txt").write_text("written after the watcher failed")
        uploaded = tmp_path / "s3" / "bucket" / "o" / "late.txt"
        deadline = time.monotonic() + 10 * POLL_SECONDS + 5
        while not uploaded.exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        assert uploaded.exists(), "the late file was not uploaded while the job ran"
    finally:
        report = uploader.finish()
    assert uploaded.read_text() == "written after the watcher failed"
    assert not report.failures
    captured = capfd.readouterr()
    assert "Traceback" not in captured.err + captured.out
    assert any("watcher" in message and "polling" in message for message in warnings), warnings
