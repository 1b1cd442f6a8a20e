"""The commands on recorded jobs: describe, list, stop, delete, logs, gc. Each parses, makes one
call into the service layer (service.jobs), prints."""

from __future__ import annotations

import json
from typing import Annotated, Any

import typer

from localproc.cli.errors import notify
from localproc.cli.options import DEFAULT_STATE_DIR, JsonOption, StateDirOption, declared
from localproc.printable import printable_line

NameArg = Annotated[str, typer.Argument(help="ProcessingJobName")]


def _print_json(data: Any) -> None:
    typer.echo(json.dumps(data, indent=2, default=str))


def describe(
    name: NameArg,
    state_dir: StateDirOption = DEFAULT_STATE_DIR,
    as_json: JsonOption = False,
    telemetry: Annotated[
        bool,
        typer.Option(
            "--telemetry",
            help="JSON, with one more key, LocalprocTelemetry: the phase times and each "
            "instance's memory and CPU samples the console draws. Without it, --json is exactly "
            "DescribeProcessingJob.",
        ),
    ] = False,
) -> None:
    """DescribeProcessingJob: the recorded job, as the service describes it."""
    from localproc.service.jobs import describe_job, job_details, job_store

    if telemetry:
        from localproc.service.console import job_telemetry

        store = job_store(state_dir)
        _print_json({**describe_job(store, name), "LocalprocTelemetry": job_telemetry(store, name)})
        return
    if as_json:
        _print_json(describe_job(job_store(state_dir), name))
        return
    from localproc.cli.render import cost_text, describe_table

    details = job_details(job_store(state_dir), name)
    cost = cost_text(details.cost) if details.cost else None
    typer.echo(describe_table(details.described, details.job_dir, cost, details.usage))


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
    from localproc.service.jobs import job_store, list_jobs, list_query

    times = {
        "CreationTimeAfter": (creation_time_after, "--creation-time-after"),
        "CreationTimeBefore": (creation_time_before, "--creation-time-before"),
        "LastModifiedTimeAfter": (last_modified_time_after, "--last-modified-time-after"),
        "LastModifiedTimeBefore": (last_modified_time_before, "--last-modified-time-before"),
    }
    query = list_query(
        {
            **{member: _parse_time(text, option) for member, (text, option) in times.items()},
            "NameContains": name_contains,
            "StatusEquals": status_equals,
            "SortBy": sort_by,
            "SortOrder": sort_order,
            "MaxResults": max_results,
            "NextToken": next_token,
        }
    )
    unreadable: list[Any] = []
    page = list_jobs(job_store(state_dir), query, unreadable)
    if as_json:
        _print_json(page)
        for damaged in unreadable:  # beside the API's shape, which has no place for them
            notify(f"warning: {damaged}")
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


def stop(
    name: NameArg, state_dir: StateDirOption = DEFAULT_STATE_DIR, as_json: JsonOption = False
) -> None:
    """StopProcessingJob: the job goes Stopping, its containers get SIGTERM, then SIGKILL after
    the grace period, outputs are uploaded, and it ends Stopped."""
    from localproc.records.status import JobStatus
    from localproc.service.jobs import job_store, stop_job

    record = stop_job(job_store(state_dir), name)
    if as_json:
        _print_json(
            {
                "ProcessingJobArn": record["ProcessingJobArn"],
                "ProcessingJobStatus": JobStatus.STOPPING.value,
            }
        )
    else:
        typer.echo(f"Stopping {name}")


def delete(name: NameArg, state_dir: StateDirOption = DEFAULT_STATE_DIR) -> None:
    """DeleteProcessingJob: remove an ended job's record, logs and local outputs; frees the name."""
    from localproc.service.jobs import delete_job, job_store

    delete_job(job_store(state_dir), name)
    typer.echo(f"Deleted {name}")


def logs(
    name: NameArg,
    instance: Annotated[str | None, typer.Option(help="Only this instance, e.g. algo-2.")] = None,
    follow: Annotated[
        bool, typer.Option("--follow", "-f", help="Keep printing new lines until the job ends.")
    ] = False,
    state_dir: StateDirOption = DEFAULT_STATE_DIR,
) -> None:
    """The job's container logs, each line prefixed with its instance."""
    from localproc.service.jobs import follow_logs, job_store

    def emit(host: str, line: str) -> None:
        # The saved log keeps the container's bytes; the terminal gets text.
        typer.echo(printable_line(line if instance else f"{host} | {line}"))

    try:
        follow_logs(job_store(state_dir), name, instance, follow, emit)
    except KeyboardInterrupt:
        raise typer.Exit(0) from None


CacheSizeOption = declared("cache_size_gb")


def gc(
    state_dir: StateDirOption = DEFAULT_STATE_DIR,
    cache_size_gb: CacheSizeOption = 10.0,
    as_json: JsonOption = False,
) -> None:
    """Remove containers, networks and staging left by jobs whose runner is gone, and record
    such jobs as Failed."""
    from localproc.service.jobs import clean_up, job_store
    from localproc.service.options import cache_cap_bytes

    done = clean_up(job_store(state_dir), cache_cap_bytes(cache_size_gb))
    report = done.report
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
        + ("" if done.engine_answered else " (no Docker engine answered: containers not checked)")
    )
