"""Every path of the state dir, in one place (`--state-dir`, `LOCALPROC_HOME`, default
`~/.localproc`):

    jobs/NAME/                    one folder per job name (0700)
        record.json               the record (padded JSON, replaced atomically)
        .lock                     flock'd for every read-modify-write of the record
        .claim                    who claimed the name, and the token to hand the claim on
        .record-spare             the previous record's blocks, written into on a full disk
        logs/algo-N.log           each instance's output
        staging/                  the inputs staged for the containers (kept with --keep-staging)
        scratch/                  snapshots of Continuous outputs until they are uploaded
        algo-N/config/            resourceconfig.json, processingjobconfig.json (/opt/ml/config)
        algo-N/output/            /opt/ml/output (its `message` becomes ExitMessage)
        algo-N/outputs/OUTPUT/    each output's LocalPath
        telemetry/plan.json       the plan the run executed (the console shows it)
        telemetry/phases.json     when staging, each container and the uploads started and ended
        telemetry/algo-N.usage.jsonl   memory and CPU samples of each instance, one JSON a line
    jobs/.claiming-*, jobs/.deleted-*   a claim being made, a job folder being removed
    runners/NAME.log              a background run's own output (`run --detach`, `serve`)
    runners/NAME.status.json      what a background run that never recorded its job reports
    cache/                        the input cache (--cache)

Job names become folder names, so a name is checked against the service's pattern before it
becomes a path: `../x` never reaches the filesystem."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from localproc.errors import ValidationException

# ProcessingJobName's pattern in the SageMaker model (tests/test_records.py checks they agree).
JOB_NAME_PATTERN = "[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}"
_JOB_NAME = re.compile(JOB_NAME_PATTERN)

RECORD_FILE = "record.json"
LOCK_FILE = ".lock"
CLAIM_FILE = ".claim"  # who claimed the name: their identity and a token to hand the claim on
SPARE_FILE = ".record-spare"  # the previous record's blocks, written into when the disk is full
SPARE_NEXT_FILE = f"{SPARE_FILE}.next"  # the version being replaced, on its way to the spare
RECORD_TEMP_PREFIX = ".record-"  # a new version of the record, before it is renamed into place
CLAIM_TEMP_PREFIX = ".tmp-"  # a new claim file, before it is renamed into place
CLAIMING_PREFIX = ".claiming-"  # in jobs/: a job folder made under this name, then renamed
DELETED_PREFIX = ".deleted-"  # in jobs/: a job folder renamed away, being removed
LOGS_DIR = "logs"
STAGING_DIR = "staging"
SCRATCH_DIR = "scratch"  # in a job's folder: snapshots of Continuous outputs before upload
CONFIG_DIR = "config"
OUTPUT_DIR = "output"
OUTPUTS_DIR = "outputs"
EXIT_MESSAGE_FILE = "message"
TELEMETRY_DIR = "telemetry"  # what the console draws: the plan, phase times, usage samples
RESOURCE_CONFIG_FILE = "resourceconfig.json"
JOB_CONFIG_FILE = "processingjobconfig.json"


def is_job_name(name: str) -> bool:
    return _JOB_NAME.fullmatch(name) is not None


def check_job_name(name: str) -> str:
    """`name`, or ValidationException in the service's words when it is not a job name."""
    if not is_job_name(name):
        raise ValidationException(
            [
                f"Value '{name}' at 'processingJobName' failed to satisfy constraint: "
                f"Member must satisfy regular expression pattern: {JOB_NAME_PATTERN}"
            ]
        )
    return name


@dataclass(frozen=True)
class JobFolder:
    """The paths of one job's folder (`jobs/NAME/`). Nothing here touches the filesystem."""

    path: Path

    @property
    def name(self) -> str:
        return self.path.name

    @property
    def record(self) -> Path:
        return self.path / RECORD_FILE

    @property
    def lock(self) -> Path:
        return self.path / LOCK_FILE

    @property
    def claim(self) -> Path:
        return self.path / CLAIM_FILE

    @property
    def spare(self) -> Path:
        return self.path / SPARE_FILE

    @property
    def spare_next(self) -> Path:
        return self.path / SPARE_NEXT_FILE

    @property
    def logs(self) -> Path:
        return self.path / LOGS_DIR

    def log(self, host: str) -> Path:
        """An instance's log (`logs/algo-N.log`)."""
        return self.logs / f"{host}.log"

    @property
    def staging(self) -> Path:
        return self.path / STAGING_DIR

    @property
    def scratch(self) -> Path:
        return self.path / SCRATCH_DIR

    @property
    def telemetry(self) -> Path:
        return self.path / TELEMETRY_DIR

    @property
    def plan(self) -> Path:
        """The plan the run executed (plan --json's plan keys)."""
        return self.telemetry / "plan.json"

    @property
    def phases(self) -> Path:
        """When staging, each instance's container and the uploads started and ended."""
        return self.telemetry / "phases.json"

    def usage_series(self, host: str) -> Path:
        """An instance's memory and CPU samples, one JSON object a line."""
        return self.telemetry / f"{host}.usage.jsonl"

    def instance(self, host: str) -> Path:
        """An instance's own folder (`algo-N/`): its config, output and outputs."""
        return self.path / host

    def config(self, host: str) -> Path:
        """Mounted read-only at /opt/ml/config."""
        return self.instance(host) / CONFIG_DIR

    def resource_config(self, host: str) -> Path:
        return self.config(host) / RESOURCE_CONFIG_FILE

    def job_config(self, host: str) -> Path:
        return self.config(host) / JOB_CONFIG_FILE

    def output(self, host: str) -> Path:
        """Mounted at /opt/ml/output."""
        return self.instance(host) / OUTPUT_DIR

    def exit_message(self, host: str) -> Path:
        """/opt/ml/output/message: its first 1,024 characters become ExitMessage."""
        return self.output(host) / EXIT_MESSAGE_FILE

    def outputs(self, host: str, output_name: str) -> Path:
        """An output's LocalPath on this host (`algo-N/outputs/OUTPUT/`)."""
        return self.instance(host) / OUTPUTS_DIR / output_name


@dataclass(frozen=True)
class StateDir:
    """The paths of a state dir. Nothing here touches the filesystem."""

    root: Path

    @property
    def jobs(self) -> Path:
        return self.root / "jobs"

    @property
    def runners(self) -> Path:
        return self.root / "runners"

    @property
    def cache(self) -> Path:
        return self.root / "cache"

    def job(self, name: str) -> JobFolder:
        """The job's folder; ValidationException when `name` is not a job name."""
        return JobFolder(self.jobs / check_job_name(name))

    def runner_log(self, name: str) -> Path:
        """Output of a background (`--detach`, `serve`) run's own process: kept outside the
        job's folder, because the run may be rejected before that folder exists."""
        return self.runners / f"{check_job_name(name)}.log"

    def runner_status(self, name: str) -> Path:
        """What a background run reports to the process waiting for it (beside its log)."""
        return self.runners / f"{check_job_name(name)}.status.json"

    def deleted(self, name: str, suffix: str) -> Path:
        """Where a job's folder goes while it is removed (the name is free at once)."""
        return self.jobs / f"{DELETED_PREFIX}{name}-{suffix}"
