"""Claiming a job name, atomically: the job's folder is made under a temporary name, with a
claim file saying who claims it, and renamed into place, so two runs cannot share one name and
a folder without a claim file is never a live claim. A claim whose claimer died before recording
the job (a crash between the two) is stale: the next claim of the name takes it over, and `gc`
removes it."""

from __future__ import annotations

import contextlib
import errno
import fcntl
import json
import os
import secrets
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from localproc.errors import CannotRunHere, ResourceInUse
from localproc.files import private_dir, remove_tree
from localproc.liveness import identity_alive, process_identity
from localproc.records.durable import atomic_write_text
from localproc.records.layout import (
    CLAIMING_PREFIX,
    JobFolder,
    StateDir,
    is_job_name,
)

# A folder with neither record nor claim file (a claim made by an older localproc that crashed)
# may only be taken over once it is this old.
UNCLAIMED_FOLDER_SECONDS = 120


def claim(state: StateDir, name: str, arn: str, token: str | None = None) -> Path:
    """Reserve the name; raises ResourceInUse if a job of that name is recorded or starting.
    With `token`, first take over the claim another process made with it for this one."""
    folder = state.job(name)
    if token is not None:
        if not _take_over(folder, token):
            # Never a claim of its own instead: its caller gave up and answered that the job
            # does not run; a run now would be one nobody was told of.
            raise CannotRunHere(
                f"The caller that claimed the name {name} for this background run gave up "
                "(interrupted, or it stopped waiting) before this run took the claim over; "
                "the job is not run."
            )
        return folder.path
    for _attempt in range(2):
        fresh: Path | None = None
        try:
            private_dir(state.jobs)
            fresh = Path(tempfile.mkdtemp(prefix=CLAIMING_PREFIX, dir=state.jobs))
            claiming = JobFolder(fresh)
            _write_claim(claiming, secrets.token_hex(8) if token is None else token)
            claiming.lock.touch()
            os.rename(fresh, folder.path)  # fails when a claimed folder of that name exists
            return folder.path
        except OSError as err:
            if fresh is not None:
                remove_tree(fresh)
            if err.errno not in (errno.EEXIST, errno.ENOTEMPTY):
                raise CannotRunHere(
                    f"Cannot claim the name {name} in {state.jobs}: "
                    f"{err.strerror or err}. Free some space there (`localproc delete` "
                    "of old jobs, `localproc gc`) or use another --state-dir."
                ) from None
        if not clear_stale_claim(state, folder):
            break
    raise ResourceInUse(
        "Job name must be unique within an AWS account and region, and a job with this "
        f"name already exists ({arn}). Choose another name with --name, or delete the "
        f"recorded job with `localproc delete {name}`."
    )


def claim_token(folder: JobFolder) -> str:
    return str(read_claim(folder).get("Token", ""))


def release_claim(state: StateDir, folder: JobFolder, token: str) -> None:
    """Give up a claim whose job was never recorded; not one the run it was made for took over
    (it has a token of its own then)."""
    with _locked(folder) as present:
        if present and not folder.record.exists() and claim_token(folder) == token:
            discard(state, folder)


def stale_claims(state: StateDir) -> list[str]:
    """Names claimed by a process that died before recording the job."""
    if not state.jobs.is_dir():
        return []
    return sorted(
        path.name
        for path in state.jobs.iterdir()
        if is_job_name(path.name) and is_stale_claim(JobFolder(path))
    )


def clear_stale_claim(state: StateDir, folder: JobFolder) -> bool:
    if not is_stale_claim(folder):
        return False
    discard(state, folder)
    return True


def discard(state: StateDir, folder: JobFolder) -> None:
    """Remove a job's folder. Renamed first, so that the name is free at once and no reader
    sees half a folder."""
    doomed = state.deleted(folder.name, f"{os.getpid()}-{secrets.token_hex(4)}")
    with contextlib.suppress(FileNotFoundError):
        os.rename(folder.path, doomed)
        remove_tree(doomed)


def _take_over(folder: JobFolder, token: str) -> bool:
    """Make the claim made with `token` this process's own, under a token of its own: from then
    on its maker cannot release it. Under the folder's lock, as release_claim: one of the two
    wins, never both."""
    with _locked(folder) as present:
        if not present or read_claim(folder).get("Token") != token or folder.record.exists():
            return False
        _write_claim(folder, secrets.token_hex(8))
        return True


@contextlib.contextmanager
def _locked(folder: JobFolder) -> Iterator[bool]:
    """The folder's lock (the one JobStore.locked takes); False when there is no folder."""
    try:
        handle = folder.lock.open("a")
    except (FileNotFoundError, NotADirectoryError):
        yield False
        return
    with handle:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
        yield _still_in_place(folder, handle.fileno())


def _still_in_place(folder: JobFolder, lock: int) -> bool:
    """False if the folder was discarded (renamed away) while this process waited for its lock."""
    try:
        return os.path.samestat(os.stat(folder.lock), os.fstat(lock))
    except OSError:
        return False


def _write_claim(folder: JobFolder, token: str) -> None:
    os.chmod(folder.path, 0o700)
    atomic_write_text(folder.claim, json.dumps({**process_identity(), "Token": token}))


def read_claim(folder: JobFolder) -> dict[str, Any]:
    try:
        found = json.loads(folder.claim.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return found if isinstance(found, dict) else {}


def is_stale_claim(folder: JobFolder) -> bool:
    """A folder with no record whose claimer is dead; one without a claim file (made by an
    older localproc) once it is old enough that no claim can still be on its way."""
    try:
        if folder.record.exists() or not folder.path.is_dir():
            return False
        if not folder.claim.exists():
            return time.time() - folder.path.stat().st_mtime > UNCLAIMED_FOLDER_SECONDS
    except OSError:
        return False
    return not identity_alive(read_claim(folder))
