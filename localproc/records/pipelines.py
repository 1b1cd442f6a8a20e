"""The pipeline store in the state dir: pipelines with their versions and tags, and their
executions with their steps. Each file is replaced atomically (durable.atomic_write_text), so a
reader never sees half a record and a restart of `serve` finds everything as it was.

    pipelines/NAME.json               the pipeline: its members, tags and every version
    pipelines/.lock                   flock'd for every read-modify-write of a pipeline
    pipeline-executions/ID.json       one execution: its members, parameters, definition, steps
    pipeline-executions/ID.stop       a stop requested (by any process), for its executor to see

Names and ids are checked against the service's patterns before they become paths."""

from __future__ import annotations

import contextlib
import fcntl
import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from localproc.errors import ValidationException
from localproc.files import private_dir
from localproc.records.durable import atomic_write_text

PIPELINE_NAME = re.compile(r"[a-zA-Z0-9](-*[a-zA-Z0-9]){0,255}")
EXECUTION_ID = re.compile(r"[a-z0-9]{1,64}")
# The members every reader of a record relies on; a record without them is damaged.
PIPELINE_MEMBERS = ("PipelineName", "PipelineArn", "CreationTime", "LastModifiedTime", "Versions")
EXECUTION_MEMBERS = (
    "ExecutionId", "PipelineName", "PipelineArn", "PipelineExecutionArn", "CreationTime",
    "PipelineExecutionStatus", "PipelineDefinition", "PipelineVersionId", "LocalParameterValues",
)  # fmt: skip


class PipelineStore:
    def __init__(self, state_dir: Path) -> None:
        self.pipelines_dir = state_dir.expanduser() / "pipelines"
        self.executions_dir = state_dir.expanduser() / "pipeline-executions"

    # -- pipelines --------------------------------------------------------------------------
    @staticmethod
    def name_ok(name: str) -> bool:
        return PIPELINE_NAME.fullmatch(name) is not None

    @contextlib.contextmanager
    def locked(self) -> Iterator[None]:
        """Hold the pipelines' lock (between processes too) for a read-modify-write."""
        private_dir(self.pipelines_dir)
        with (self.pipelines_dir / ".lock").open("a") as lock:
            fcntl.flock(lock.fileno(), fcntl.LOCK_EX)
            yield

    def load_pipeline(self, name: str) -> dict[str, Any] | None:
        pipeline = _read(self._pipeline_path(name), PIPELINE_MEMBERS)
        return pipeline if pipeline and pipeline["Versions"] else None

    def save_pipeline(self, pipeline: dict[str, Any]) -> None:
        path = self._pipeline_path(pipeline["PipelineName"])
        private_dir(path.parent)
        atomic_write_text(path, json.dumps(pipeline, indent=1))

    def delete_pipeline(self, name: str) -> None:
        self._pipeline_path(name).unlink(missing_ok=True)

    def pipeline_names(self) -> list[str]:
        if not self.pipelines_dir.is_dir():
            return []
        names = (p.stem for p in self.pipelines_dir.glob("*.json"))
        return sorted(n for n in names if PIPELINE_NAME.fullmatch(n))

    def _pipeline_path(self, name: str) -> Path:
        if not PIPELINE_NAME.fullmatch(name):
            raise ValidationException.single(f"'{name}' is not a pipeline name")
        return self.pipelines_dir / f"{name}.json"

    # -- executions -------------------------------------------------------------------------
    def load_execution(self, execution_id: str) -> dict[str, Any] | None:
        return _read(self._execution_path(execution_id), EXECUTION_MEMBERS)

    def save_execution(self, execution: dict[str, Any]) -> None:
        path = self._execution_path(execution["ExecutionId"])
        private_dir(path.parent)
        atomic_write_text(path, json.dumps(execution, indent=1))

    def delete_execution(self, execution_id: str) -> None:
        self._execution_path(execution_id).unlink(missing_ok=True)
        self._stop_path(execution_id).unlink(missing_ok=True)

    def execution_ids(self) -> list[str]:
        if not self.executions_dir.is_dir():
            return []
        ids = (p.stem for p in self.executions_dir.glob("*.json"))
        return sorted(i for i in ids if EXECUTION_ID.fullmatch(i))

    def executions(self) -> Iterator[dict[str, Any]]:
        for execution_id in self.execution_ids():
            execution = self.load_execution(execution_id)
            if execution is not None:
                yield execution

    def request_stop(self, execution_id: str) -> None:
        atomic_write_text(self._stop_path(execution_id), "stop\n")

    def stop_requested(self, execution_id: str) -> bool:
        return self._stop_path(execution_id).exists()

    def clear_stop(self, execution_id: str) -> None:
        self._stop_path(execution_id).unlink(missing_ok=True)

    def _execution_path(self, execution_id: str) -> Path:
        if not EXECUTION_ID.fullmatch(execution_id):
            raise ValidationException.single(f"'{execution_id}' is not a pipeline execution id")
        return self.executions_dir / f"{execution_id}.json"

    def _stop_path(self, execution_id: str) -> Path:
        return self._execution_path(execution_id).with_suffix(".stop")


def _read(path: Path, members: tuple[str, ...]) -> dict[str, Any] | None:
    """The record, or None when there is none. A damaged file (not JSON, or without the members
    its readers need) reads as none: it is replaced by the next write (a pipeline record is
    small and written whole each time)."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except (OSError, ValueError, RecursionError):
        return None
    if not isinstance(data, dict) or any(data.get(m) is None for m in members):
        return None
    return data
