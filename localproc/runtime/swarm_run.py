"""One run over a Swarm cluster as an `Engine` (runtime/protocol.py): the instances are placed
on nodes together (`place_instances`, before anything of the run exists), the job's overlay
network is made on the manager, and every per-instance call goes to the run on that instance's
node: whatever engine backend that node's engine needs (`DockerEngine.for_run`), given only the
instances placed there. The node runs join the overlay instead of making a network of their own.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from pathlib import Path
from typing import Any

from localproc.plan import JobPlan
from localproc.plan.placement import by_node, place, waiting_message
from localproc.runtime.protocol import (
    Engine,
    HostFolders,
    InstanceExit,
    LogFollower,
    LogSinkLike,
    UsageSample,
)
from localproc.runtime.swarm import SwarmCluster

PLACEMENT_POLL_SECONDS = 2.0


class SwarmRun:
    """Executes `plan` over `cluster`, with the job's local folders where `folders` says."""

    def __init__(self, cluster: SwarmCluster, plan: JobPlan, folders: HostFolders) -> None:
        self._cluster = cluster
        self._plan = plan
        self._folders = folders
        self._node_of: dict[str, str] = {}  # algo-i → node name
        self._runs: dict[str, Engine] = {}  # node name → the run of its instances

    @property
    def placement(self) -> dict[str, str]:
        return dict(self._node_of)

    def place_instances(self, notify: Callable[[str], None], cancelled: Callable[[], bool]) -> bool:
        """Wait until every instance fits at once (saying so once), then place them. False when
        cancelled first (nothing was made)."""
        plan, said = self._plan, False
        while True:
            capacities = self._cluster.capacities()
            placed = place(plan.hosts, plan.limits, capacities)
            if placed is not None:
                break
            if not said:
                notify(waiting_message(len(plan.hosts), plan.limits, capacities))
                said = True
            deadline = time.monotonic() + PLACEMENT_POLL_SECONDS
            while time.monotonic() < deadline:
                if cancelled():
                    return False
                time.sleep(0.1)
        self._node_of = placed
        for node_name, hosts in by_node(placed).items():
            node = self._cluster.node(node_name)
            sub_plan = replace(plan, instances=tuple(plan.instance(h) for h in hosts))
            self._runs[node_name] = node.engine.for_run(sub_plan, self._folders)
        notify(
            "placed on the swarm: "
            + ", ".join(f"{host} on {node}" for host, node in placed.items())
        )
        return True

    def _on(self, host: str) -> Engine:
        return self._runs[self._node_of[host]]

    def _each(self, call: Callable[[Engine], Any]) -> None:
        runs = list(self._runs.values())
        with ThreadPoolExecutor(max_workers=max(1, len(runs))) as pool:
            list(pool.map(call, runs))

    # -- placing -------------------------------------------------------------------------------
    def create_network(self) -> None:
        plan = self._plan
        if not plan.network.own:
            return  # a lone instance uses its node's default bridge
        peers = self._cluster.create_overlay(
            plan.network.name, plan.labels, list(plan.hosts), plan.network.isolated
        )
        for run in self._runs.values():
            run.join_network(peers)  # type: ignore[attr-defined]

    def input_folder(self, host: str, input_name: str) -> Path:
        return self._on(host).input_folder(host, input_name)

    def place_inputs(self, host: str) -> None:
        self._on(host).place_inputs(host)

    def pipe(self, host: str, input_name: str) -> Path:
        return self._on(host).pipe(host, input_name)

    def place_config(self, host: str) -> None:
        self._on(host).place_config(host)

    # A run stopped while it waited for room placed nothing: its instances' folders are the
    # job's own (empty), and there is nothing to bring back.
    def output_folder(self, host: str, output_name: str) -> Path:
        if host not in self._node_of:
            return self._folders.outputs(host, output_name)
        return self._on(host).output_folder(host, output_name)

    def job_output_folder(self, host: str) -> Path:
        if host not in self._node_of:
            return self._folders.output(host)
        return self._on(host).job_output_folder(host)

    # -- containers ----------------------------------------------------------------------------
    def create_instances(self, secrets: Mapping[str, str]) -> None:
        self._each(lambda run: run.create_instances(secrets))

    def start_instances(self) -> None:
        self._each(lambda run: run.start_instances())

    def wait(self, host: str) -> InstanceExit:
        return self._on(host).wait(host)

    def stop(self, host: str, grace_seconds: float) -> None:
        self._on(host).stop(host, grace_seconds)

    def kill(self, host: str) -> None:
        self._on(host).kill(host)

    def follow_log(self, host: str, sink: LogSinkLike) -> LogFollower:
        return self._on(host).follow_log(host, sink)

    def stats(self, host: str) -> Iterator[UsageSample]:
        return self._on(host).stats(host)

    # -- after the run -------------------------------------------------------------------------
    def bring_back(self, host: str) -> None:
        if host in self._node_of:
            self._on(host).bring_back(host)

    def remove_all(self) -> None:
        """Every node's objects of the run, then the overlay network (on the manager)."""
        self._each(lambda run: run.remove_all())
        self._cluster.remove_networks(self._plan.run_id)

    def discard_inputs(self) -> None:
        self._each(lambda run: run.discard_inputs())
