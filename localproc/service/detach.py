"""`run --detach` (and `serve`'s CreateProcessingJob): the job runs on in a background process
of its own (a new session, so the terminal's Ctrl-C does not reach it); this process returns
once the job is recorded.

The background run is `localproc run -`: the validated request on its stdin, the settings as
its options (written by `RunOptions.to_argv`, from the same declaration the CLI parses), the
name's claim token and the path of a status file in its environment. Its output goes to the
runner log (state_dir/runners/NAME.log), for people. If it is rejected before recording the job,
it writes the status file (`{"exit_status": 4, "code": "CannotRunHere", "message": ...}`,
beside the log), which is how this process learns why; it removes that file once read."""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from localproc.errors import ExitStatus, LocalprocError
from localproc.execution.prepare import RunSettings, job_arn_for
from localproc.execution.stop import StopSignal, giving_up_on_signals
from localproc.files import private_dir
from localproc.records.store import JobStore
from localproc.service.options import RunOptions

START_TIMEOUT_SECONDS = 120
# The background run finds the claim its parent made for it here (see RunSettings.claim_token).
CLAIM_TOKEN_VARIABLE = "LOCALPROC_CLAIM_TOKEN"
# ... and the file where it reports a rejection (see reporting_to_parent).
STATUS_FILE_VARIABLE = "LOCALPROC_DETACH_STATUS_FILE"


class DetachedRunRejected(LocalprocError):
    """The background run ended before recording the job (rejected or could not run here).
    `code`, the message and the exit status are the run's own, as it reported them in its
    status file, so callers see the same error as a foreground run."""

    def __init__(
        self, message: str, exit_status: ExitStatus, code: str = "DetachedRunRejected"
    ) -> None:
        super().__init__(message)
        self.exit_status = exit_status
        self.code = code


@dataclass(frozen=True)
class RunStatus:
    """What a background run tells its parent when it is rejected before recording the job:
    the exit status it ends with, the error's code and its message (as data: the runner log,
    where the same error is printed, is for people)."""

    exit_status: int
    code: str
    message: str

    @classmethod
    def of(cls, err: LocalprocError) -> RunStatus:
        return cls(int(err.exit_status), err.code, err.message)

    def write(self, path: Path) -> None:
        partial = path.with_name(path.name + ".partial")
        partial.write_text(json.dumps(asdict(self)))
        partial.replace(path)

    @classmethod
    def read(cls, path: Path) -> RunStatus | None:
        """The status the run wrote, or None (it wrote none: it crashed or was killed)."""
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            return cls(int(data["exit_status"]), str(data["code"]), str(data["message"]))
        except (OSError, ValueError, TypeError, KeyError):
            return None


def claim_token_from_parent() -> str | None:
    """In a background run: the token of the claim its parent made (None in any other run)."""
    return os.environ.get(CLAIM_TOKEN_VARIABLE) or None


@contextlib.contextmanager
def reporting_to_parent() -> Iterator[None]:
    """In a background run, a LocalprocError raised inside (a rejection: the job is not
    recorded) is also written to the status file its parent waits on; it is raised on."""
    path = os.environ.pop(STATUS_FILE_VARIABLE, None)  # for this process, not its children
    try:
        yield
    except LocalprocError as err:
        if path:
            with contextlib.suppress(OSError):
                RunStatus.of(err).write(Path(path))
        raise


def start_detached(request: dict[str, Any], settings: RunSettings) -> str:
    """Start `localproc run -` in the background with the validated request on its stdin;
    return the job's ARN once the job is recorded.

    The name is claimed here, before anything else: a second caller with the same name hears
    ResourceInUse at once, never a success answer for a job that will not run. The background
    run takes the claim over (its token passes in the environment) or, if it ends without
    recording the job, the claim is released here."""
    store = JobStore(settings.state_dir)
    name = request["ProcessingJobName"]
    started = _Started()
    try:
        return _start_and_wait(request, settings, store, started)
    except BaseException:
        if started.token is not None:
            store.release_claim(name, started.token)
        raise
    finally:
        if started.token is not None:  # else the name is another run's, and so is this file
            # Beside the runner log (runners/NAME.status.json); removed once read.
            store.layout.runner_status(name).unlink(missing_ok=True)


@dataclass
class _Started:
    """How far start_detached got: the token of the claim it made, to release on failure."""

    token: str | None = None


def _start_and_wait(
    request: dict[str, Any], settings: RunSettings, store: JobStore, started: _Started
) -> str:
    name = request["ProcessingJobName"]
    # A Ctrl-C (or SIGTERM) while the name is claimed and the run started is acted on once both
    # are known: one inside Popen would lose a child that already runs, and that child would
    # run the job its caller was told is not run.
    with giving_up_on_signals() as given_up:
        store.claim(name, job_arn_for(request, settings))  # raises ResourceInUse
        started.token = store.claim_token(name)
        process = _start(request, settings, store, started.token)
        arn = _wait_until_recorded(process, store, name, given_up)
    if arn is not None and not given_up.requested:
        return arn
    # The caller gave up before hearing of the job: it must not run on unannounced. The
    # background run's handlers stop a job it records meanwhile (it then ends Stopped).
    _end(process)
    raise DetachedRunRejected(
        "interrupted before the background run had recorded the job; it was ended"
        + (" (it had just recorded it: the job is stopped)" if store.exists(name) else ""),
        ExitStatus.STOPPED,
    )


def _start(
    request: dict[str, Any], settings: RunSettings, store: JobStore, token: str
) -> subprocess.Popen[bytes]:
    name = request["ProcessingJobName"]
    log_path, status_path = store.layout.runner_log(name), store.layout.runner_status(name)
    private_dir(log_path.parent)
    status_path.unlink(missing_ok=True)
    options = RunOptions.from_settings(settings).to_argv()
    command = [sys.executable, "-m", "localproc", "run", "-", *options]
    with log_path.open("ab") as log:
        process = subprocess.Popen(
            command,
            stdin=subprocess.PIPE,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            close_fds=True,
            env={
                **os.environ,
                CLAIM_TOKEN_VARIABLE: token,
                STATUS_FILE_VARIABLE: str(status_path),
            },
        )
    assert process.stdin is not None
    process.stdin.write(json.dumps(request).encode())
    process.stdin.close()
    # Reap the run when it ends, so a long-lived caller (`serve`) collects no zombies.
    threading.Thread(target=process.wait, daemon=True).start()
    return process


# How long an ended (SIGTERM) background run is waited for. One that had just taken the claim
# over stops the job it records (its signal handlers are in by then) before it ends.
END_TIMEOUT_SECONDS = 30


def _end(process: subprocess.Popen[bytes]) -> None:
    process.terminate()
    with contextlib.suppress(subprocess.TimeoutExpired):
        process.wait(timeout=END_TIMEOUT_SECONDS)


def _wait_until_recorded(
    process: subprocess.Popen[bytes], store: JobStore, name: str, given_up: StopSignal
) -> str | None:
    """The job's ARN once the run has recorded it; None if the caller gave up first."""
    log_path, status = store.layout.runner_log(name), store.layout.runner_status(name)
    deadline = time.monotonic() + START_TIMEOUT_SECONDS
    while not store.exists(name):
        if given_up.requested:
            return None
        code = process.returncode
        if code is not None and not store.exists(name):
            raise _rejection(RunStatus.read(status), code, log_path)
        if time.monotonic() > deadline:
            # Reported as not run, so it must not run: end it (it has not recorded the job,
            # and its signal handlers stop a job that it records meanwhile).
            _end(process)
            if store.exists(name):
                break  # it recorded the job just before the end: the caller gets its ARN
            raise DetachedRunRejected(
                f"the background run did not record the job within {START_TIMEOUT_SECONDS} s "
                f"(a large image to pull?) and was ended; see {log_path}",
                ExitStatus.CANNOT_RUN_HERE,
            )
        time.sleep(0.05)
    return store.load_record(name).arn


def _rejection(status: RunStatus | None, code: int, log_path: Path) -> DetachedRunRejected:
    if status is None:  # it crashed, or was killed, before it could say why
        return DetachedRunRejected(
            f"the background run ended (exit code {code}) before recording the job; its "
            f"output is in {log_path}",
            _exit_status(code),
        )
    return DetachedRunRejected(status.message, _exit_status(status.exit_status), status.code)


def _exit_status(code: int) -> ExitStatus:
    try:
        return ExitStatus(code)
    except ValueError:
        return ExitStatus.CANNOT_RUN_HERE
