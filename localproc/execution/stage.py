"""Step 1, stage: download every File input's objects into the folders the engine gives (once
per job; hard links for replicas; the input cache when enabled). A stop ends staging after the
downloads in flight."""

from __future__ import annotations

from localproc.execution.context import RunContext
from localproc.records.layout import StateDir
from localproc.transfer.cache import InputCache
from localproc.transfer.staging import stage_inputs


def stage(ctx: RunContext) -> None:
    plan, settings = ctx.plan, ctx.settings
    unique = {
        (o.source.bucket, o.source.key): o.source.size
        for instance in plan.instances
        for item in instance.inputs
        if item.mode == "File"
        for o in item.objects
    }
    if unique:
        ctx.notify(f"staging {len(unique)} input object(s) from {ctx.store.describe()}")
    cache = (
        InputCache(StateDir(settings.state_dir).cache, settings.cache_cap_bytes)
        if settings.use_cache
        else None
    )
    with ctx.progress.phase("staging inputs", len(unique), sum(unique.values())) as phase:
        stage_inputs(
            plan, ctx.store, ctx.engine.input_folder, cache,
            on_object=lambda staged: phase.advance(1, staged.source.size),
            cancelled=lambda: ctx.stop.requested,
        )  # fmt: skip
