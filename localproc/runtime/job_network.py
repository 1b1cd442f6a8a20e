"""A run's own network on one Docker (or Podman) engine, with a fixed address for every
instance: every container gets all of them in its /etc/hosts, so every peer resolves from its
first instruction to the end of the job, whether the peer has started yet or has already exited
(Docker's DNS knows only running containers)."""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from localproc.runtime import firewall, podman
from localproc.runtime.engine_errors import engine_errors
from localproc.runtime.protocol import EngineError

if TYPE_CHECKING:
    from localproc.runtime.engine import DockerEngine

# A subnet the engine offered can be taken by another network before this run claims it.
SUBNET_ATTEMPTS = 5


def create_job_network(
    engine: DockerEngine,
    name: str,
    run_id: str,
    labels: Mapping[str, str],
    hosts: Sequence[str],
    isolated: bool,
) -> dict[str, str]:
    """The network, and each of `hosts`' fixed address (host → address). Isolated: an internal
    network (no route out) whose bridge the host firewall shuts off from the host's own
    services, where this process may change the firewall (an engine on this machine; another
    machine's firewall is its own: runtime/firewall.py)."""
    if engine.is_podman:
        with engine_errors(f"creating network {name}"):
            subnet, gateway = podman.create_network(
                engine.client, name, labels, firewall.bridge_name(run_id), isolated
            )
        addresses = _addresses(ipaddress.ip_network(subnet), gateway, hosts)
    else:
        for _attempt in range(SUBNET_ATTEMPTS):
            found = _create_addressed_network(engine.client, name, run_id, labels, hosts, isolated)
            if found is not None:
                addresses = found
                break
        else:
            raise EngineError(f"Docker engine: creating network {name} failed: no free subnet")
    if isolated and engine.endpoint.on_this_machine and firewall.can_isolate_host():
        try:
            firewall.block_host_access(run_id)
        except OSError as err:
            raise EngineError(f"isolating network {name}: {err}") from err
    return addresses


def _create_addressed_network(
    client: Any,
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
        return client.networks.create(
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
        addresses = _addresses(subnet, gateway, hosts)
        pool = IPAMPool(subnet=str(subnet), gateway=gateway)
        try:
            create(IPAMConfig(pool_configs=[pool]))
        except docker.errors.APIError as err:
            if "overlap" in str(err).lower():
                return None
            raise
    return addresses


def _addresses(
    subnet: ipaddress.IPv4Network | ipaddress.IPv6Network,
    gateway: str | None,
    hosts: Sequence[str],
) -> dict[str, str]:
    """A fixed address for each host: the subnet's first ones, the gateway's (if any) left out."""
    free = (str(a) for a in subnet.hosts() if str(a) != gateway)
    return {host: next(free) for host in hosts}
