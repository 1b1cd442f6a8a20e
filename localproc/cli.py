"""The `localproc` command line: parse, make one call into the library, render, exit.

Library modules are imported inside the commands so `localproc --help` does not load boto3 or the
docker SDK. Library errors become user-facing messages and exit codes only here.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Annotated, Any, NoReturn

import typer

from localproc.errors import ExitStatus, LocalprocError

app = typer.Typer(
    name="localproc",
    help="Run Amazon SageMaker Processing jobs on this host in Docker, as the service does.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

PayloadArg = Annotated[
    str,
    typer.Argument(
        help="CreateProcessingJob request (or DescribeProcessingJob response): a JSON file, or -."
    ),
]
S3RootOption = Annotated[
    Path | None,
    typer.Option(
        "--s3-root",
        envvar="LOCALPROC_S3_ROOT",
        help="Serve s3://BUCKET/KEY from DIR/BUCKET/KEY instead of S3 (no AWS account needed).",
    ),
]
StateDirOption = Annotated[
    Path,
    typer.Option(
        "--state-dir",
        envvar="LOCALPROC_HOME",
        help="Where job records, logs and local outputs are kept.",
    ),
]
JsonOption = Annotated[bool, typer.Option("--json", help="Machine-readable output.")]
DEFAULT_STATE_DIR = Path.home() / ".localproc"


def _fail(err: LocalprocError) -> NoReturn:
    typer.echo(f"localproc: {err.code}: {err}", err=True)
    raise typer.Exit(int(err.exit_status))


def _load_request(payload: str, name: str | None = None) -> dict[str, Any]:
    from localproc.jobs import prepare_request
    from localproc.spec.load import load_payload

    return prepare_request(load_payload(payload, sys.stdin), name)


@app.command()
def validate(payload: PayloadArg) -> None:
    """Check a payload the way CreateProcessingJob would; print OK or every problem (exit 2)."""
    try:
        _load_request(payload)
    except LocalprocError as err:
        _fail(err)
    typer.echo("OK")


@app.command()
def run(
    payload: PayloadArg,
    s3_root: S3RootOption = None,
    s3_endpoint_url: Annotated[
        str | None,
        typer.Option(help="S3 endpoint to use instead of AWS (also AWS_ENDPOINT_URL_S3)."),
    ] = None,
    region: Annotated[
        str | None, typer.Option(help="AWS region (default: AWS_REGION, else us-east-1).")
    ] = None,
    state_dir: StateDirOption = DEFAULT_STATE_DIR,
    name: Annotated[str | None, typer.Option(help="Use this ProcessingJobName instead.")] = None,
    keep_staging: Annotated[
        bool, typer.Option(help="Keep the downloaded inputs in the job's folder after the run.")
    ] = False,
    stop_grace: Annotated[
        float, typer.Option(help="Seconds between SIGTERM and SIGKILL when containers are stopped.")
    ] = 10.0,
    as_json: JsonOption = False,
) -> None:
    """Run a processing job: stage inputs, run the containers, upload outputs, record the job.

    Exit codes: 0 Completed, 1 Failed, 2 rejected before anything started,
    3 Stopped, 4 could not run here (no Docker engine, S3 unreachable, image missing).
    """
    from localproc.jobs import RunSettings, run_job
    from localproc.records import JobStore, describe_shape

    settings = RunSettings(
        state_dir=state_dir.expanduser(),
        s3_root=s3_root,
        s3_endpoint_url=s3_endpoint_url,
        region=region,
        keep_staging=keep_staging,
        stop_grace_seconds=stop_grace,
    )
    log_stream = sys.stderr if as_json else sys.stdout
    colour = log_stream.isatty() and "NO_COLOR" not in os.environ
    try:
        request = _load_request(payload, name)
        outcome = run_job(request, settings, log_stream, _notify, colour=colour)
    except LocalprocError as err:
        _fail(err)
    if as_json:
        record = JobStore(settings.state_dir).load(outcome.name)
        typer.echo(json.dumps(describe_shape(record), indent=2))
    else:
        typer.echo(_summary(outcome))
    raise typer.Exit(int(outcome.exit_status))


def _notify(message: str) -> None:
    typer.echo(f"localproc: {message}", err=True)


def _summary(outcome: Any) -> str:
    uploads = outcome.uploads
    parts = [
        f"{outcome.status}: {outcome.name} in {outcome.seconds:.1f} s",
        f"{len(uploads.uploaded)} output file(s), {_size(uploads.bytes)} uploaded",
    ]
    if outcome.failure_reason:
        parts.append(f"FailureReason: {outcome.failure_reason}")
    if outcome.exit_message:
        parts.append(f"ExitMessage: {outcome.exit_message.strip()}")
    parts.append(f"logs and outputs: {outcome.job_dir}")
    return " · ".join(parts)


def _size(count: int) -> str:
    size = float(count)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if size < 1024 or unit == "GiB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{count} B"


def main() -> None:
    try:
        app()
    except KeyboardInterrupt:
        raise SystemExit(int(ExitStatus.STOPPED)) from None
