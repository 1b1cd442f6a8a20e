"""The job store: one folder per job name under `<state dir>/jobs/`, holding `record.json` (the
DescribeProcessingJob fields plus localproc's own bookkeeping under `Localproc`), the logs per
instance and what the job wrote locally.

Durability and concurrency: a record is replaced atomically (temp file, fsync, rename), so a
reader never sees half a record; every read-modify-write holds an exclusive `flock` on the job's
lock file, so a runner and a `stop` from another terminal never lose each other's change.

Claiming a name is atomic: the job's folder is made under a temporary name, with a claim file
saying who claims it, and renamed into place, so two runs cannot share one name and a folder
without a claim file is never a live claim. A claim whose claimer died before recording the job
(a crash between the two) is stale: the next claim of the name takes it over, and `gc` removes it.

A full disk must not wedge a job (a container can fill the disk the state dir is on): a record
file is padded with trailing whitespace (still JSON) to a few KiB more than it holds, and the
previous version of the record is kept as a spare. When writing a new temp file fails for want
of space, the new record is written into the spare's blocks instead, which needs none, and
renamed into place. Reading, listing and deleting never need space.

Every job folder is 0700: nothing a container wrote there (a setuid file, a device node) is
reachable by another local user.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import json
import os
import re
import secrets
import tempfile
import time
from collections.abc import Iterator
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from localproc.errors import (
    CannotRunHere,
    DamagedRecord,
    ResourceInUse,
    ResourceNotFound,
    ValidationException,
)
from localproc.files import private_dir, remove_tree
from localproc.liveness import identity_alive, process_identity

# ProcessingJobName's pattern in the SageMaker model (tests/test_records.py checks they agree).
# Names become folder names, so anything else (`../x`) must never reach the filesystem.
JOB_NAME_PATTERN = "[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}"
_JOB_NAME = re.compile(JOB_NAME_PATTERN)
RECORD_FILE = "record.json"
LOCK_FILE = ".lock"
CLAIM_FILE = ".claim"  # who claimed the name: their identity and a token to hand the claim on
SPARE_FILE = ".record-spare"  # the previous record's blocks, written into when the disk is full
# A record file is padded this far past what it holds, so that the next version fits into the
# spare's blocks: from one version to the next a record grows by at most its end (FailureReason
# and ExitMessage of up to 1,024 characters each, 12 bytes a character when JSON escapes them)
# and the usage lines of its instances.
RECORD_GROWTH_BYTES = 64 * 1024
# A folder with neither record nor claim file (a claim made by an older localproc that crashed)
# may only be taken over once it is this old.
UNCLAIMED_FOLDER_SECONDS = 120
STATUSES = frozenset({"InProgress", "Completed", "Failed", "Stopping", "Stopped"})
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
    def claim(self, name: str, arn: str, token: str | None = None) -> Path:
        """Reserve the name; raises ResourceInUse if a job of that name is recorded or starting.

        `token`: a claim made for this process by another (`run --detach`, `serve`: the parent
        claims before it answers, the background run takes the claim over with the token)."""
        folder = self.job_dir(name)
        if token is not None and self._take_over(folder, token):
            return folder
        for _attempt in range(2):
            fresh: Path | None = None
            try:
                private_dir(self.jobs_dir)
                fresh = Path(tempfile.mkdtemp(prefix=".claiming-", dir=self.jobs_dir))
                _write_claim(fresh, secrets.token_hex(8) if token is None else token)
                (fresh / LOCK_FILE).touch()
                os.rename(fresh, folder)  # fails when a claimed folder of that name exists
                return folder
            except OSError as err:
                if fresh is not None:
                    remove_tree(fresh)
                if err.errno not in (errno.EEXIST, errno.ENOTEMPTY):
                    raise CannotRunHere(
                        f"Cannot claim the name {name} in {self.jobs_dir}: "
                        f"{err.strerror or err}. Free some space there (`localproc delete` "
                        "of old jobs, `localproc gc`) or use another --state-dir."
                    ) from None
            if not self._clear_stale_claim(folder):
                break
        raise ResourceInUse(
            "Job name must be unique within an AWS account and region, and a job with this "
            f"name already exists ({arn}). Choose another name with --name, or delete the "
            f"recorded job with `localproc delete {name}`."
        )

    def claim_token(self, name: str) -> str:
        """The token of a claim this process made, to hand it to the process that runs the job."""
        return str(_read_claim(self.job_dir(name)).get("Token", ""))

    def release_claim(self, name: str, token: str) -> None:
        """Give up a claim whose job was never recorded (the background run was rejected)."""
        folder = self.job_dir(name)
        if (folder / RECORD_FILE).exists() or self.claim_token(name) != token:
            return
        self._discard(folder)

    def stale_claims(self) -> list[str]:
        """Names claimed by a process that died before recording the job."""
        if not self.jobs_dir.is_dir():
            return []
        return sorted(
            folder.name
            for folder in self.jobs_dir.iterdir()
            if _JOB_NAME.fullmatch(folder.name) and _is_stale_claim(folder)
        )

    def clear_stale_claim(self, name: str) -> bool:
        return self._clear_stale_claim(self.job_dir(name))

    def _take_over(self, folder: Path, token: str) -> bool:
        claim = _read_claim(folder)
        if claim.get("Token") != token or (folder / RECORD_FILE).exists():
            return False
        _write_claim(folder, token)  # now this process's claim
        return True

    def _clear_stale_claim(self, folder: Path) -> bool:
        if not _is_stale_claim(folder):
            return False
        self._discard(folder)
        return True

    def _discard(self, folder: Path) -> None:
        # Renamed first, so that the name is free at once and no reader sees half a folder.
        doomed = self.jobs_dir / f".deleted-{folder.name}-{os.getpid()}-{secrets.token_hex(4)}"
        with contextlib.suppress(FileNotFoundError):
            os.rename(folder, doomed)
            remove_tree(doomed)

    def create(self, name: str, record: dict[str, Any]) -> None:
        with self.locked(name):
            folder = self.job_dir(name)
            # A spare from the start, made first: the first update may already meet a full
            # disk, and a disk too full for it must leave no record behind.
            _write_padded(folder / SPARE_FILE, json.dumps(record, indent=2))
            _write_record(folder, record)

    # -- reading and changing --------------------------------------------------------------------
    def load(self, name: str) -> dict[str, Any]:
        path = self.job_dir(name) / RECORD_FILE
        try:
            raw = path.read_bytes()
        except (FileNotFoundError, NotADirectoryError):
            raise ResourceNotFound(f"Could not find processing job '{name}'.") from None
        except OSError as err:
            raise DamagedRecord(name, path, f"it cannot be read ({err.strerror or err})") from None
        return _checked_record(name, path, raw)

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
            _write_record(self.job_dir(name), record)
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
            self._discard(self.job_dir(name))


def _check_transition(name: str, current: str | None, changes: dict[str, Any]) -> None:
    new = changes.get("ProcessingJobStatus")
    if new is None or new == current or current is None:
        return
    if new not in TRANSITIONS.get(current, frozenset()):
        raise IllegalTransition(f"illegal job status change {current} -> {new} for {name}")


def describe_shape(record: dict[str, Any]) -> dict[str, Any]:
    """The DescribeProcessingJob fields of a record (localproc's bookkeeping left out)."""
    return {key: value for key, value in record.items() if key != PRIVATE_KEY}


def _checked_record(name: str, path: Path, raw: bytes) -> dict[str, Any]:
    """The record in `raw`, or DamagedRecord saying what is wrong with it: every field the
    commands rely on is checked here, so that nothing later trips over a damaged one."""
    try:
        record = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError) as err:
        raise DamagedRecord(name, path, f"it is not JSON ({_short(err)})") from None
    if not isinstance(record, dict):
        raise DamagedRecord(name, path, f"it holds a JSON {type(record).__name__}, not an object")
    problems = []
    if not isinstance(record.get("CreationTime"), str):
        problems.append("CreationTime is missing or not a string")
    if record.get("ProcessingJobStatus") not in STATUSES:
        problems.append("ProcessingJobStatus is missing or not a status")
    for key in ("CreationTime", "LastModifiedTime", "ProcessingStartTime", "ProcessingEndTime"):
        value = record.get(key)
        if isinstance(value, str):
            try:
                parse_timestamp(value)
            except ValueError:
                problems.append(f"{key} is not a time")
        elif value is not None:
            problems.append(f"{key} is not a time")
    problems += _shape_problems(record, _RECORD_SHAPE, "")
    pid = (record.get(PRIVATE_KEY) or {}).get("RunnerPid") if not problems else None
    if isinstance(pid, int) and pid <= 0:
        problems.append(f"{PRIVATE_KEY}.RunnerPid is not a process id")
    if problems:
        raise DamagedRecord(name, path, "; ".join(problems[:5]))
    return record


# The members of a record that localproc reads (views, listing, liveness, reconciling), with the
# type each must have when present; `True` marks one that must be present. A record written by
# localproc always matches; one changed by hand or by a crash elsewhere is told apart here.
_RECORD_SHAPE: dict[str, Any] = {
    "ProcessingJobName": (str, True),
    "ProcessingJobArn": (str, True),
    "FailureReason": (str, False),
    "ExitMessage": (str, False),
    "AppSpecification": ({"ImageUri": (str, False)}, False),
    "ProcessingResources": (
        {"ClusterConfig": ({"InstanceCount": (int, False), "InstanceType": (str, False)}, False)},
        False,
    ),
    "ProcessingInputs": ([{"InputName": (str, False)}], False),
    "ProcessingOutputConfig": ({"Outputs": ([{"OutputName": (str, False)}], False)}, False),
    PRIVATE_KEY: (
        {
            "RunnerPid": (int, True),
            "RunnerStartTime": (float, True),
            "RunnerHost": (str, True),
            "UsageLines": ([str], False),
        },
        False,
    ),
}


def _shape_problems(value: Any, shape: Any, where: str) -> list[str]:
    """What in `value` does not have the type `shape` gives: a dict of member → (shape,
    required), a one-item list for a list's items, or a Python type."""
    if isinstance(shape, dict):
        if not isinstance(value, dict):
            return [f"{where or 'the record'} is not an object"]
        problems = []
        for member, (inner, required) in shape.items():
            at = f"{where}.{member}" if where else member
            if member not in value or value[member] is None:
                if required:
                    problems.append(f"{at} is missing")
                continue
            problems += _shape_problems(value[member], inner, at)
        return problems
    if isinstance(shape, list):
        if not isinstance(value, list):
            return [f"{where} is not a list"]
        return [
            problem
            for index, item in enumerate(value)
            for problem in _shape_problems(item, shape[0], f"{where}[{index}]")
        ]
    wanted = (int, float) if shape is float else shape
    if not isinstance(value, wanted) or isinstance(value, bool):
        return [f"{where} is not a {shape.__name__}"]
    return []


def _short(err: BaseException) -> str:
    text = str(err)
    return text if len(text) <= 120 else text[:117] + "..."


# -- claims --------------------------------------------------------------------------------------
def _write_claim(folder: Path, token: str) -> None:
    os.chmod(folder, 0o700)
    _atomic_write_text(folder / CLAIM_FILE, json.dumps({**process_identity(), "Token": token}))


def _read_claim(folder: Path) -> dict[str, Any]:
    try:
        claim = json.loads((folder / CLAIM_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return claim if isinstance(claim, dict) else {}


def _is_stale_claim(folder: Path) -> bool:
    """A folder with no record whose claimer is dead; one without a claim file (made by an
    older localproc) once it is old enough that no claim can still be on its way."""
    try:
        if (folder / RECORD_FILE).exists() or not folder.is_dir():
            return False
        if not (folder / CLAIM_FILE).exists():
            return time.time() - folder.stat().st_mtime > UNCLAIMED_FOLDER_SECONDS
    except OSError:
        return False
    return not identity_alive(_read_claim(folder))


# -- writing -------------------------------------------------------------------------------------
def _write_record(folder: Path, record: dict[str, Any]) -> None:
    """Replace the folder's record atomically; on a full disk, through the spare's blocks."""
    text = json.dumps(record, indent=2)
    path = folder / RECORD_FILE
    try:
        temp = _write_padded_temp(folder, text)
    except OSError as err:
        if err.errno not in (errno.ENOSPC, errno.EDQUOT):
            raise
        _write_through_spare(folder, text)
        return
    # The version being replaced becomes the spare (a link needs no data blocks): it is padded
    # RECORD_GROWTH_BYTES past what it held, so the next version fits into its blocks.
    if path.exists():
        kept = folder / f"{SPARE_FILE}.next"
        with contextlib.suppress(OSError):
            with contextlib.suppress(FileNotFoundError):
                os.unlink(kept)
            os.link(path, kept)
            os.replace(kept, folder / SPARE_FILE)
    os.replace(temp, path)


def _write_through_spare(folder: Path, text: str) -> None:
    spare = folder / SPARE_FILE
    try:
        fd = os.open(spare, os.O_WRONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
    except FileNotFoundError:
        raise OSError(errno.ENOSPC, "no space left on device, and no spare record") from None
    try:
        size = os.fstat(fd).st_size
        if len(text.encode()) > size:
            raise OSError(errno.ENOSPC, "no space left on device, and the spare is too small")
        _write_all(fd, _padding(text, size))  # the spare's own blocks: nothing to allocate
        os.fsync(fd)
    finally:
        os.close(fd)
    path = folder / RECORD_FILE
    # Keep the version being replaced as the next spare where a link can still be made.
    kept = folder / f"{SPARE_FILE}.next"
    linked = False
    with contextlib.suppress(OSError):
        os.link(path, kept)
        linked = True
    os.replace(spare, path)
    if linked:
        os.replace(kept, spare)


def _padding(text: str, size: int) -> bytes:
    data = text.encode()
    return data + b" " * (size - len(data) - 1) + b"\n" if size > len(data) else data


def _padded_size(text: str) -> int:
    return len(text.encode()) + RECORD_GROWTH_BYTES


def _write_padded_temp(folder: Path, text: str) -> Path:
    fd, temp = tempfile.mkstemp(prefix=".record-", dir=folder)
    try:
        try:
            _write_all(fd, _padding(text, _padded_size(text)))
            os.fsync(fd)
        finally:
            os.close(fd)
    except BaseException:
        Path(temp).unlink(missing_ok=True)
        raise
    return Path(temp)


def _write_padded(path: Path, text: str) -> None:
    temp = _write_padded_temp(path.parent, text)
    os.replace(temp, path)


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


def _atomic_write_text(path: Path, text: str) -> None:
    fd, temp = tempfile.mkstemp(prefix=".tmp-", dir=path.parent)
    try:
        try:
            _write_all(fd, text.encode())
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(temp, path)
    except BaseException:
        Path(temp).unlink(missing_ok=True)
        raise
