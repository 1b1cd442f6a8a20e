"""`run --detach` interrupted (Ctrl-C) before the background run has recorded the job: whenever
the SIGINT comes, also while the child is being started, the caller hears so (exit 3) and the
child is ended; and a child whose caller gave its claim up never claims the name anew."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from localproc.errors import CannotRunHere, ExitStatus, ResourceInUse
from localproc.execution.prepare import RunSettings, prepare_request
from localproc.records.store import JobStore
from localproc.service import detach

QUICKSTART = Path(__file__).resolve().parents[2] / "fixtures" / "jobs" / "quickstart.json"

# The real `localproc run -` whose run hangs where a real one lists its inputs on a hung S3.
HANGING_CHILD = """
import sys, time
import localproc.execution.prepare as prepare
prepare.run_job = lambda *args, **kwargs: time.sleep(120)
sys.argv = ["localproc", *sys.argv[1:]]
from localproc.cli.app import main
main()
"""


@pytest.mark.parametrize(
    ("signum", "sigint_on_entry"),
    [
        (signal.SIGINT, signal.default_int_handler),
        # As a shell without job control starts a background command: `run` acts on it all
        # the same; before, `run --detach` went on waiting, deaf to it.
        (signal.SIGINT, signal.SIG_IGN),
    ],
    ids=["ctrl-c", "ctrl-c-ignored-on-entry"],
)
def test_a_ctrl_c_while_the_child_is_being_started_ends_that_child(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, signum: int, sigint_on_entry: Any
) -> None:
    """The signal lands while the parent is still inside Popen (the child exists, Popen has not
    returned it): before, the KeyboardInterrupt left the child running on, unknown to anyone."""
    monkeypatch.setattr(detach, "START_TIMEOUT_SECONDS", 20)  # a deaf parent fails, not hangs
    previous = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}
    signal.signal(signal.SIGINT, sigint_on_entry)
    real_popen = subprocess.Popen
    started: list[subprocess.Popen[bytes]] = []

    def popen(command: list[str], *args: Any, **kwargs: Any) -> Any:
        child = real_popen([sys.executable, "-c", HANGING_CHILD, *command[3:]], *args, **kwargs)
        started.append(child)
        os.kill(os.getpid(), signum)  # Ctrl-C, before Popen has returned
        return child

    monkeypatch.setattr(subprocess, "Popen", popen)
    settings = RunSettings(state_dir=tmp_path / "state", region="us-east-1")
    request = prepare_request(json.loads(QUICKSTART.read_text()), "interrupted")
    try:
        with pytest.raises(detach.DetachedRunRejected) as rejected:
            detach.start_detached(request, settings)
    except KeyboardInterrupt:
        pytest.fail("the Ctrl-C escaped start_detached, which did not end its child")
    finally:
        for restored, handler in previous.items():
            signal.signal(restored, handler)
        for child in started:  # nothing left behind, also when this test fails
            if child.poll() is None:
                child.kill()
                child.wait()

    assert rejected.value.exit_status == ExitStatus.STOPPED
    assert "interrupted before the background run had recorded the job" in rejected.value.message
    [child] = started
    assert child.returncode == -signal.SIGTERM  # ended by the parent, not by this cleanup
    store = JobStore(settings.state_dir)
    assert not store.exists("interrupted")
    store.claim("interrupted", "arn")  # the name is free again


def test_a_child_whose_caller_gave_the_claim_up_does_not_claim_the_name_anew(
    tmp_path: Path,
) -> None:
    store = JobStore(tmp_path / "state")
    store.claim("given-up", "arn")  # the caller (`run --detach`) claims for its child ...
    token = store.claim_token("given-up")
    store.release_claim("given-up", token)  # ... and gives up (Ctrl-C) before the child took it

    with pytest.raises(CannotRunHere, match="gave up"):
        store.claim("given-up", "arn", token=token)  # the child, late
    assert not store.folder("given-up").path.exists()


def test_a_claim_the_child_took_over_is_not_released_by_its_caller(tmp_path: Path) -> None:
    store = JobStore(tmp_path / "state")
    store.claim("taken", "arn")
    token = store.claim_token("taken")
    store.claim("taken", "arn", token=token)  # the child takes the claim over

    store.release_claim("taken", token)  # its caller, giving up late, must not pull it away

    assert store.folder("taken").claim.exists()
    with pytest.raises(ResourceInUse):
        store.claim("taken", "arn")
