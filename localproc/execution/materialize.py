"""Step 2, materialize: the job's network, and for each instance its staged inputs, its config
files and output folders, and its pipes, where the instance will see them."""

from __future__ import annotations

from pathlib import Path

from localproc.execution.context import RunContext


def materialize(ctx: RunContext) -> dict[tuple[str, str], Path]:
    """Returns the local FIFO of each (host, Pipe input)."""
    engine = ctx.engine
    engine.create_network()  # first: the containers need their addresses
    fifos: dict[tuple[str, str], Path] = {}
    for instance in ctx.plan.instances:
        engine.place_inputs(instance.host)
        engine.place_config(instance.host)
        for item in instance.inputs:
            if item.mode == "Pipe":
                fifos[(instance.host, item.name)] = engine.pipe(instance.host, item.name)
    return fifos
