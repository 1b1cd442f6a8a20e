"""The `localproc` command line: parse, make one call into the library, render, exit.

Library modules are imported inside the commands so `localproc --help` does not load boto3 or the
docker SDK. Library errors become user-facing messages and exit codes only here.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import sys
from pathlib import Path
from typing import Annotated, Any, NoReturn

import typer

from localproc import helpcache
from localproc.errors import ExitStatus, LocalprocError
from localproc.printable import printable, printable_line

app = typer.Typer(
    name="localproc",
    help="Run Amazon SageMaker Processing jobs on this host in Docker, as the service does.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    # Plain help: rich-formatted help imports rich and markdown-it, which costs ~0.5 s per call.
    rich_markup_mode=None,
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
    typer.echo(printable(f"localproc: {err.code}: {err}"), err=True)
    raise typer.Exit(int(err.exit_status))


def _load_request(payload: str, name: str | None = None) -> dict[str, Any]:
    from localproc.execution.prepare import prepare_request
    from localproc.payload.load import load_payload

    return prepare_request(load_payload(payload, sys.stdin), name)


@app.command()
def validate(payload: PayloadArg) -> None:
    """Check a payload the way CreateProcessingJob would; print OK or every problem (exit 2)."""
    try:
        _load_request(payload)
    except LocalprocError as err:
        _fail(err)
    typer.echo("OK")


S3EndpointOption = Annotated[
    str | None,
    typer.Option(
        "--s3-endpoint-url", help="S3 endpoint to use instead of AWS (also AWS_ENDPOINT_URL_S3)."
    ),
]
RegionOption = Annotated[
    str | None,
    typer.Option(
        help="AWS region for the ARN, AWS_REGION and prices (default: the AWS configuration's, "
        "else us-east-1)."
    ),
]
NameOption = Annotated[str | None, typer.Option(help="Use this ProcessingJobName instead.")]
KeepStagingOption = Annotated[
    bool, typer.Option(help="Keep the downloaded inputs in the job's folder after the run.")
]
StopGraceOption = Annotated[
    float, typer.Option(help="Seconds between SIGTERM and SIGKILL when containers are stopped.")
]
NoLimitsOption = Annotated[
    bool,
    typer.Option(
        "--no-resource-limits",
        help="Do not limit the containers to their instance type's CPUs and memory.",
    ),
]
NoCacheOption = Annotated[
    bool,
    typer.Option("--no-cache", help="Download every input object, ignoring the input cache."),
]
CacheSizeOption = Annotated[
    float,
    typer.Option(
        "--cache-size-gb",
        envvar="LOCALPROC_CACHE_GB",
        help="Size cap of the input cache in the state dir (least recently used is trimmed).",
    ),
]
PassCredentialsOption = Annotated[
    bool,
    typer.Option(
        "--pass-aws-credentials",
        help="Give the containers this host's AWS credentials (as AWS_ACCESS_KEY_ID etc.).",
    ),
]
DetachOption = Annotated[
    bool,
    typer.Option(
        "--detach",
        help="Print the job's ARN and return at once; the job runs on in the background.",
    ),
]


# The longest wait between SIGTERM and SIGKILL: an hour is far beyond what a process needs to
# shut down, and a mistyped 1e12 would otherwise keep a stopped job's containers for ever.
MAX_STOP_GRACE_SECONDS = 3600


def _check_range(value: float, option: str, low: float, high: float, unit: str) -> None:
    """Exit 2 (a usage error naming the option) unless low <= value <= high; NaN never is."""
    if not low <= value <= high or not math.isfinite(value):
        wanted = f"between {low:g} and {high:g}" if math.isfinite(high) else f"of {low:g} or more"
        raise typer.BadParameter(
            f"{value!r} is not a finite number of {unit} {wanted}.", param_hint=f"'{option}'"
        )


def _settings(
    state_dir: Path,
    s3_root: Path | None,
    s3_endpoint_url: str | None,
    region: str | None,
    keep_staging: bool = False,
    stop_grace: float = 10.0,
    no_resource_limits: bool = False,
    no_cache: bool = False,
    cache_size_gb: float = 10.0,
    pass_aws_credentials: bool = False,
) -> Any:
    from localproc.execution.prepare import RunSettings

    _check_range(stop_grace, "--stop-grace", 0, MAX_STOP_GRACE_SECONDS, "seconds")
    _check_range(cache_size_gb, "--cache-size-gb", 0, math.inf, "GB")
    return RunSettings(
        state_dir=state_dir.expanduser(),
        s3_root=s3_root,
        s3_endpoint_url=s3_endpoint_url,
        region=region,
        keep_staging=keep_staging,
        stop_grace_seconds=stop_grace,
        resource_limits=not no_resource_limits,
        use_cache=not no_cache,
        cache_cap_bytes=int(cache_size_gb * 2**30),
        pass_aws_credentials=pass_aws_credentials,
        # Set only for a background run, by `run --detach` or `serve` (detach.py).
        claim_token=os.environ.get("LOCALPROC_CLAIM_TOKEN") or None,
    )


@app.command()
def plan(
    payload: PayloadArg,
    s3_root: S3RootOption = None,
    s3_endpoint_url: S3EndpointOption = None,
    region: RegionOption = None,
    state_dir: StateDirOption = DEFAULT_STATE_DIR,
    name: NameOption = None,
    no_resource_limits: NoLimitsOption = False,
    as_json: JsonOption = False,
) -> None:
    """Dry run: what `run` would do, per instance, and what the job would cost on SageMaker.
    Starts no container and writes nothing. Exit 0, or 1 when the job would fail."""
    from localproc.cli.render import plan_text
    from localproc.execution.plan_document import plan_document
    from localproc.execution.prepare import prepare

    settings = _settings(
        state_dir, s3_root, s3_endpoint_url, region, no_resource_limits=no_resource_limits
    )
    try:
        doc = plan_document(prepare(_load_request(payload, name), settings, dry_run=True))
    except LocalprocError as err:
        _fail(err)
    typer.echo(json.dumps(doc, indent=2) if as_json else plan_text(doc))
    raise typer.Exit(int(ExitStatus.FAILED) if doc["Problem"] else 0)


@app.command()
def run(
    payload: PayloadArg,
    s3_root: S3RootOption = None,
    s3_endpoint_url: S3EndpointOption = None,
    region: RegionOption = None,
    state_dir: StateDirOption = DEFAULT_STATE_DIR,
    name: NameOption = None,
    keep_staging: KeepStagingOption = False,
    stop_grace: StopGraceOption = 10.0,
    no_resource_limits: NoLimitsOption = False,
    no_cache: NoCacheOption = False,
    cache_size_gb: CacheSizeOption = 10.0,
    pass_aws_credentials: PassCredentialsOption = False,
    detach: DetachOption = False,
    as_json: JsonOption = False,
) -> None:
    """Run a processing job: stage inputs, run the containers, upload outputs, record the job.

    Exit codes: 0 Completed, 1 Failed, 2 rejected before anything started,
    3 Stopped, 4 could not run here (no Docker engine, S3 unreachable, image missing).
    """
    settings = _settings(
        state_dir, s3_root, s3_endpoint_url, region, keep_staging, stop_grace,
        no_resource_limits, no_cache, cache_size_gb, pass_aws_credentials,
    )  # fmt: skip
    try:
        request = _load_request(payload, name)
    except LocalprocError as err:
        _fail(err)
    _run_request(request, settings, detach, as_json)


@app.command()
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
    s3_root: S3RootOption = None,
    s3_endpoint_url: S3EndpointOption = None,
    region: RegionOption = None,
    state_dir: StateDirOption = DEFAULT_STATE_DIR,
    name: NameOption = None,
    keep_staging: KeepStagingOption = False,
    stop_grace: StopGraceOption = 10.0,
    no_resource_limits: NoLimitsOption = False,
    no_cache: NoCacheOption = False,
    cache_size_gb: CacheSizeOption = 10.0,
    pass_aws_credentials: PassCredentialsOption = False,
    detach: DetachOption = False,
    as_json: JsonOption = False,
) -> None:
    """Fetch a real job's DescribeProcessingJob and run it here, under the same name (or
    --name). Its inputs come from the same S3 URIs (or --s3-root). Exit codes as for `run`."""
    from localproc.execution.prepare import prepare_request, resolve_region
    from localproc.payload.reproduce import ResourceOverrides, request_from_description
    from localproc.sagemaker_api import describe_remote_job

    settings = _settings(
        state_dir, s3_root, s3_endpoint_url, region, keep_staging, stop_grace,
        no_resource_limits, no_cache, cache_size_gb, pass_aws_credentials,
    )  # fmt: skip
    where = sagemaker_endpoint_url or f"SageMaker in {resolve_region(region)}"
    overrides = ResourceOverrides(instance_type, instance_count, volume_size_gb)
    try:
        described = describe_remote_job(job_name, resolve_region(region), sagemaker_endpoint_url)
        request = prepare_request(request_from_description(described, overrides, where), name)
    except LocalprocError as err:
        _fail(err)
    _notify(f"reproducing {job_name} from {where} as {request['ProcessingJobName']}")
    _run_request(request, settings, detach, as_json)


def _run_request(request: dict[str, Any], settings: Any, detach: bool, as_json: bool) -> NoReturn:
    from localproc.cli.render import run_summary
    from localproc.execution.prepare import run_job
    from localproc.records.store import JobStore, describe_shape

    log_stream = sys.stderr if as_json else sys.stdout
    colour = log_stream.isatty() and "NO_COLOR" not in os.environ
    try:
        if detach:
            from localproc.service.detach import start_detached

            typer.echo(start_detached(request, settings))
            raise typer.Exit(0)
        from localproc.transfer.progress import TransferProgress

        progress = TransferProgress(sys.stderr, enabled=not as_json)
        outcome = run_job(
            request, settings, log_stream, _notify, colour=colour, handle_signals=True,
            progress=progress,
        )  # fmt: skip
    except LocalprocError as err:
        _fail(err)
    # The job's status is the exit code, even when nobody reads the output any more
    # (`localproc run job.json | head`).
    with contextlib.suppress(BrokenPipeError):
        for line in outcome.usage:  # on stderr, so also beside --json's document
            _notify(line)
        if as_json:
            record = JobStore(settings.state_dir).load(outcome.name)
            typer.echo(json.dumps(describe_shape(record), indent=2))
        else:
            typer.echo(run_summary(outcome))
    raise typer.Exit(int(outcome.exit_status))


def _store(state_dir: Path) -> Any:
    from localproc.records.store import JobStore

    return JobStore(state_dir.expanduser())


def _print_json(data: Any) -> None:
    typer.echo(json.dumps(data, indent=2, default=str))


@app.command()
def describe(
    name: Annotated[str, typer.Argument(help="ProcessingJobName")],
    state_dir: StateDirOption = DEFAULT_STATE_DIR,
    as_json: JsonOption = False,
) -> None:
    """DescribeProcessingJob: the recorded job, as the service describes it."""
    from localproc.service.jobs import describe_job

    try:
        described = describe_job(_store(state_dir), name)
    except LocalprocError as err:
        _fail(err)
    if as_json:
        _print_json(described)
        return
    from localproc.cli.render import cost_text, describe_table
    from localproc.service.jobs import actual_cost, usage_lines

    cost = actual_cost(described)
    store = _store(state_dir)
    typer.echo(
        describe_table(
            described,
            store.job_dir(name),
            cost_text(cost) if cost else None,
            usage_lines(store, name),
        )  # fmt: skip
    )


@app.command("list")
def list_(
    status_equals: Annotated[
        str | None, typer.Option(help="InProgress, Completed, Failed, Stopping or Stopped.")
    ] = None,
    name_contains: Annotated[
        str | None, typer.Option(help="Only jobs whose name contains this (case-insensitive).")
    ] = None,
    creation_time_after: Annotated[
        str | None, typer.Option(help="ISO 8601 time, e.g. 2026-11-29T10:00:00Z.")
    ] = None,
    creation_time_before: Annotated[str | None, typer.Option(help="ISO 8601 time.")] = None,
    last_modified_time_after: Annotated[str | None, typer.Option(help="ISO 8601 time.")] = None,
    last_modified_time_before: Annotated[str | None, typer.Option(help="ISO 8601 time.")] = None,
    sort_by: Annotated[str, typer.Option(help="Name, CreationTime or Status.")] = "CreationTime",
    sort_order: Annotated[str, typer.Option(help="Ascending or Descending.")] = "Descending",
    max_results: Annotated[
        int | None, typer.Option(help="At most this many (1-100); see NextToken.")
    ] = None,
    next_token: Annotated[str | None, typer.Option(help="Continue a previous listing.")] = None,
    state_dir: StateDirOption = DEFAULT_STATE_DIR,
    as_json: JsonOption = False,
) -> None:
    """ListProcessingJobs: recorded jobs, newest first, with the service's filters and paging."""
    from localproc.records.listing import ListQuery
    from localproc.service.jobs import list_jobs

    try:
        query = ListQuery(
            creation_time_after=_parse_time(creation_time_after, "--creation-time-after"),
            creation_time_before=_parse_time(creation_time_before, "--creation-time-before"),
            last_modified_time_after=_parse_time(
                last_modified_time_after, "--last-modified-time-after"
            ),
            last_modified_time_before=_parse_time(
                last_modified_time_before, "--last-modified-time-before"
            ),
            name_contains=name_contains,
            status_equals=status_equals,
            sort_by=sort_by,
            sort_order=sort_order,
            max_results=max_results,
            next_token=next_token,
        )
        unreadable: list[Any] = []
        page = list_jobs(_store(state_dir), query, unreadable)
    except LocalprocError as err:
        _fail(err)
    if as_json:
        _print_json(page)
        for damaged in unreadable:  # beside the API's shape, which has no place for them
            _notify(f"warning: {damaged}")
        return
    from localproc.cli.render import list_table

    typer.echo(list_table(page))
    for damaged in unreadable:
        typer.echo(f"{damaged.name}  (unreadable record: {damaged.path}: {damaged.problem})")


def _parse_time(text: str | None, option: str) -> Any:
    if text is None:
        return None
    from datetime import datetime, timezone

    from localproc.errors import ValidationException

    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise ValidationException.single(
            f"{option}: '{text}' is not an ISO 8601 time such as 2026-11-29T10:00:00Z."
        ) from None
    return moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)


@app.command()
def stop(
    name: Annotated[str, typer.Argument(help="ProcessingJobName")],
    state_dir: StateDirOption = DEFAULT_STATE_DIR,
    as_json: JsonOption = False,
) -> None:
    """StopProcessingJob: the job goes Stopping, its containers get SIGTERM, then SIGKILL after
    the grace period, outputs are uploaded, and it ends Stopped."""
    from localproc.service.jobs import stop_job

    try:
        record = stop_job(_store(state_dir), name)
    except LocalprocError as err:
        _fail(err)
    if as_json:
        _print_json(
            {"ProcessingJobArn": record["ProcessingJobArn"], "ProcessingJobStatus": "Stopping"}
        )
    else:
        typer.echo(f"Stopping {name}")


@app.command()
def delete(
    name: Annotated[str, typer.Argument(help="ProcessingJobName")],
    state_dir: StateDirOption = DEFAULT_STATE_DIR,
) -> None:
    """DeleteProcessingJob: remove an ended job's record, logs and local outputs; frees the name."""
    from localproc.service.jobs import delete_job

    try:
        delete_job(_store(state_dir), name)
    except LocalprocError as err:
        _fail(err)
    typer.echo(f"Deleted {name}")


@app.command()
def logs(
    name: Annotated[str, typer.Argument(help="ProcessingJobName")],
    instance: Annotated[str | None, typer.Option(help="Only this instance, e.g. algo-2.")] = None,
    follow: Annotated[
        bool, typer.Option("--follow", "-f", help="Keep printing new lines until the job ends.")
    ] = False,
    state_dir: StateDirOption = DEFAULT_STATE_DIR,
) -> None:
    """The job's container logs, each line prefixed with its instance."""
    from localproc.service.jobs import follow_logs

    def emit(host: str, line: str) -> None:
        # The saved log keeps the container's bytes; the terminal gets text.
        typer.echo(printable_line(line if instance else f"{host} | {line}"))

    try:
        follow_logs(_store(state_dir), name, instance, follow, emit)
    except LocalprocError as err:
        _fail(err)
    except KeyboardInterrupt:
        raise typer.Exit(0) from None


@app.command()
def gc(
    state_dir: StateDirOption = DEFAULT_STATE_DIR,
    cache_size_gb: CacheSizeOption = 10.0,
    as_json: JsonOption = False,
) -> None:
    """Remove containers, networks and staging left by jobs whose runner is gone, and record
    such jobs as Failed."""
    from localproc.execution.leftovers import collect_garbage, connect_engine_if_possible

    engine = connect_engine_if_possible()
    report = collect_garbage(_store(state_dir), engine, cache_cap_bytes=int(cache_size_gb * 2**30))
    if as_json:
        _print_json(report.__dict__)
        return
    typer.echo(
        f"reconciled {len(report.reconciled)} job(s) whose runner had died; removed the "
        f"containers and networks of {len(report.removed_resources)} and the staging of "
        f"{len(report.removed_staging)}; freed {report.cache_bytes_freed} bytes of input cache"
        + (
            f"; removed {len(report.removed_runner_logs)} log(s) of background runs that never "
            "started"
            if report.removed_runner_logs
            else ""
        )
        + ("" if engine else " (no Docker engine answered: containers not checked)")
    )


@app.command()
def serve(
    host: Annotated[
        str,
        typer.Option(
            help="Address to listen on. Requests are not signature-checked: anything but a "
            "loopback address lets others run containers on this host."
        ),
    ] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port; 0 picks a free one (printed on start).")] = 8080,
    max_concurrent_jobs: Annotated[
        int,
        typer.Option(
            min=1,
            help="At most this many of the server's jobs run at once; beyond it "
            "CreateProcessingJob answers ResourceLimitExceeded.",
        ),
    ] = 4,
    s3_root: S3RootOption = None,
    s3_endpoint_url: S3EndpointOption = None,
    region: RegionOption = None,
    state_dir: StateDirOption = DEFAULT_STATE_DIR,
    keep_staging: KeepStagingOption = False,
    stop_grace: StopGraceOption = 10.0,
    no_resource_limits: NoLimitsOption = False,
    no_cache: NoCacheOption = False,
    cache_size_gb: CacheSizeOption = 10.0,
) -> None:
    """A SageMaker-compatible endpoint (AWS JSON 1.1) for Create/Describe/List/Stop/Delete
    ProcessingJob, so boto3, the AWS CLI and the SageMaker Python SDK run jobs here
    (`--endpoint-url http://127.0.0.1:PORT`). Jobs run in background processes and keep running
    when the server stops (Ctrl-C or SIGTERM); StopProcessingJob or `localproc stop` stops them."""
    from localproc.serve.server import serve as serve_forever

    settings = _settings(
        state_dir, s3_root, s3_endpoint_url, region, keep_staging, stop_grace,
        no_resource_limits, no_cache, cache_size_gb,
    )  # fmt: skip
    try:
        serve_forever(settings, host, port, max_concurrent_jobs)
    except LocalprocError as err:
        _fail(err)


def _notify(message: str) -> None:
    # One line each: a value from a container (a file name with a newline) cannot start a line
    # of its own that would pass for one of localproc's.
    typer.echo(printable_line(f"localproc: {message}"), err=True)


def main() -> None:
    for stream in (sys.stdout, sys.stderr):
        # Whatever the terminal's encoding, any text can be printed (as backslash escapes).
        reconfigure = getattr(stream, "reconfigure", None)
        if reconfigure is not None:
            reconfigure(errors="backslashreplace")
    try:
        _help_from_cache_or_app()
    except KeyboardInterrupt:
        _end_process(int(ExitStatus.STOPPED))
    except SystemExit as ending:
        _end_process(ending.code)


def _help_from_cache_or_app() -> None:
    """Help for `localproc` and `localproc COMMAND` is rendered here rather than by click, so
    that its text can be kept for the next call (see helpcache)."""
    command_path = helpcache.help_request(sys.argv[1:])
    if command_path is None or not helpcache.invoked_as_program():
        app()
        return
    text = render_help(command_path)
    if text is None:  # not one of our commands: click says so
        app()
        return
    helpcache.store(command_path, text)
    sys.stdout.write(text)
    raise SystemExit(0)


def render_help(command_path: tuple[str, ...]) -> str | None:
    """Exactly what `--help` prints (click's help option echoes `ctx.get_help()` and a newline)."""
    import click

    group = typer.main.get_command(app)
    context = group.context_class(group, info_name=helpcache.PROGRAM)
    command: click.Command = group
    for name in command_path:
        assert isinstance(command, click.Group)
        found = command.get_command(context, name)
        if found is None:
            return None
        command = found
        context = command.context_class(command, info_name=name, parent=context)
    return command.get_help(context) + "\n"


def _end_process(code: object) -> NoReturn:
    """Exit without the interpreter's teardown, which spends about 0.3 s freeing the models and
    clients a run loaded: every run would pay it. Only once the command has finished everything:
    no other thread is left (the runner joins its own), every file it wrote is closed, and the
    standard streams are flushed here."""
    import contextlib
    import threading

    if not isinstance(code, int | None) or threading.active_count() > 1:
        raise SystemExit(code)
    for stream in (sys.stdout, sys.stderr):
        # A closed pipe (`localproc list | head`): nothing more can reach it anyway.
        with contextlib.suppress(OSError, ValueError):
            stream.flush()
    os._exit(code or 0)
