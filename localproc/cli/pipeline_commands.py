"""`localproc pipeline …`: run a SageMaker Pipelines definition here in the foreground, show its
plan, and read the pipeline records (describe, list, executions, steps, stop). Each command
parses, makes its calls into the service layer, prints."""

from __future__ import annotations

import json
import re
import signal
from pathlib import Path
from typing import Annotated, Any

import typer

from localproc.cli.errors import user_errors
from localproc.cli.options import (
    DEFAULT_STATE_DIR,
    JsonOption,
    StateDirOption,
    settings_for,
)
from localproc.cli.options import with_run_options as options_of
from localproc.errors import ExitStatus, ValidationException
from localproc.service.options import RunOptions

app = typer.Typer(
    name="pipeline",
    help="Run SageMaker Pipelines definitions here, and read their records.",
    no_args_is_help=True,
    rich_markup_mode=None,
)

RUN_OPTIONS = (
    "s3_root", "s3_endpoint_url", "region", "state_dir", "keep_staging", "stop_grace",
    "no_resource_limits", "no_cache", "cache_size_gb", "pass_aws_credentials",
)  # fmt: skip
DefinitionArg = Annotated[
    Path, typer.Argument(help="A pipeline definition (JSON, as `pipeline.definition()` writes).")
]
ParameterOption = Annotated[
    list[str] | None,
    typer.Option("--parameter", "-p", help="NAME=VALUE: a pipeline parameter (repeatable)."),
]
ExecutionArg = Annotated[str, typer.Argument(help="The execution's ARN or id.")]
PipelineArg = Annotated[str, typer.Argument(help="The pipeline's name.")]
EXIT_OF = {"Succeeded": ExitStatus.COMPLETED, "Stopped": ExitStatus.STOPPED}


def _parameters(given: list[str] | None) -> list[dict[str, str]]:
    parsed = []
    for item in given or []:
        name, sep, value = item.partition("=")
        if not sep or not name:
            raise ValidationException.single(f"--parameter: '{item}' is not NAME=VALUE")
        parsed.append({"Name": name, "Value": value})
    return parsed


def _definition_text(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as err:
        raise ValidationException.single(f"{path}: cannot be read: {err}") from None


def _pipeline_name(path: Path, name: str | None) -> str:
    if name:
        return name
    cut = re.sub(r"[^A-Za-z0-9]+", "-", path.stem).strip("-")
    return cut[:256] or "pipeline"


@options_of(*RUN_OPTIONS)
def run(
    definition: DefinitionArg,
    options: RunOptions,
    parameter: ParameterOption = None,
    name: Annotated[
        str | None, typer.Option(help="Pipeline name to record it under (default: file name).")
    ] = None,
    max_concurrent_jobs: Annotated[
        int, typer.Option(min=1, help="At most this many steps' jobs run at once.")
    ] = 4,
) -> None:
    """Run a pipeline definition to its end in the foreground: a live step table, the running
    steps' logs prefixed by step and instance. Exit codes: 0 Succeeded, 1 Failed, 2 refused
    before anything started (a step that cannot run here, a bad parameter), 3 Stopped."""
    from localproc.cli.pipeline_render import LiveTable
    from localproc.service.detach import start_detached
    from localproc.service.pipeline_executions import startable
    from localproc.service.pipeline_jobs import pipeline_service
    from localproc.service.runs import validated_request

    settings = settings_for(options)
    text = _definition_text(definition)
    table = LiveTable(settings.state_dir)
    service = pipeline_service(
        # A step's job starts as `run --detach` starts one: validated, then in the background.
        settings, lambda request: start_detached(validated_request(request), settings),
        max_concurrent_jobs,
        table.changed,
    )  # fmt: skip
    pipeline = _pipeline_name(definition, name)
    given = _parameters(parameter)
    startable(text, given)  # refused before the pipeline is recorded
    _create_or_update(service, pipeline, text)
    previous = signal.getsignal(signal.SIGINT)
    stop = lambda *_: table.stop_requested(service.store)  # noqa: E731
    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGTERM, stop)
    try:
        start = {"PipelineName": pipeline, "PipelineParameters": given}
        arn = service.start(start, background=False)["PipelineExecutionArn"]
    finally:
        signal.signal(signal.SIGINT, previous)
        table.finish()
    status = service.describe({"PipelineExecutionArn": arn})["PipelineExecutionStatus"]
    typer.echo(f"Pipeline execution {arn}: {status}", err=True)
    raise typer.Exit(int(EXIT_OF.get(status, ExitStatus.FAILED)))


def _create_or_update(service: Any, pipeline: str, text: str) -> None:
    import uuid

    from localproc.errors import ResourceNotFound

    body = {"PipelineName": pipeline, "PipelineDefinition": text}
    try:
        service.catalog.load(pipeline)
    except ResourceNotFound:
        role = "arn:aws:iam::000000000000:role/localproc"
        service.catalog.create({**body, "RoleArn": role, "ClientRequestToken": str(uuid.uuid4())})
        return
    service.catalog.update(body)


def plan(
    definition: DefinitionArg, parameter: ParameterOption = None, as_json: JsonOption = False
) -> None:
    """The step graph with the parameters resolved, and which steps can run here. Starts and
    writes nothing. Exit 0, or 1 when a step cannot run here."""
    from localproc.cli.pipeline_render import plan_text
    from localproc.service.pipeline_jobs import plan_pipeline

    doc = plan_pipeline(_definition_text(definition), _parameters(parameter))
    typer.echo(json.dumps(doc, indent=2) if as_json else plan_text(doc))
    raise typer.Exit(int(ExitStatus.FAILED) if doc["CannotRun"] else 0)


def _service(state_dir: Path) -> Any:
    from localproc.execution.prepare import RunSettings
    from localproc.service.pipeline_jobs import pipeline_service

    def no_jobs(request: dict[str, Any]) -> str:
        raise AssertionError("reading the records starts no job")

    return pipeline_service(RunSettings(state_dir=state_dir.expanduser()), no_jobs, 1)


def _execution_arn(service: Any, execution: str) -> str:
    if execution.startswith("arn:"):
        return execution
    from localproc.errors import ResourceNotFound

    found = (
        service.store.load_execution(execution) if re.fullmatch("[a-z0-9]+", execution) else None
    )
    if found is None:
        raise ResourceNotFound(f"There is no pipeline execution with id '{execution}'.")
    return str(found["PipelineExecutionArn"])


def describe(
    pipeline: PipelineArg,
    state_dir: StateDirOption = DEFAULT_STATE_DIR,
    as_json: JsonOption = False,
) -> None:
    """DescribePipeline of a recorded pipeline (its latest version)."""
    described = _service(state_dir).catalog.describe({"PipelineName": pipeline})
    if as_json:
        typer.echo(json.dumps(described, indent=2))
        return
    from localproc.cli.pipeline_render import describe_text

    typer.echo(describe_text(described))


def list_(state_dir: StateDirOption = DEFAULT_STATE_DIR, as_json: JsonOption = False) -> None:
    """ListPipelines over the recorded pipelines, newest first."""
    from localproc.cli.pipeline_render import table

    found = _service(state_dir).catalog.list({"MaxResults": 100000})["PipelineSummaries"]
    columns = ("PipelineName", "CreationTime", "LastExecutionTime")
    typer.echo(json.dumps(found, indent=2) if as_json else table(found, columns))


def executions(
    pipeline: PipelineArg,
    state_dir: StateDirOption = DEFAULT_STATE_DIR,
    as_json: JsonOption = False,
) -> None:
    """ListPipelineExecutions of a pipeline, newest first."""
    from localproc.cli.pipeline_render import table

    body = {"PipelineName": pipeline, "MaxResults": 100000}
    found = _service(state_dir).list(body)["PipelineExecutionSummaries"]
    columns = ("PipelineExecutionArn", "StartTime", "PipelineExecutionStatus")
    typer.echo(json.dumps(found, indent=2) if as_json else table(found, columns))


def steps(
    execution: ExecutionArg,
    state_dir: StateDirOption = DEFAULT_STATE_DIR,
    as_json: JsonOption = False,
) -> None:
    """ListPipelineExecutionSteps of an execution, in the order they started."""
    from localproc.cli.pipeline_render import steps_text

    service = _service(state_dir)
    body = {"PipelineExecutionArn": _execution_arn(service, execution), "SortOrder": "Ascending"}
    found = service.steps({**body, "MaxResults": 100000})["PipelineExecutionSteps"]
    typer.echo(json.dumps(found, indent=2) if as_json else steps_text(found))


def stop(execution: ExecutionArg, state_dir: StateDirOption = DEFAULT_STATE_DIR) -> None:
    """StopPipelineExecution: the execution goes Stopping, its running steps' jobs are stopped,
    and it ends Stopped."""
    service = _service(state_dir)
    arn = _execution_arn(service, execution)
    service.stop({"PipelineExecutionArn": arn})
    typer.echo(f"Stopping {arn}")


for _name, _command in [
    ("run", run), ("plan", plan), ("describe", describe), ("list", list_),
    ("executions", executions), ("steps", steps), ("stop", stop),
]:  # fmt: skip
    app.command(_name)(user_errors()(_command))
