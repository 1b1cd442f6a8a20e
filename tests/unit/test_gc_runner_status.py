"""`gc` removes what a background run that never recorded its job left in runners/: its log and
its status file (runners/NAME.status.json, left when the waiting parent died before reading it),
both by the same rule: the job is not recorded, and the file is older than a run takes to start."""

from __future__ import annotations

import os
import time
from pathlib import Path

from localproc.execution.leftovers import ORPHAN_RUNNER_LOG_SECONDS, collect_garbage
from localproc.records.store import JobStore


def _record(name: str) -> dict[str, str]:
    return {
        "ProcessingJobName": name,
        "ProcessingJobArn": f"arn:aws:sagemaker:us-east-1:000000000000:processing-job/{name}",
        "ProcessingJobStatus": "Completed",
        "CreationTime": "2026-12-01T10:00:00.000+00:00",
    }


def _leave(path: Path, old: bool) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("{}\n")
    if old:
        long_ago = time.time() - ORPHAN_RUNNER_LOG_SECONDS - 60
        os.utime(path, (long_ago, long_ago))


def test_gc_removes_orphaned_status_files_by_the_runner_log_rule(tmp_path: Path) -> None:
    store = JobStore(tmp_path)
    store.claim("recorded", "arn")
    store.create("recorded", _record("recorded"))
    layout = store.layout
    _leave(layout.runner_status("recorded"), old=True)  # its job is recorded: kept
    _leave(layout.runner_status("starting"), old=False)  # may belong to a run starting now
    _leave(layout.runner_status("rejected"), old=True)  # with its log
    _leave(layout.runner_log("rejected"), old=True)
    _leave(layout.runner_status("alone"), old=True)  # its log removed by hand

    report = collect_garbage(store, engine=None)

    assert report.removed_runner_logs == ["alone", "rejected"]
    assert sorted(p.name for p in layout.runners.iterdir()) == [
        "recorded.status.json",
        "starting.status.json",
    ]


def test_gc_leaves_runner_files_whose_names_are_not_job_names(tmp_path: Path) -> None:
    store = JobStore(tmp_path)
    _leave(store.layout.runners / "not_a_name.status.json", old=True)
    _leave(store.layout.runners / "notes.txt", old=True)

    report = collect_garbage(store, engine=None)

    assert report.removed_runner_logs == []
    assert sorted(p.name for p in store.layout.runners.iterdir()) == [
        "not_a_name.status.json",
        "notes.txt",
    ]
