"""One Docker engine connection: images, the job's network, containers, and cleanup by label."""

from __future__ import annotations

import functools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from localproc.errors import CannotRunHere
from localproc.plan import ContainerPlan, ImageConfig, JobPlan
from localproc.plan.naming import (
    DEFAULT_NETWORK,
    DROPPED_CAPABILITIES,
    JOB_LABEL,
    MIN_PIDS,
    PIDS_PER_VCPU,
    RUN_LABEL,
    RUNNER_LABEL,
    container_name,
    job_network,
    network_name,
    new_run_id,
    pids_limit,
)
from localproc.runtime import firewall, podman
from localproc.runtime.container_options import Mount, docker_mount, resource_options
from localproc.runtime.endpoint import Endpoint, client_options, resolve_endpoint, shares_files
from localproc.runtime.engine_errors import engine_errors
from localproc.runtime.engine_errors import first_line as _first_line
from localproc.runtime.protocol import Engine, EngineError, HostFolders

__all__ = [
    "DEFAULT_NETWORK",
    "DROPPED_CAPABILITIES",
    "MIN_PIDS",
    "PIDS_PER_VCPU",
    "DockerEngine",
    "EngineError",
    "LeftoverRun",
    "Mount",
    "container_name",
    "engine_errors",
    "job_network",
    "network_name",
    "new_run_id",
    "pids_limit",
]

if TYPE_CHECKING:  # the SDK is imported lazily so `localproc --help` stays instant
    import docker
    from docker.models.containers import Container


@dataclass
class LeftoverRun:
    """The engine objects of one run (or, for objects made before runs had ids, of one job)."""

    job_name: str
    run_id: str | None
    runners: set[str] = field(default_factory=set)  # runner labels
    containers: list[str] = field(default_factory=list)  # ids
    networks: list[str] = field(default_factory=list)
    volumes: list[str] = field(default_factory=list)  # names (the archive backend's)


class DockerEngine:
    """A connected engine. Create with `DockerEngine.connect()`."""

    def __init__(
        self, client: docker.DockerClient, endpoint: Endpoint | None = None,
        files_shared: bool = True,
    ) -> None:  # fmt: skip
        self.client = client
        self.endpoint = endpoint or Endpoint("unix:///var/run/docker.sock", "default")
        # Bind mounts of this machine's folders work (runtime/endpoint.py says when).
        self.files_shared = files_shared
        self._info_cache: dict[str, Any] | None = None

    @classmethod
    def connect(cls) -> DockerEngine:
        """The engine DOCKER_HOST names; without it, Docker's default socket, and when that does
        not answer, Podman's rootless then rootful socket (podman.engine_sockets)."""
        import docker
        import docker.errors

        endpoint = resolve_endpoint()
        files_shared = shares_files(endpoint)
        where = "the default socket" if endpoint.source == "default" else endpoint.describe()
        tunnel = None
        try:
            options = client_options(endpoint)
            if endpoint.over_ssh:  # the system's ssh, as the Docker CLI does
                from localproc.runtime.ssh_tunnel import SshTunnel

                tunnel = SshTunnel(endpoint.url)
                options = {**options, "base_url": tunnel.url, "tls": False}
            if options:
                client = docker.DockerClient(version="auto", timeout=120, **options)
            else:
                client = docker.from_env(version="auto", timeout=120)
            client.ping()
        except (docker.errors.DockerException, OSError, ValueError) as err:
            # Only when nothing names an engine: Podman's sockets, where Docker's does not answer.
            client = podman.first_answering_client() if endpoint.source == "default" else None
            if client is None:
                said = f"; ssh: {tunnel.last_error}" if tunnel and tunnel.last_error else ""
                raise CannotRunHere(
                    f"No Docker engine answers at {where} ({_first_line(err)}{said}), nor "
                    "Podman's API service. Start Docker, or run scripts/setup.sh, which installs "
                    "and starts one on Debian (for Podman: scripts/setup-podman.sh)."
                ) from err
        return cls(client, endpoint, files_shared)

    @functools.cached_property
    def is_podman(self) -> bool:
        """Podman's Docker-compatible API (runtime/podman.py says where it differs)."""
        with engine_errors("asking the engine what it is"):
            return podman.is_podman(self.client)

    def for_run(self, plan: JobPlan, folders: HostFolders) -> Engine:
        """The engine seam for one run of `plan`, its host folders where `folders` says: bind
        mounts when the engine shares this machine's folders, archives through the Engine API
        otherwise."""
        if self.files_shared:
            from localproc.runtime.docker_run import DockerRun

            return DockerRun(self, plan, folders)
        from localproc.runtime.docker_remote import DockerArchiveRun

        return DockerArchiveRun(self, plan, folders)

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
        """The run's own bridge network with a fixed address for each of `hosts` (returned,
        host → address): runtime/job_network.py says how and why."""
        from localproc.runtime.job_network import create_job_network

        return create_job_network(self, name, run_id, labels, hosts, isolated)

    def remote_machine_size(self) -> tuple[int, int] | None:
        """The CPUs and memory of the engine's machine when that is not this one (None here:
        this machine is measured directly)."""
        if self.endpoint.on_this_machine:
            return None
        info = self._info()
        return int(info.get("NCPU") or 1), int(info.get("MemTotal") or 0)

    def _info(self) -> dict[str, Any]:
        """The engine's `info`, read once (it takes tens of milliseconds)."""
        if self._info_cache is None:
            with engine_errors("reading the engine's information"):
                self._info_cache = self.client.info()
        return self._info_cache

    def has_nvidia_runtime(self) -> bool:
        if self.is_podman:  # Podman gives GPUs through CDI devices, not Docker's device requests
            return False
        return "nvidia" in (self._info().get("Runtimes") or {})

    def create_container(
        self,
        plan: ContainerPlan,
        mounts: Sequence[Mount],
        secrets: Mapping[str, str],
        peers: Mapping[str, str],
    ) -> Container:
        """The planned container with its mounts resolved to host folders, `secrets` added to
        its environment and every peer (algo-i → its fixed address) in its /etc/hosts."""
        network = plan.network.name
        # Aliases exist only on user-defined networks; on the default bridge the container's own
        # /etc/hosts resolves its hostname, which is all a single instance needs.
        endpoints = (
            None
            if network == DEFAULT_NETWORK
            else {
                network: self.client.api.create_endpoint_config(
                    aliases=[plan.hostname], ipv4_address=peers.get(plan.hostname)
                )
            }
        )
        with engine_errors(f"creating container {plan.name}"):
            return self.client.containers.create(
                plan.image,
                name=plan.name,
                entrypoint=list(plan.command.entrypoint) or None,
                command=list(plan.command.command),
                environment={**plan.environment, **secrets},
                hostname=plan.hostname,
                network=network,
                networking_config=endpoints,
                mounts=[docker_mount(m) for m in mounts],
                labels=dict(plan.labels),
                extra_hosts=dict(peers) or None,
                detach=True,
                security_opt=list(plan.security_options),
                cap_drop=list(plan.cap_drop),
                pids_limit=plan.pids_limit,
                **resource_options(plan),
            )

    def leftover_runs(self) -> list[LeftoverRun]:
        """Every run's containers and networks that localproc made, with their runners' labels."""
        runs: dict[tuple[str, str | None], LeftoverRun] = {}
        selector = {"label": JOB_LABEL}
        with engine_errors("listing job containers and networks"):
            # sparse: no per-container inspect, which races with other runs removing theirs
            containers = self.client.containers.list(all=True, filters=selector, sparse=True)
            networks = self.client.networks.list(filters=selector)
            volumes = self._volumes(selector)
        kinds = (("containers", containers), ("networks", networks), ("volumes", volumes))
        for kind, items in kinds:
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

    def _volumes(self, selector: Mapping[str, str]) -> list[Any]:
        """The archive backend's volumes (a local engine's runs have none: listing them costs a
        few milliseconds)."""
        return self.client.volumes.list(filters=dict(selector))

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
            # A Swarm overlay (--cluster swarm) is removed by the manager, never by a node
            networks = [
                n for n in self.client.networks.list(filters=selector)
                if n.attrs.get("Scope") != "swarm"
            ]  # fmt: skip
            volumes = self._volumes(selector)
        self._remove(
            [c.id for c in containers], [n.id for n in networks], f"run {run_id}",
            [v.id for v in volumes],
        )  # fmt: skip
        if not self.endpoint.on_this_machine:
            return
        try:
            firewall.remove_host_block(run_id)
        except OSError as err:
            raise EngineError(f"removing the firewall rule of run {run_id}: {err}") from err

    def remove_leftover(self, run: LeftoverRun) -> None:
        if run.run_id is not None:
            self.remove_run_resources(run.run_id)
        else:  # made before runs had ids: exactly the objects listed
            self._remove(run.containers, run.networks, run.job_name, run.volumes)

    def _remove(
        self, containers: Sequence[str], networks: Sequence[str], what: str,
        volumes: Sequence[str] = (),
    ) -> None:  # fmt: skip
        from localproc.runtime.engine_cleanup import remove_objects

        remove_objects(self.client, containers, networks, what, volumes)
