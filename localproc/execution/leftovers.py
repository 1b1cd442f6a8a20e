"""Leftovers of runs whose runner died (killed, crashed, rebooted): their records are put right
(Failed), their containers, networks, staging and scratch folders removed. Anything whose
runner is alive is never touched, whichever state dir it belongs to."""

from __future__ import annotations

import contextlib
import time
from dataclasses import dataclass, field
from typing import Any

from localproc.errors import CannotRunHere, DamagedRecord, LocalprocError
from localproc.files import remove_tree
from localproc.liveness import identity_alive, identity_from_label, runner_label
from localproc.records.store import PRIVATE_KEY, RUNNING, JobStore, now, timestamp
from localproc.runtime.engine import DockerEngine, EngineError
from localproc.transfer.cache import InputCache
from localproc.transfer.disarm import disarm_tree

# A background run records its job within two minutes or gives up (detach.START_TIMEOUT_SECONDS).
ORPHAN_RUNNER_LOG_SECONDS = 600
SCRATCH_DIR = "scratch"  # in a job's folder: snapshots of Continuous outputs before upload
RUNNER_DIED = "InternalServerError: the runner exited unexpectedly"


def runner_alive(record: dict[str, Any]) -> bool:
    return identity_alive(record.get(PRIVATE_KEY) or {})


def reconcile(
    store: JobStore, name: str, record: dict[str, Any], engine: DockerEngine | None = None
) -> dict[str, Any]:
    """A running record whose runner is gone becomes Failed, and the containers that runner
    left (which would otherwise run on past their deadline) are stopped and removed; returns
    the current record."""
    if record.get("ProcessingJobStatus") not in RUNNING or runner_alive(record):
        return record
    if remove_orphaned_containers(name, record, engine):
        disarm_tree(store.job_dir(name))  # the containers are gone: nothing writes there now
    changes = {
        "ProcessingJobStatus": "Failed",
        "FailureReason": RUNNER_DIED,
        "ProcessingEndTime": timestamp(now()),
    }
    try:
        return store.update(name, changes)
    except OSError:
        # Cannot be written now (a full disk, a read-only state dir): the answer is the same,
        # and the next reader records it.
        return {**record, **changes}


def remove_orphaned_containers(
    name: str, record: dict[str, Any], engine: DockerEngine | None = None
) -> bool:
    """The engine objects of this job made by its (dead) runner, found by the runner's label:
    a run of the same name by another runner is never touched. Nothing when no engine answers
    (`gc` removes them later). True once none of them is left."""
    info = record.get(PRIVATE_KEY) or {}
    if not isinstance(info.get("RunnerPid"), int):
        return False
    engine = engine or connect_engine_if_possible()
    if engine is None:
        return False
    try:
        for run in engine.runs_of(name, runner_label(info)):
            engine.remove_leftover(run)
    except EngineError:
        return False
    return True


def load_reconciled(store: JobStore, name: str) -> dict[str, Any]:
    return reconcile(store, name, store.load(name))


@dataclass
class GarbageReport:
    reconciled: list[str]  # records of dead runners, now Failed
    removed_resources: list[str]  # jobs whose containers and networks were removed
    removed_staging: list[str]  # jobs whose staging folder was removed
    cache_bytes_freed: int = 0
    removed_runner_logs: list[str] = field(default_factory=list)  # of runs that never started
    removed_stale_claims: list[str] = field(default_factory=list)  # claimer died unrecorded
    unreadable: list[str] = field(default_factory=list)  # damaged records, left as they are


def collect_garbage(
    store: JobStore, engine: DockerEngine | None, cache_cap_bytes: int | None = None
) -> GarbageReport:
    """Put right what dead runners left: their records (Failed), their containers and networks,
    their staging folders. Anything whose runner is alive is never touched, whichever state dir
    it belongs to: containers and networks carry their runner's identity in a label."""
    report = GarbageReport([], [], [])
    for name in store.names():
        try:
            record = store.load(name)
        except DamagedRecord as damaged:
            report.unreadable.append(str(damaged.path))  # left for `delete`: it holds data
            continue
        if record.get("ProcessingJobStatus") in RUNNING and not runner_alive(record):
            reconcile(store, name, record, engine)
            report.reconciled.append(name)
        if runner_alive(record):
            continue
        staging = store.job_dir(name) / "staging"
        # A runner killed mid-upload may leave Continuous snapshots behind in scratch/.
        remove_tree(store.job_dir(name) / SCRATCH_DIR)
        if staging.is_dir() and not (record.get(PRIVATE_KEY) or {}).get("KeepStaging"):
            remove_tree(staging)
            report.removed_staging.append(name)
    if engine is not None:
        # Run by run (each run's objects carry its id): a live run is never touched, even one
        # of the same job name from another state dir.
        for run in engine.leftover_runs():
            if not any(identity_alive(identity_from_label(label)) for label in run.runners):
                engine.remove_leftover(run)
                if run.job_name not in report.removed_resources:
                    report.removed_resources.append(run.job_name)
        report.removed_resources.sort()
    report.removed_runner_logs = _remove_orphan_runner_logs(store)
    report.removed_stale_claims = [
        name for name in store.stale_claims() if store.clear_stale_claim(name)
    ]
    if cache_cap_bytes is not None:
        report.cache_bytes_freed = InputCache(store.state_dir / "cache", cache_cap_bytes).trim()
    return report


def _remove_orphan_runner_logs(store: JobStore) -> list[str]:
    """Runner logs of background runs that never recorded their job (rejected, or killed before
    that): the caller was told why at the time. A run records its job within two minutes or
    gives up, so a younger log may still belong to a run that is starting."""
    removed = []
    folder = store.state_dir / "runners"
    settled = time.time() - ORPHAN_RUNNER_LOG_SECONDS
    for log in folder.glob("*.log") if folder.is_dir() else []:
        with contextlib.suppress(OSError, LocalprocError):
            if not store.exists(log.stem) and log.stat().st_mtime < settled:
                log.unlink()
                removed.append(log.stem)
    return sorted(removed)


def connect_engine_if_possible() -> DockerEngine | None:
    try:
        return DockerEngine.connect()
    except CannotRunHere:
        return None
