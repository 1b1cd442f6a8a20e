"""How pipeline steps reach processing jobs and S3 from a front door: the JobBackend over the
state dir's job records, with the front door's own way of starting a job (serve's
CreateProcessingJob path, or `start_detached` for the CLI)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from localproc.errors import LocalprocError, ResourceNotFound, ValidationException
from localproc.execution.prepare import RunSettings, resolve_region
from localproc.s3uri import parse_s3_uri
from localproc.service.jobs import describe_job, job_store, stop_job
from localproc.service.pipeline_executions import PipelineExecutions
from localproc.service.pipeline_executor import JobBackend
from localproc.service.pipelines import PipelineCatalog


class ObjectUnreadable(LocalprocError):
    code = "ObjectUnreadable"


def object_reader(settings: RunSettings) -> Callable[[str, int], bytes]:
    """read(uri, limit): the object's bytes from the run's store (--s3-root or S3), at most
    `limit` of them (more is an error: a container wrote it)."""

    def read(uri: str, limit: int) -> bytes:
        from localproc.storage import StoreError, open_store

        try:
            bucket, key = parse_s3_uri(uri)
        except ValueError as err:
            raise ValidationException.single(str(err)) from None
        store = open_store(
            settings.s3_root, settings.s3_endpoint_url, resolve_region(settings.region)
        )
        try:
            found = store.head_object(bucket, key)
            if found is None:
                raise ResourceNotFound(f"there is no object {uri}")
            if found.size > limit:
                raise ObjectUnreadable(
                    f"{uri} has {found.size} bytes, more than the {limit} allowed"
                )
            with store.open_object(found) as stream:
                return stream.read(limit + 1)[:limit]
        except StoreError as err:
            raise ObjectUnreadable(f"{uri}: {err.message}") from None

    return read


def job_backend(settings: RunSettings, start_job: Callable[[dict[str, Any]], str]) -> JobBackend:
    store = job_store(settings.state_dir)

    def stop(name: str) -> None:
        stop_job(store, name)  # StopProcessingJob's own path

    return JobBackend(
        start_job=start_job,
        describe_job=lambda name: describe_job(store, name),
        stop_job=stop,
        read_object=object_reader(settings),
    )


def pipeline_service(
    settings: RunSettings,
    start_job: Callable[[dict[str, Any]], str],
    max_concurrent_jobs: int,
    on_change: Callable[[dict[str, Any]], None] | None = None,
) -> PipelineExecutions:
    """The pipeline operations over the settings' state dir (its `.catalog` has the pipelines)."""
    read = object_reader(settings)
    catalog = PipelineCatalog(settings.state_dir, resolve_region(settings.region), read)
    return PipelineExecutions(
        catalog, job_backend(settings, start_job), max_concurrent_jobs, on_change
    )


def plan_pipeline(text: str, given: list[dict[str, Any]]) -> dict[str, Any]:
    """`pipeline plan`: the step graph in waves, every step with its dependencies, whether it
    can run here, and its arguments with the parameters resolved. Starts and writes nothing."""
    from localproc.pipeline.definition import resolve_parameters
    from localproc.pipeline.expressions import Scope, preview
    from localproc.pipeline.graph import dependencies, order
    from localproc.service.pipelines import checked_definition

    definition = checked_definition(text)
    values = resolve_parameters(definition, given)
    scope = Scope(parameters=values)
    waves = order(definition)
    steps = []
    for number, wave in enumerate(waves, 1):
        for name in wave:
            step = definition.steps[name]
            arguments = {
                k: v for k, v in step.arguments.items() if k not in ("IfSteps", "ElseSteps")
            }
            steps.append(
                {
                    "Name": name,
                    "Type": step.type,
                    "Wave": number,
                    "WaitsFor": sorted(dependencies(step)),
                    "Branch": f"{step.branch[1]} of {step.branch[0]}" if step.branch else None,
                    "RunsHere": step.runnable_here,
                    "Cached": bool((step.cache_config or {}).get("Enabled")),
                    "Arguments": preview(arguments, scope),
                }
            )
    return {"Parameters": values, "Steps": steps, "CannotRun": definition.refused_steps()}
