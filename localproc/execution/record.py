"""The one writer of a job's record while it runs: its start, Stopping, the usage, the end."""

from __future__ import annotations

import contextlib
from typing import Any

from localproc.records.store import PRIVATE_KEY, IllegalTransition, JobStore, now, timestamp


class RunRecord:
    def __init__(self, records: JobStore, name: str) -> None:
        self._records = records
        self._name = name

    def arn(self) -> str:
        return self._records.load(self._name)["ProcessingJobArn"]

    def status(self) -> str:
        return self._records.load(self._name)["ProcessingJobStatus"]

    def started(self) -> None:
        self._records.update(self._name, {"ProcessingStartTime": timestamp(now())})

    def stopping(self) -> None:
        """`describe` shows Stopping from the moment a stop begins, as the service does."""
        # `localproc stop` may set it between the load and the update: then it is already so.
        with contextlib.suppress(IllegalTransition):
            if self.status() == "InProgress":
                self._records.update(self._name, {"ProcessingJobStatus": "Stopping"})

    def usage(self, usage: dict[str, Any], lines: list[str]) -> None:
        # The lines too, so that `describe` can give the same sizing advice later.
        record = self._records.load(self._name)
        private = {**record.get(PRIVATE_KEY, {}), "InstanceUsage": usage, "UsageLines": lines}
        self._records.update(self._name, {PRIVATE_KEY: private})

    def finish(self, status: str, reason: str | None, exit_message: str | None) -> None:
        self._records.update(
            self._name,
            {
                "ProcessingJobStatus": status,
                "ProcessingEndTime": timestamp(now()),
                "FailureReason": reason,
                "ExitMessage": exit_message,
            },
        )
