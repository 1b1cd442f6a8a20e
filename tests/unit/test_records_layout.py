"""records.layout: every path of the state dir (no Docker, no network)."""

from __future__ import annotations

from pathlib import Path

import pytest

from localproc.errors import ValidationException
from localproc.records.layout import JOB_NAME_PATTERN, StateDir, check_job_name, is_job_name
from localproc.records.store import JobStore


def test_the_state_dirs_paths(tmp_path: Path) -> None:
    state = StateDir(tmp_path)
    assert state.jobs == tmp_path / "jobs"
    assert state.runners == tmp_path / "runners"
    assert state.cache == tmp_path / "cache"
    assert state.runner_log("job-1") == tmp_path / "runners" / "job-1.log"
    assert state.runner_status("job-1") == tmp_path / "runners" / "job-1.status.json"
    assert state.deleted("job-1", "12-ab") == tmp_path / "jobs" / ".deleted-job-1-12-ab"


def test_a_job_folders_paths(tmp_path: Path) -> None:
    folder = StateDir(tmp_path).job("job-1")
    job = tmp_path / "jobs" / "job-1"
    assert folder.path == job
    assert folder.name == "job-1"
    assert folder.record == job / "record.json"
    assert folder.lock == job / ".lock"
    assert folder.claim == job / ".claim"
    assert folder.spare == job / ".record-spare"
    assert folder.spare_next == job / ".record-spare.next"
    assert folder.logs == job / "logs"
    assert folder.log("algo-2") == job / "logs" / "algo-2.log"
    assert folder.staging == job / "staging"
    assert folder.scratch == job / "scratch"
    assert folder.instance("algo-1") == job / "algo-1"
    assert folder.config("algo-1") == job / "algo-1" / "config"
    assert folder.resource_config("algo-1") == job / "algo-1" / "config" / "resourceconfig.json"
    assert folder.job_config("algo-1") == job / "algo-1" / "config" / "processingjobconfig.json"
    assert folder.output("algo-1") == job / "algo-1" / "output"
    assert folder.exit_message("algo-1") == job / "algo-1" / "output" / "message"
    assert folder.outputs("algo-1", "result") == job / "algo-1" / "outputs" / "result"


def test_the_layout_touches_nothing(tmp_path: Path) -> None:
    folder = StateDir(tmp_path / "state").job("job")
    _ = (folder.record, folder.logs, folder.outputs("algo-1", "x"), folder.staging)
    assert not (tmp_path / "state").exists()


def test_the_store_uses_the_layout(tmp_path: Path) -> None:
    store = JobStore(tmp_path)
    assert store.layout == StateDir(tmp_path)
    assert store.jobs_dir == tmp_path / "jobs"
    assert store.job_dir("a") == store.folder("a").path == tmp_path / "jobs" / "a"
    assert store.runner_log("a") == tmp_path / "runners" / "a.log"


@pytest.mark.parametrize("name", ["../outside", "a/b", ".", "", "x" * 64, "-lead", "a_b"])
def test_a_name_that_is_not_a_job_name_never_becomes_a_path(tmp_path: Path, name: str) -> None:
    state = StateDir(tmp_path)
    assert not is_job_name(name)
    for make_path in (state.job, state.runner_log, state.runner_status, check_job_name):
        with pytest.raises(ValidationException) as refused:
            make_path(name)
        assert str(refused.value).endswith(
            f"Value '{name}' at 'processingJobName' failed to satisfy constraint: "
            f"Member must satisfy regular expression pattern: {JOB_NAME_PATTERN}"
        )


@pytest.mark.parametrize("name", ["a", "A-1", "a--b", "x" * 63, "0"])
def test_job_names(name: str) -> None:
    assert is_job_name(name)
    assert check_job_name(name) == name
