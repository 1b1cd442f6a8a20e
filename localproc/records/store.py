"""The job store: one folder per job name under `<state dir>/jobs/` (records.layout), holding
`record.json` (the DescribeProcessingJob fields plus localproc's own bookkeeping under
`Localproc`: records.record), the logs per instance and what the job wrote locally.

Durability and concurrency: a record is replaced atomically, padded, with a spare for a full
disk (records.durable), so a reader never sees half a record and a full disk never wedges a job;
every read-modify-write holds an exclusive `flock` on the job's lock file, so a runner and a
`stop` from another terminal never lose each other's change. Names are claimed atomically
(records.claims); statuses change only as the service changes them (records.status); a record
read is checked member by member (records.checks). Reading, listing and deleting never need
space.

Two APIs over the same records: the dict one (`load`, `create`, `update`, `request_stop`), and
the typed one (`load_record`, `create_record`, `update_record`, `request_stop_record`) with
`JobRecord`, `JobStatus`. A typed change writes exactly what the same dict change writes.

Every job folder is 0700: nothing a container wrote there (a setuid file, a device node) is
reachable by another local user."""

from __future__ import annotations

import contextlib
import fcntl
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from localproc.errors import DamagedRecord, ResourceInUse, ResourceNotFound, ValidationException
from localproc.records import claims
from localproc.records.checks import checked_record
from localproc.records.durable import RECORD_GROWTH_BYTES, write_first_spare, write_record
from localproc.records.layout import (
    CLAIM_FILE,
    JOB_NAME_PATTERN,
    LOCK_FILE,
    RECORD_FILE,
    SPARE_FILE,
    JobFolder,
    StateDir,
    is_job_name,
)
from localproc.records.record import PRIVATE_KEY, JobRecord, describe_shape, without_nulls
from localproc.records.status import (
    ENDED,
    RUNNING,
    STATUSES,
    TRANSITIONS,
    IllegalTransition,
    JobStatus,
    check_transition,
)
from localproc.records.times import now, parse_timestamp, timestamp

UNCLAIMED_FOLDER_SECONDS = claims.UNCLAIMED_FOLDER_SECONDS

# The names this module has always exported, whichever module now defines them.
__all__ = [
    "CLAIM_FILE",
    "ENDED",
    "JOB_NAME_PATTERN",
    "LOCK_FILE",
    "PRIVATE_KEY",
    "RECORD_FILE",
    "RECORD_GROWTH_BYTES",
    "RUNNING",
    "SPARE_FILE",
    "STATUSES",
    "TRANSITIONS",
    "UNCLAIMED_FOLDER_SECONDS",
    "IllegalTransition",
    "JobRecord",
    "JobStatus",
    "JobStore",
    "StateDir",
    "describe_shape",
    "now",
    "parse_timestamp",
    "timestamp",
    "without_nulls",
]


class JobStore:
    def __init__(self, state_dir: Path) -> None:
        self.state_dir = state_dir
        self.layout = StateDir(state_dir)
        self.jobs_dir = self.layout.jobs

    def job_dir(self, name: str) -> Path:
        return self.layout.job(name).path

    def folder(self, name: str) -> JobFolder:
        """Every path of the job's folder (records.layout.JobFolder)."""
        return self.layout.job(name)

    def runner_log(self, name: str) -> Path:
        """Output of a background (`--detach`, `serve`) run's own process: kept outside the job's
        folder, because the run may be rejected before that folder exists."""
        return self.layout.runner_log(name)

    def exists(self, name: str) -> bool:
        return self.folder(name).record.exists()

    def names(self) -> list[str]:
        if not self.jobs_dir.is_dir():
            return []
        found = (p.parent.name for p in self.jobs_dir.glob(f"*/{RECORD_FILE}"))
        return sorted(name for name in found if is_job_name(name))

    # -- claiming and creating -------------------------------------------------------------------
    def claim(self, name: str, arn: str, token: str | None = None) -> Path:
        """Reserve the name; raises ResourceInUse if a job of that name is recorded or starting.

        `token`: a claim made for this process by another (`run --detach`, `serve`: the parent
        claims before it answers, the background run takes the claim over with the token)."""
        return claims.claim(self.layout, name, arn, token)

    def claim_token(self, name: str) -> str:
        """The token of a claim this process made, to hand it to the process that runs the job."""
        return claims.claim_token(self.folder(name))

    def release_claim(self, name: str, token: str) -> None:
        """Give up a claim whose job was never recorded (the background run was rejected)."""
        claims.release_claim(self.layout, self.folder(name), token)

    def stale_claims(self) -> list[str]:
        """Names claimed by a process that died before recording the job."""
        return claims.stale_claims(self.layout)

    def clear_stale_claim(self, name: str) -> bool:
        return claims.clear_stale_claim(self.layout, self.folder(name))

    def create(self, name: str, record: dict[str, Any]) -> None:
        with self.locked(name):
            folder = self.folder(name)
            # A spare from the start, made first: the first update may already meet a full
            # disk, and a disk too full for it must leave no record behind.
            write_first_spare(folder, record)
            write_record(folder, record)

    def create_record(self, name: str, record: JobRecord) -> None:
        """`create` of a typed record (JobRecord.new makes a job's first one)."""
        self.create(name, record.to_dict())

    # -- reading ---------------------------------------------------------------------------------
    def load(self, name: str) -> dict[str, Any]:
        path = self.folder(name).record
        try:
            raw = path.read_bytes()
        except (FileNotFoundError, NotADirectoryError):
            raise ResourceNotFound(f"Could not find processing job '{name}'.") from None
        except OSError as err:
            raise DamagedRecord(name, path, f"it cannot be read ({err.strerror or err})") from None
        return checked_record(name, path, raw)

    def load_record(self, name: str) -> JobRecord:
        """`load`, typed."""
        return JobRecord.from_dict(self.load(name))

    @contextlib.contextmanager
    def locked(self, name: str) -> Iterator[None]:
        lock_path = self.folder(name).lock
        if not lock_path.parent.is_dir():
            raise ResourceNotFound(f"Could not find processing job '{name}'.")
        with lock_path.open("a") as handle:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle.fileno(), fcntl.LOCK_UN)

    # -- changing --------------------------------------------------------------------------------
    def update(self, name: str, changes: dict[str, Any]) -> dict[str, Any]:
        """Apply `changes` (a new ProcessingJobStatus is checked against the service's
        transitions; a value of None removes the field) and return the new record."""
        with self.locked(name):
            return self._update_locked(name, self.load(name), changes)

    def update_record(self, name: str, **changes: Any) -> JobRecord:
        """`update`, typed: `status=JobStatus.FAILED, failure_reason=..., end_time=now()`, and
        the bookkeeping (`instance_usage=`, `usage_lines=`, `keep_staging=`, `runner=`), whose
        other members are kept. None removes a member; members are added in the order given."""
        with self.locked(name):
            current = self.load(name)
            member_changes = JobRecord.from_dict(current).member_changes(**changes)
            return JobRecord.from_dict(self._update_locked(name, current, member_changes))

    def _update_locked(
        self, name: str, record: dict[str, Any], changes: dict[str, Any]
    ) -> dict[str, Any]:
        check_transition(
            name, record.get("ProcessingJobStatus"), changes.get("ProcessingJobStatus")
        )
        for key, value in changes.items():
            if value is None:
                record.pop(key, None)
            else:
                record[key] = value
        record["LastModifiedTime"] = timestamp(now())
        write_record(self.folder(name), record)
        return record

    def request_stop(self, name: str) -> dict[str, Any]:
        """StopProcessingJob: InProgress → Stopping. Stopping a job that has ended is refused in
        the service's words; stopping one that is already stopping changes nothing."""
        with self.locked(name):
            record = self.load(name)
            status = record.get("ProcessingJobStatus")
            if status == "Stopping":
                return record
            if status != "InProgress":
                raise ValidationException.single(
                    f"The request was rejected because the processing job {name} is in status "
                    f"{status}. Only a job that is InProgress can be stopped."
                )
        return self.update(name, {"ProcessingJobStatus": "Stopping"})

    def request_stop_record(self, name: str) -> JobRecord:
        """`request_stop`, typed."""
        return JobRecord.from_dict(self.request_stop(name))

    def delete(self, name: str) -> None:
        """Remove an ended job's record, logs (its runner's too) and local outputs, and free its
        name. A damaged record can always be deleted: that is the way out of it."""
        with self.locked(name):
            try:
                status = self.load(name).get("ProcessingJobStatus")
            except DamagedRecord:
                status = None
            if status is not None and status not in ENDED:
                raise ResourceInUse(
                    f"Processing job {name} is {status}; stop it (`localproc stop {name}`) and "
                    "wait for it to end before deleting it."
                )
            self.runner_log(name).unlink(missing_ok=True)
            claims.discard(self.layout, self.folder(name))
