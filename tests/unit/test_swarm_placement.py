"""Gang placement over a cluster's nodes (`--cluster swarm`): pure logic, no engine."""

from __future__ import annotations

from localproc.catalog.instance_types import instance_type
from localproc.plan.limits import resource_limits
from localproc.plan.model import HostCapacity, ResourceLimits
from localproc.plan.placement import (
    NodeCapacity,
    cluster_limits,
    place,
    reserved_on,
    waiting_message,
)

GIB = 2**30
HOSTS3 = ("algo-1", "algo-2", "algo-3")


def nodes(count: int, cpus: float = 4, memory_gib: float = 16) -> list[NodeCapacity]:
    return [NodeCapacity(f"node-{i}", cpus, int(memory_gib * GIB)) for i in range(1, count + 1)]


def test_instances_that_fit_keep_their_instance_types_size() -> None:
    limits = cluster_limits("ml.t3.medium", 3, nodes(3))  # 2 vCPUs, 4 GiB
    assert limits.cpus == 2 and limits.memory_bytes == instance_type("ml.t3.medium").memory_bytes
    assert limits.notes == ()


def test_a_cluster_that_could_never_hold_them_all_scales_them_with_a_notice() -> None:
    # 3 nodes of 2 CPUs hold 3 × 2 CPUs only: 4 × ml.m5.large (2 vCPUs) cannot fit at once.
    limits = cluster_limits("ml.m5.large", 4, nodes(3, cpus=2, memory_gib=64))
    assert limits.cpus is not None and limits.memory_bytes is not None
    assert limits.cpus == 1.0  # two per node on two of them
    assert place(("algo-1", "algo-2", "algo-3", "algo-4"), limits, nodes(3, 2, 64)) is not None
    (note,) = limits.notes
    assert note.startswith("this cluster (3 nodes, 6 CPUs, 192.0 GiB) cannot hold 4 × ml.m5.large")
    assert "each container gets 1 CPUs" in note and "(50%)" in note


def test_one_node_scales_like_one_host() -> None:
    host = HostCapacity(cpus=4, memory_bytes=8 * GIB, free_disk_bytes=10**12)
    local = resource_limits("ml.m5.xlarge", 3, host)
    cluster = cluster_limits("ml.m5.xlarge", 3, [NodeCapacity("solo", 4, 8 * GIB)])
    assert cluster.memory_bytes == local.memory_bytes
    assert cluster.cpus is not None and local.cpus is not None
    assert abs(cluster.cpus - local.cpus) < 0.011


def test_instances_are_spread_one_per_node_first() -> None:
    limits = ResourceLimits(1.0, 1 * GIB, 0)
    placed = place(HOSTS3, limits, nodes(3))
    assert placed is not None and sorted(placed.values()) == ["node-1", "node-2", "node-3"]
    five = place(tuple(f"algo-{i}" for i in range(1, 6)), limits, nodes(3))
    assert five is not None
    counts = sorted(list(five.values()).count(n) for n in ("node-1", "node-2", "node-3"))
    assert counts == [1, 2, 2]


def test_no_placement_until_all_fit_at_once() -> None:
    limits = ResourceLimits(2.0, 2 * GIB, 0)
    busy = reserved_on([("node-1", 4.0, 2 * GIB), ("node-2", 3.0, GIB)], nodes(3))
    # node-1 full, node-2 has 1 CPU left, node-3 holds 2: three instances do not fit yet.
    assert place(HOSTS3, limits, busy) is None
    freed = reserved_on([("node-1", 2.0, 2 * GIB)], nodes(3))
    placed = place(HOSTS3, limits, freed)
    assert placed is not None and set(placed.values()) == {"node-1", "node-2", "node-3"}


def test_memory_keeps_the_hosts_share_for_the_node() -> None:
    # 10 GiB × 0.9 = 9 GiB usable: two containers of 4 GiB fit, three do not.
    node = [NodeCapacity("n", 64, 10 * GIB)]
    assert place(("algo-1", "algo-2"), ResourceLimits(1, 4 * GIB, 0), node) is not None
    assert place(HOSTS3, ResourceLimits(1, 4 * GIB, 0), node) is None


def test_without_limits_nothing_is_reserved_and_all_fit() -> None:
    unlimited = ResourceLimits(None, None, 0)
    full = reserved_on([("node-1", 4.0, 16 * GIB)], nodes(1))
    assert place(HOSTS3, unlimited, full) == dict.fromkeys(HOSTS3, "node-1")
    assert cluster_limits("ml.m5.24xlarge", 3, nodes(1), enabled=False).cpus is None


def test_the_waiting_line_says_what_holds_the_job_back() -> None:
    limits = ResourceLimits(3.0, 2 * GIB, 0)  # one per node: node-1 is taken
    busy = reserved_on([("node-1", 4.0, 2 * GIB)], nodes(3))
    line = waiting_message(3, limits, busy)
    assert line.startswith("waiting for the cluster to place all 3 instances")
    assert "room for 2 now" in line and "reserve 4 CPUs" in line and "1 of 3 node(s)" in line


def test_gpu_types_run_on_the_cpu_with_a_notice() -> None:
    limits = cluster_limits("ml.g4dn.xlarge", 1, nodes(1, cpus=8, memory_gib=64))
    assert limits.gpus == 0 and "GPU" in limits.notes[0]
