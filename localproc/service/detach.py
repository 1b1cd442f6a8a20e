"""`run --detach`: the job runs on in a background process of its own (a new session, so the
terminal's Ctrl-C does not reach it); this process returns once the job is recorded."""

from __future__ import annotations

import contextlib
import json
import os
import re
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

from localproc.errors import ExitStatus, LocalprocError
from localproc.execution.prepare import RunSettings, job_arn_for
from localproc.files import private_dir
from localproc.records.store import JobStore

START_TIMEOUT_SECONDS = 120
# The background run finds the claim its parent made for it here (see RunSettings.claim_token).
CLAIM_TOKEN_VARIABLE = "LOCALPROC_CLAIM_TOKEN"
_REJECTION = re.compile(r"localproc: (\w+): (.*)", re.DOTALL)


class DetachedRunRejected(LocalprocError):
    """The background run ended before recording the job (rejected or could not run here).
    `code` and the message are the run's own, read from its last line
    (`localproc: CODE: message`), so callers see the same error as a foreground run."""

    def __init__(self, last_line: str, exit_status: ExitStatus) -> None:
        match = _REJECTION.fullmatch(last_line.strip())
        super().__init__(match.group(2) if match else last_line)
        self.exit_status = exit_status
        self.code = match.group(1) if match else "DetachedRunRejected"


def start_detached(request: dict[str, Any], settings: RunSettings) -> str:
    """Start `localproc run -` in the background with the validated request on its stdin;
    return the job's ARN once the job is recorded.

    The name is claimed here, before anything else: a second caller with the same name hears
    ResourceInUse at once, never a success answer for a job that will not run. The background
    run takes the claim over (its token passes in the environment) or, if it ends without
    recording the job, the claim is released here."""
    store = JobStore(settings.state_dir)
    name = request["ProcessingJobName"]
    store.claim(name, job_arn_for(request, settings))  # raises ResourceInUse
    token = store.claim_token(name)
    try:
        return _start_and_wait(request, settings, store, token)
    except BaseException:
        store.release_claim(name, token)
        raise


def _start_and_wait(
    request: dict[str, Any], settings: RunSettings, store: JobStore, token: str
) -> str:
    name = request["ProcessingJobName"]
    log_path = store.runner_log(name)
    private_dir(log_path.parent)
    command = [sys.executable, "-m", "localproc", "run", "-", *_run_options(settings)]
    with log_path.open("ab") as log:
        process = subprocess.Popen(
            command,
            stdin=subprocess.PIPE,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            close_fds=True,
            env={**os.environ, CLAIM_TOKEN_VARIABLE: token},
        )
    assert process.stdin is not None
    process.stdin.write(json.dumps(request).encode())
    process.stdin.close()
    # Reap the run when it ends, so a long-lived caller (`serve`) collects no zombies.
    threading.Thread(target=process.wait, daemon=True).start()
    try:
        return _wait_until_recorded(process, store, name, log_path)
    except KeyboardInterrupt:
        # The caller gave up before hearing of the job: it must not run on unannounced. The
        # background run's handlers stop a job it records meanwhile (it then ends Stopped).
        _end(process)
        raise DetachedRunRejected(
            "interrupted before the background run had recorded the job; it was ended"
            + (" (it had just recorded it: the job is stopped)" if store.exists(name) else ""),
            ExitStatus.STOPPED,
        ) from None


def _end(process: subprocess.Popen[bytes]) -> None:
    process.terminate()
    with contextlib.suppress(subprocess.TimeoutExpired):
        process.wait(timeout=30)


def _wait_until_recorded(
    process: subprocess.Popen[bytes], store: JobStore, name: str, log_path: Path
) -> str:
    deadline = time.monotonic() + START_TIMEOUT_SECONDS
    while not store.exists(name):
        code = process.returncode
        if code is not None and not store.exists(name):
            output = log_path.read_text(errors="replace").strip().splitlines()
            detail = output[-1] if output else f"exit code {code}"
            raise DetachedRunRejected(detail, _exit_status(code))
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
    return store.load(name)["ProcessingJobArn"]


def _run_options(settings: RunSettings) -> list[str]:
    options = [
        "--state-dir",
        str(settings.state_dir),
        "--stop-grace",
        str(settings.stop_grace_seconds),
    ]
    if settings.s3_root is not None:
        options += ["--s3-root", str(settings.s3_root)]
    if settings.s3_endpoint_url is not None:
        options += ["--s3-endpoint-url", settings.s3_endpoint_url]
    if settings.region is not None:
        options += ["--region", settings.region]
    if settings.keep_staging:
        options.append("--keep-staging")
    if not settings.resource_limits:
        options.append("--no-resource-limits")
    if not settings.use_cache:
        options.append("--no-cache")
    options += ["--cache-size-gb", str(settings.cache_cap_bytes / 2**30)]
    if settings.pass_aws_credentials:
        options.append("--pass-aws-credentials")
    return options


def _exit_status(code: int) -> ExitStatus:
    try:
        return ExitStatus(code)
    except ValueError:
        return ExitStatus.CANNOT_RUN_HERE
