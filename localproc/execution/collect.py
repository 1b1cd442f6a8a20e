"""Step 5, collect: the instances' output folders brought back, each instance's peak memory and
CPU time (with sizing advice, into the record), and the ExitMessage from /opt/ml/output/message."""

from __future__ import annotations

import os
import stat
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from localproc.catalog.instance_types import instance_type, smallest_fitting
from localproc.execution.context import RunContext
from localproc.execution.outcome import InstanceResult
from localproc.records.layout import EXIT_MESSAGE_FILE
from localproc.records.record import InstanceUsage

EXIT_MESSAGE_LIMIT = 1024


def bring_back(ctx: RunContext) -> None:
    """Every instance at once: on an engine without a shared filesystem each one is archives
    to fetch (nothing to do on the local engine)."""
    hosts = list(ctx.plan.hosts)
    with ThreadPoolExecutor(max_workers=max(1, min(len(hosts), 8))) as pool:
        list(pool.map(ctx.engine.bring_back, hosts))


def record_usage(ctx: RunContext, results: list[InstanceResult]) -> list[str]:
    """Each instance's peak memory and CPU time, and the smallest instance type of the same
    family that would have held that peak: local runs are how people size instances."""
    lines: list[str] = []
    usage: dict[str, InstanceUsage] = {}
    family = instance_type(ctx.job.instance_type).family
    for result in results:
        if result.peak_memory_bytes is None:
            lines.append(f"{result.host}: ended before its memory could be sampled")
            continue
        usage[result.host] = InstanceUsage(result.peak_memory_bytes, result.cpu_seconds)
        fitting = smallest_fitting(family, result.peak_memory_bytes)
        advice = (
            f"smallest {family} that holds it: {fitting.name}"
            if fitting
            else f"no {family} type holds it"
        )
        lines.append(
            f"{result.host}: peak memory {result.peak_memory_bytes / 2**20:.0f} MiB, "
            f"CPU {result.cpu_seconds or 0:.1f} s; {advice}"
        )
    if usage:
        ctx.record.usage(usage, lines)
    return lines


def exit_message(ctx: RunContext) -> str | None:
    parts = []
    for host in ctx.plan.hosts:
        text = _read_no_follow(ctx.engine.job_output_folder(host) / EXIT_MESSAGE_FILE)
        if text:
            parts.append(text)
    return "".join(parts)[:EXIT_MESSAGE_LIMIT] or None


def _read_no_follow(path: Path) -> str | None:
    """Read a file the container wrote without following a symlink it may have planted there."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except OSError:
        return None
    with os.fdopen(fd, "rb") as handle:
        if not stat.S_ISREG(os.fstat(handle.fileno()).st_mode):
            return None
        return handle.read(EXIT_MESSAGE_LIMIT * 4).decode("utf-8", errors="replace")
