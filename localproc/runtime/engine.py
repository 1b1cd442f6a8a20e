"""One Docker engine connection: images, the job's network, containers, and cleanup by label."""

from __future__ import annotations

import contextlib
import ipaddress
import os
import secrets
from collections.abc import Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from localproc.errors import CannotRunHere
from localproc.plan import ImageConfig
from localproc.runtime import JOB_LABEL, RUN_LABEL, RUNNER_LABEL, firewall

if TYPE_CHECKING:  # the SDK is imported lazily so `localproc --help` stays instant
    import docker
    from docker.models.containers import Container


class EngineError(Exception):
    """The Docker engine refused or failed an operation on a started job."""


@contextlib.contextmanager
def engine_errors(action: str) -> Iterator[None]:
    """Turn the SDK's errors into EngineError, so callers need not import docker."""
    import docker.errors

    try:
        yield
    except (docker.errors.DockerException, OSError) as err:
        raise EngineError(f"Docker engine: {action} failed: {_first_line(err)}") from err


@dataclass(frozen=True)
class Mount:
    host_path: str
    container_path: str
    read_only: bool = False


@dataclass(frozen=True)
class ContainerSpec:
    name: str
    image: str
    entrypoint: Sequence[str]
    command: Sequence[str]
    environment: Mapping[str, str]
    hostname: str
    network: str
    mounts: Sequence[Mount]
    labels: Mapping[str, str] = field(default_factory=dict)
    cpus: float | None = None  # None: no limit
    memory_bytes: int | None = None
    gpus: int = 0
    isolated: bool = False
    pids_limit: int | None = None
    ipv4_address: str | None = None  # fixed on the job's own network
    peers: Mapping[str, str] = field(default_factory=dict)  # every algo-i → its address


DEFAULT_NETWORK = "bridge"  # Docker's own: no network to create or remove

# Hardening (README, "Container hardening"): Docker's default set minus what no processing job
# needs. Kept: CHOWN, DAC_OVERRIDE, FOWNER, FSETID, KILL, SETGID, SETUID.
DROPPED_CAPABILITIES = (
    "MKNOD", "NET_RAW", "SYS_CHROOT", "AUDIT_WRITE", "SETPCAP", "SETFCAP", "NET_BIND_SERVICE",
)  # fmt: skip
MIN_PIDS = 4096
PIDS_PER_VCPU = 256


def pids_limit(vcpus: int) -> int:
    """Processes and threads one container may have: a fork bomb stops there, while a JVM or a
    thread pool per core (Spark, Dask, PyTorch data loaders) stays far below it."""
    return max(MIN_PIDS, PIDS_PER_VCPU * vcpus)


def new_run_id() -> str:
    """A run's own id (12 hex digits): in the names and labels of every engine object it makes,
    so no other run, whatever its state dir or job name, can collide with or remove them."""
    return secrets.token_hex(6)


def container_name(job_name: str, run_id: str, host: str) -> str:
    return f"localproc-{job_name}-{run_id}-{host}"


def network_name(job_name: str, run_id: str) -> str:
    return f"localproc-{job_name}-{run_id}"


def job_network(job_name: str, instance_count: int, isolated: bool, run_id: str = "") -> str:
    """The network a job's containers join. Instances need a network of the job's own to find
    each other, and isolation needs one to shut; a lone instance with outbound access does fine
    on Docker's default bridge, which saves creating and removing a network (about 0.3 s).
    `plan` asks without a run id: only whether a network of the job's own is needed."""
    if instance_count == 1 and not isolated:
        return DEFAULT_NETWORK
    return network_name(job_name, run_id)


@dataclass
class LeftoverRun:
    """The engine objects of one run (or, for objects made before runs had ids, of one job)."""

    job_name: str
    run_id: str | None
    runners: set[str] = field(default_factory=set)  # runner labels
    containers: list[str] = field(default_factory=list)  # ids
    networks: list[str] = field(default_factory=list)


class DockerEngine:
    """A connected engine. Create with `DockerEngine.connect()`."""

    def __init__(self, client: docker.DockerClient) -> None:
        self.client = client

    @classmethod
    def connect(cls) -> DockerEngine:
        import docker
        import docker.errors

        where = os.environ.get("DOCKER_HOST", "the default socket")
        try:
            client = docker.from_env(version="auto", timeout=120)
            client.ping()
        except (docker.errors.DockerException, OSError) as err:
            raise CannotRunHere(
                f"No Docker engine answers at {where} ({_first_line(err)}). Start Docker, or run "
                "scripts/setup.sh, which installs and starts one on Debian."
            ) from err
        return cls(client)

    # -- images --------------------------------------------------------------------------------
    def image_config(self, uri: str, pull: bool = True) -> ImageConfig:
        """The image's ENTRYPOINT and CMD; pulls the image first when it is not on this host."""
        import docker.errors

        try:
            image = self.client.images.get(uri)
        except docker.errors.ImageNotFound:
            if not pull:
                raise CannotRunHere(f"Image '{uri}' is not on this host.") from None
            image = self._pull(uri)
        config = image.attrs.get("Config") or {}
        entrypoint = config.get("Entrypoint")
        cmd = config.get("Cmd")
        return ImageConfig(
            uri=uri,
            entrypoint=tuple(entrypoint) if entrypoint else None,
            cmd=tuple(cmd) if cmd else None,
        )

    def _pull(self, uri: str) -> Any:
        import docker.errors

        from localproc.runtime.registry_auth import auth_config_for

        try:
            return self.client.images.pull(uri, auth_config=auth_config_for(uri))
        except (docker.errors.DockerException, OSError) as err:
            raise CannotRunHere(
                f"Image '{uri}' is not on this host and could not be pulled "
                f"({_first_line(err)}). Pull or build it first (`docker pull {uri}`; "
                "for the bundled example image: scripts/build-example-image.sh)."
            ) from err

    # -- networks and containers ---------------------------------------------------------------
    def create_network(
        self,
        name: str,
        run_id: str,
        labels: Mapping[str, str],
        hosts: Sequence[str],
        isolated: bool = False,
    ) -> dict[str, str]:
        """The run's own bridge network, with a fixed address for each of `hosts` (returned,
        host → address): every container gets all of them in its /etc/hosts, so every peer
        resolves from its first instruction to the end of the job, whether the peer has started
        yet or has already exited (Docker's DNS knows only running containers). Isolated: an
        internal network (no route out) whose bridge the host firewall shuts off from the
        host's own services, where this process may change the firewall."""
        for _attempt in range(5):
            addresses = self._create_addressed_network(name, run_id, labels, hosts, isolated)
            if addresses is not None:
                break
        else:
            raise EngineError(f"Docker engine: creating network {name} failed: no free subnet")
        if isolated and firewall.can_isolate_host():
            try:
                firewall.block_host_access(run_id)
            except OSError as err:
                raise EngineError(f"isolating network {name}: {err}") from err
        return addresses

    def _create_addressed_network(
        self,
        name: str,
        run_id: str,
        labels: Mapping[str, str],
        hosts: Sequence[str],
        isolated: bool,
    ) -> dict[str, str] | None:
        """Fixed addresses need a subnet given at creation: the engine picks a free one from its
        own pools (whatever the daemon is configured with) for a first network, which is then
        made again with that subnet given. None when another network took it meanwhile."""
        import docker.errors
        from docker.types import IPAMConfig, IPAMPool

        def create(ipam: IPAMConfig | None) -> Any:
            return self.client.networks.create(
                name, driver="bridge", internal=isolated, labels=dict(labels), ipam=ipam,
                options={"com.docker.network.bridge.name": firewall.bridge_name(run_id)},
            )  # fmt: skip

        with engine_errors(f"creating network {name}"):
            probe = create(None)
            config = (probe.attrs.get("IPAM") or {}).get("Config") or []
            probe.remove()
            v4 = [c for c in config if ipaddress.ip_network(c["Subnet"]).version == 4]
            if not v4:
                raise EngineError(f"Docker engine: network {name} has no IPv4 subnet")
            subnet = ipaddress.ip_network(v4[0]["Subnet"])
            gateway = v4[0].get("Gateway") or str(next(subnet.hosts()))
            free = (str(a) for a in subnet.hosts() if str(a) != gateway)
            addresses = {host: next(free) for host in hosts}
            pool = IPAMPool(subnet=str(subnet), gateway=gateway)
            try:
                create(IPAMConfig(pool_configs=[pool]))
            except docker.errors.APIError as err:
                if "overlap" in str(err).lower():
                    return None
                raise
        return addresses

    def has_nvidia_runtime(self) -> bool:
        with engine_errors("reading the engine's runtimes"):
            return "nvidia" in (self.client.info().get("Runtimes") or {})

    def create_container(self, spec: ContainerSpec) -> Container:
        from docker.types import Mount as DockerMount

        # Aliases exist only on user-defined networks; on the default bridge the container's own
        # /etc/hosts resolves its hostname, which is all a single instance needs.
        endpoints = (
            None
            if spec.network == DEFAULT_NETWORK
            else {
                spec.network: self.client.api.create_endpoint_config(
                    aliases=[spec.hostname], ipv4_address=spec.ipv4_address
                )
            }
        )
        with engine_errors(f"creating container {spec.name}"):
            return self.client.containers.create(
                spec.image,
                name=spec.name,
                entrypoint=list(spec.entrypoint) or None,
                command=list(spec.command),
                environment=dict(spec.environment),
                hostname=spec.hostname,
                network=spec.network,
                networking_config=endpoints,
                mounts=[
                    DockerMount(m.container_path, m.host_path, type="bind", read_only=m.read_only)
                    for m in spec.mounts
                ],
                labels=dict(spec.labels),
                extra_hosts=dict(spec.peers) or None,
                detach=True,
                # Hardening: no privilege gained through setuid/setgid files or file
                # capabilities, no capability a processing job needs; Docker's default seccomp
                # profile applies (nothing here turns it off).
                security_opt=["no-new-privileges"],
                cap_drop=list(DROPPED_CAPABILITIES),
                pids_limit=spec.pids_limit,
                **_resource_options(spec),
            )

    def leftover_runs(self) -> list[LeftoverRun]:
        """Every run's containers and networks that localproc made, with their runners' labels."""
        runs: dict[tuple[str, str | None], LeftoverRun] = {}
        selector = {"label": JOB_LABEL}
        with engine_errors("listing job containers and networks"):
            # sparse: no per-container inspect, which races with other runs removing theirs
            containers = self.client.containers.list(all=True, filters=selector, sparse=True)
            networks = self.client.networks.list(filters=selector)
        for kind, items in (("containers", containers), ("networks", networks)):
            for item in items:
                labels = item.attrs.get("Labels") or {}
                if JOB_LABEL not in labels:
                    continue
                run_id = labels.get(RUN_LABEL)
                key = (labels[JOB_LABEL], run_id)
                run = runs.setdefault(key, LeftoverRun(labels[JOB_LABEL], run_id))
                run.runners.add(labels.get(RUNNER_LABEL, ""))
                getattr(run, kind).append(item.id)
        return list(runs.values())

    def runs_of(self, job_name: str, runner: str) -> list[LeftoverRun]:
        """The runs of one job made by one runner (identified by its label)."""
        runs = self.leftover_runs()
        return [run for run in runs if run.job_name == job_name and runner in run.runners]

    def remove_run_resources(self, run_id: str) -> None:
        """Remove every container and network of this run (by its run-id label, so nothing of
        any other run), whatever their state, and its firewall rule."""
        selector = {"label": f"{RUN_LABEL}={run_id}"}
        with engine_errors(f"removing the containers and networks of run {run_id}"):
            containers = self.client.containers.list(all=True, filters=selector, sparse=True)
            networks = self.client.networks.list(filters=selector)
        self._remove([c.id for c in containers], [n.id for n in networks], f"run {run_id}")
        try:
            firewall.remove_host_block(run_id)
        except OSError as err:
            raise EngineError(f"removing the firewall rule of run {run_id}: {err}") from err

    def remove_leftover(self, run: LeftoverRun) -> None:
        if run.run_id is not None:
            self.remove_run_resources(run.run_id)
        else:  # made before runs had ids: exactly the objects listed
            self._remove(run.containers, run.networks, run.job_name)

    def _remove(self, containers: Sequence[str], networks: Sequence[str], what: str) -> None:
        import docker.errors

        def remove(container_id: str) -> None:
            with contextlib.suppress(docker.errors.NotFound):
                self.client.api.remove_container(container_id, force=True)

        with engine_errors(f"removing the containers and networks of {what}"):
            # All at once: the engine removes several containers in about the time of one.
            with ThreadPoolExecutor(max_workers=max(1, min(len(containers), 16))) as pool:
                list(pool.map(remove, containers))
            for network_id in networks:
                with contextlib.suppress(docker.errors.NotFound):
                    self.client.api.remove_network(network_id)


def _resource_options(spec: ContainerSpec) -> dict[str, Any]:
    options: dict[str, Any] = {}
    if spec.cpus is not None:
        options["nano_cpus"] = int(spec.cpus * 1e9)
    if spec.memory_bytes is not None:
        # No swap beyond the limit: a job that needs more memory than its instance has is killed,
        # as it would be on SageMaker, instead of crawling along on this host's swap.
        options["mem_limit"] = spec.memory_bytes
        options["memswap_limit"] = spec.memory_bytes
    if spec.gpus:
        from docker.types import DeviceRequest

        options["device_requests"] = [DeviceRequest(count=spec.gpus, capabilities=[["gpu"]])]
    return options


def _first_line(err: BaseException) -> str:
    text = str(err).strip() or type(err).__name__
    return text.splitlines()[0]
