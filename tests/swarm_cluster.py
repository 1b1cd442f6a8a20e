"""Pytest plugin: a real 3-node Docker Swarm on this machine, for `--cluster swarm`.

Three engine nodes (tests/engine_nodes.py: each dockerd in its own network and mount namespace,
on one bridge, reached over TCP only, sharing no folder with the client) form one swarm: `swarm
init --advertise-addr` on the first, `swarm join --advertise-addr` on the others. Overlay
networks (vxlan) work across them. The example image is loaded into every node. Everything is
torn down at the end of the session, also when a test or the cluster's own start fails.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from engine_nodes import (
    EngineNode,
    engine_nodes,
    free_subnet,
    node_leftovers,
    nodes_unavailable,
    session_names,
)

# Overlay subnets come from here: apart from the nodes' bridge and their own networks' pools.
SWARM_ADDRESS_POOL = "10.240.0.0/16"


@dataclass
class SwarmTestCluster:
    nodes: list[EngineNode]

    @property
    def manager(self) -> EngineNode:
        return self.nodes[0]

    @property
    def env(self) -> dict[str, str]:
        """The environment of a client that runs jobs on the swarm."""
        return {"DOCKER_HOST": self.manager.docker_host, "LOCALPROC_CLUSTER": "swarm"}

    def node_of_address(self, address: str) -> EngineNode:
        return next(n for n in self.nodes if n.address == address)

    def leftovers(self, label: str = "localproc.job") -> dict[str, dict[str, list[str]]]:
        """Per node, what carries `label` (containers, networks, volumes): empty when clean."""
        found = {n.name: node_leftovers(n, label=label) for n in self.nodes}
        return {name: kinds for name, kinds in found.items() if any(kinds.values())}


def form_swarm(nodes: list[EngineNode]) -> None:
    manager, workers = nodes[0], nodes[1:]
    manager.docker(
        "swarm", "init", "--advertise-addr", manager.address,
        "--default-addr-pool", SWARM_ADDRESS_POOL,
    )  # fmt: skip
    token = manager.docker("swarm", "join-token", "-q", "worker").stdout.strip()
    for worker in workers:
        worker.docker(
            "swarm", "join", "--advertise-addr", worker.address, "--token", token,
            f"{manager.address}:2377",
        )  # fmt: skip


@pytest.fixture(scope="session")
def swarm_cluster(docker_client: Any) -> Iterator[SwarmTestCluster]:
    from docker_engine import EXAMPLE_IMAGE

    reason = nodes_unavailable()
    if reason:
        pytest.fail(reason)
    # Names and a subnet of this session's own: other sessions (worktrees, benchmarks) make
    # nodes on this machine at the same time.
    prefix, bridge = session_names("swarm")
    with engine_nodes(3, prefix, bridge, free_subnet(), images=(EXAMPLE_IMAGE,)) as nodes:
        form_swarm(nodes)
        yield SwarmTestCluster(nodes)
