"""One recorded job driven from staging to its final status, as a short sequence of steps:
stage → materialize → start → watch → collect → upload → finish. Each step is a module of its
own; `outcome.decide` alone says how the job ended; `RunRecord` alone writes the record; one
`StopSignal` is shared by staging, the watch and the uploads. Cleanup happens whatever happens."""

from __future__ import annotations

import contextlib
import sys
import time
from typing import TextIO

from localproc.errors import JobFailure, LocalprocError
from localproc.execution.cleanup import Cleanup, stop_feeders
from localproc.execution.collect import bring_back, exit_message, record_usage
from localproc.execution.context import RunContext
from localproc.execution.materialize import materialize
from localproc.execution.outcome import Happened, InstanceResult, decide
from localproc.execution.record import RunRecord
from localproc.execution.settings import Notify, RunOutcome, RunSettings
from localproc.execution.stage import stage
from localproc.execution.start import start_and_watch
from localproc.execution.stop import StopSignal, stop_on_signals
from localproc.execution.uploads import upload
from localproc.payload.job import JobSpec
from localproc.plan import JobPlan, plan_json
from localproc.records.layout import JobFolder
from localproc.records.store import JobStatus, JobStore
from localproc.records.telemetry import RunTelemetry
from localproc.runtime.engine import DockerEngine
from localproc.runtime.protocol import EngineError, GangPlacement
from localproc.runtime.swarm import SwarmCluster
from localproc.storage import ObjectStore
from localproc.transfer.progress import TransferProgress

__all__ = ["Notify", "RunOutcome", "RunSettings", "Runner", "stop_on_signals"]


class Runner:
    """Drives one recorded job from staging to its final status; owns its cleanup."""

    def __init__(
        self,
        job: JobSpec,
        plan: JobPlan | None,
        settings: RunSettings,
        store: ObjectStore,
        engine: DockerEngine | SwarmCluster,
        records: JobStore,
        folder: JobFolder,
        notify: Notify,
        progress: TransferProgress | None = None,
        credentials: dict[str, str] | None = None,
    ) -> None:
        self.job = job
        self.settings = settings
        self.folder = folder
        self.notify = notify
        self.started = time.monotonic()
        self.stop = StopSignal()
        self.record = RunRecord(records, job.name)
        self.engine = engine.for_run(plan, folder) if plan is not None else None
        self.ctx = (
            RunContext(
                job,
                plan,
                settings,
                store,
                self.engine,
                self.record,
                folder,
                notify,
                progress or TransferProgress(sys.stderr, enabled=False),
                self.stop,
                dict(credentials or {}),
            )  # fmt: skip
            if plan is not None and self.engine is not None
            else None
        )
        if self.ctx is not None:
            self.ctx.telemetry = RunTelemetry(folder)

    def request_stop(self, reason: str, immediately: bool = False) -> None:
        """Safe from a signal handler: only sets fields that the run acts on."""
        self.stop.request(reason, immediately)

    def execute(
        self, planning_failure: JobFailure | None, log_stream: TextIO | None, colour: bool
    ) -> RunOutcome:
        ctx = self.ctx
        outcome = RunOutcome(
            self.job.name, self.record.arn(), JobStatus.IN_PROGRESS, self.folder.path
        )
        failure, pipe_failure = None, None
        results: list[InstanceResult] = []
        cleanup = Cleanup(self.engine, self.folder, self.settings.keep_staging, self.notify)
        try:
            if planning_failure is not None:
                raise planning_failure
            assert ctx is not None
            results = self._contain(ctx, log_stream, colour)
            cut_short = stop_feeders(ctx.feeders)
            pipe_failure = cut_short.reason if cut_short else None
            bring_back(ctx)
            outcome.usage = record_usage(ctx, results)
            outcome.exit_message = exit_message(ctx)
        except JobFailure as err:
            failure = err.reason
        except (EngineError, OSError, LocalprocError) as err:
            # The engine, this host's filesystem or S3 failed us, not the job: the service's
            # wording. Whatever it was, the recorded job ends with a status and a reason.
            failure = f"InternalServerError: {err}"
        finally:
            cleanup.begin(ctx.feeders if ctx else [], self._finish_continuous)
        if self.stop.requested:
            self.record.stopping()
        if ctx is not None and ctx.plan.outputs:
            with _phase(ctx, "Uploading"):
                outcome.uploads = upload(ctx)
        if self.stop.requested:  # also a stop during the uploads: Stopping before Stopped
            self.record.stopping()
        cleanup.await_removal()
        cleanup.disarm()
        outcome.seconds = time.monotonic() - self.started
        self._finish(outcome, Happened(failure, results, pipe_failure))
        return outcome

    def _contain(
        self, ctx: RunContext, log_stream: TextIO | None, colour: bool
    ) -> list[InstanceResult]:
        if ctx.telemetry is not None:
            ctx.telemetry.plan(plan_json(ctx.plan))
        engine = ctx.engine
        # On a cluster all instances are placed at once before anything is staged or made;
        # the run may wait for room there, and a stop meanwhile ends it with nothing made.
        placing = isinstance(engine, GangPlacement)
        if placing and not engine.place_instances(self.notify, lambda: self.stop.requested):
            return []
        with _phase(ctx, "Staging"):
            stage(ctx)
        if self.stop.requested:
            return []  # stopped while staging: no container is started
        fifos = materialize(ctx)
        return start_and_watch(ctx, fifos, log_stream, colour)

    def _finish_continuous(self) -> None:
        """Final pass: the S3 prefix ends up matching each folder's final content."""
        if self.ctx is not None and self.ctx.continuous is not None:
            uploader, self.ctx.continuous = self.ctx.continuous, None
            self.ctx.continuous_report = uploader.finish()

    def _finish(self, outcome: RunOutcome, steps: Happened) -> None:
        plan = self.ctx.plan if self.ctx else None
        failures = outcome.uploads.failure_summary() if outcome.uploads.failures else None
        verdict = decide(
            Happened(
                failure=steps.failure,
                results=steps.results,
                pipe_failure=steps.pipe_failure,
                stop_reason=self.stop.reason,  # a stop at any time before now counts
                upload_failures=failures,
                record_status=self.record.status(),
                instance_type=self.job.instance_type,
                memory_limit_bytes=plan.limits.memory_bytes if plan else None,
                max_runtime_seconds=self.job.max_runtime_seconds,
            )
        )
        outcome.status, outcome.failure_reason = verdict.status, verdict.failure_reason
        self.record.finish(outcome.status, outcome.failure_reason, outcome.exit_message)


def _phase(ctx: RunContext, name: str) -> contextlib.AbstractContextManager[None]:
    """The phase's start and end for the console's timeline (nothing when not recorded)."""
    return ctx.telemetry.phase(name) if ctx.telemetry is not None else contextlib.nullcontext()
