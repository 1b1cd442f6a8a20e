"""What every step of a run works with: the plan, the engine seam, the store, the record writer,
the stop signal, and the pieces that outlive one step (pipe feeders, Continuous uploads)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from localproc.execution.record import RunRecord
from localproc.execution.settings import Notify, RunSettings
from localproc.execution.stop import StopSignal
from localproc.payload.job import JobSpec
from localproc.plan import JobPlan
from localproc.records.layout import JobFolder
from localproc.records.telemetry import RunTelemetry
from localproc.runtime.protocol import Engine
from localproc.storage import ObjectStore
from localproc.transfer.progress import TransferProgress
from localproc.transfer.upload import UploadReport

if TYPE_CHECKING:  # imported where a job has Continuous outputs or Pipe inputs, not before
    from localproc.transfer.continuous import ContinuousUploader
    from localproc.transfer.pipe import PipeFeeder


@dataclass
class RunContext:
    job: JobSpec
    plan: JobPlan
    settings: RunSettings
    store: ObjectStore
    engine: Engine
    record: RunRecord
    folder: JobFolder  # the job's folder: every path of it
    notify: Notify
    progress: TransferProgress
    stop: StopSignal
    # --pass-aws-credentials: kept out of the plan, so neither `plan` nor
    # processingjobconfig.json shows them.
    credentials: dict[str, str] = field(default_factory=dict)
    feeders: list[PipeFeeder] = field(default_factory=list)
    continuous: ContinuousUploader | None = None
    continuous_report: UploadReport = field(default_factory=UploadReport)
    telemetry: RunTelemetry | None = None  # what the console draws (records.telemetry)
