"""The one decision of a run's final status and FailureReason, from what happened. Pure: no
engine, no record, no clock, so every combination is unit-tested (tests/unit/test_outcome.py).

Precedence, highest first:
1. a stop (Ctrl-C, SIGTERM, `localproc stop` seen by the watch, MaxRuntimeInSeconds), whenever it
   came, also while the outputs were uploading: Stopped; the reason names the limit when the
   deadline stopped it, else none (a stop that was asked for is no failure);
2. a step that failed (planning, staging, the engine, this host): Failed with its reason;
3. an instance that failed by itself (not one stopped because another failed), out of memory
   or with its exit code; a Pipe stream cut short (the likely cause of any failure) overrides;
4. outputs that could not be uploaded fail a job that otherwise completed;
5. the record says Stopping at the end (`localproc stop` raced the job's own end): Stopped, the
   reason decided so far kept.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from localproc.errors import algorithm_error
from localproc.records.status import JobStatus

FAILURE_REASON_LIMIT = 1024  # the API's own cap on the field
DEADLINE_REASON = "deadline"
UPLOAD_FAILED = "ClientError: Failed to upload output "


@dataclass(frozen=True)
class InstanceResult:
    host: str
    exit_code: int
    oom_killed: bool
    stopped_by_us: bool  # stopped because another instance failed or the job was stopped
    peak_memory_bytes: int | None = None  # None when the engine gave no sample (very short run)
    cpu_seconds: float | None = None


@dataclass(frozen=True)
class Happened:
    """What a run went through, as the steps report it."""

    failure: str | None = None  # the FailureReason of a step that failed
    results: Sequence[InstanceResult] = ()
    pipe_failure: str | None = None
    stop_reason: str | None = None  # DEADLINE_REASON when MaxRuntimeInSeconds ran out
    upload_failures: str | None = None  # the uploads' failure summary, None when all went up
    # the record's status just before the end is written
    record_status: JobStatus | str = JobStatus.IN_PROGRESS
    instance_type: str = ""
    memory_limit_bytes: int | None = None
    max_runtime_seconds: int | None = None


@dataclass(frozen=True)
class Verdict:
    status: JobStatus  # Completed | Failed | Stopped
    failure_reason: str | None


def decide(happened: Happened) -> Verdict:
    status, reason = _verdict_before_uploads(happened)
    if happened.stop_reason is not None:
        status, reason = JobStatus.STOPPED, _stopped_reason(happened)
    elif happened.upload_failures and status == JobStatus.COMPLETED:
        status, reason = (
            JobStatus.FAILED,
            "ClientError: Failed to upload output " + happened.upload_failures,
        )
    if happened.record_status == JobStatus.STOPPING:
        status = JobStatus.STOPPED  # `localproc stop` came in as the job ended by itself
    return Verdict(status, _capped(reason, FAILURE_REASON_LIMIT))


def _verdict_before_uploads(happened: Happened) -> tuple[JobStatus, str | None]:
    if happened.failure is not None:
        return JobStatus.FAILED, happened.failure
    status, reason = judge(happened)
    if happened.pipe_failure is not None:
        return JobStatus.FAILED, happened.pipe_failure
    return status, reason


def judge(happened: Happened) -> tuple[JobStatus, str | None]:
    """Completed when every instance exits 0; otherwise the first instance that failed by itself
    (not one we stopped because of it) names the reason."""
    failed = [r for r in happened.results if r.exit_code != 0]
    if not failed:
        return JobStatus.COMPLETED, None
    culprit = next((r for r in failed if not r.stopped_by_us), failed[0])
    if culprit.oom_killed:
        limit = happened.memory_limit_bytes
        limit_text = f"its memory limit of {limit / 2**20:.0f} MiB" if limit else "memory"
        return JobStatus.FAILED, algorithm_error(
            f"{culprit.host} ran out of memory: it used all of {limit_text} "
            f"({happened.instance_type}) and was killed (exit code {culprit.exit_code})."
        ).reason
    return JobStatus.FAILED, algorithm_error(
        f"{culprit.host} exited with code {culprit.exit_code}. See the job's logs for more "
        "information."
    ).reason


def _stopped_reason(happened: Happened) -> str | None:
    """The service gives no FailureReason for a stop that was asked for (it did not fail);
    running out of MaxRuntimeInSeconds names the limit."""
    if happened.stop_reason == DEADLINE_REASON:
        return (
            "MaxRuntimeExceeded: the job ran for its StoppingCondition.MaxRuntimeInSeconds "
            f"({happened.max_runtime_seconds} s) and was stopped."
        )
    return None


def _capped(text: str | None, limit: int) -> str | None:
    if text is None or len(text) <= limit:
        return text
    return text[: limit - 1] + "…"
