"""The job store: one folder per job name under `<state dir>/jobs/`, holding `record.json` (the
DescribeProcessingJob fields plus what localproc needs to manage the job), the logs per instance
and what the job wrote locally. Records are written atomically (temp file + rename), so a reader
never sees half a record; claiming a name is an atomic mkdir, so two runs cannot share one."""

from __future__ import annotations

import json
import os
import tempfile
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from localproc.errors import ResourceInUse, ResourceNotFound

RECORD_FILE = "record.json"
PRIVATE_KEY = "Localproc"  # localproc's own bookkeeping inside a record, never in Describe output

# The service's allowed transitions; anything else is a bug, not a user error.
TRANSITIONS = {
    "InProgress": {"Completed", "Failed", "Stopping"},
    "Stopping": {"Stopped", "Failed"},
}


def now() -> datetime:
    return datetime.now(timezone.utc)


def timestamp(moment: datetime) -> str:
    return moment.isoformat(timespec="milliseconds")


class JobStore:
    def __init__(self, state_dir: Path) -> None:
        self.state_dir = state_dir
        self.jobs_dir = state_dir / "jobs"

    def job_dir(self, name: str) -> Path:
        return self.jobs_dir / name

    def exists(self, name: str) -> bool:
        return (self.job_dir(name) / RECORD_FILE).exists()

    def claim(self, name: str, arn: str) -> Path:
        """Reserve the name; raises ResourceInUse if a job of that name is recorded."""
        self.jobs_dir.mkdir(parents=True, exist_ok=True)
        folder = self.job_dir(name)
        try:
            folder.mkdir()
        except FileExistsError:
            raise ResourceInUse(
                "Job name must be unique within an AWS account and region, and a job with this "
                f"name already exists ({arn}). Choose another name with --name."
            ) from None
        return folder

    def release(self, name: str) -> None:
        """Undo a claim that never became a record (the run was rejected before it started)."""
        folder = self.job_dir(name)
        if folder.is_dir() and not (folder / RECORD_FILE).exists():
            for child in folder.iterdir():
                if child.is_file():
                    child.unlink()
            folder.rmdir()

    def load(self, name: str) -> dict[str, Any]:
        path = self.job_dir(name) / RECORD_FILE
        try:
            return json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise ResourceNotFound(f"Processing job {name} does not exist.") from None

    def write(self, name: str, record: dict[str, Any]) -> None:
        previous = self._current_status(name)
        status = record.get("ProcessingJobStatus")
        if previous is not None and previous != status:
            allowed = TRANSITIONS.get(previous, set())
            if status not in allowed:
                raise RuntimeError(f"illegal job status change {previous} -> {status} for {name}")
        record["LastModifiedTime"] = timestamp(now())
        _atomic_write_json(self.job_dir(name) / RECORD_FILE, record)

    def _current_status(self, name: str) -> str | None:
        path = self.job_dir(name) / RECORD_FILE
        if not path.exists():
            return None
        return json.loads(path.read_text(encoding="utf-8")).get("ProcessingJobStatus")


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
