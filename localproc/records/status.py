"""A job's status, with the service's legal transitions written down as data."""

from __future__ import annotations

from enum import Enum


class JobStatus(str, Enum):
    """ProcessingJobStatus: a `str`, so a member equals (and is stored as) its service value.
    The order is the service's enum order (messages list the values in it)."""

    IN_PROGRESS = "InProgress"
    COMPLETED = "Completed"
    FAILED = "Failed"
    STOPPING = "Stopping"
    STOPPED = "Stopped"

    def __str__(self) -> str:
        return self.value

    def __format__(self, spec: str) -> str:
        return format(self.value, spec)

    @property
    def ended(self) -> bool:
        """Completed, Failed or Stopped: the job changes no more."""
        return not _NEXT[self]

    @property
    def running(self) -> bool:
        """InProgress or Stopping: a runner is (or should be) at work on it."""
        return bool(_NEXT[self])

    def can_become(self, other: JobStatus | str) -> bool:
        """Whether the service ever changes this status to `other` (never to itself)."""
        return other in _NEXT[self]


# The service's transitions. Failed is reachable from Stopping too: a runner that dies while
# stopping is reconciled as Failed.
_NEXT: dict[JobStatus, frozenset[JobStatus]] = {
    JobStatus.IN_PROGRESS: frozenset({JobStatus.COMPLETED, JobStatus.FAILED, JobStatus.STOPPING}),
    JobStatus.STOPPING: frozenset({JobStatus.STOPPED, JobStatus.FAILED}),
    JobStatus.COMPLETED: frozenset(),
    JobStatus.FAILED: frozenset(),
    JobStatus.STOPPED: frozenset(),
}

# The names of the untyped store, as plain strings, for the callers that hold dict records.
STATUSES = frozenset(status.value for status in JobStatus)
ENDED = frozenset(status.value for status in JobStatus if status.ended)
RUNNING = frozenset(status.value for status in JobStatus if status.running)
TRANSITIONS = {
    status.value: frozenset(other.value for other in _NEXT[status])
    for status in JobStatus
    if status.running
}


class IllegalTransition(RuntimeError):
    """A status change the service never makes: a bug in localproc, not a user error."""


def check_transition(name: str, current: str | None, new: str | None) -> None:
    """Raise IllegalTransition unless `current` may become `new`. No new status, the same
    status again, and a record without a status yet are no change to check."""
    if new is None or new == current or current is None:
        return
    if current not in STATUSES or not JobStatus(current).can_become(new):
        raise IllegalTransition(f"illegal job status change {current} -> {new} for {name}")
