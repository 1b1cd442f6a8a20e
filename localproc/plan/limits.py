"""Per-container CPU, memory and GPUs from the instance type and what this host offers."""

from __future__ import annotations

from localproc.catalog.instance_types import instance_type
from localproc.plan.model import HostCapacity, ResourceLimits

# Leave the host some memory of its own when instances are sized down to fit.
HOST_MEMORY_SHARE = 0.9


def resource_limits(
    type_name: str, count: int, host: HostCapacity, enabled: bool = True
) -> ResourceLimits:
    """The instance type's CPUs and memory per container; when the host cannot hold `count` of
    them, both are scaled down by the same factor so the instances keep their proportions."""
    spec = instance_type(type_name)
    notes: list[str] = []
    gpus = spec.gpus if host.has_nvidia_runtime else 0
    if spec.gpus and not host.has_nvidia_runtime:
        notes.append(
            f"{type_name} has {spec.gpus} GPU(s) ({spec.gpu_kind}), but this host has no NVIDIA "
            "container runtime: the job runs on the CPU."
        )
    if not enabled:
        return ResourceLimits(None, None, gpus, tuple(notes))
    factor = min(
        1.0,
        host.cpus / (count * spec.vcpus),
        host.memory_bytes * HOST_MEMORY_SHARE / (count * spec.memory_bytes),
    )
    cpus = round(spec.vcpus * factor, 2)
    memory = int(spec.memory_bytes * factor)
    if factor < 1.0:
        notes.append(
            f"this host ({host.cpus} CPUs, {host.memory_bytes / 2**30:.1f} GiB) cannot hold "
            f"{count} × {type_name} ({spec.vcpus} vCPUs, {spec.memory_gib:g} GiB): each container "
            f"gets {cpus:g} CPUs and {memory / 2**30:.2f} GiB instead ({factor:.0%})."
        )
    return ResourceLimits(cpus, memory, gpus, tuple(notes))
