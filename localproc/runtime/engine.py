"""One Docker engine connection: images, the job's network, containers, and cleanup by label."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from localproc.errors import CannotRunHere
from localproc.plan import ImageConfig
from localproc.runtime import JOB_LABEL, RUNNER_LABEL, firewall

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


DEFAULT_NETWORK = "bridge"  # Docker's own: no network to create or remove


def container_name(job_name: str, host: str) -> str:
    return f"localproc-{job_name}-{host}"


def network_name(job_name: str) -> str:
    return f"localproc-{job_name}"


def job_network(job_name: str, instance_count: int, isolated: bool) -> str:
    """The network a job's containers join. Instances need a network of the job's own to find
    each other, and isolation needs one to shut; a lone instance with outbound access does fine
    on Docker's default bridge, which saves creating and removing a network (about 0.3 s)."""
    if instance_count == 1 and not isolated:
        return DEFAULT_NETWORK
    return network_name(job_name)


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
        self, job_name: str, labels: Mapping[str, str], isolated: bool = False
    ) -> str:
        """The job's own bridge network, on which instances find each other by name. Isolated:
        an internal network (no route out) whose bridge the host firewall shuts off from the
        host's own services, where this process may change the firewall."""
        name = network_name(job_name)
        with engine_errors(f"creating network {name}"):
            self.client.networks.create(
                name,
                driver="bridge",
                internal=isolated,
                labels=dict(labels),
                options={"com.docker.network.bridge.name": firewall.bridge_name(job_name)},
            )
        if isolated and firewall.can_isolate_host():
            try:
                firewall.block_host_access(job_name)
            except OSError as err:
                raise EngineError(f"isolating network {name}: {err}") from err
        return name

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
            else {spec.network: self.client.api.create_endpoint_config(aliases=[spec.hostname])}
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
                detach=True,
                **_resource_options(spec),
            )

    def leftover_runners(self) -> dict[str, set[str]]:
        """Job name → runner labels of every container and network localproc made."""
        found: dict[str, set[str]] = {}
        selector = {"label": JOB_LABEL}
        with engine_errors("listing job containers and networks"):
            # sparse: no per-container inspect, which races with other runs removing theirs
            items = [
                *self.client.containers.list(all=True, filters=selector, sparse=True),
                *self.client.networks.list(filters=selector),
            ]
        for item in items:
            labels = item.attrs.get("Labels") or {}
            if JOB_LABEL in labels:
                found.setdefault(labels[JOB_LABEL], set()).add(labels.get(RUNNER_LABEL, ""))
        return found

    def remove_job_resources(self, job_name: str) -> None:
        """Remove every container and network labelled with this job, whatever their state."""
        import docker.errors

        selector = {"label": f"{JOB_LABEL}={job_name}"}

        def remove(container_id: str) -> None:
            with contextlib.suppress(docker.errors.NotFound):
                self.client.api.remove_container(container_id, force=True)

        with engine_errors(f"removing the containers and networks of {job_name}"):
            containers = self.client.containers.list(all=True, filters=selector, sparse=True)
            # All at once: the engine removes several containers in about the time of one.
            with ThreadPoolExecutor(max_workers=max(1, min(len(containers), 16))) as pool:
                list(pool.map(remove, [container.id for container in containers]))
            for network in self.client.networks.list(filters=selector):
                with contextlib.suppress(docker.errors.NotFound):
                    network.remove()
        try:
            firewall.remove_host_block(job_name)
        except OSError as err:
            raise EngineError(f"removing the firewall rule of {job_name}: {err}") from err


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
    if spec.isolated:
        # Raw sockets could hand-craft frames past the network's rules; nothing needs them.
        options["cap_drop"] = ["NET_RAW"]
    return options


def _first_line(err: BaseException) -> str:
    text = str(err).strip() or type(err).__name__
    return text.splitlines()[0]
