"""Operations on recorded jobs: describe, list, stop, delete, logs, and finding runs whose runner
died (killed, crashed, rebooted) so that their records and leftovers are put right."""

from __future__ import annotations

import contextlib
import os
import re
import signal
import socket
import stat
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from localproc.errors import CannotRunHere, DamagedRecord, LocalprocError
from localproc.listing import ListQuery, list_page
from localproc.liveness import identity_alive, process_identity
from localproc.records import (
    ENDED,
    PRIVATE_KEY,
    RUNNING,
    JobStore,
    describe_shape,
    now,
    remove_tree,
    timestamp,
)
from localproc.runtime.engine import DockerEngine, EngineError
from localproc.transfer.cache import InputCache
from localproc.transfer.disarm import disarm_tree

# A background run records its job within two minutes or gives up (detach.START_TIMEOUT_SECONDS).
ORPHAN_RUNNER_LOG_SECONDS = 600
SCRATCH_DIR = "scratch"  # in a job's folder: snapshots of Continuous outputs before upload
RUNNER_DIED = "InternalServerError: the runner exited unexpectedly"
# `stop` of a job whose runner died: its containers are stopped and removed, nothing uploaded.
RUNNER_DIED_STOPPED = (
    "Stopped: stop requested. The runner had exited unexpectedly: its containers were stopped "
    "and removed, and no outputs were uploaded."
)


def runner_identity() -> dict[str, Any]:
    """What identifies this process as a job's runner, even after its PID is reused."""
    return process_identity()


def runner_label(identity: dict[str, Any]) -> str:
    """The identity as a Docker label value, so `gc` can judge leftovers without the record."""
    return f"{identity['RunnerPid']}/{identity['RunnerStartTime']}/{identity['RunnerHost']}"


def _identity_from_label(label: str) -> dict[str, Any]:
    pid, start, host = (label.split("/", 2) + ["", ""])[:3]
    try:
        return {"RunnerPid": int(pid), "RunnerStartTime": float(start), "RunnerHost": host}
    except ValueError:
        return {}


def runner_alive(record: dict[str, Any]) -> bool:
    return _identity_alive(record.get(PRIVATE_KEY) or {})


def _identity_alive(info: dict[str, Any]) -> bool:
    return identity_alive(info)


def _reconcile(
    store: JobStore, name: str, record: dict[str, Any], engine: DockerEngine | None = None
) -> dict[str, Any]:
    """A running record whose runner is gone becomes Failed, and the containers that runner
    left (which would otherwise run on past their deadline) are stopped and removed; returns
    the current record."""
    if record.get("ProcessingJobStatus") not in RUNNING or runner_alive(record):
        return record
    if _remove_orphaned_containers(name, record, engine):
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


def _remove_orphaned_containers(
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
    return _reconcile(store, name, store.load(name))


def describe_job(store: JobStore, name: str) -> dict[str, Any]:
    return _without_nulls(describe_shape(load_reconciled(store, name)))


def usage_lines(store: JobStore, name: str) -> list[str]:
    """Each instance's peak memory and CPU, with the smallest instance type that would have
    held it, as `run` printed them at the end (none for a job that ran no container)."""
    return list((store.load(name).get(PRIVATE_KEY) or {}).get("UsageLines") or [])


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


def stop_job(store: JobStore, name: str) -> dict[str, Any]:
    """StopProcessingJob: mark the job Stopping and tell its runner, which stops the containers
    (SIGTERM, grace period, SIGKILL), uploads outputs and records Stopped. A job whose runner
    died is stopped here: its containers are removed and it is recorded Stopped."""
    current = store.load(name)
    if current.get("ProcessingJobStatus") in RUNNING and not runner_alive(current):
        if _remove_orphaned_containers(name, current):
            disarm_tree(store.job_dir(name))
        if current["ProcessingJobStatus"] == "InProgress":
            store.request_stop(name)
        ended = store.update(
            name,
            {
                "ProcessingJobStatus": "Stopped",
                "FailureReason": RUNNER_DIED_STOPPED,
                "ProcessingEndTime": timestamp(now()),
            },
        )
        return describe_shape(ended)
    load_reconciled(store, name)
    record = store.request_stop(name)
    info = record.get(PRIVATE_KEY) or {}
    if runner_alive(record) and info.get("RunnerHost") in (None, socket.gethostname()):
        os.kill(int(info["RunnerPid"]), signal.SIGTERM)
    return describe_shape(record)


def delete_job(store: JobStore, name: str) -> None:
    # A dead runner's job is Failed, so deletable; a damaged record is deletable as it is.
    with contextlib.suppress(DamagedRecord):
        load_reconciled(store, name)
    store.delete(name)


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
            _reconcile(store, name, record, engine)
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
            if not any(_identity_alive(_identity_from_label(label)) for label in run.runners):
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


def _without_nulls(value: Any) -> Any:
    """The service omits absent optional members from its responses."""
    if isinstance(value, dict):
        return {k: _without_nulls(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [_without_nulls(v) for v in value]
    return value


# -- logs ----------------------------------------------------------------------------------------
def log_files(store: JobStore, name: str, instance: str | None) -> list[Path]:
    """The log files of the job's instances (algo-1 … algo-N; a file may not exist yet), or of
    the one `instance`, which must be one of them: a name is never made into a path otherwise
    (`--instance ../../x` would read any *.log file). ValidationException names the valid ones."""
    record = store.load(name)  # ResourceNotFound for an unknown job
    folder = store.job_dir(name) / "logs"
    hosts = _instance_hosts(record, folder)
    if instance is None:
        return [folder / f"{host}.log" for host in hosts]
    if instance not in hosts:
        from localproc.errors import ValidationException
        from localproc.printable import printable_line

        raise ValidationException.single(
            f"--instance: '{printable_line(instance)}' is not an instance of processing job "
            f"{name}; its instances are {', '.join(hosts)}."
        )
    return [folder / f"{instance}.log"]


_HOST_LOG = re.compile(r"algo-([1-9][0-9]*)\.log")


def _instance_hosts(record: dict[str, Any], folder: Path) -> list[str]:
    """algo-1 … algo-N from the record's InstanceCount; from the log files there are when the
    record lacks it."""
    resources = record.get("ProcessingResources")
    cluster = resources.get("ClusterConfig") if isinstance(resources, dict) else None
    count = cluster.get("InstanceCount") if isinstance(cluster, dict) else None
    if not isinstance(count, int) or isinstance(count, bool) or count < 1:
        found = (_HOST_LOG.fullmatch(p.name) for p in folder.glob("algo-*.log"))
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
        ended = load_reconciled(store, name).get("ProcessingJobStatus") in ENDED
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
