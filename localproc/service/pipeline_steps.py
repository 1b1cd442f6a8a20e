"""One processing step of a pipeline execution: its arguments evaluated into a CreateProcessingJob
request, a cached run reused when CacheConfig allows, otherwise a localproc job started through
the same call as serve's CreateProcessingJob, watched to its end, stopped on request, and
retried as its RetryPolicies say. The step's record entry is updated through `StepEntry`."""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from localproc.errors import CannotRunHere, LocalprocError, ResourceLimitExceeded
from localproc.pipeline import policies
from localproc.pipeline.definition import Step
from localproc.pipeline.expressions import (
    ExpressionError,
    Scope,
    evaluate,
    json_document,
    lookup,
)
from localproc.pipeline.naming import step_job_name
from localproc.records.times import parse_timestamp

# A property file is a small JSON report; a container must not make the executor read more.
MAX_PROPERTY_FILE_BYTES = 1024 * 1024
SLOT_WAIT_SECONDS = 2.0


class StepEntry(Protocol):
    """The step's entry in the execution record (the executor owns the record)."""

    def update(self, **members: Any) -> None: ...

    def get(self, member: str) -> Any: ...


@dataclass
class StepServices:
    """What a processing step needs from the world, given by the executor."""

    start_job: Callable[[dict[str, Any]], str]  # a request -> its job ARN (LocalprocError)
    describe_job: Callable[[str], dict[str, Any]]  # job name -> DescribeProcessingJob
    stop_job: Callable[[str], None]
    read_object: Callable[[str, int], bytes]  # s3 URI, byte limit -> content (LocalprocError)
    cache_hit: Callable[[str, str, float | None], dict[str, Any] | None]  # step, key, expiry
    stop: threading.Event
    poll_seconds: float = 0.5


class StepFailed(Exception):
    def __init__(self, reason: str, status: str = "Failed") -> None:
        super().__init__(reason)
        self.reason = reason
        self.status = status


def run_processing_step(
    step: Step, entry: StepEntry, scope: Scope, services: StepServices, execution_id: str
) -> None:
    """Run the step to its end; the entry ends Succeeded, or StepFailed is raised."""
    try:
        arguments = evaluate(step.arguments, scope)
    except ExpressionError as err:
        raise StepFailed(f"The step's arguments cannot be evaluated: {err}") from None
    key = policies.cache_key(step.type, arguments)
    entry.update(LocalCacheKey=key)
    if policies.cache_enabled(step.cache_config):
        try:
            expiry = policies.cache_expiry_seconds(step.cache_config or {})
        except LocalprocError as err:
            raise StepFailed(err.message) from None
        hit = services.cache_hit(step.name, key, expiry)
        if hit is not None:
            entry.update(
                CacheHitResult={"SourcePipelineExecutionArn": hit["ExecutionArn"]},
                Metadata={"ProcessingJob": {"Arn": hit["JobArn"]}},
                LocalJobName=hit["JobName"],
                LocalPropertyFiles=hit["PropertyFiles"],
            )
            return
    first_attempt = time.monotonic()
    retries = 0
    while True:
        name = step_job_name(execution_id, step.name)
        entry.update(AttemptCount=retries + 1, LocalJobName=name, StepStatus="Starting")
        exception_type, reason = _attempt(
            step, entry, services, {**arguments, "ProcessingJobName": name}
        )
        if exception_type is None and reason is None:
            return
        delay = policies.retry_delay(
            step.retry_policies, exception_type, retries, time.monotonic() - first_attempt
        )
        if services.stop.is_set():
            raise StepFailed(reason or "Stopped.", "Stopped")
        if delay is None:
            raise StepFailed(reason or "The step failed.")
        retries += 1
        if services.stop.wait(delay):
            raise StepFailed(f"Stopped while waiting to retry after: {reason}", "Stopped")


def _attempt(
    step: Step, entry: StepEntry, services: StepServices, request: dict[str, Any]
) -> tuple[str | None, str | None]:
    """One job run: (None, None) when it completed, else (retry exception type, reason)."""
    name = request["ProcessingJobName"]
    while True:
        if services.stop.is_set():  # asked while the step was starting: no job to stop later
            raise StepFailed("Stopped before its job could start.", "Stopped")
        try:
            arn = services.start_job(request)
            break
        except ResourceLimitExceeded as err:
            if any(
                policies.RESOURCE_LIMIT in (p.get("ExceptionType") or [])
                for p in step.retry_policies
            ):
                return policies.RESOURCE_LIMIT, f"ResourceLimitExceeded: {err.message}"
            # No policy for it: the step waits for a free job slot, as a queued job would.
            services.stop.wait(SLOT_WAIT_SECONDS)
        except CannotRunHere as err:
            return policies.SERVICE_FAULT, f"{err.code}: {err.message}"
        except LocalprocError as err:
            if err.exit_status == CannotRunHere.exit_status:
                return policies.SERVICE_FAULT, f"{err.code}: {err.message}"
            raise StepFailed(f"{err.code}: {err.message}") from None
    entry.update(Metadata={"ProcessingJob": {"Arn": arn}}, StepStatus="Executing")
    described = _wait_for_end(name, entry, services)
    status = described.get("ProcessingJobStatus")
    if status == "Completed":
        entry.update(LocalPropertyFiles=_property_files(step, described, services))
        return None, None
    reason = described.get("FailureReason") or f"Processing job {name} ended {status}."
    if status == "Stopped":
        if services.stop.is_set():
            raise StepFailed(reason, "Stopped")
        raise StepFailed(f"Processing job {name} was stopped: {reason}")
    return policies.failure_type(reason), reason


def _wait_for_end(name: str, entry: StepEntry, services: StepServices) -> dict[str, Any]:
    asked_to_stop = False
    while True:
        described = services.describe_job(name)
        if described.get("ProcessingJobStatus") in ("Completed", "Failed", "Stopped"):
            return described
        if services.stop.is_set() and not asked_to_stop:
            asked_to_stop = True
            entry.update(StepStatus="Stopping")
            # A job that ended meanwhile cannot be stopped: the next look says how it ended.
            with contextlib.suppress(LocalprocError):
                services.stop_job(name)
        time.sleep(services.poll_seconds)


def _property_files(
    step: Step, described: dict[str, Any], services: StepServices
) -> dict[str, Any]:
    """Each PropertyFile of the step, read from the output it names once the job completed."""
    found: dict[str, Any] = {}
    for item in step.property_files:
        name, output, path = (
            item.get("PropertyFileName"),
            item.get("OutputName"),
            item.get("FilePath"),
        )
        try:
            uri = lookup(
                described, f"ProcessingOutputConfig.Outputs['{output}'].S3Output.S3Uri", name
            )
        except ExpressionError as err:
            raise StepFailed(f"Property file {name}: {err}") from None
        location = f"{str(uri).rstrip('/')}/{str(path).lstrip('/')}"
        try:
            content = services.read_object(location, MAX_PROPERTY_FILE_BYTES)
            found[str(name)] = json_document(content, f"Property file {name} ({location})")
        except LocalprocError as err:
            raise StepFailed(
                f"Property file {name} ({location}) cannot be read: {err.message}"
            ) from None
        except ExpressionError as err:
            raise StepFailed(str(err)) from None
    return found


def cached_run(
    executions: list[dict[str, Any]],
    pipeline: str,
    step: str,
    key: str,
    expiry: float | None,
    now: float,
) -> dict[str, Any] | None:
    """The newest successful run of `step` of `pipeline` with the cache key `key` that ended
    less than `expiry` seconds before `now` (epoch seconds): where the cache hit comes from."""
    best: tuple[float, dict[str, Any]] | None = None
    for execution in executions:
        if execution.get("PipelineName") != pipeline:
            continue
        for entry in execution.get("Steps", []):
            if entry.get("StepName") != step or entry.get("StepStatus") != "Succeeded":
                continue
            if entry.get("LocalCacheKey") != key or not entry.get("EndTime"):
                continue
            ended = parse_timestamp(entry["EndTime"]).timestamp()
            if expiry is not None and now - ended > expiry:
                continue
            source = entry.get("CacheHitResult", {}).get("SourcePipelineExecutionArn")
            hit = {
                "ExecutionArn": source or execution["PipelineExecutionArn"],
                "JobArn": entry.get("Metadata", {}).get("ProcessingJob", {}).get("Arn"),
                "JobName": entry.get("LocalJobName"),
                "PropertyFiles": entry.get("LocalPropertyFiles", {}),
            }
            if hit["JobName"] and (best is None or ended > best[0]):
                best = (ended, hit)
    return best[1] if best else None
