"""The one writer of a job's record while it runs: its start, Stopping, the usage, the end."""

from __future__ import annotations

import contextlib
from collections.abc import Mapping

from localproc.records.record import InstanceUsage
from localproc.records.store import IllegalTransition, JobStatus, JobStore, now


class RunRecord:
    def __init__(self, records: JobStore, name: str) -> None:
        self._records = records
        self._name = name

    def arn(self) -> str:
        return self._records.load_record(self._name).arn

    def status(self) -> JobStatus:
        return self._records.load_record(self._name).status

    def started(self) -> None:
        self._records.update_record(self._name, start_time=now())

    def stopping(self) -> None:
        """`describe` shows Stopping from the moment a stop begins, as the service does."""
        # `localproc stop` may set it between the load and the update: then it is already so.
        with contextlib.suppress(IllegalTransition):
            if self.status() is JobStatus.IN_PROGRESS:
                self._records.update_record(self._name, status=JobStatus.STOPPING)

    def usage(self, usage: Mapping[str, InstanceUsage], lines: list[str]) -> None:
        # The lines too, so that `describe` can give the same sizing advice later.
        self._records.update_record(self._name, instance_usage=usage, usage_lines=lines)

    def finish(self, status: JobStatus, reason: str | None, exit_message: str | None) -> None:
        self._records.update_record(
            self._name,
            status=status,
            end_time=now(),
            failure_reason=reason,
            exit_message=exit_message,
        )
