"""SageMaker Pipelines' execution operations, as both front doors use them: start (in a
background thread, or in the caller's thread for `localproc pipeline run`), describe, list,
list steps, parameters and definition of an execution, stop, retry.

An execution belongs to the process that runs it (its `Owner`). If that process ended while
the execution ran (serve was stopped or killed, `pipeline run` was killed), the execution is
put right the next time it is read: marked Failed with a reason that says so, its unfinished
steps Failed, and their processing jobs that still run stopped. RetryPipelineExecution then
runs its failed steps again."""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable
from typing import Any

from localproc.errors import (
    LocalprocError,
    ResourceLimitExceeded,
    ResourceNotFound,
    ValidationException,
)
from localproc.liveness import identity_alive, process_identity
from localproc.payload.model_checks import violation
from localproc.pipeline.definition import resolve_parameters
from localproc.pipeline.expressions import as_text
from localproc.pipeline.naming import (
    execution_arn,
    execution_id_of,
    new_execution_id,
)
from localproc.records.times import now, timestamp
from localproc.service.pipeline_executor import ExecutionRunner, JobBackend
from localproc.service.pipelines import PipelineCatalog, checked_definition, in_time_range, page

DEFAULT_MAX_PARALLEL_STEPS = 50
# Executions one process runs at once (each a thread, and up to --max-concurrent-jobs threads for
# its steps): a client starting thousands would exhaust the server's threads, and an execution
# whose thread could not start would stay Executing for good.
MAX_RUNNING_EXECUTIONS = 100
RUNNING = ("Executing", "Stopping")
OWNER_ENDED = (
    "The process running this execution ({owner}) ended while it ran; localproc marked it "
    "Failed. RetryPipelineExecution runs its failed steps again."
)
# What a step's entry shows through the API (the rest is the executor's own bookkeeping).
STEP_MEMBERS = (
    "StepName", "StepDisplayName", "StepDescription", "StartTime", "EndTime", "StepStatus",
    "CacheHitResult", "FailureReason", "Metadata", "AttemptCount",
)  # fmt: skip


def startable(text: str, given: list[dict[str, Any]] | None) -> dict[str, Any]:
    """The parameters' values an execution of the definition `text` would run with;
    ValidationException when it cannot start here (a step type this host cannot run, a
    parameter missing or of the wrong type)."""
    definition = checked_definition(text)
    refused = definition.refused_steps()
    if refused:
        raise ValidationException.single(
            "This pipeline cannot run on localproc, so no execution was started: "
            + "; ".join(refused)
            + "."
        )
    return resolve_parameters(definition, list(given or []))


class _BackgroundRuns:
    """The executions this process runs in background threads (serve's), by id."""

    def __init__(self) -> None:
        self._threads: dict[str, threading.Thread] = {}
        self._lock = threading.Lock()

    def check_room(self) -> None:
        running = len(self.running())
        if running >= MAX_RUNNING_EXECUTIONS:
            raise ResourceLimitExceeded(
                f"{running} pipeline executions are running here, the most one server runs at "
                "once; start this one when one of them has ended."
            )

    def launch(self, execution_id: str, run: Callable[[], object]) -> None:
        thread = threading.Thread(target=run, name=f"pipeline-{execution_id}", daemon=True)
        with self._lock:
            self._threads[execution_id] = thread
        thread.start()

    def running(self) -> dict[str, threading.Thread]:
        with self._lock:
            return {i: t for i, t in self._threads.items() if t.is_alive()}

    def join(self, threads: list[threading.Thread], timeout: float | None) -> None:
        deadline = None if timeout is None else time.monotonic() + timeout
        for thread in threads:
            thread.join(None if deadline is None else max(0.0, deadline - time.monotonic()))


class PipelineExecutions:
    def __init__(
        self,
        catalog: PipelineCatalog,
        jobs: JobBackend,
        max_concurrent_jobs: int,
        on_change: Callable[[dict[str, Any]], None] | None = None,
        poll_seconds: float = 0.5,
    ) -> None:
        self.catalog = catalog
        self.store = catalog.store
        self.jobs = jobs
        self.max_concurrent_jobs = max_concurrent_jobs
        self.on_change = on_change
        self.poll_seconds = poll_seconds
        self._background = _BackgroundRuns()

    # -- start ------------------------------------------------------------------------------
    def start(self, body: dict[str, Any], background: bool = True) -> dict[str, Any]:
        """StartPipelineExecution. `background=False` runs it here to its end (the CLI)."""
        with self.store.locked():
            pipeline = self.catalog.load(body["PipelineName"])
            token = body.get("ClientRequestToken")
            for execution in self.store.executions():
                same = execution.get("PipelineName") == pipeline["PipelineName"]
                if same and token and execution.get("ClientRequestToken") == token:
                    return {"PipelineExecutionArn": execution["PipelineExecutionArn"]}
            if background:
                self._background.check_room()
            version = self.catalog.version(pipeline, body.get("PipelineVersionId"))
            values = startable(version["PipelineDefinition"], body.get("PipelineParameters"))
            execution_id = new_execution_id()
            arn = execution_arn(pipeline["PipelineName"], execution_id, self.catalog.region)
            created = timestamp(now())
            execution = {
                "ExecutionId": execution_id,
                "PipelineName": pipeline["PipelineName"],
                "PipelineArn": pipeline["PipelineArn"],
                "PipelineExecutionArn": arn,
                "PipelineExecutionDisplayName": body.get("PipelineExecutionDisplayName")
                or f"execution-{created.replace(':', '').replace('-', '').split('.')[0]}",
                "PipelineExecutionDescription": body.get("PipelineExecutionDescription"),
                "PipelineExecutionStatus": "Executing",
                "CreationTime": created,
                "LastModifiedTime": created,
                "PipelineVersionId": version["PipelineVersionId"],
                "ParallelismConfiguration": body.get("ParallelismConfiguration")
                or pipeline.get("ParallelismConfiguration"),
                "ClientRequestToken": token,
                "PipelineDefinition": version["PipelineDefinition"],
                "PipelineParameters": [
                    {"Name": name, "Value": as_text(value)} for name, value in values.items()
                ],
                "LocalParameterValues": values,
                "Steps": [],
                "Owner": process_identity(),
            }
            self.store.save_execution(execution)
        self.catalog.mark_run(pipeline["PipelineName"], version["PipelineVersionId"], arn)
        self._launch(execution, background)
        return {"PipelineExecutionArn": arn}

    def _launch(self, execution: dict[str, Any], background: bool) -> str | None:
        definition = checked_definition(execution["PipelineDefinition"])
        configured = (execution.get("ParallelismConfiguration") or {}).get(
            "MaxParallelExecutionSteps", DEFAULT_MAX_PARALLEL_STEPS
        )
        runner = ExecutionRunner(
            self.store, execution, definition, self.jobs,
            min(int(configured), self.max_concurrent_jobs), self.on_change, self.poll_seconds,
        )  # fmt: skip
        if not background:
            return runner.run()
        self._background.launch(execution["ExecutionId"], runner.run)
        return None

    # -- reading ----------------------------------------------------------------------------
    def load(self, arn: str | None) -> dict[str, Any]:
        if not isinstance(arn, str):  # the model leaves it optional in ListPipelineExecutionSteps
            raise ValidationException(
                [violation(None, "pipelineExecutionArn", "Member must not be null")]
            )
        execution_id = execution_id_of(arn)
        execution = self.store.load_execution(execution_id) if execution_id else None
        if execution is None or execution.get("PipelineExecutionArn") != arn:
            raise ResourceNotFound(f"Pipeline execution '{arn}' does not exist.")
        execution = self.reconciled(execution)
        if execution["PipelineExecutionStatus"] == "Executing" and self.store.stop_requested(
            execution["ExecutionId"]
        ):  # asked to stop; its executor sees it within a poll
            execution["PipelineExecutionStatus"] = "Stopping"
        return execution

    def reconciled(self, execution: dict[str, Any]) -> dict[str, Any]:
        """An execution whose owner process ended while it ran is marked Failed (see above)."""
        owner = execution.get("Owner")
        if execution.get("PipelineExecutionStatus") not in RUNNING or owner is None:
            return execution
        if identity_alive(owner):
            return execution
        ended = timestamp(now())
        reason = OWNER_ENDED.format(owner=f"PID {owner.get('RunnerPid')}")
        for entry in execution.get("Steps", []):
            if entry.get("StepStatus") in ("Succeeded", "Failed", "Stopped"):
                continue
            job = entry.get("LocalJobName")
            if job:
                with contextlib.suppress(LocalprocError):
                    self.jobs.stop_job(job)
            entry.update(StepStatus="Failed", FailureReason=reason, EndTime=ended)
        execution.update(
            PipelineExecutionStatus="Failed", FailureReason=reason, LastModifiedTime=ended
        )
        self.store.save_execution(execution)
        self.store.clear_stop(execution["ExecutionId"])
        return execution

    def describe(self, body: dict[str, Any]) -> dict[str, Any]:
        execution = self.load(body.get("PipelineExecutionArn"))
        members = ("PipelineArn", "PipelineExecutionArn", "PipelineExecutionDisplayName",
                   "PipelineExecutionStatus", "PipelineExecutionDescription", "FailureReason",
                   "CreationTime", "LastModifiedTime", "ParallelismConfiguration",
                   "PipelineVersionId")  # fmt: skip
        described = {m: execution[m] for m in members if execution.get(m) is not None}
        described["PipelineExperimentConfig"] = {
            "ExperimentName": execution["PipelineName"],
            "TrialName": execution["ExecutionId"],
        }
        return described

    def list(self, body: dict[str, Any]) -> dict[str, Any]:
        pipeline = self.catalog.load(body["PipelineName"])
        summaries = []
        for execution in self.store.executions():
            if execution.get("PipelineName") != pipeline["PipelineName"]:
                continue
            if not in_time_range(execution["CreationTime"], body):
                continue
            execution = self.reconciled(execution)
            summary = {
                "PipelineExecutionArn": execution["PipelineExecutionArn"],
                "StartTime": execution["CreationTime"],
                "PipelineExecutionStatus": execution["PipelineExecutionStatus"],
                "PipelineExecutionDisplayName": execution.get("PipelineExecutionDisplayName"),
                "PipelineExecutionDescription": execution.get("PipelineExecutionDescription"),
                "PipelineExecutionFailureReason": execution.get("FailureReason"),
            }
            summaries.append({k: v for k, v in summary.items() if v is not None})
        by = "PipelineExecutionArn" if body.get("SortBy") == "PipelineExecutionArn" else "StartTime"
        summaries.sort(
            key=lambda s: s[by], reverse=body.get("SortOrder", "Descending") == "Descending"
        )
        return page(summaries, body, "PipelineExecutionSummaries")

    def running(self, pipeline_name: str) -> list[str]:
        return [
            e["PipelineExecutionArn"]
            for e in self.store.executions()
            if e.get("PipelineName") == pipeline_name
            and self.reconciled(e)["PipelineExecutionStatus"] in RUNNING
        ]

    def delete_pipeline(self, body: dict[str, Any]) -> dict[str, Any]:
        """DeletePipeline: the pipeline, its versions and its (ended) executions are removed; one
        with a running execution is refused."""
        return self.catalog.delete(body, self.running, self._forget_executions)

    def _forget_executions(self, pipeline_name: str) -> None:
        for execution in list(self.store.executions()):
            if execution["PipelineName"] == pipeline_name:
                self.store.delete_execution(execution["ExecutionId"])

    def steps(self, body: dict[str, Any]) -> dict[str, Any]:
        execution = self.load(body.get("PipelineExecutionArn"))
        entries = [
            {m: e[m] for m in STEP_MEMBERS if e.get(m) not in (None, {})}
            for e in execution.get("Steps", [])
        ]
        entries.sort(
            key=lambda e: e["StartTime"],
            reverse=body.get("SortOrder", "Descending") == "Descending",
        )
        return page(entries, body, "PipelineExecutionSteps")

    def parameters(self, body: dict[str, Any]) -> dict[str, Any]:
        execution = self.load(body.get("PipelineExecutionArn"))
        return page(list(execution.get("PipelineParameters", [])), body, "PipelineParameters")

    def definition(self, body: dict[str, Any]) -> dict[str, Any]:
        execution = self.load(body.get("PipelineExecutionArn"))
        return {
            "PipelineDefinition": execution["PipelineDefinition"],
            "CreationTime": execution["CreationTime"],
        }

    # -- stop and retry ---------------------------------------------------------------------
    def stop(self, body: dict[str, Any]) -> dict[str, Any]:
        execution = self.load(body.get("PipelineExecutionArn"))
        status = execution["PipelineExecutionStatus"]
        if status not in RUNNING:
            raise ValidationException.single(
                f"Pipeline execution {execution['PipelineExecutionArn']} is {status}; only an "
                "Executing execution can be stopped."
            )
        self.store.request_stop(execution["ExecutionId"])
        return {"PipelineExecutionArn": execution["PipelineExecutionArn"]}

    def retry(self, body: dict[str, Any], background: bool = True) -> dict[str, Any]:
        """RetryPipelineExecution: a Failed or Stopped execution runs again from where it ended:
        its Succeeded steps stay, the others run again."""
        with self.store.locked():
            execution = self.load(body.get("PipelineExecutionArn"))
            status = execution["PipelineExecutionStatus"]
            if status not in ("Failed", "Stopped"):
                raise ValidationException.single(
                    f"Pipeline execution {execution['PipelineExecutionArn']} is {status}; only a "
                    "Failed or Stopped execution can be retried."
                )
            if background:
                self._background.check_room()
            execution["Steps"] = [
                e for e in execution.get("Steps", []) if e.get("StepStatus") == "Succeeded"
            ]
            if body.get("ParallelismConfiguration"):
                execution["ParallelismConfiguration"] = body["ParallelismConfiguration"]
            execution.update(
                PipelineExecutionStatus="Executing", FailureReason=None, Owner=process_identity()
            )
            self.store.clear_stop(execution["ExecutionId"])
            self.store.save_execution(execution)
        self._launch(execution, background)
        return {"PipelineExecutionArn": execution["PipelineExecutionArn"]}

    def put_right(self) -> None:
        """Reconcile every recorded execution (a server does it as it starts)."""
        for execution in list(self.store.executions()):
            self.reconciled(execution)

    def stop_running(self, timeout: float, before_waiting: Callable[[int], None]) -> None:
        """Ask every execution this object runs in the background to stop, and wait up to
        `timeout` seconds for them to end (serve's shutdown: its executions live in the server,
        so their step jobs must not run on without them); `before_waiting` is told how many.
        One still running after the wait is Failed at its next read, its jobs stopped then."""
        running = self._background.running()
        if not running:
            return
        for execution_id in running:
            self.store.request_stop(execution_id)
        before_waiting(len(running))
        self._background.join(list(running.values()), timeout)

    def join(self, timeout: float | None = None) -> None:
        """Wait for the executions this object started in the background (tests)."""
        self._background.join(list(self._background.running().values()), timeout)
