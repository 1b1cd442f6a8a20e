"""The job store's own rules: names that cannot be folder names never reach the filesystem,
and the name rule is the service model's."""

from __future__ import annotations

from pathlib import Path

import pytest

from localproc.errors import ValidationException
from localproc.payload.service_model import sagemaker_model
from localproc.records.store import JOB_NAME_PATTERN, JobStore


def record_of(name: str, status: str) -> dict[str, str]:
    """The fields every record has from its creation on."""
    return {
        "ProcessingJobName": name,
        "ProcessingJobArn": f"arn:aws:sagemaker:us-east-1:000000000000:processing-job/{name}",
        "ProcessingJobStatus": status,
        "CreationTime": "2026-12-01T10:00:00.000+00:00",
    }


def test_the_name_rule_is_the_service_models() -> None:
    assert sagemaker_model().shape_for("ProcessingJobName").metadata["pattern"] == JOB_NAME_PATTERN


@pytest.mark.parametrize("name", ["../outside", "a/b", ".", "", "x" * 64, "-lead"])
def test_names_that_are_not_job_names_are_refused(tmp_path: Path, name: str) -> None:
    (tmp_path / "outside").mkdir()
    store = JobStore(tmp_path / "state")
    for action in (store.load, store.delete, lambda n: store.claim(n, "arn")):
        with pytest.raises(ValidationException) as refused:
            action(name)
        assert "at 'processingJobName' failed to satisfy constraint" in str(refused.value)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["outside"]


def test_status_changes_follow_the_service(tmp_path: Path) -> None:
    from localproc.records.store import IllegalTransition

    store = JobStore(tmp_path)
    store.claim("job", "arn")
    store.create("job", record_of("job", "InProgress"))
    store.update("job", {"ProcessingJobStatus": "Completed"})
    with pytest.raises(IllegalTransition):
        store.update("job", {"ProcessingJobStatus": "InProgress"})
    with pytest.raises(ValidationException) as refused:
        store.request_stop("job")
    assert "is in status Completed" in str(refused.value)


def test_gc_removes_runner_logs_only_of_runs_that_never_recorded_their_job(
    tmp_path: Path,
) -> None:
    import os
    import time

    from localproc.execution.leftovers import ORPHAN_RUNNER_LOG_SECONDS, collect_garbage

    store = JobStore(tmp_path)
    store.claim("recorded", "arn")
    store.create("recorded", record_of("recorded", "Completed"))
    long_ago = time.time() - ORPHAN_RUNNER_LOG_SECONDS - 60
    logs = {name: store.runner_log(name) for name in ("recorded", "rejected", "starting")}
    for name, log in logs.items():
        log.parent.mkdir(parents=True, exist_ok=True)
        log.write_text(f"output of {name}\n")
        if name != "starting":
            os.utime(log, (long_ago, long_ago))

    report = collect_garbage(store, engine=None)

    assert report.removed_runner_logs == ["rejected"]
    assert sorted(p.stem for p in logs["recorded"].parent.iterdir()) == ["recorded", "starting"]


def test_deleting_a_job_whose_folder_is_a_symlink_removes_the_link_and_leaves_no_trace(
    tmp_path: Path,
) -> None:
    elsewhere = tmp_path / "elsewhere"
    store = JobStore(tmp_path / "state")
    store.claim("linked", "arn")
    store.create("linked", record_of("linked", "Completed"))
    store.job_dir("linked").rename(elsewhere)
    store.job_dir("linked").symlink_to(elsewhere)

    store.delete("linked")

    assert sorted(p.name for p in store.jobs_dir.iterdir()) == []
    assert (elsewhere / "record.json").exists()  # what the link pointed to is not ours to delete
