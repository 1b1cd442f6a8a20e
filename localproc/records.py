"""The job store: one folder per job name under `<state dir>/jobs/`, holding `record.json` (the
DescribeProcessingJob fields plus localproc's own bookkeeping under `Localproc`), the logs per
instance and what the job wrote locally.

Durability and concurrency: a record is replaced atomically (temp file, fsync, rename), so a
reader never sees half a record; every read-modify-write holds an exclusive `flock` on the job's
lock file, so a runner and a `stop` from another terminal never lose each other's change;
claiming a name is an atomic mkdir, so two runs cannot share one.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import re
import shutil
import tempfile
from collections.abc import Iterator
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from localproc.errors import ResourceInUse, ResourceNotFound, ValidationException

# ProcessingJobName's pattern in the SageMaker model (tests/test_records.py checks they agree).
# Names become folder names, so anything else (`../x`) must never reach the filesystem.
JOB_NAME_PATTERN = "[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}"
_JOB_NAME = re.compile(JOB_NAME_PATTERN)
RECORD_FILE = "record.json"
LOCK_FILE = ".lock"
PRIVATE_KEY = "Localproc"  # localproc's bookkeeping inside a record, never in Describe output

ENDED = frozenset({"Completed", "Failed", "Stopped"})
RUNNING = frozenset({"InProgress", "Stopping"})
# The service's transitions. Failed is reachable from Stopping too: a runner that dies while
# stopping is reconciled as Failed.
TRANSITIONS = {
    "InProgress": frozenset({"Completed", "Failed", "Stopping"}),
    "Stopping": frozenset({"Stopped", "Failed"}),
}


class IllegalTransition(RuntimeError):
    """A status change the service never makes: a bug in localproc, not a user error."""


def now() -> datetime:
    return datetime.now(timezone.utc)


def timestamp(moment: datetime) -> str:
    return moment.isoformat(timespec="milliseconds")


def parse_timestamp(text: str) -> datetime:
    return datetime.fromisoformat(text)


class JobStore:
    def __init__(self, state_dir: Path) -> None:
        self.state_dir = state_dir
        self.jobs_dir = state_dir / "jobs"

    def job_dir(self, name: str) -> Path:
        if not _JOB_NAME.fullmatch(name):
            raise ValidationException(
                [
                    f"Value '{name}' at 'processingJobName' failed to satisfy constraint: "
                    f"Member must satisfy regular expression pattern: {JOB_NAME_PATTERN}"
                ]
            )
        return self.jobs_dir / name

    def runner_log(self, name: str) -> Path:
        """Output of a background (`--detach`, `serve`) run's own process: kept outside the job's
        folder, because the run may be rejected before that folder exists."""
        self.job_dir(name)  # checks the name
        return self.state_dir / "runners" / f"{name}.log"

    def exists(self, name: str) -> bool:
        return (self.job_dir(name) / RECORD_FILE).exists()

    def names(self) -> list[str]:
        if not self.jobs_dir.is_dir():
            return []
        found = (p.parent.name for p in self.jobs_dir.glob(f"*/{RECORD_FILE}"))
        return sorted(name for name in found if _JOB_NAME.fullmatch(name))

    # -- creating --------------------------------------------------------------------------------
    def claim(self, name: str, arn: str) -> Path:
        """Reserve the name; raises ResourceInUse if a job of that name is recorded or starting."""
        folder = self.job_dir(name)
        self.jobs_dir.mkdir(parents=True, exist_ok=True)
        try:
            folder.mkdir()
        except FileExistsError:
            raise ResourceInUse(
                "Job name must be unique within an AWS account and region, and a job with this "
                f"name already exists ({arn}). Choose another name with --name, or delete the "
                f"recorded job with `localproc delete {name}`."
            ) from None
        return folder

    def create(self, name: str, record: dict[str, Any]) -> None:
        with self.locked(name):
            _atomic_write_json(self.job_dir(name) / RECORD_FILE, record)

    # -- reading and changing --------------------------------------------------------------------
    def load(self, name: str) -> dict[str, Any]:
        path = self.job_dir(name) / RECORD_FILE
        try:
            return json.loads(path.read_text(encoding="utf-8"))
        except (FileNotFoundError, NotADirectoryError):
            raise ResourceNotFound(f"Could not find processing job '{name}'.") from None

    @contextlib.contextmanager
    def locked(self, name: str) -> Iterator[None]:
        lock_path = self.job_dir(name) / LOCK_FILE
        if not lock_path.parent.is_dir():
            raise ResourceNotFound(f"Could not find processing job '{name}'.")
        with lock_path.open("a") as handle:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle.fileno(), fcntl.LOCK_UN)

    def update(self, name: str, changes: dict[str, Any]) -> dict[str, Any]:
        """Apply `changes` (a new ProcessingJobStatus is checked against the service's
        transitions; a value of None removes the field) and return the new record."""
        with self.locked(name):
            record = self.load(name)
            _check_transition(name, record.get("ProcessingJobStatus"), changes)
            for key, value in changes.items():
                if value is None:
                    record.pop(key, None)
                else:
                    record[key] = value
            record["LastModifiedTime"] = timestamp(now())
            _atomic_write_json(self.job_dir(name) / RECORD_FILE, record)
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

    def delete(self, name: str) -> None:
        """Remove an ended job's record, logs (its runner's too) and local outputs, and free its
        name."""
        with self.locked(name):
            status = self.load(name).get("ProcessingJobStatus")
            if status not in ENDED:
                raise ResourceInUse(
                    f"Processing job {name} is {status}; stop it (`localproc stop {name}`) and "
                    "wait for it to end before deleting it."
                )
            # Rename first so the name is free at once and a reader never sees a half-deleted job.
            doomed = self.jobs_dir / f".deleted-{name}-{os.getpid()}"
            os.rename(self.job_dir(name), doomed)
            self.runner_log(name).unlink(missing_ok=True)
        shutil.rmtree(doomed, ignore_errors=True)


def _check_transition(name: str, current: str | None, changes: dict[str, Any]) -> None:
    new = changes.get("ProcessingJobStatus")
    if new is None or new == current or current is None:
        return
    if new not in TRANSITIONS.get(current, frozenset()):
        raise IllegalTransition(f"illegal job status change {current} -> {new} for {name}")


def describe_shape(record: dict[str, Any]) -> dict[str, Any]:
    """The DescribeProcessingJob fields of a record (localproc's bookkeeping left out)."""
    return {key: value for key, value in record.items() if key != PRIVATE_KEY}


def _atomic_write_json(path: Path, data: dict[str, Any]) -> None:
    fd, temp = tempfile.mkstemp(prefix=".record-", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            json.dump(data, handle, indent=2)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temp, path)
    except BaseException:
        Path(temp).unlink(missing_ok=True)
        raise
