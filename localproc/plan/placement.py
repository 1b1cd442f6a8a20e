"""Gang placement of a job's instances over a cluster's nodes (`--cluster swarm`), pure.

Each instance reserves its container's CPUs and memory (the instance type's, scaled as on one
host when the cluster could never hold them all). All instances start together, as on SageMaker:
a job is placed only when every instance fits at once, on what the nodes have left after the
reservations of the localproc jobs already running there; until then it waits. Instances are
spread: each goes to the node holding the fewest of the job's instances so far (SageMaker gives
every instance a machine of its own), most room left first.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from localproc.catalog.instance_types import instance_type
from localproc.plan.limits import HOST_MEMORY_SHARE
from localproc.plan.model import ResourceLimits

GIB = 2**30


@dataclass(frozen=True)
class NodeCapacity:
    """One node that may run instances: what it has, and what running localproc jobs reserve."""

    name: str
    cpus: float
    memory_bytes: int
    reserved_cpus: float = 0.0
    reserved_memory_bytes: int = 0

    def slots(self, cpus: float | None, memory_bytes: int | None, count: int) -> int:
        """How many containers of this size fit in what is left (at most `count`). A container
        without limits reserves nothing, so any number fits."""
        fits = [count]
        if cpus:
            fits.append(_whole((self.cpus - self.reserved_cpus) / cpus))
        if memory_bytes:
            usable = self.memory_bytes * HOST_MEMORY_SHARE - self.reserved_memory_bytes
            fits.append(_whole(usable / memory_bytes))
        return max(0, min(fits))


def _whole(ratio: float) -> int:
    # 2.9999999 of a float division is 3 whole containers
    return math.floor(ratio + 1e-9)


def cluster_limits(
    type_name: str, count: int, nodes: Sequence[NodeCapacity], enabled: bool = True
) -> ResourceLimits:
    """The instance type's CPUs and memory per container; when the cluster's nodes (empty of
    other jobs) could never hold `count` of them at once, both are scaled down by the largest
    factor that lets them, so the instances keep their proportions (as `resource_limits` does
    on one host, with the same one-line notice)."""
    spec = instance_type(type_name)
    notes: list[str] = []
    if spec.gpus:
        notes.append(
            f"{type_name} has {spec.gpus} GPU(s) ({spec.gpu_kind}), but localproc does not place "
            "GPUs on a Swarm cluster: the job runs on the CPU."
        )
    if not enabled:
        return ResourceLimits(None, None, 0, tuple(notes))
    empty = [NodeCapacity(n.name, n.cpus, n.memory_bytes) for n in nodes]
    factor = _largest_fitting_factor(spec.vcpus, spec.memory_bytes, count, empty)
    cpus, memory = _scaled(spec.vcpus, spec.memory_bytes, factor)
    if factor < 1.0:
        total_cpus = sum(n.cpus for n in nodes)
        total_memory = sum(n.memory_bytes for n in nodes)
        notes.append(
            f"this cluster ({len(nodes)} nodes, {total_cpus:g} CPUs, {total_memory / GIB:.1f} "
            f"GiB) cannot hold {count} × {type_name} ({spec.vcpus} vCPUs, {spec.memory_gib:g} "
            f"GiB): each container gets {cpus:g} CPUs and {memory / GIB:.2f} GiB instead "
            f"({factor:.0%})."
        )
    return ResourceLimits(cpus, memory, 0, tuple(notes))


def _scaled(vcpus: float, memory_bytes: int, factor: float) -> tuple[float, int]:
    # Rounded down, never up: a container rounded up could no longer fit where it was counted.
    return math.floor(vcpus * factor * 100) / 100, int(memory_bytes * factor)


def _largest_fitting_factor(
    vcpus: float, memory_bytes: int, count: int, nodes: Sequence[NodeCapacity]
) -> float:
    """The largest factor ≤ 1 at which `count` scaled containers fit on `nodes` together. The
    number that fits only changes where some node's room for k containers runs out, so those
    factors (and 1) are the only candidates."""
    candidates = {1.0}
    for node in nodes:
        for k in range(1, count + 1):
            memory_room = node.memory_bytes * HOST_MEMORY_SHARE / (k * memory_bytes)
            room = min(node.cpus / (k * vcpus), memory_room)
            candidates.add(min(1.0, room))
    for factor in sorted(candidates, reverse=True):
        cpus, memory = _scaled(vcpus, memory_bytes, factor)
        if cpus > 0 and memory > 0 and sum(n.slots(cpus, memory, count) for n in nodes) >= count:
            return factor
    # No factor fits (nodes far too small to hold even a hundredth of a CPU each)
    return min(candidates)


def place(
    hosts: Sequence[str], limits: ResourceLimits, nodes: Sequence[NodeCapacity]
) -> dict[str, str] | None:
    """Every host's node (host → node name), or None when they do not all fit at once now."""
    room = {n.name: n.slots(limits.cpus, limits.memory_bytes, len(hosts)) for n in nodes}
    if sum(room.values()) < len(hosts):
        return None
    held = dict.fromkeys(room, 0)
    placed: dict[str, str] = {}
    for host in hosts:
        node = min((n for n in room if room[n] > 0), key=lambda n: (held[n], -room[n], n))
        placed[host] = node
        held[node] += 1
        room[node] -= 1
    return placed


def waiting_message(count: int, limits: ResourceLimits, nodes: Sequence[NodeCapacity]) -> str:
    """The one line a run prints while it waits for room for all its instances."""
    fit_now = sum(n.slots(limits.cpus, limits.memory_bytes, count) for n in nodes)
    busy = [n for n in nodes if n.reserved_cpus or n.reserved_memory_bytes]
    cpus = sum(n.reserved_cpus for n in busy)
    memory = sum(n.reserved_memory_bytes for n in busy)
    size = (
        f"{limits.cpus:g} CPUs and {(limits.memory_bytes or 0) / GIB:.2f} GiB each"
        if limits.cpus
        else "no reservation"
    )
    return (
        f"waiting for the cluster to place all {count} instances ({size}): room for "
        f"{min(fit_now, count)} now; running localproc jobs reserve {cpus:g} CPUs and "
        f"{memory / GIB:.1f} GiB on {len(busy)} of {len(nodes)} node(s)"
    )


def reserved_on(
    reservations: Sequence[tuple[str, float, int]], nodes: Sequence[NodeCapacity]
) -> list[NodeCapacity]:
    """`nodes` with the reservations (node name, CPUs, memory bytes) of running containers."""
    cpus: dict[str, float] = {}
    memory: dict[str, int] = {}
    for name, c, m in reservations:
        cpus[name] = cpus.get(name, 0.0) + c
        memory[name] = memory.get(name, 0) + m
    return [
        NodeCapacity(n.name, n.cpus, n.memory_bytes, cpus.get(n.name, 0.0), memory.get(n.name, 0))
        for n in nodes
    ]


def by_node(placement: Mapping[str, str]) -> dict[str, list[str]]:
    """node name → its hosts, in host order."""
    nodes: dict[str, list[str]] = {}
    for host, node in placement.items():
        nodes.setdefault(node, []).append(host)
    return nodes
