"""Operations on recorded jobs, as both front doors offer them: describe, list, stop, delete,
logs and gc. A record whose runner died is put right first (execution.leftovers)."""

from __future__ import annotations

import contextlib
import os
import re
import signal
import stat
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from localproc.catalog.cost import cost_estimate
from localproc.errors import DamagedRecord
from localproc.execution.leftovers import (
    GarbageReport,
    collect_garbage,
    connect_engine_if_possible,
    load_reconciled,
    remove_orphaned_containers,
    runner_alive,
)
from localproc.records.listing import ListQuery, list_page
from localproc.records.store import JobRecord, JobStatus, JobStore, now, parse_timestamp
from localproc.transfer.disarm import disarm_tree

# `stop` of a job whose runner died: its containers are stopped and removed, nothing uploaded.
RUNNER_DIED_STOPPED = (
    "Stopped: stop requested. The runner had exited unexpectedly: its containers were stopped "
    "and removed, and no outputs were uploaded."
)


def job_store(state_dir: Path) -> JobStore:
    """The records kept in `state_dir` (`~` expanded)."""
    return JobStore(state_dir.expanduser())


def describe_job(store: JobStore, name: str) -> dict[str, Any]:
    return JobRecord.from_dict(load_reconciled(store, name)).describe()


@dataclass(frozen=True)
class JobDetails:
    """What `describe` shows a person: the description, where the job's files are, what its
    run would have cost on SageMaker (None before it ended) and each instance's usage."""

    described: dict[str, Any]
    job_dir: Path
    cost: dict[str, Any] | None
    usage: list[str]


def job_details(store: JobStore, name: str) -> JobDetails:
    described = describe_job(store, name)
    return JobDetails(
        described, store.folder(name).path, actual_cost(described), usage_lines(store, name)
    )


def usage_lines(store: JobStore, name: str) -> list[str]:
    """Each instance's peak memory and CPU, with the smallest instance type that would have
    held it, as `run` printed them at the end (none for a job that ran no container)."""
    return store.load_record(name).usage_lines


def list_jobs(
    store: JobStore, query: ListQuery, unreadable: list[DamagedRecord] | None = None
) -> dict[str, Any]:
    """ListProcessingJobs over the readable records; a damaged one is left out of the page (it
    has no fields to filter or sort by) and added to `unreadable`, for the caller to show."""
    query.check()
    records = []
    for name in store.names():
        try:
            records.append(load_reconciled(store, name))
        except DamagedRecord as damaged:
            if unreadable is not None:
                unreadable.append(damaged)
    return list_page(records, query)


# The members of ListProcessingJobs's request, in ListQuery's words.
_QUERY_MEMBERS = {
    "CreationTimeAfter": "creation_time_after",
    "CreationTimeBefore": "creation_time_before",
    "LastModifiedTimeAfter": "last_modified_time_after",
    "LastModifiedTimeBefore": "last_modified_time_before",
    "NameContains": "name_contains",
    "StatusEquals": "status_equals",
    "MaxResults": "max_results",
}


def list_query(members: dict[str, Any], sort_order: str = "Ascending") -> ListQuery:
    """The query of a ListProcessingJobs request (timestamps already datetimes). `sort_order`
    is the order when the request names none: the API's documented default is Ascending;
    `localproc list` shows the newest first instead."""
    return ListQuery(
        **{field: members.get(member) for member, field in _QUERY_MEMBERS.items()},
        sort_by=members.get("SortBy", "CreationTime"),
        sort_order=members.get("SortOrder", sort_order),
        next_token=members.get("NextToken") or None,
    )


def stop_job(store: JobStore, name: str) -> dict[str, Any]:
    """StopProcessingJob: mark the job Stopping and tell its runner, which stops the containers
    (SIGTERM, grace period, SIGKILL), uploads outputs and records Stopped. A job whose runner
    died is stopped here: its containers are removed and it is recorded Stopped."""
    current = store.load_record(name)
    if current.status.running and not runner_alive(current):
        if remove_orphaned_containers(name, current):
            disarm_tree(store.folder(name).path)
        if current.status is JobStatus.IN_PROGRESS:
            store.request_stop_record(name)
        ended = store.update_record(
            name, status=JobStatus.STOPPED, failure_reason=RUNNER_DIED_STOPPED, end_time=now()
        )
        return dict(ended.members)
    load_reconciled(store, name)
    record = store.request_stop_record(name)
    runner = record.runner
    if runner is not None and runner.alive() and runner.on_this_host():
        os.kill(runner.pid, signal.SIGTERM)
    return dict(record.members)


def delete_job(store: JobStore, name: str) -> None:
    # A dead runner's job is Failed, so deletable; a damaged record is deletable as it is.
    with contextlib.suppress(DamagedRecord):
        load_reconciled(store, name)
    store.delete(name)


@dataclass(frozen=True)
class Cleanup:
    """What `gc` did; `engine_answered` is False when no Docker engine could be asked about
    containers and networks."""

    report: GarbageReport
    engine_answered: bool


def clean_up(store: JobStore, cache_cap_bytes: int) -> Cleanup:
    """`gc`: put right the records of dead runners and remove their containers, networks and
    staging; trim the input cache to `cache_cap_bytes`."""
    engine = connect_engine_if_possible()
    report = collect_garbage(store, engine, cache_cap_bytes=cache_cap_bytes)
    return Cleanup(report, engine is not None)


# -- logs ----------------------------------------------------------------------------------------
def log_files(store: JobStore, name: str, instance: str | None) -> list[Path]:
    """The log files of the job's instances (algo-1 … algo-N; a file may not exist yet), or of
    the one `instance`, which must be one of them: a name is never made into a path otherwise
    (`--instance ../../x` would read any *.log file). ValidationException names the valid ones."""
    record = store.load_record(name)  # ResourceNotFound for an unknown job
    folder = store.folder(name)
    hosts = _instance_hosts(record, folder.logs)
    if instance is None:
        return [folder.log(host) for host in hosts]
    if instance not in hosts:
        from localproc.errors import ValidationException
        from localproc.printable import printable_line

        raise ValidationException.single(
            f"--instance: '{printable_line(instance)}' is not an instance of processing job "
            f"{name}; its instances are {', '.join(hosts)}."
        )
    return [folder.log(instance)]


_HOST_LOG = re.compile(r"algo-([1-9][0-9]*)\.log")


def _instance_hosts(record: JobRecord, logs: Path) -> list[str]:
    """algo-1 … algo-N from the record's InstanceCount; from the log files there are when the
    record lacks it."""
    count = record.instance_count
    if count is None:
        found = (_HOST_LOG.fullmatch(p.name) for p in logs.glob("algo-*.log"))
        count = max((int(m.group(1)) for m in found if m), default=0)
    return [f"algo-{index}" for index in range(1, count + 1)]


def follow_logs(
    store: JobStore,
    name: str,
    instance: str | None,
    follow: bool,
    emit: Callable[[str, str], None],
    poll_seconds: float = 0.2,
) -> None:
    """Call emit(host, line) for each saved line; with `follow`, keep reading new lines until
    the job has ended and every file is read to its end."""
    offsets: dict[Path, int] = {}
    pending: dict[Path, bytes] = {}
    while True:
        ended = JobRecord.from_dict(load_reconciled(store, name)).status.ended
        for path in log_files(store, name, instance):
            for line in _new_lines(path, offsets, pending, flush=ended or not follow):
                emit(path.stem, line)
        if not follow or ended:
            return
        time.sleep(poll_seconds)


def _new_lines(
    path: Path, offsets: dict[Path, int], pending: dict[Path, bytes], flush: bool
) -> Iterator[str]:
    # Never following a link, never blocking on a FIFO, and only a regular file: the logs
    # folder is localproc's, but a state dir can be damaged (a folder where a log should be).
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    except FileNotFoundError:
        return
    except OSError as err:
        problem = f"its log cannot be read ({err.strerror})"
        raise DamagedRecord(path.parent.parent.name, path, problem) from None
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        raise DamagedRecord(path.parent.parent.name, path, "its log is not a regular file")
    with os.fdopen(fd, "rb") as handle:
        handle.seek(offsets.get(path, 0))
        data = pending.get(path, b"") + handle.read()
        offsets[path] = handle.tell()
    *lines, rest = data.split(b"\n")
    pending[path] = rest
    for raw in lines:
        yield raw.decode("utf-8", errors="replace")
    if flush and rest:
        pending[path] = b""
        yield rest.decode("utf-8", errors="replace")


def actual_cost(described: dict[str, Any]) -> dict[str, Any] | None:
    """What the recorded run's duration (start to end of its containers) would have cost."""
    start, end = described.get("ProcessingStartTime"), described.get("ProcessingEndTime")
    if not start or not end:
        return None
    seconds = (parse_timestamp(end) - parse_timestamp(start)).total_seconds()
    cluster = described["ProcessingResources"]["ClusterConfig"]
    region = described["ProcessingJobArn"].split(":")[3]
    return cost_estimate(
        cluster["InstanceType"], cluster["InstanceCount"], seconds, region, actual=True
    )
