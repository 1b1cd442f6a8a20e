"""Step 3, start: the pipe feeders and the Continuous uploads begin, the containers are created,
the record gets its ProcessingStartTime, and the containers start; then the watch (step 4)
follows them until every one has ended."""

from __future__ import annotations

import time
from pathlib import Path
from typing import TextIO

from localproc.execution.context import RunContext
from localproc.execution.outcome import InstanceResult
from localproc.execution.watch import Watch
from localproc.runtime.logs import LogSink
from localproc.transfer.staging import start_pipe_feeders


def start_and_watch(
    ctx: RunContext, fifos: dict[tuple[str, str], Path], log_stream: TextIO | None, colour: bool
) -> list[InstanceResult]:
    plan = ctx.plan
    ctx.feeders = start_pipe_feeders(plan, ctx.store, lambda host, name: fifos[(host, name)])
    _start_continuous_uploads(ctx)
    sink = LogSink(log_stream, ctx.folder.logs, colour=colour)
    ctx.engine.create_instances(ctx.credentials)
    watch = Watch(
        ctx.engine, plan.hosts, sink, ctx.stop, ctx.settings.stop_grace_seconds,
        on_stopping=ctx.record.stopping, telemetry=ctx.telemetry,
    )  # fmt: skip
    ctx.record.started()
    ctx.notify(
        f"starting {len(plan.instances)} container(s) of {ctx.job.image_uri}: "
        + " ".join(plan.command.argv)
    )
    # MaxRuntimeInSeconds counts from the moment the containers start.
    limit = plan.max_runtime_seconds
    deadline = time.monotonic() + limit if limit else None
    return watch.run(deadline)


def _start_continuous_uploads(ctx: RunContext) -> None:
    """Continuous outputs are watched from before the containers start until they end."""
    watched = [
        (instance.host, output)
        for instance in ctx.plan.instances
        for output in ctx.plan.outputs
        if output.upload_mode == "Continuous"
    ]
    if not watched:
        return
    # Imported only here: the watcher and its workers cost a trivial job's start for nothing.
    from localproc.transfer.continuous import ContinuousTarget, ContinuousUploader

    targets = [
        ContinuousTarget(host, output, ctx.engine.output_folder(host, output.name))
        for host, output in watched
    ]
    ctx.continuous = ContinuousUploader(
        targets,
        ctx.store,
        ctx.job.output_kms_key_id,
        warn=lambda message: ctx.notify(f"warning: {message}"),
        scratch_dir=_private_dir(ctx.folder.scratch),
    )
    ctx.continuous.start()


def _private_dir(path: Path) -> Path:
    # Snapshots of output files wait here before upload: outside every folder a container sees.
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    return path
