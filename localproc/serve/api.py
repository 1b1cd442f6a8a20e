"""The served SageMaker operations over one state dir, each a call into the service layer:
CreateProcessingJob starts a detached run; Describe/List/Stop/Delete are service.jobs's. The
CloudWatch Logs operations are cloudwatch_logs.py's."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Iterator
from typing import Any

from localproc.errors import (
    DamagedRecord,
    LocalprocError,
    ResourceInUse,
    ResourceLimitExceeded,
    ResourceNotFound,
)
from localproc.execution.prepare import RunSettings, job_arn_for
from localproc.payload.service_model import sagemaker_model
from localproc.records.status import JobStatus
from localproc.serve import cloudwatch_logs
from localproc.serve.cloudwatch_logs import CloudWatchLogs
from localproc.serve.errors import api_error
from localproc.serve.pipelines_api import PipelinesApi
from localproc.serve.wire import checked_input, target_prefix, to_wire
from localproc.service.detach import start_detached
from localproc.service.jobs import (
    delete_job,
    describe_job,
    job_store,
    list_jobs,
    list_query,
    stop_job,
)
from localproc.service.runs import validated_request

DEFAULT_MAX_CONCURRENT_JOBS = 4


class ProcessingApi:
    """The served operations over one state dir. Shared by the request threads."""

    def __init__(
        self,
        settings: RunSettings,
        max_concurrent_jobs: int = DEFAULT_MAX_CONCURRENT_JOBS,
        start: Callable[[dict[str, Any], RunSettings], str] = start_detached,
    ) -> None:
        self.settings = settings
        self.store = job_store(settings.state_dir)
        self.max_concurrent_jobs = max_concurrent_jobs
        self._start = start
        self._lock = threading.RLock()
        self._created: set[str] = set()  # the jobs this server started
        self._starting = 0  # creates between their slot check and their record
        self.operations: dict[str, Callable[[dict[str, Any]], dict[str, Any]]] = {
            "CreateProcessingJob": self.create,
            "DescribeProcessingJob": self.describe,
            "ListProcessingJobs": self.list,
            "StopProcessingJob": self.stop,
            "DeleteProcessingJob": self.delete,
        }
        self.pipelines = PipelinesApi(self)  # SageMaker Pipelines: serve/pipelines_api.py
        self.operations.update(self.pipelines.operations)
        self.logs = CloudWatchLogs(self.store, settings.region or "us-east-1")
        # X-Amz-Target prefix -> the operations served under it
        self.services = {
            target_prefix(): self.operations,
            cloudwatch_logs.target_prefix(): self.logs.operations,
        }

    def dispatch(self, prefix: str, operation: str, body: dict[str, Any]) -> dict[str, Any]:
        """Run `prefix.operation` (a SageMaker or a CloudWatch Logs one). A user error becomes
        the service's error response here, and only here."""
        try:
            if prefix == cloudwatch_logs.target_prefix():
                return self.logs.call(operation, body)
            return self.call(operation, body)
        except LocalprocError as err:
            raise api_error(err) from err

    def call(self, operation: str, body: dict[str, Any]) -> dict[str, Any]:
        """Run one SageMaker operation; the result in wire form (timestamps as epoch
        seconds)."""
        model = sagemaker_model().operation_model(operation)
        result = self.operations[operation](body)
        return to_wire(result, model.output_shape) if model.output_shape is not None else {}

    def create(self, body: dict[str, Any]) -> dict[str, Any]:
        request = validated_request(body)
        with self._job_slot():
            try:
                arn = self._start(request, self.settings)
            except LocalprocError as err:
                if err.code != ResourceInUse.code:
                    raise
                # The library's message also tells a CLI user what to type; an API client
                # gets the service's own words.
                raise ResourceInUse(
                    "Job name must be unique within an AWS account and region, and a job with "
                    f"this name already exists ({job_arn_for(request, self.settings)})"
                ) from None
            with self._lock:
                self._created.add(request["ProcessingJobName"])
        return {"ProcessingJobArn": arn}

    def describe(self, body: dict[str, Any]) -> dict[str, Any]:
        name = checked_input("DescribeProcessingJob", body)["ProcessingJobName"]
        return describe_job(self.store, name)

    def list(self, body: dict[str, Any]) -> dict[str, Any]:
        given = checked_input("ListProcessingJobs", body)
        # The API's documented default order; `localproc list` shows the newest first instead.
        query = list_query(given, sort_order="Ascending")
        return list_jobs(self.store, query)

    def stop(self, body: dict[str, Any]) -> dict[str, Any]:
        stop_job(self.store, checked_input("StopProcessingJob", body)["ProcessingJobName"])
        return {}

    def delete(self, body: dict[str, Any]) -> dict[str, Any]:
        name = checked_input("DeleteProcessingJob", body)["ProcessingJobName"]
        try:
            delete_job(self.store, name)
        except ResourceInUse:
            status = describe_job(self.store, name).get("ProcessingJobStatus")
            raise ResourceInUse(
                f"Processing job {name} is {status}; only a job that has ended (Completed, "
                "Failed or Stopped) can be deleted. Stop it with StopProcessingJob and wait for "
                "it to end."
            ) from None
        with self._lock:
            self._created.discard(name)
        return {}

    def running_jobs(self) -> list[str]:
        """The jobs this server started that are still InProgress or Stopping. A job whose
        record is damaged is not among them: nothing says it runs, and it must not keep other
        jobs from starting."""
        running = []
        with self._lock:
            for name in sorted(self._created):
                try:
                    status = JobStatus(describe_job(self.store, name)["ProcessingJobStatus"])
                except ResourceNotFound:  # deleted by `localproc delete`
                    self._created.discard(name)
                    continue
                except DamagedRecord:
                    continue
                if status.running:
                    running.append(name)
        return running

    @contextlib.contextmanager
    def _job_slot(self) -> Iterator[None]:
        """Hold one of the --max-concurrent-jobs slots while the job is being started; a
        started job then counts for as long as its record says it runs."""
        with self._lock:
            running = self.running_jobs()
            busy = len(running) + self._starting
            if busy >= self.max_concurrent_jobs:
                raise ResourceLimitExceeded(
                    "The limit of concurrent processing jobs of this localproc serve is "
                    f"{self.max_concurrent_jobs}, with current utilization of {busy} "
                    f"({', '.join(running) or 'jobs being started'}). Wait for a job to end, "
                    "stop one with StopProcessingJob, or restart the server with a higher "
                    "--max-concurrent-jobs."
                )
            self._starting += 1
        try:
            yield
        finally:
            with self._lock:
                self._starting -= 1
