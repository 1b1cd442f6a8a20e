"""A job's record, typed: the DescribeProcessingJob members as the service would answer them,
and localproc's own bookkeeping (under `Localproc` in record.json, never in Describe output).

On disk a record is one JSON object (record.json): the DescribeProcessingJob members, with
absent optional ones as null, plus `Localproc` = {RunnerPid, RunnerStartTime, RunnerHost,
KeepStaging, InstanceUsage: {algo-N: {PeakMemoryBytes, CpuSeconds}}, UsageLines: [...]}.
`JobRecord.from_dict(d).to_dict()` gives back the same members, so records written by older
and newer localprocs read the same either way."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

from localproc.liveness import RunnerIdentity
from localproc.records.status import JobStatus
from localproc.records.times import now, parse_timestamp, timestamp

PRIVATE_KEY = "Localproc"  # localproc's bookkeeping inside a record, never in Describe output
_RUNNER_MEMBERS = ("RunnerPid", "RunnerStartTime", "RunnerHost")


def describe_shape(record: Mapping[str, Any]) -> dict[str, Any]:
    """The DescribeProcessingJob fields of a record (localproc's bookkeeping left out), nulls
    kept as they are recorded."""
    return {key: value for key, value in record.items() if key != PRIVATE_KEY}


def without_nulls(value: Any) -> Any:
    """The service omits absent optional members from its responses."""
    if isinstance(value, dict):
        return {k: without_nulls(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [without_nulls(v) for v in value]
    return value


@dataclass(frozen=True)
class InstanceUsage:
    """What one instance (algo-N) used, as sampled while it ran."""

    peak_memory_bytes: int
    cpu_seconds: float | None = None

    @classmethod
    def from_record(cls, value: object) -> InstanceUsage | None:
        if not isinstance(value, dict) or not _is_int(value.get("PeakMemoryBytes")):
            return None
        cpu = value.get("CpuSeconds")
        if cpu is not None and not _is_number(cpu):
            return None
        return cls(value["PeakMemoryBytes"], cpu)

    def to_record(self) -> dict[str, Any]:
        return {"PeakMemoryBytes": self.peak_memory_bytes, "CpuSeconds": self.cpu_seconds}


@dataclass(frozen=True)
class Bookkeeping:
    """localproc's own members of a record. None: not recorded (an older record, or a job that
    ran no container); the typed views on JobRecord give what None means."""

    runner: RunnerIdentity | None = None  # the process that runs (ran) the job
    keep_staging: bool | None = None  # --keep-staging: `gc` leaves the staged inputs
    instance_usage: Mapping[str, InstanceUsage] | None = None  # algo-N → its usage
    usage_lines: tuple[str, ...] | None = None  # the sizing advice `run` printed, one per instance
    extra: Mapping[str, Any] = field(default_factory=dict)  # members not read here: kept

    @classmethod
    def from_record(cls, info: object) -> Bookkeeping | None:
        if not isinstance(info, dict):
            return None
        extra = dict(info)
        runner = RunnerIdentity.from_record(info)
        if runner is not None:
            for member in _RUNNER_MEMBERS:
                extra.pop(member, None)
        keep = extra.pop("KeepStaging", None)
        if keep is not None and not isinstance(keep, bool):
            extra["KeepStaging"], keep = keep, None
        usage = _usage_from_record(extra.pop("InstanceUsage", None))
        if usage is None and info.get("InstanceUsage") is not None:
            extra["InstanceUsage"] = info["InstanceUsage"]
        lines = extra.pop("UsageLines", None)
        if lines is not None and not (
            isinstance(lines, list) and all(isinstance(line, str) for line in lines)
        ):
            extra["UsageLines"], lines = lines, None
        return cls(runner, keep, usage, None if lines is None else tuple(lines), extra)

    def to_record(self) -> dict[str, Any]:
        info: dict[str, Any] = self.runner.to_record() if self.runner is not None else {}
        if self.keep_staging is not None:
            info["KeepStaging"] = self.keep_staging
        if self.instance_usage is not None:
            info["InstanceUsage"] = {
                host: usage.to_record() for host, usage in self.instance_usage.items()
            }
        if self.usage_lines is not None:
            info["UsageLines"] = list(self.usage_lines)
        return {**info, **{k: v for k, v in self.extra.items() if k not in info}}


def _usage_from_record(value: object) -> dict[str, InstanceUsage] | None:
    if not isinstance(value, dict):
        return None
    usage = {host: InstanceUsage.from_record(item) for host, item in value.items()}
    if any(item is None for item in usage.values()):
        return None
    return {host: item for host, item in usage.items() if item is not None}


# What JobRecord.with_changes (and JobStore.update_record) accept, and the member each changes.
MEMBER_CHANGES = {
    "status": "ProcessingJobStatus",
    "start_time": "ProcessingStartTime",
    "end_time": "ProcessingEndTime",
    "failure_reason": "FailureReason",
    "exit_message": "ExitMessage",
    "last_modified_time": "LastModifiedTime",
}
BOOKKEEPING_CHANGES = frozenset({"runner", "keep_staging", "instance_usage", "usage_lines"})


@dataclass(frozen=True)
class JobRecord:
    """One job's record. `members` holds every DescribeProcessingJob member as recorded (absent
    optional ones as None, in the record's order); the properties are their typed views."""

    members: Mapping[str, Any]
    bookkeeping: Bookkeeping | None = None
    # The member `Localproc` follows in record.json ("" for the first place): only its place.
    private_after: str = field(default="LastModifiedTime", compare=False, repr=False)

    @classmethod
    def from_dict(cls, record: Mapping[str, Any]) -> JobRecord:
        """A record as `JobStore.load` returns it (checked there: see records.checks)."""
        keys = list(record)
        at = keys.index(PRIVATE_KEY) if PRIVATE_KEY in record else None
        after = "LastModifiedTime" if at is None else ("" if at == 0 else keys[at - 1])
        bookkeeping = Bookkeeping.from_record(record.get(PRIVATE_KEY))
        return cls(describe_shape(record), bookkeeping, after)

    @classmethod
    def new(
        cls,
        echo: Mapping[str, Any],
        arn: str,
        runner: RunnerIdentity,
        keep_staging: bool,
        created: datetime | None = None,
    ) -> JobRecord:
        """A job's first record: the request as the service echoes it (payload.echo), InProgress."""
        moment = timestamp(created or now())
        members = {
            **echo,
            "ProcessingJobArn": arn,
            "ProcessingJobStatus": JobStatus.IN_PROGRESS.value,
            "CreationTime": moment,
            "LastModifiedTime": moment,
        }
        return cls(members, Bookkeeping(runner=runner, keep_staging=keep_staging))

    def to_dict(self) -> dict[str, Any]:
        """The record as record.json holds it. `Localproc` keeps its place: right after
        LastModifiedTime in a record localproc made (at the end when that member is gone)."""
        if self.bookkeeping is None:
            return dict(self.members)
        private = self.bookkeeping.to_record()
        if self.private_after == "":
            return {PRIVATE_KEY: private, **self.members}
        if self.private_after not in self.members:
            return {**self.members, PRIVATE_KEY: private}
        record: dict[str, Any] = {}
        for key, value in self.members.items():
            record[key] = value
            if key == self.private_after:
                record[PRIVATE_KEY] = private
        return record

    def describe(self) -> dict[str, Any]:
        """The DescribeProcessingJob answer: the members, absent optional ones left out."""
        return without_nulls(dict(self.members))

    def with_changes(self, **changes: Any) -> JobRecord:
        """A copy with `changes` (names as in MEMBER_CHANGES and BOOKKEEPING_CHANGES; a member
        set to None is removed). No transition check here: JobStore.update_record checks."""
        members = dict(self.members)
        for key, value in self.member_changes(**changes).items():
            if key == PRIVATE_KEY:
                continue
            if value is None:
                members.pop(key, None)
            else:
                members[key] = value
        return JobRecord(members, self._bookkeeping_with(changes), self.private_after)

    def member_changes(self, **changes: Any) -> dict[str, Any]:
        """`changes` as the dict API's changes (JobStore.update), in the order given: what a
        typed change does to record.json is exactly what the same dict change does."""
        unknown = sorted(set(changes) - set(MEMBER_CHANGES) - BOOKKEEPING_CHANGES)
        if unknown:
            raise TypeError(f"not a change of a job record: {', '.join(unknown)}")
        result: dict[str, Any] = {}
        for key, value in changes.items():
            if key in MEMBER_CHANGES:
                result[MEMBER_CHANGES[key]] = _member_value(value)
            elif PRIVATE_KEY not in result:
                result[PRIVATE_KEY] = None  # filled in below, at the first bookkeeping change
        if PRIVATE_KEY in result:
            bookkeeping = self._bookkeeping_with(changes)
            result[PRIVATE_KEY] = bookkeeping.to_record() if bookkeeping else None
        return result

    def _bookkeeping_with(self, changes: Mapping[str, Any]) -> Bookkeeping | None:
        wanted = {k: v for k, v in changes.items() if k in BOOKKEEPING_CHANGES}
        if not wanted:
            return self.bookkeeping
        if isinstance(wanted.get("usage_lines"), Sequence):
            wanted["usage_lines"] = tuple(wanted["usage_lines"])
        return replace(self.bookkeeping or Bookkeeping(), **wanted)

    # -- typed views of the members ---------------------------------------------------------
    @property
    def name(self) -> str:
        return str(self.members["ProcessingJobName"])

    @property
    def arn(self) -> str:
        return str(self.members["ProcessingJobArn"])

    @property
    def status(self) -> JobStatus:
        return JobStatus(self.members["ProcessingJobStatus"])

    @property
    def creation_time(self) -> datetime:
        return parse_timestamp(self.members["CreationTime"])

    @property
    def last_modified_time(self) -> datetime:
        """When the record last changed (its creation time when it never did)."""
        return parse_timestamp(self.members.get("LastModifiedTime") or self.members["CreationTime"])

    @property
    def start_time(self) -> datetime | None:
        """When the containers started (ProcessingStartTime)."""
        return self._time("ProcessingStartTime")

    @property
    def end_time(self) -> datetime | None:
        return self._time("ProcessingEndTime")

    @property
    def failure_reason(self) -> str | None:
        return self.members.get("FailureReason")

    @property
    def exit_message(self) -> str | None:
        return self.members.get("ExitMessage")

    @property
    def instance_count(self) -> int | None:
        """ProcessingResources.ClusterConfig.InstanceCount, None when it is not a count."""
        resources = self.members.get("ProcessingResources")
        cluster = resources.get("ClusterConfig") if isinstance(resources, dict) else None
        count = cluster.get("InstanceCount") if isinstance(cluster, dict) else None
        return count if _is_int(count) and count >= 1 else None

    def _time(self, member: str) -> datetime | None:
        text = self.members.get(member)
        return parse_timestamp(text) if text else None

    # -- typed views of the bookkeeping -----------------------------------------------------
    @property
    def runner(self) -> RunnerIdentity | None:
        return self.bookkeeping.runner if self.bookkeeping else None

    def runner_alive(self) -> bool:
        """Whether the process that runs the job still lives (False when none is recorded)."""
        return self.runner is not None and self.runner.alive()

    @property
    def keep_staging(self) -> bool:
        return bool(self.bookkeeping and self.bookkeeping.keep_staging)

    @property
    def instance_usage(self) -> Mapping[str, InstanceUsage]:
        return (self.bookkeeping and self.bookkeeping.instance_usage) or {}

    @property
    def usage_lines(self) -> list[str]:
        return list((self.bookkeeping and self.bookkeeping.usage_lines) or [])


def _member_value(value: Any) -> Any:
    if isinstance(value, JobStatus):
        return value.value
    if isinstance(value, datetime):
        return timestamp(value)
    return value


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)
