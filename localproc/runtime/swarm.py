"""A Docker Swarm cluster as the place a job runs (`--cluster swarm`, DOCKER_HOST naming a
manager): Swarm gives the node inventory (which nodes are ready and active, their CPUs and
memory) and the job's overlay network; each instance is a container on its node's own engine.

Why containers on the node's engine rather than Swarm services: a job needs to put files into an
instance before it starts, stream a Pipe into it and fetch its outputs after it ended, and the
Engine API's archive and exec endpoints exist only per engine, never through the manager. So
the client talks to each node's engine directly; it finds it from the node label
`localproc.engine` (`docker node update --label-add localproc.engine=tcp://ADDR:PORT NODE`),
else at tcp://<the node's address in the swarm>:2375.
"""

from __future__ import annotations

import contextlib
import ipaddress
import time
from collections import Counter
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from localproc.errors import CannotRunHere
from localproc.plan import ImageConfig, JobPlan
from localproc.plan.naming import JOB_LABEL, RUN_LABEL
from localproc.plan.placement import NodeCapacity, reserved_on
from localproc.runtime.endpoint import Endpoint, shares_files
from localproc.runtime.engine import DockerEngine, LeftoverRun
from localproc.runtime.engine_errors import engine_errors
from localproc.runtime.engine_errors import first_line as _first_line
from localproc.runtime.protocol import EngineError, HostFolders

if TYPE_CHECKING:
    from localproc.runtime.swarm_run import SwarmRun

ENGINE_LABEL = "localproc.engine"
DEFAULT_ENGINE_PORT = 2375
# The overlay's addresses: instances get fixed ones in the lower half of its subnet; the upper
# half is the range Swarm allocates from by itself (each node's load-balancer endpoint takes an
# address of the network when it first joins, which would otherwise collide with an instance's).
NETWORK_REMOVAL_SECONDS = 15.0
SUBNET_ALLOCATION_SECONDS = 10.0


@dataclass(frozen=True)
class SwarmNode:
    """A ready, active node: its name, what it has, and its own engine."""

    name: str
    node_id: str
    engine_url: str
    capacity: NodeCapacity
    engine: DockerEngine


class SwarmCluster:
    """The manager and the nodes that can run instances. Create with `SwarmCluster.connect()`."""

    def __init__(self, manager: DockerEngine, nodes: Sequence[SwarmNode]) -> None:
        self.manager = manager
        self.nodes = list(nodes)

    @classmethod
    def connect(cls) -> SwarmCluster:
        manager = DockerEngine.connect()
        with _cannot_run("reading the swarm's nodes"):
            swarm = manager.client.info().get("Swarm") or {}
            if not swarm.get("ControlAvailable"):
                raise CannotRunHere(
                    "--cluster swarm: the Docker engine at DOCKER_HOST is not a Swarm manager "
                    f"(its swarm state: {swarm.get('LocalNodeState') or 'unknown'}). Point "
                    "DOCKER_HOST at a manager (where `docker node ls` works)."
                )
            listed = manager.client.api.nodes()
        usable = [n for n in listed if _ready_and_active(n)]
        if not usable:
            raise CannotRunHere("--cluster swarm: the swarm has no node that is ready and active.")
        names = _display_names(usable)
        own_id = swarm.get("NodeID")
        with ThreadPoolExecutor(max_workers=len(usable)) as pool:
            found = list(
                pool.map(lambda n: _connect_node(n, names[n["ID"]], manager, own_id), usable)
            )
        nodes = [n for n in found if isinstance(n, SwarmNode)]
        unreachable = [n for n in found if isinstance(n, str)]
        if unreachable:
            raise CannotRunHere(
                "--cluster swarm: the Docker engine of node(s) "
                + ", ".join(unreachable)
                + " does not answer. localproc talks to each node's engine to place files and "
                "fetch outputs: make it listen there, or say where it does with `docker node "
                f"update --label-add {ENGINE_LABEL}=tcp://ADDRESS:PORT NODE`."
            )
        return cls(manager, nodes)

    # As a DockerEngine says them: the swarm is reached at its manager, and no node shares
    # this machine's folders (each node's run copies files through its engine).
    files_shared = False

    @property
    def endpoint(self) -> Endpoint:
        return self.manager.endpoint

    def node(self, name: str) -> SwarmNode:
        return next(n for n in self.nodes if n.name == name)

    def for_run(self, plan: JobPlan, folders: HostFolders) -> SwarmRun:
        from localproc.runtime.swarm_run import SwarmRun

        return SwarmRun(self, plan, folders)

    def has_nvidia_runtime(self) -> bool:
        return False  # GPUs are not placed on a cluster (see plan.placement.cluster_limits)

    def remote_machine_size(self) -> tuple[int, int] | None:
        """None: a cluster is not one machine; its limits come from its nodes
        (`plan.placement.cluster_limits`), and inputs are staged on this machine first."""
        return None

    # -- capacity --------------------------------------------------------------------------------
    def capacities(self) -> list[NodeCapacity]:
        """What each node has, with what the localproc jobs running there reserve."""
        with ThreadPoolExecutor(max_workers=len(self.nodes)) as pool:
            reserved = [r for rs in pool.map(_reservations, self.nodes) for r in rs]
        return reserved_on(reserved, [n.capacity for n in self.nodes])

    # -- images ----------------------------------------------------------------------------------
    def image_config(self, uri: str, pull: bool = True) -> ImageConfig:
        """The image's ENTRYPOINT and CMD, once every node has it (each pulls it, with the ECR
        login, if it has not): CannotRunHere naming the nodes that cannot, and how to give it."""

        def provide(node: SwarmNode) -> ImageConfig | str:
            try:
                return node.engine.image_config(uri, pull=pull)
            except CannotRunHere as err:
                return str(err)

        with ThreadPoolExecutor(max_workers=len(self.nodes)) as pool:
            found = list(pool.map(provide, self.nodes))
        missing = [(n, r) for n, r in zip(self.nodes, found, strict=True) if isinstance(r, str)]
        if missing:
            first_reason = missing[0][1]
            raise CannotRunHere(
                f"Image '{uri}' is missing on swarm node(s) "
                + ", ".join(f"{n.name} ({n.engine_url})" for n, _ in missing)
                + " and could not be pulled there. Push it to a registry every node reaches, or "
                f"load it into each: `docker save {uri} | docker -H NODE load` (NODE: "
                + ", ".join(n.engine_url for n, _ in missing)
                + f"). First node's error: {first_reason}"
            )
        return next(r for r in found if isinstance(r, ImageConfig))

    # -- the job's network -----------------------------------------------------------------------
    def create_overlay(
        self,
        name: str,
        labels: Mapping[str, str],
        hosts: Sequence[str],
        isolated: bool,
    ) -> dict[str, str]:
        """The run's attachable overlay network, internal when isolated, with a fixed address
        per host (returned): every instance gets all of them in its /etc/hosts, so each resolves
        every other for the whole job, also after a peer's container has exited."""
        from docker.types import IPAMConfig, IPAMPool

        client = self.manager.client

        def create(ipam: IPAMConfig | None) -> Any:
            return client.networks.create(
                name, driver="overlay", attachable=True, internal=isolated, labels=dict(labels),
                ipam=ipam,
            )  # fmt: skip

        with engine_errors(f"creating overlay network {name}"):
            probe = create(None)  # the swarm picks a free subnet from its own pools
            try:
                config = _allocated_subnet(probe)
            finally:
                probe.remove()
            subnet = ipaddress.ip_network(config["Subnet"])
            lower, upper = list(subnet.subnets(prefixlen_diff=1))
            gateway = config.get("Gateway") or str(next(subnet.hosts()))
            free = (str(a) for a in lower.hosts() if str(a) != gateway)
            addresses = {host: next(free) for host in hosts}
            pool = IPAMPool(subnet=str(subnet), iprange=str(upper), gateway=gateway)
            create(IPAMConfig(driver="default", pool_configs=[pool]))
        return addresses

    def remove_networks(self, run_id: str) -> None:
        """The run's overlay network, from the manager (workers cannot remove it). Swarm lets go
        of a network a moment after its last container is gone: retried meanwhile."""
        import docker.errors

        deadline = time.monotonic() + NETWORK_REMOVAL_SECONDS
        with engine_errors(f"removing the overlay network of run {run_id}"):
            for network in self.manager.client.networks.list(
                filters={"label": f"{RUN_LABEL}={run_id}"}
            ):
                while True:
                    try:
                        network.remove()
                        break
                    except docker.errors.NotFound:
                        break
                    except docker.errors.APIError:
                        if time.monotonic() > deadline:
                            raise
                        time.sleep(0.3)

    # -- leftovers (gc) --------------------------------------------------------------------------
    def leftover_runs(self) -> list[LeftoverRun]:
        """Every run's containers (on any node) and networks, merged by run."""
        runs: dict[tuple[str, str | None], LeftoverRun] = {}
        engines = [self.manager] + [n.engine for n in self.nodes if n.engine is not self.manager]
        for engine in engines:
            for run in engine.leftover_runs():
                merged = runs.setdefault(
                    (run.job_name, run.run_id), LeftoverRun(run.job_name, run.run_id)
                )
                merged.runners |= run.runners
                merged.containers += run.containers
                merged.networks += [n for n in run.networks if n not in merged.networks]
        return list(runs.values())

    def runs_of(self, job_name: str, runner: str) -> list[LeftoverRun]:
        return [r for r in self.leftover_runs() if r.job_name == job_name and runner in r.runners]

    def remove_leftover(self, run: LeftoverRun) -> None:
        if run.run_id is None:
            return  # runs before run ids existed never ran on a cluster
        self.remove_run_resources(run.run_id)

    def remove_run_resources(self, run_id: str) -> None:
        """Every node's containers (and volumes) of the run, then its overlay network."""
        with ThreadPoolExecutor(max_workers=len(self.nodes)) as pool:
            list(pool.map(lambda n: n.engine.remove_run_resources(run_id), self.nodes))
        self.remove_networks(run_id)


def _allocated_subnet(network: Any) -> dict[str, str]:
    """The IPv4 pool the manager gave `network`: it answers the create before it has always
    allocated one, so it is read again for a few seconds."""
    deadline = time.monotonic() + SUBNET_ALLOCATION_SECONDS
    while True:
        network.reload()
        config = (network.attrs.get("IPAM") or {}).get("Config") or []
        v4 = [
            c for c in config if c.get("Subnet") and ipaddress.ip_network(c["Subnet"]).version == 4
        ]
        if v4:
            return v4[0]
        if time.monotonic() > deadline:
            raise EngineError(f"Docker engine: the swarm gave network {network.name} no subnet")
        time.sleep(0.1)


def _ready_and_active(node: Mapping[str, Any]) -> bool:
    status = (node.get("Status") or {}).get("State")
    availability = (node.get("Spec") or {}).get("Availability")
    return status == "ready" and availability == "active"


def _display_names(nodes: Sequence[Mapping[str, Any]]) -> dict[str, str]:
    """node id → its hostname, or hostname@address where several nodes share a hostname."""
    hostnames = {
        n["ID"]: (n.get("Description") or {}).get("Hostname") or n["ID"][:12] for n in nodes
    }
    shared = Counter(hostnames.values())
    return {
        node_id: name if shared[name] == 1 else f"{name}@{_address(n)}"
        for n in nodes
        for node_id, name in [(n["ID"], hostnames[n["ID"]])]
    }


def _address(node: Mapping[str, Any]) -> str:
    address = (node.get("Status") or {}).get("Addr") or ""
    if address in ("", "0.0.0.0"):  # a manager may report this; its manager address says more
        address = ((node.get("ManagerStatus") or {}).get("Addr") or "").rsplit(":", 1)[0]
    return address


def engine_url(node: Mapping[str, Any]) -> str:
    """Where the node's own engine answers: its `localproc.engine` label, else port 2375 at its
    swarm address."""
    labels = (node.get("Spec") or {}).get("Labels") or {}
    return labels.get(ENGINE_LABEL) or f"tcp://{_address(node)}:{DEFAULT_ENGINE_PORT}"


def _connect_node(
    node: Mapping[str, Any], name: str, manager: DockerEngine, own_id: str | None
) -> SwarmNode | str:
    """The node with its engine connected; "NAME (URL)" when that engine does not answer."""
    import docker

    resources = (node.get("Description") or {}).get("Resources") or {}
    capacity = NodeCapacity(
        name, resources.get("NanoCPUs", 0) / 1e9, int(resources.get("MemoryBytes", 0))
    )
    url = engine_url(node)
    labels = (node.get("Spec") or {}).get("Labels") or {}
    if node["ID"] == own_id and ENGINE_LABEL not in labels:
        return SwarmNode(name, node["ID"], url, capacity, manager)  # already connected
    endpoint = Endpoint(url, f"swarm node {name}")
    try:
        # DOCKER_TLS_VERIFY / DOCKER_CERT_PATH apply to the nodes as to the manager
        options = {**docker.utils.kwargs_from_env(), "base_url": url}
        if endpoint.over_ssh:  # the system's ssh, as for DOCKER_HOST=ssh://
            from localproc.runtime.ssh_tunnel import SshTunnel

            options = {"base_url": SshTunnel(url).url, "tls": False}
        client = docker.DockerClient(version="auto", timeout=120, **options)
        client.ping()
    except (docker.errors.DockerException, OSError, ValueError):
        return f"{name} ({url})"
    # A node's engine is another machine's: files go through the Engine API
    return SwarmNode(
        name, node["ID"], url, capacity, DockerEngine(client, endpoint, shares_files(endpoint))
    )


def _reservations(node: SwarmNode) -> list[tuple[str, float, int]]:
    """(node, CPUs, memory) of each running localproc container on the node."""
    import docker.errors

    found = []
    with engine_errors(f"listing the running jobs on node {node.name}"):
        client = node.engine.client
        for container in client.containers.list(filters={"label": JOB_LABEL}, sparse=True):
            with contextlib.suppress(docker.errors.NotFound):  # ended meanwhile
                host_config = client.api.inspect_container(container.id).get("HostConfig") or {}
                cpus = (host_config.get("NanoCpus") or 0) / 1e9
                found.append((node.name, cpus, int(host_config.get("Memory") or 0)))
    return found


@contextlib.contextmanager
def _cannot_run(action: str) -> Any:
    import docker.errors

    try:
        yield
    except (docker.errors.DockerException, OSError, EngineError) as err:
        raise CannotRunHere(f"--cluster swarm: {action} failed: {_first_line(err)}") from err
