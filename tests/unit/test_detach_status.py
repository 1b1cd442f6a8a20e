"""`run --detach`: the background run tells its parent why it was rejected in a status file (data:
exit status, error code, message); the parent never reads its log, which is for people."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from localproc.errors import ExitStatus
from localproc.execution.prepare import RunSettings, prepare_request
from localproc.records.store import JobStore
from localproc.service import detach

QUICKSTART = Path(__file__).resolve().parents[2] / "fixtures" / "jobs" / "quickstart.json"

# A rejection whose message has several lines, the last of which looks like another error of
# localproc's own: a parent that read the log's last line would report ResourceInUse.
MESSAGE = (
    "Image example:latest could not be pulled: the registry said\n"
    "  manifest unknown\n"
    "localproc: ResourceInUse: not this one"
)

# The real `localproc run -`, with the run itself replaced: it either refuses the job the way
# the execution refuses one (a LocalprocError) or crashes (an error no code expects).
FAKE_CHILD = """
import sys
import localproc.execution.prepare as prepare
from localproc.errors import CannotRunHere

def refuse(*args, **kwargs):
    if {crash!r}:
        raise RuntimeError("a bug")
    raise CannotRunHere({message!r})

prepare.run_job = refuse
sys.argv = ["localproc", *sys.argv[1:]]
from localproc.cli.app import main
main()
"""


def _fake_child(monkeypatch: pytest.MonkeyPatch, crash: bool = False) -> list[list[str]]:
    real_popen = subprocess.Popen
    started: list[list[str]] = []

    def popen(command: list[str], *args: Any, **kwargs: Any) -> Any:
        assert command[1:3] == ["-m", "localproc"], command
        script = FAKE_CHILD.format(crash=crash, message=MESSAGE)
        started.append(command)
        return real_popen([sys.executable, "-c", script, *command[3:]], *args, **kwargs)

    monkeypatch.setattr(subprocess, "Popen", popen)
    return started


def _request(name: str) -> dict[str, Any]:
    payload = json.loads(QUICKSTART.read_text())
    return prepare_request(payload, name)


def test_the_parent_reports_the_childs_rejection_from_its_status_not_its_log(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    started = _fake_child(monkeypatch)
    settings = RunSettings(state_dir=tmp_path / "state", region="us-east-1")
    store = JobStore(settings.state_dir)

    with pytest.raises(detach.DetachedRunRejected) as rejected:
        detach.start_detached(_request("refused"), settings)

    assert len(started) == 1
    assert rejected.value.code == "CannotRunHere"
    assert rejected.value.exit_status == ExitStatus.CANNOT_RUN_HERE
    assert rejected.value.message == MESSAGE
    # The log keeps what the run printed, for people; nothing else is left beside it.
    log = store.runner_log("refused")
    assert log.read_text().splitlines()[-1] == "localproc: ResourceInUse: not this one"
    assert sorted(p.name for p in log.parent.iterdir()) == ["refused.log"]
    # The name's claim is released: the job can be created again.
    assert not store.exists("refused")
    store.claim("refused", "arn")


def test_a_child_that_crashes_before_saying_why_is_reported_with_its_exit_code(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _fake_child(monkeypatch, crash=True)
    settings = RunSettings(state_dir=tmp_path / "state", region="us-east-1")

    with pytest.raises(detach.DetachedRunRejected) as rejected:
        detach.start_detached(_request("crashed"), settings)

    log = JobStore(settings.state_dir).runner_log("crashed")
    assert rejected.value.code == "DetachedRunRejected"
    assert rejected.value.exit_status == ExitStatus.FAILED
    assert str(log) in rejected.value.message
    assert "RuntimeError: a bug" in log.read_text()  # the traceback is in the log, for people
