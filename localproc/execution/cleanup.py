"""Cleanup, whatever happened: the pipe feeders stopped, the engine's objects removed in a
thread of their own while the outputs upload, the Continuous uploads' final pass, the scratch and
staging folders removed; at the end, the job's folder disarmed."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import TYPE_CHECKING

from localproc.errors import JobFailure
from localproc.execution.settings import Notify
from localproc.files import remove_tree
from localproc.records.layout import JobFolder
from localproc.runtime.protocol import Engine, EngineError
from localproc.transfer.disarm import describe as describe_disarmed
from localproc.transfer.disarm import disarm_tree

if TYPE_CHECKING:
    from localproc.transfer.pipe import PipeFeeder


def stop_feeders(feeders: list[PipeFeeder]) -> JobFailure | None:
    """Stop every feeder (the list is emptied); the first one's error, if any."""
    for feeder in feeders:
        feeder.stop()
    errors = [feeder.error() for feeder in feeders]
    feeders.clear()
    return next((error for error in errors if error is not None), None)


class Cleanup:
    def __init__(
        self, engine: Engine | None, folder: JobFolder, keep_staging: bool, notify: Notify
    ) -> None:
        self._engine = engine
        self._folder = folder
        self._keep_staging = keep_staging
        self._notify = notify
        self._removal: threading.Thread | None = None

    def begin(self, feeders: list[PipeFeeder], finish_continuous: Callable[[], None]) -> None:
        """Every part runs even when one before it fails. The removal thread is not a daemon:
        the process cannot end before it has; `await_removal` joins it."""
        try:
            stop_feeders(feeders)
        finally:
            if self._engine is not None:
                self._removal = threading.Thread(target=self._remove, name="removal")
                self._removal.start()
            try:
                finish_continuous()
            finally:
                # Snapshots of Continuous outputs wait in scratch/ only until uploaded.
                remove_tree(self._folder.scratch)
                if not self._keep_staging and self._engine is not None:
                    self._engine.discard_inputs()

    def _remove(self) -> None:
        assert self._engine is not None
        try:
            self._engine.remove_all()
        except EngineError as err:
            self._notify(f"warning: {err}; `localproc gc` removes what is left")

    def await_removal(self) -> None:
        if self._removal is not None:
            self._removal.join()

    def disarm(self) -> None:
        """The containers are gone: nothing they left in the job's folder keeps a setuid bit
        or is a device node."""
        path = self._folder.path
        for line in describe_disarmed(disarm_tree(path), path):
            self._notify(line)
