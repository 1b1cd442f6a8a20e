"""The SageMaker Pipelines operations `serve` answers, each a call into the service layer
(service/pipelines.py, service/pipeline_executions.py). A step's processing job is started
through the same path as CreateProcessingJob (so it counts against --max-concurrent-jobs), and
executions run in background threads of the server."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from localproc.serve.wire import checked_input
from localproc.service.pipeline_jobs import pipeline_service

if TYPE_CHECKING:
    from localproc.serve.api import ProcessingApi

# Beyond the stop grace, for a stopped step's job to upload its outputs and be recorded Stopped.
SHUTDOWN_MARGIN_SECONDS = 30.0


class PipelinesApi:
    def __init__(self, api: ProcessingApi) -> None:
        start = lambda request: str(api.create(request)["ProcessingJobArn"])  # noqa: E731
        self.executions = pipeline_service(api.settings, start, api.max_concurrent_jobs)
        self.catalog = self.executions.catalog
        # Executions whose server ended while they ran are put right now (see
        # pipeline_executions.py): marked Failed, their jobs stopped.
        self.executions.put_right()
        catalog, executions = self.catalog, self.executions
        handlers: dict[str, Callable[[dict[str, Any]], dict[str, Any]]] = {
            "CreatePipeline": catalog.create,
            "UpdatePipeline": catalog.update,
            "DescribePipeline": catalog.describe,
            "DeletePipeline": executions.delete_pipeline,
            "ListPipelines": catalog.list,
            "ListPipelineVersions": catalog.versions,
            "AddTags": catalog.add_tags,
            "ListTags": catalog.list_tags,
            "DeleteTags": catalog.delete_tags,
            "StartPipelineExecution": executions.start,
            "DescribePipelineExecution": executions.describe,
            "ListPipelineExecutions": executions.list,
            "ListPipelineExecutionSteps": executions.steps,
            "StopPipelineExecution": executions.stop,
            "RetryPipelineExecution": executions.retry,
            "ListPipelineParametersForExecution": executions.parameters,
            "DescribePipelineDefinitionForExecution": executions.definition,
        }
        self.stop_grace_seconds = api.settings.stop_grace_seconds
        # Every request is checked against its operation's input shape first.
        self.operations = {
            name: (lambda body, n=name, h=handler: h(checked_input(n, body)))
            for name, handler in handlers.items()
        }

    def shut_down(self, note: Callable[[str], None]) -> None:
        """The server is ending: its running executions are stopped, their step jobs with them
        (a job's stop takes the grace period, then its outputs are uploaded)."""

        def waiting(count: int) -> None:
            note(
                f"stopping {count} running pipeline execution(s) and their step jobs (Ctrl-C "
                "again ends the server without waiting)"
            )

        self.executions.stop_running(self.stop_grace_seconds + SHUTDOWN_MARGIN_SECONDS, waiting)
