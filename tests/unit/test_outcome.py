"""The one decision of a run's final status and reason (execution/outcome.py), and the stop
signal shared by staging, the watch and the uploads. Pure: no Docker, no S3."""

from __future__ import annotations

import itertools

import pytest

from localproc.execution.outcome import (
    DEADLINE_REASON,
    FAILURE_REASON_LIMIT,
    Happened,
    InstanceResult,
    decide,
)
from localproc.execution.stop import StopSignal

OK = InstanceResult("algo-1", 0, False, False)
OK2 = InstanceResult("algo-2", 0, False, False)
FAILED2 = InstanceResult("algo-2", 3, False, False)
STOPPED1 = InstanceResult("algo-1", 137, False, True)  # stopped because algo-2 failed
OOM1 = InstanceResult("algo-1", 137, True, False)
MIB = 2**20


def verdict(**facts: object) -> tuple[str, str | None]:
    base: dict[str, object] = {"instance_type": "ml.m5.xlarge", "max_runtime_seconds": 60}
    result = decide(Happened(**{**base, **facts}))  # type: ignore[arg-type]
    return result.status, result.failure_reason


def test_every_instance_exiting_zero_completes() -> None:
    assert verdict(results=[OK, OK2]) == ("Completed", None)


def test_no_instance_at_all_and_nothing_else_completes() -> None:
    # (a run stopped while staging starts no container: the stop decides, see below)
    assert verdict(results=[]) == ("Completed", None)


def test_a_failing_instance_fails_the_job_with_its_exit_code() -> None:
    assert verdict(results=[OK, FAILED2]) == (
        "Failed",
        "AlgorithmError: algo-2 exited with code 3. See the job's logs for more information.",
    )


def test_the_instance_that_failed_by_itself_is_named_not_one_stopped_because_of_it() -> None:
    status, reason = verdict(results=[STOPPED1, FAILED2])
    assert status == "Failed" and reason is not None and "algo-2 exited with code 3" in reason


def test_when_every_failed_instance_was_stopped_by_us_the_first_is_named() -> None:
    other = InstanceResult("algo-2", 143, False, True)
    status, reason = verdict(results=[STOPPED1, other])
    assert status == "Failed" and reason is not None and "algo-1 exited with code 137" in reason


def test_out_of_memory_names_the_limit_and_the_instance_type() -> None:
    assert verdict(results=[OOM1], memory_limit_bytes=512 * MIB) == (
        "Failed",
        "AlgorithmError: algo-1 ran out of memory: it used all of its memory limit of 512 MiB "
        "(ml.m5.xlarge) and was killed (exit code 137).",
    )


def test_out_of_memory_without_limits_says_memory() -> None:
    _, reason = verdict(results=[OOM1], memory_limit_bytes=None)
    assert reason is not None and "it used all of memory (ml.m5.xlarge)" in reason


@pytest.mark.parametrize("results", [[OK], [FAILED2], [OOM1]])
def test_a_pipe_stream_cut_short_overrides_the_instances_verdict(results: list) -> None:
    pipe = "ClientError: input 'data' could not be streamed"
    assert verdict(results=results, pipe_failure=pipe) == ("Failed", pipe)


def test_a_failed_step_beats_the_instances_and_the_pipes() -> None:
    failure = "InternalServerError: Docker engine: starting containers failed: boom"
    assert verdict(failure=failure, results=[OK], pipe_failure="ClientError: x") == (
        "Failed",
        failure,
    )


@pytest.mark.parametrize(
    "facts",
    [
        {},
        {"results": [FAILED2]},
        {"failure": "ClientError: Cannot download s3://b/k: gone"},
        {"pipe_failure": "ClientError: pipe"},
        {"upload_failures": "s3://b/o/x: denied"},
        {"record_status": "Stopping"},
    ],
)
def test_a_stop_that_was_asked_for_stops_the_job_without_a_reason(facts: dict) -> None:
    assert verdict(stop_reason="interrupted (Ctrl-C)", **facts) == ("Stopped", None)


def test_running_out_of_max_runtime_stops_the_job_and_names_the_limit() -> None:
    assert verdict(stop_reason=DEADLINE_REASON, results=[STOPPED1]) == (
        "Stopped",
        "MaxRuntimeExceeded: the job ran for its StoppingCondition.MaxRuntimeInSeconds (60 s) "
        "and was stopped.",
    )


def test_outputs_that_could_not_be_uploaded_fail_a_completed_job() -> None:
    assert verdict(results=[OK], upload_failures="s3://b/o/x: denied") == (
        "Failed",
        "ClientError: Failed to upload output s3://b/o/x: denied",
    )


def test_a_failed_jobs_own_reason_stands_over_upload_failures() -> None:
    status, reason = verdict(results=[FAILED2], upload_failures="s3://b/o/x: denied")
    assert status == "Failed" and reason is not None and reason.startswith("AlgorithmError")


@pytest.mark.parametrize(
    ("facts", "reason"),
    [
        ({"results": [OK]}, None),
        ({"results": [FAILED2]}, "AlgorithmError: algo-2 exited with code 3."),
        ({"failure": "ClientError: no objects"}, "ClientError: no objects"),
    ],
)
def test_localproc_stop_racing_the_end_gives_stopped_and_keeps_the_reason(
    facts: dict, reason: str | None
) -> None:
    status, got = verdict(record_status="Stopping", **facts)
    assert status == "Stopped"
    assert got == reason if reason is None else got is not None and got.startswith(reason)


def test_the_reason_is_capped_at_the_apis_limit() -> None:
    status, reason = verdict(failure="ClientError: " + "x" * 5000)
    assert status == "Failed" and reason is not None
    assert len(reason) == FAILURE_REASON_LIMIT and reason.endswith("…")
    assert verdict(failure="x" * FAILURE_REASON_LIMIT)[1] == "x" * FAILURE_REASON_LIMIT


FAILURES = [None, "ClientError: staging"]
RESULTS = [[], [OK, OK2], [STOPPED1, FAILED2], [OOM1]]
PIPES = [None, "ClientError: pipe"]
STOPS = [None, "stop requested", DEADLINE_REASON]
UPLOADS = [None, "s3://b/k: denied"]
RECORDS = ["InProgress", "Stopping"]


@pytest.mark.parametrize(
    ("failure", "results", "pipe", "stop", "uploads", "record"),
    list(itertools.product(FAILURES, RESULTS, PIPES, STOPS, UPLOADS, RECORDS)),
)
def test_every_combination_obeys_the_precedence(  # type: ignore[no-untyped-def]
    failure, results, pipe, stop, uploads, record
) -> None:
    status, reason = verdict(
        failure=failure, results=results, pipe_failure=pipe, stop_reason=stop,
        upload_failures=uploads, record_status=record, memory_limit_bytes=MIB,
    )  # fmt: skip
    instances_failed = any(r.exit_code for r in results)
    if stop is not None:
        assert status == "Stopped"
        assert (reason is not None) == (stop == DEADLINE_REASON)
        return
    if record == "Stopping":
        assert status == "Stopped"
    elif failure or pipe or instances_failed or uploads:
        assert status == "Failed"
    else:
        assert status == "Completed"
    if failure:
        assert reason == failure
    elif pipe:
        assert reason == pipe
    elif instances_failed:
        assert reason is not None and reason.startswith("AlgorithmError: ")
    elif uploads:
        assert reason == "ClientError: Failed to upload output " + uploads
    else:
        assert reason is None


def test_the_stop_signal_keeps_the_first_reason_and_a_kill_once_asked() -> None:
    stop = StopSignal()
    assert not stop.requested and not stop.kill_now
    stop.request("interrupted (Ctrl-C)")
    stop.request(DEADLINE_REASON, immediately=True)
    stop.request("stop requested")
    assert stop.requested and stop.reason == "interrupted (Ctrl-C)" and stop.kill_now
