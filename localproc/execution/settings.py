"""A run's settings (what `run`, `reproduce` and `serve` pass in) and its outcome."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from localproc.errors import ExitStatus
from localproc.records.status import JobStatus
from localproc.transfer.cache import DEFAULT_CAP_BYTES
from localproc.transfer.upload import UploadReport

Notify = Callable[[str], None]


@dataclass(frozen=True)
class RunSettings:
    state_dir: Path
    s3_root: Path | None = None
    s3_endpoint_url: str | None = None
    region: str | None = None
    keep_staging: bool = False
    stop_grace_seconds: float = 10.0
    resource_limits: bool = True
    use_cache: bool = True
    cache_cap_bytes: int = DEFAULT_CAP_BYTES
    pass_aws_credentials: bool = False
    cluster: str | None = None  # "swarm": DOCKER_HOST names a Swarm manager (runtime/swarm.py)
    # A claim of the job's name made for this run by the process that started it in the
    # background (`run --detach`, `serve`), which answered its caller only after claiming.
    claim_token: str | None = None


@dataclass
class RunOutcome:
    name: str
    arn: str
    status: JobStatus
    job_dir: Path
    failure_reason: str | None = None
    exit_message: str | None = None
    seconds: float = 0.0
    uploads: UploadReport = field(default_factory=UploadReport)
    usage: list[str] = field(default_factory=list)  # one line per instance: peak memory, CPU

    @property
    def exit_status(self) -> ExitStatus:
        return {
            JobStatus.COMPLETED: ExitStatus.COMPLETED,
            JobStatus.STOPPED: ExitStatus.STOPPED,
        }.get(self.status, ExitStatus.FAILED)
