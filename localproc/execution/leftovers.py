"""Leftovers of runs whose runner died (killed, crashed, rebooted): their records are put right
(Failed), their containers, networks, staging and scratch folders removed. Anything whose
runner is alive is never touched, whichever state dir it belongs to."""

from __future__ import annotations

import contextlib
import os
import time
from dataclasses import dataclass, field
from typing import Any

from localproc.errors import CannotRunHere, DamagedRecord, LocalprocError
from localproc.files import remove_tree
from localproc.liveness import RunnerIdentity
from localproc.records.layout import SCRATCH_DIR
from localproc.records.store import JobRecord, JobStatus, JobStore, now
from localproc.runtime.engine import DockerEngine, EngineError
from localproc.runtime.swarm import SwarmCluster
from localproc.transfer.cache import InputCache
from localproc.transfer.disarm import disarm_tree

# A background run records its job within two minutes or gives up (detach.START_TIMEOUT_SECONDS).
ORPHAN_RUNNER_LOG_SECONDS = 600
RUNNER_DIED = "InternalServerError: the runner exited unexpectedly"


__all__ = [
    "ORPHAN_RUNNER_LOG_SECONDS",
    "RUNNER_DIED",
    "SCRATCH_DIR",  # records.layout's, still importable from here
    "GarbageReport",
    "collect_garbage",
    "connect_engine_if_possible",
    "load_reconciled",
    "reconcile",
    "remove_orphaned_containers",
    "runner_alive",
]


def runner_alive(record: dict[str, Any] | JobRecord) -> bool:
    return _typed(record).runner_alive()


def _typed(record: dict[str, Any] | JobRecord) -> JobRecord:
    return record if isinstance(record, JobRecord) else JobRecord.from_dict(record)


def reconcile(
    store: JobStore,
    name: str,
    record: dict[str, Any] | JobRecord,
    engine: DockerEngine | SwarmCluster | None = None,
) -> dict[str, Any]:
    """A running record whose runner is gone becomes Failed, and the containers that runner
    left (which would otherwise run on past their deadline) are stopped and removed; returns
    the current record."""
    typed = _typed(record)
    if not typed.status.running or typed.runner_alive():
        return record if isinstance(record, dict) else typed.to_dict()
    if remove_orphaned_containers(name, typed, engine):
        disarm_tree(store.folder(name).path)  # the containers are gone: nothing writes there now
    changes = {"status": JobStatus.FAILED, "failure_reason": RUNNER_DIED, "end_time": now()}
    try:
        return store.update_record(name, **changes).to_dict()
    except OSError:
        # Cannot be written now (a full disk, a read-only state dir): the answer is the same,
        # and the next reader records it.
        return typed.with_changes(**changes).to_dict()


def remove_orphaned_containers(
    name: str, record: dict[str, Any] | JobRecord, engine: DockerEngine | SwarmCluster | None = None
) -> bool:
    """The engine objects of this job made by its (dead) runner, found by the runner's label:
    a run of the same name by another runner is never touched. Nothing when no engine answers
    (`gc` removes them later). True once none of them is left."""
    runner = _typed(record).runner
    if runner is None:
        return False
    engine = engine or connect_engine_if_possible()
    if engine is None:
        return False
    try:
        for run in engine.runs_of(name, runner.label()):
            engine.remove_leftover(run)
    except EngineError:
        return False
    return True


def load_reconciled(store: JobStore, name: str) -> dict[str, Any]:
    """The record, reconciled (a dict: what describe, list and the API answer from)."""
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
    store: JobStore, engine: DockerEngine | SwarmCluster | None, cache_cap_bytes: int | None = None
) -> GarbageReport:
    """Put right what dead runners left: their records (Failed), their containers and networks,
    their staging folders. Anything whose runner is alive is never touched, whichever state dir
    it belongs to: containers and networks carry their runner's identity in a label."""
    report = GarbageReport([], [], [])
    for name in store.names():
        try:
            record = store.load_record(name)
        except DamagedRecord as damaged:
            report.unreadable.append(str(damaged.path))  # left for `delete`: it holds data
            continue
        if record.status.running and not record.runner_alive():
            reconcile(store, name, record, engine)
            report.reconciled.append(name)
        if record.runner_alive():
            continue
        folder = store.folder(name)
        # A runner killed mid-upload may leave Continuous snapshots behind in scratch/.
        remove_tree(folder.scratch)
        if folder.staging.is_dir() and not record.keep_staging:
            remove_tree(folder.staging)
            report.removed_staging.append(name)
    if engine is not None:
        # Run by run (each run's objects carry its id): a live run is never touched, even one
        # of the same job name from another state dir.
        for run in engine.leftover_runs():
            if not any(_label_alive(label) for label in run.runners):
                engine.remove_leftover(run)
                if run.job_name not in report.removed_resources:
                    report.removed_resources.append(run.job_name)
        report.removed_resources.sort()
    report.removed_runner_logs = _remove_orphan_runner_logs(store)
    report.removed_stale_claims = [
        name for name in store.stale_claims() if store.clear_stale_claim(name)
    ]
    if cache_cap_bytes is not None:
        report.cache_bytes_freed = InputCache(store.layout.cache, cache_cap_bytes).trim()
    return report


def _label_alive(label: str) -> bool:
    identity = RunnerIdentity.from_label(label)
    return identity is not None and identity.alive()


def _remove_orphan_runner_logs(store: JobStore) -> list[str]:
    """Runner logs and status files of background runs that never recorded their job
    (rejected, or killed before that; a status file outlives a parent that died waiting): the
    caller was told why at the time. A run records its job within two minutes or gives up, so
    a younger file may still belong to a run that is starting."""
    removed = set()
    settled = time.time() - ORPHAN_RUNNER_LOG_SECONDS
    for name in _runner_file_names(store):
        with contextlib.suppress(OSError, LocalprocError):
            if store.exists(name):
                continue
            for path in (store.layout.runner_log(name), store.layout.runner_status(name)):
                with contextlib.suppress(FileNotFoundError):
                    if path.stat().st_mtime < settled:
                        path.unlink()
                        removed.add(name)
    return sorted(removed)


def _runner_file_names(store: JobStore) -> set[str]:
    """The job names that runners/ holds a log or a status file of (records.layout names
    them; a job name has no dot, so it is what comes before the first one)."""
    runners = store.layout.runners
    names = set()
    for path in runners.iterdir() if runners.is_dir() else []:
        name = path.name.split(".", 1)[0]
        with contextlib.suppress(LocalprocError):  # not a job name: not a runner's file
            if path in (store.layout.runner_log(name), store.layout.runner_status(name)):
                names.add(name)
    return names


def connect_engine_if_possible() -> DockerEngine | SwarmCluster | None:
    """The engine (with LOCALPROC_CLUSTER=swarm: the whole swarm, every node's engine)."""
    try:
        if os.environ.get("LOCALPROC_CLUSTER") == "swarm":
            return SwarmCluster.connect()
        return DockerEngine.connect()
    except CannotRunHere:
        return None
