"""One pipeline execution, run to its end in the calling thread: steps start when what they
wait for has succeeded (DependsOn, the steps whose properties they read, the Condition step
whose chosen branch they are in), independent steps run in parallel threads up to
`max_parallel`, the execution record is the executor's alone to write. A stop is asked for
through the store (`PipelineStore.request_stop`, from any process) and seen here within a poll;
the running processing jobs are then stopped."""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from localproc.errors import LocalprocError
from localproc.liveness import process_identity
from localproc.pipeline.conditions import all_hold
from localproc.pipeline.definition import Definition, Step, cannot_run_reason
from localproc.pipeline.expressions import (
    ExpressionError,
    Scope,
    as_text,
    evaluate,
    json_document,
)
from localproc.pipeline.graph import graph
from localproc.records.pipelines import PipelineStore
from localproc.records.times import now, timestamp
from localproc.service.pipeline_steps import (
    MAX_PROPERTY_FILE_BYTES,
    StepFailed,
    StepServices,
    cached_run,
    run_processing_step,
)

ENDED_STEP = ("Succeeded", "Failed", "Stopped")
STEP_FAILURE = "Step failure: One or multiple steps failed."


@dataclass
class JobBackend:
    """How steps reach processing jobs: the front door's own start call (serve's
    CreateProcessingJob path, or start_detached for the CLI), describe, stop, and reading S3."""

    start_job: Callable[[dict[str, Any]], str]
    describe_job: Callable[[str], dict[str, Any]]
    stop_job: Callable[[str], None]
    read_object: Callable[[str, int], bytes]


class ExecutionRunner:
    def __init__(
        self,
        store: PipelineStore,
        execution: dict[str, Any],
        definition: Definition,
        jobs: JobBackend,
        max_parallel: int,
        on_change: Callable[[dict[str, Any]], None] | None = None,
        poll_seconds: float = 0.5,
    ) -> None:
        self.store = store
        self.execution = execution
        self.definition = definition
        self.jobs = jobs
        self.max_parallel = max(1, max_parallel)
        self.on_change = on_change
        self.poll_seconds = poll_seconds
        self.edges = graph(definition)
        self.stop = threading.Event()
        self._lock = threading.RLock()
        self._wake = threading.Event()
        self._described: dict[str, dict[str, Any]] = {}  # ended jobs' descriptions

    @property
    def execution_id(self) -> str:
        return str(self.execution["ExecutionId"])

    def run(self) -> str:
        """Run to the end; the final status (Succeeded, Failed or Stopped)."""
        with self._lock:
            self.execution.update(
                PipelineExecutionStatus="Executing", Owner=process_identity(), FailureReason=None
            )
            self._save()
        threads: dict[str, threading.Thread] = {}
        try:
            self._schedule(threads)
        except Exception as err:  # e.g. the state dir became unwritable: never stuck Executing
            self.stop.set()  # the step threads stop their jobs
            for thread in threads.values():
                thread.join()
            return self._finish(f"InternalServerError: localproc failed running it: {err!r}")
        return self._finish()

    def _schedule(self, threads: dict[str, threading.Thread]) -> None:
        while True:
            with self._lock:
                self._notice_stop()
                running = [n for n, t in threads.items() if t.is_alive()]
                if not self.stop.is_set() and not self._any_failed():
                    for step in self._ready(set(threads)):
                        if len(running) >= self.max_parallel:
                            break
                        thread = threading.Thread(
                            target=self._run_step, args=(step,), name=f"step-{step.name}"
                        )
                        threads[step.name] = thread
                        self._entry_for(step)  # Starting, before the thread runs
                        thread.start()
                        running.append(step.name)
                if not running:
                    return
            self._wake.wait(self.poll_seconds)
            self._wake.clear()

    def _notice_stop(self) -> None:
        if not self.stop.is_set() and self.store.stop_requested(self.execution_id):
            self.stop.set()
            self.execution["PipelineExecutionStatus"] = "Stopping"
            self._save()

    def _ready(self, started: set[str]) -> list[Step]:
        entries = self._entries()
        done = {n for n, e in entries.items() if e.get("StepStatus") == "Succeeded"}
        ready = []
        for name, step in self.definition.steps.items():
            if name in started or name in entries or not self.edges[name] <= done:
                continue
            if step.branch is not None:
                condition, side = step.branch
                outcome = entries[condition].get("Metadata", {}).get("Condition", {})
                if outcome.get("Outcome") != ("True" if side == "If" else "False"):
                    continue
            ready.append(step)
        return ready

    def _any_failed(self) -> bool:
        return any(e.get("StepStatus") in ("Failed", "Stopped") for e in self._entries().values())

    def _finish(self, internal_error: str | None = None) -> str:
        with self._lock:
            if internal_error is not None:
                status, reason = "Failed", internal_error
            elif self.stop.is_set():
                status, reason = "Stopped", None
            elif self._any_failed():
                status, reason = "Failed", STEP_FAILURE
            else:
                status, reason = "Succeeded", None
            self.execution.update(PipelineExecutionStatus=status, FailureReason=reason)
            self._save()
        self.store.clear_stop(self.execution_id)
        return status

    # -- one step ---------------------------------------------------------------------------
    def _run_step(self, step: Step) -> None:
        entry = _Entry(self, step.name)
        try:
            if step.type == "Processing":
                services = StepServices(
                    self.jobs.start_job, self._describe_job, self.jobs.stop_job,
                    self.jobs.read_object, self._cache_hit, self.stop, self.poll_seconds,
                )  # fmt: skip
                run_processing_step(step, entry, self.scope(), services, self.execution_id)
            elif step.type == "Condition":
                outcome = all_hold(step.arguments.get("Conditions", []), self.scope())
                entry.update(Metadata={"Condition": {"Outcome": "True" if outcome else "False"}})
            elif step.type == "Fail":
                message = as_text(evaluate(step.arguments.get("ErrorMessage", ""), self.scope()))
                entry.update(Metadata={"Fail": {"ErrorMessage": message}})
                raise StepFailed(message)
            else:
                raise StepFailed(cannot_run_reason(step.type))
            entry.update(StepStatus="Succeeded", EndTime=timestamp(now()))
        except StepFailed as failed:
            entry.update(
                StepStatus=failed.status, FailureReason=failed.reason, EndTime=timestamp(now())
            )
        except ExpressionError as err:
            entry.update(StepStatus="Failed", FailureReason=str(err), EndTime=timestamp(now()))
        except Exception as err:  # a bug must end the step, never hang the execution
            entry.update(
                StepStatus="Failed",
                FailureReason=f"InternalServerError: localproc failed running the step: {err!r}",
                EndTime=timestamp(now()),
            )
        finally:
            self._wake.set()

    def scope(self) -> Scope:
        execution = self.execution
        return Scope(
            parameters=dict(execution["LocalParameterValues"]),
            execution={
                "PipelineExecutionId": execution["ExecutionId"],
                "PipelineExecutionArn": execution["PipelineExecutionArn"],
                "StartDateTime": execution["CreationTime"],
                "CurrentDateTime": timestamp(now()),
                "PipelineName": execution["PipelineName"],
                "PipelineArn": execution["PipelineArn"],
            },
            step_properties=self._step_properties,
            property_file=self._property_file,
            json_at=self._json_at,
        )

    def _json_at(self, uri: str) -> Any:
        """Std:JsonGet's S3Uri: an object a container may have written, read as a property
        file is."""
        try:
            content = self.jobs.read_object(uri, MAX_PROPERTY_FILE_BYTES)
        except LocalprocError as err:
            raise ExpressionError(f"Std:JsonGet cannot read {uri}: {err.message}") from None
        return json_document(content, uri)

    def _step_properties(self, name: str) -> dict[str, Any] | None:
        entry = self._entries().get(name)
        if entry is None or entry.get("StepStatus") != "Succeeded":
            return None
        job = entry.get("LocalJobName")
        if job:
            return self._describe_job(job)
        return {k: v for k, v in entry.get("Metadata", {}).get("Condition", {}).items()}

    def _property_file(self, step: str, name: str) -> Any:
        files = self._entries().get(step, {}).get("LocalPropertyFiles") or {}
        if name not in files:
            raise ExpressionError(f"step {step} has no property file {name} (has it succeeded?)")
        return files[name]

    def _describe_job(self, name: str) -> dict[str, Any]:
        if name in self._described:
            return self._described[name]
        described = self.jobs.describe_job(name)
        if described.get("ProcessingJobStatus") in ("Completed", "Failed", "Stopped"):
            self._described[name] = described
        return described

    def _cache_hit(self, step: str, key: str, expiry: float | None) -> dict[str, Any] | None:
        others = [e for e in self.store.executions() if e.get("ExecutionId") != self.execution_id]
        hit = cached_run(
            others, self.execution["PipelineName"], step, key, expiry, now().timestamp()
        )
        if hit is None:
            return None
        try:  # the source job's record must still be there: its properties are the step's
            self._describe_job(hit["JobName"])
        except LocalprocError:
            return None
        return hit

    # -- the record -------------------------------------------------------------------------
    def _entries(self) -> dict[str, dict[str, Any]]:
        return {e["StepName"]: e for e in self.execution.setdefault("Steps", [])}

    def _entry_for(self, step: Step) -> dict[str, Any]:
        with self._lock:
            entry = self._entries().get(step.name)
            if entry is None:
                entry = {"StepName": step.name, "StepStatus": "Starting", "AttemptCount": 1}
                entry["StartTime"] = timestamp(now())
                if step.display_name:
                    entry["StepDisplayName"] = step.display_name
                if step.description:
                    entry["StepDescription"] = step.description
                entry["Metadata"] = {}
                self.execution["Steps"].append(entry)
                self._save()
            return entry

    def update_entry(self, name: str, members: dict[str, Any]) -> None:
        with self._lock:
            self._entries()[name].update(members)
            self._save()

    def _save(self) -> None:
        self.execution["LastModifiedTime"] = timestamp(now())
        self.store.save_execution(self.execution)
        if self.on_change is not None:
            self.on_change(self.execution)


class _Entry:
    """A step's entry, as pipeline_steps sees it."""

    def __init__(self, runner: ExecutionRunner, name: str) -> None:
        self.runner = runner
        self.name = name

    def update(self, **members: Any) -> None:
        self.runner.update_entry(self.name, members)

    def get(self, member: str) -> Any:
        with self.runner._lock:
            return self.runner._entries()[self.name].get(member)
