"""How localproc reads a swarm's node list (the Engine API's /nodes answer): which nodes may run
instances, where each node's own engine answers, and the names messages use. Pure: no engine."""

from __future__ import annotations

from typing import Any

from localproc.runtime.swarm import _display_names, _ready_and_active, engine_url


def node(
    node_id: str,
    hostname: str = "vm",
    address: str = "10.0.0.2",
    state: str = "ready",
    availability: str = "active",
    labels: dict[str, str] | None = None,
    manager_address: str | None = None,
) -> dict[str, Any]:
    described: dict[str, Any] = {
        "ID": node_id,
        "Description": {"Hostname": hostname},
        "Status": {"State": state, "Addr": address},
        "Spec": {"Availability": availability, "Labels": labels or {}},
    }
    if manager_address:
        described["ManagerStatus"] = {"Addr": manager_address}
    return described


def test_the_engine_is_found_from_the_label_else_port_2375_at_the_swarm_address() -> None:
    assert engine_url(node("a", address="10.1.2.3")) == "tcp://10.1.2.3:2375"
    labelled = node("b", labels={"localproc.engine": "tcp://192.0.2.7:2376"})
    assert engine_url(labelled) == "tcp://192.0.2.7:2376"


def test_a_manager_reporting_no_address_is_reached_at_its_manager_address() -> None:
    manager = node("m", address="0.0.0.0", manager_address="10.9.8.7:2377")
    assert engine_url(manager) == "tcp://10.9.8.7:2375"


def test_only_ready_and_active_nodes_run_instances() -> None:
    assert _ready_and_active(node("a"))
    assert not _ready_and_active(node("b", state="down"))
    assert not _ready_and_active(node("c", availability="drain"))
    assert not _ready_and_active(node("d", availability="pause"))


def test_nodes_sharing_a_hostname_are_told_apart_by_address() -> None:
    names = _display_names([
        node("a", "vm", "10.0.0.2"), node("b", "vm", "10.0.0.3"), node("c", "gpu-box", "10.0.0.4"),
    ])  # fmt: skip
    assert names == {"a": "vm@10.0.0.2", "b": "vm@10.0.0.3", "c": "gpu-box"}


def test_a_swarm_run_implements_every_method_of_the_engine_seam_and_places_first() -> None:
    import inspect

    from localproc.runtime.protocol import Engine, GangPlacement
    from localproc.runtime.swarm_run import SwarmRun

    for name, member in vars(Engine).items():
        if callable(member) and not name.startswith("_"):
            implementation = getattr(SwarmRun, name, None)
            assert implementation is not None, name
            wanted = list(inspect.signature(member).parameters)
            assert list(inspect.signature(implementation).parameters) == wanted, name
    assert issubclass(SwarmRun, GangPlacement)


def test_a_swarm_answers_whatever_execution_asks_of_an_engine_connection() -> None:
    import inspect

    from localproc.runtime.engine import DockerEngine
    from localproc.runtime.swarm import SwarmCluster

    # What execution/ (prepare, runner, leftovers) calls on the connected engine.
    asked = ["for_run", "image_config", "has_nvidia_runtime", "remote_machine_size",
             "leftover_runs", "runs_of", "remove_leftover"]  # fmt: skip
    for name in asked:
        ours, theirs = getattr(SwarmCluster, name, None), getattr(DockerEngine, name)
        assert ours is not None, name
        wanted = list(inspect.signature(theirs).parameters)
        assert list(inspect.signature(ours).parameters) == wanted, name
    # and the attributes execution reads
    assert SwarmCluster.files_shared is False and isinstance(SwarmCluster.endpoint, property)


def test_a_run_stopped_before_placement_has_empty_folders_and_nothing_to_bring_back() -> None:
    from pathlib import Path

    from localproc.runtime.swarm_run import SwarmRun

    class Folders:
        staging = Path("/jobs/x/staging")

        def config(self, host: str) -> Path:
            return Path(f"/jobs/x/config/{host}")

        def output(self, host: str) -> Path:
            return Path(f"/jobs/x/output/{host}")

        def outputs(self, host: str, output_name: str) -> Path:
            return Path(f"/jobs/x/outputs/{host}/{output_name}")

    run = SwarmRun(None, None, Folders())  # type: ignore[arg-type]  # never placed
    run.bring_back("algo-1")  # nothing ran: nothing to fetch, no error
    assert run.output_folder("algo-2", "out") == Path("/jobs/x/outputs/algo-2/out")
    assert run.job_output_folder("algo-1") == Path("/jobs/x/output/algo-1")
