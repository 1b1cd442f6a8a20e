"""What the console shows, as data: the jobs table, one job's page (its description, timeline,
usage charts with the instance type's limits and the sizing advice, inputs, outputs, payload and
plan), a piece of an instance's log, and an output file to download. The HTTP side is
serve/console.py; the figures are console_figures.py's; the files console_files.py's."""

from __future__ import annotations

import os
import stat
import time
from datetime import datetime
from typing import Any, BinaryIO

from localproc.catalog.instance_types import instance_type, smallest_fitting
from localproc.errors import DamagedRecord, ResourceNotFound, ValidationException
from localproc.execution.leftovers import load_reconciled
from localproc.records.layout import OUTPUTS_DIR
from localproc.records.listing import ListQuery
from localproc.records.record import JobRecord
from localproc.records.store import JobStore
from localproc.records.telemetry import read_phases, read_plan, read_usage_series
from localproc.records.times import parse_timestamp
from localproc.service.console_figures import build_timeline, downsample, peak
from localproc.service.console_files import list_files, open_inside
from localproc.service.jobs import actual_cost, list_jobs, log_files

LOG_CHUNK_BYTES = 256 * 1024  # one answer's worth of log: the page asks again for more
MAX_TABLE_ROWS = 100  # ListProcessingJobs's own page size limit
DAMAGED = "(damaged record)"


def jobs_table(store: JobStore, query: ListQuery) -> dict[str, Any]:
    """The jobs page's rows, newest first by default, with the list's filters: name, status,
    instances, created, duration, estimated SageMaker cost, failure reason."""
    unreadable: list[DamagedRecord] = []
    page = list_jobs(store, query, unreadable)
    rows = []
    for summary in page["ProcessingJobSummaries"]:
        name = summary["ProcessingJobName"]
        try:
            described = JobRecord.from_dict(store.load(name)).describe()
        except (DamagedRecord, ResourceNotFound):
            continue
        rows.append(_row(described))
    return {
        "Jobs": rows,
        "NextToken": page.get("NextToken"),
        "Unreadable": [str(damaged) for damaged in unreadable],
    }


def _row(described: dict[str, Any]) -> dict[str, Any]:
    cluster = described.get("ProcessingResources", {}).get("ClusterConfig", {})
    cost = actual_cost(described)
    return {
        "Name": described["ProcessingJobName"],
        "Status": described["ProcessingJobStatus"],
        "InstanceCount": cluster.get("InstanceCount"),
        "InstanceType": cluster.get("InstanceType"),
        "CreationTime": _epoch(described.get("CreationTime")),
        "StartTime": _epoch(described.get("ProcessingStartTime")),
        "EndTime": _epoch(described.get("ProcessingEndTime")),
        "CostUsd": cost.get("ActualUsd") if cost else None,
        "FailureReason": described.get("FailureReason"),
    }


def job_page(store: JobStore, name: str, now: float | None = None) -> dict[str, Any]:
    """Everything the job's page shows. ResourceNotFound for an unknown job."""
    moment = time.time() if now is None else now
    record = JobRecord.from_dict(load_reconciled(store, name))
    described = record.describe()
    folder = store.folder(name)
    hosts = [path.stem for path in log_files(store, name, None)]
    plan = read_plan(folder)
    return {
        "Summary": _row(described),
        "Described": described,
        "Cost": actual_cost(described),
        "Hosts": hosts,
        "Timeline": build_timeline(
            hosts,
            read_phases(folder),
            moment,
            described.get("StoppingCondition", {}).get("MaxRuntimeInSeconds"),
        ),
        "Usage": usage_view(store, name, hosts, record, plan),
        "Inputs": _inputs(plan),
        "Outputs": _outputs(store, name, hosts, described, plan),
        "Plan": plan,
        "UsageLines": record.usage_lines,
    }


def usage_view(
    store: JobStore, name: str, hosts: list[str], record: JobRecord, plan: dict[str, Any] | None
) -> dict[str, Any]:
    """Each instance's chart points, against the limits it ran with (the instance type's, as
    SageMaker gives them), and the smallest type of its family that would have held its peak."""
    type_name = str(
        record.members.get("ProcessingResources", {})
        .get("ClusterConfig", {})
        .get("InstanceType", "")
    )
    try:
        kind = instance_type(type_name)
        memory_limit, cpu_limit, family = kind.memory_bytes, float(kind.vcpus), kind.family
    except KeyError:
        memory_limit, cpu_limit, family = None, None, None
    # What the containers were held to on this host (less than the type's when the host is
    # smaller than the job; None with --no-resource-limits): a second line when it differs.
    held_memory = plan.get("MemoryLimitBytes") if plan else None
    held_cpus = plan.get("CpuLimit") if plan else None
    folder = store.folder(name)
    instances = {}
    for host in hosts:
        points = downsample(read_usage_series(folder, host))
        recorded = record.instance_usage.get(host)
        top = max(
            [
                v
                for v in (peak(points, "MemoryBytes"), recorded and recorded.peak_memory_bytes)
                if v
            ],
            default=None,
        )
        fitting = smallest_fitting(family, int(top)) if family and top else None
        instances[host] = {
            "Points": points,
            "PeakMemoryBytes": top,
            "PeakCpus": peak(points, "Cpus"),
            "SmallestFitting": fitting.name if fitting else None,
        }
    return {
        "InstanceType": type_name,
        "MemoryLimitBytes": memory_limit,
        "CpuLimit": cpu_limit,
        "ContainerMemoryLimitBytes": held_memory if held_memory != memory_limit else None,
        "ContainerCpuLimit": held_cpus if held_cpus != cpu_limit else None,
        "Instances": instances,
    }


def _inputs(plan: dict[str, Any] | None) -> list[dict[str, Any]]:
    """Per instance, per input: mode, object count, bytes, and the objects of its shard."""
    if plan is None:
        return []
    return [
        {
            "Host": instance.get("Host"),
            "Inputs": [
                {
                    key: item.get(key)
                    for key in ("InputName", "LocalPath", "Mode", "ObjectCount", "Bytes")
                }
                | {"Objects": [o.get("S3Uri") for o in (item.get("Objects") or [])[:50]]}
                for item in instance.get("Inputs", [])
            ],
        }  # fmt: skip
        for instance in plan.get("InstancePlans", [])
    ]


def _outputs(
    store: JobStore,
    name: str,
    hosts: list[str],
    described: dict[str, Any],
    plan: dict[str, Any] | None,
) -> list[dict[str, Any]]:
    """Per instance and output: where it was uploaded, and the files the instance wrote (the
    local copy, downloadable)."""
    outputs = (described.get("ProcessingOutputConfig") or {}).get("Outputs") or []
    folder = store.folder(name)
    result = []
    for host in hosts:
        for output in outputs:
            output_name = output.get("OutputName", "")
            s3 = output.get("S3Output") or {}
            try:
                root = folder.outputs(host, output_name)
            except (TypeError, ValueError):
                continue
            files, cut = list_files(root) if _plain_name(output_name) else ([], False)
            result.append(
                {
                    "Host": host,
                    "OutputName": output_name,
                    "S3Uri": s3.get("S3Uri"),
                    "S3UploadMode": s3.get("S3UploadMode"),
                    "Files": files,
                    "Truncated": cut,
                }
            )
    return result


def open_output_file(
    store: JobStore, name: str, host: str, output_name: str, path: str
) -> tuple[BinaryIO, int]:
    """An output file an instance wrote, opened without leaving the job's folder or following
    a link: (file, size). ValidationException / ResourceNotFound otherwise."""
    store.load(name)  # ResourceNotFound for an unknown job; checks the name
    hosts = [p.stem for p in log_files(store, name, None)]
    if host not in hosts:
        raise ResourceNotFound(f"{name} has no instance {host!r}.")
    parts = [host, OUTPUTS_DIR, output_name, *path.split("/")]
    return open_inside(store.folder(name).path, parts)


def job_telemetry(store: JobStore, name: str) -> dict[str, Any]:
    """What `describe --telemetry` adds: the recorded phase times and every usage sample of each
    instance, as kept (not brought down to chart points)."""
    store.load(name)  # ResourceNotFound for an unknown job
    folder = store.folder(name)
    hosts = [path.stem for path in log_files(store, name, None)]
    return {
        "Phases": read_phases(folder),
        "UsageSamples": {host: read_usage_series(folder, host) for host in hosts},
    }


def log_piece(
    store: JobStore, name: str, host: str, offset: int, limit: int = LOG_CHUNK_BYTES
) -> dict[str, Any]:
    """The instance's log from byte `offset`, at most `limit` bytes, cut after its last whole
    line when more follows: {Text, Offset (where to ask next), Ended (the job has ended)}."""
    files = log_files(store, name, host)  # ValidationException for a host not of the job
    ended = JobRecord.from_dict(store.load(name)).status.ended
    if offset < 0:
        raise ValidationException.single("offset must not be negative.")
    try:
        fd = os.open(files[0], os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    except FileNotFoundError:
        return {"Text": "", "Offset": offset, "Ended": ended}
    except OSError:
        return {"Text": "", "Offset": offset, "Ended": ended}
    with os.fdopen(fd, "rb") as handle:
        if not stat.S_ISREG(os.fstat(handle.fileno()).st_mode):
            return {"Text": "", "Offset": offset, "Ended": ended}
        handle.seek(offset)
        data = handle.read(limit)
        more = len(handle.read(1)) > 0
    if not (ended and not more):
        cut = data.rfind(b"\n")
        data = data[: cut + 1] if cut >= 0 else (data if len(data) >= limit else b"")
    return {
        "Text": data.decode("utf-8", errors="replace"),
        "Offset": offset + len(data),
        "Ended": ended and not more,
    }


def _plain_name(name: str) -> bool:
    return bool(name) and name not in (".", "..") and "/" not in name and "\x00" not in name


def _epoch(text: Any) -> float | None:
    if not isinstance(text, str) and not isinstance(text, datetime):
        return None
    try:
        return (parse_timestamp(text) if isinstance(text, str) else text).timestamp()
    except (TypeError, ValueError):
        return None
