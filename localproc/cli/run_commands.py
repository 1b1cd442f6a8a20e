"""The commands that take a job to run: validate, plan, run, reproduce. Each parses, makes one
call into the service layer, prints. Library modules are imported inside the commands, so
`localproc --help` loads neither boto3 nor the docker SDK."""

from __future__ import annotations

import contextlib
import json
import os
import sys
from typing import Annotated, Any, NoReturn

import typer

from localproc.cli.errors import notify
from localproc.cli.options import DetachOption, JsonOption, PayloadArg, settings_for
from localproc.cli.options import with_run_options as options_of
from localproc.errors import ExitStatus
from localproc.service.options import RunOptions

RUN_OPTIONS = (
    "s3_root", "s3_endpoint_url", "region", "state_dir", "name", "keep_staging", "stop_grace",
    "no_resource_limits", "no_cache", "cache_size_gb", "pass_aws_credentials", "cluster",
)  # fmt: skip
PLAN_OPTIONS = (
    "s3_root", "s3_endpoint_url", "region", "state_dir", "name", "no_resource_limits", "cluster",
)  # fmt: skip


def validate(payload: PayloadArg) -> None:
    """Check a payload the way CreateProcessingJob would; print OK or every problem (exit 2)."""
    from localproc.service.runs import load_request

    load_request(payload, sys.stdin)
    typer.echo("OK")


@options_of(*PLAN_OPTIONS)
def plan(payload: PayloadArg, options: RunOptions, as_json: JsonOption = False) -> None:
    """Dry run: what `run` would do, per instance, and what the job would cost on SageMaker.
    Starts no container and writes nothing. Exit 0, or 1 when the job would fail."""
    from localproc.cli.render import plan_text
    from localproc.service import runs

    settings = settings_for(options)
    doc = runs.plan(runs.load_request(payload, sys.stdin, options.name), settings)
    typer.echo(json.dumps(doc, indent=2) if as_json else plan_text(doc))
    raise typer.Exit(int(ExitStatus.FAILED) if doc["Problem"] else 0)


@options_of(*RUN_OPTIONS)
def run(
    payload: PayloadArg,
    options: RunOptions,
    detach: DetachOption = False,
    as_json: JsonOption = False,
) -> None:
    """Run a processing job: stage inputs, run the containers, upload outputs, record the job.

    Exit codes: 0 Completed, 1 Failed, 2 rejected before anything started,
    3 Stopped, 4 could not run here (no Docker engine, S3 unreachable, image missing).
    """
    from localproc.service.detach import claim_token_from_parent, reporting_to_parent
    from localproc.service.runs import load_request

    # Run in the background by `run --detach` or `serve`, this run reports a rejection to the
    # process that started it (detach.py); any other run reports it only here.
    with reporting_to_parent():
        settings = settings_for(options, claim_token_from_parent())
        request = load_request(payload, sys.stdin, options.name)
        _run_request(request, settings, detach, as_json)


@options_of(*RUN_OPTIONS)
def reproduce(
    job_name: Annotated[str, typer.Argument(help="The SageMaker processing job to reproduce.")],
    sagemaker_endpoint_url: Annotated[
        str | None,
        typer.Option(help="SageMaker API endpoint to read the job from (default: AWS's)."),
    ] = None,
    instance_type: Annotated[
        str | None, typer.Option(help="Override (or supply) the instance type.")
    ] = None,
    instance_count: Annotated[
        int | None, typer.Option(help="Override (or supply) the instance count.")
    ] = None,
    volume_size_gb: Annotated[
        int | None, typer.Option(help="Override (or supply) VolumeSizeInGB (default 30).")
    ] = None,
    *,
    options: RunOptions,
    detach: DetachOption = False,
    as_json: JsonOption = False,
) -> None:
    """Fetch a real job's DescribeProcessingJob and run it here, under the same name (or
    --name). Its inputs come from the same S3 URIs (or --s3-root). Exit codes as for `run`."""
    from localproc.payload.reproduce import ResourceOverrides
    from localproc.service.runs import reproduction

    settings = settings_for(options)
    overrides = ResourceOverrides(instance_type, instance_count, volume_size_gb)
    found = reproduction(job_name, sagemaker_endpoint_url, overrides, options.region, options.name)
    notify(f"reproducing {job_name} from {found.source} as {found.request['ProcessingJobName']}")
    _run_request(found.request, settings, detach, as_json)


def _run_request(request: dict[str, Any], settings: Any, detach: bool, as_json: bool) -> NoReturn:
    from localproc.cli.render import run_summary
    from localproc.service.runs import described_record, run_here

    if detach:
        from localproc.service.detach import start_detached

        typer.echo(start_detached(request, settings))
        raise typer.Exit(0)
    log_stream = sys.stderr if as_json else sys.stdout
    colour = log_stream.isatty() and "NO_COLOR" not in os.environ
    outcome = run_here(
        request, settings, log_stream, notify, colour, sys.stderr, show_progress=not as_json
    )
    # The job's status is the exit code, even when nobody reads the output any more
    # (`localproc run job.json | head`).
    with contextlib.suppress(BrokenPipeError):
        for line in outcome.usage:  # on stderr, so also beside --json's document
            notify(line)
        if as_json:
            typer.echo(json.dumps(described_record(settings, outcome.name), indent=2))
        else:
            typer.echo(run_summary(outcome))
    raise typer.Exit(int(outcome.exit_status))
