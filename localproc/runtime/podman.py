"""Where Podman's Docker-compatible API differs from Docker's, the few calls that go to Podman's
own (libpod) API instead, on the same connection. Everything else localproc asks of an engine
Podman answers as Docker does.

- Finding it: `podman system service` listens on $XDG_RUNTIME_DIR/podman/podman.sock (rootless)
  or /run/podman/podman.sock (rootful); `engine_sockets` lists them in the order they are tried
  when DOCKER_HOST is not set and Docker's default socket does not answer.
- The job's network: the compat API always gives a bridge network Podman's DNS server
  (aardvark-dns on the bridge's gateway), which forwards every name it does not know to the
  host's resolvers, also from an `internal` network: a way out of an isolated job whenever the
  host firewall rule cannot be added. localproc resolves peers through /etc/hosts, so the network
  is made with DNS off. Podman also picks the subnet at creation and says which, so one call
  does what takes two on Docker.
- Usage samples: the compat stats stream sends one sample every five seconds and goes on after
  the container has ended; the libpod stream is asked for one a second and left at the first
  sample of a container that no longer runs.
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Iterator, Mapping
from typing import Any

from localproc.runtime.protocol import EngineError, UsageSample

ROOTFUL_SOCKET = "/run/podman/podman.sock"
LIBPOD = "/v4.0.0/libpod"  # served by Podman 4 and 5 alike (their oldest supported API is 4.0.0)
COMPAT_API = "1.41"  # the Docker API version Podman 4 and 5 serve


def is_podman(client: Any) -> bool:
    """Whether the engine is Podman: its /_ping answer names the libpod API version. (Its
    /version answer says so too, but Podman makes it by asking conmon and the OCI runtime for
    theirs, which takes most of a second.)"""
    response = client.api.get(f"{client.api.base_url}/_ping", timeout=30)
    return is_podman_ping(response.headers)


def is_podman_ping(headers: Mapping[str, str]) -> bool:
    """Podman's /_ping carries `Libpod-Api-Version` (and `Server: Libpod/…`); Docker's does not."""
    return any(name.lower() == "libpod-api-version" for name in headers)


def engine_sockets() -> list[str]:
    """Podman's API sockets, as DOCKER_HOST values, in the order they are tried: the user's own
    (rootless) service first, then the system's (rootful) one."""
    sockets = []
    runtime_dir = os.environ.get("XDG_RUNTIME_DIR") or f"/run/user/{os.getuid()}"
    for path in (os.path.join(runtime_dir, "podman", "podman.sock"), ROOTFUL_SOCKET):
        if path not in sockets:
            sockets.append(path)
    return [f"unix://{path}" for path in sockets]


def first_answering_client() -> Any:
    """A Docker SDK client of the first of Podman's sockets that answers, else None."""
    import docker
    import docker.errors

    for socket in engine_sockets():
        if not os.path.exists(socket.removeprefix("unix://")):
            continue
        try:
            # A fixed API version: "auto" would ask /version, which Podman is slow to answer.
            client = docker.DockerClient(base_url=socket, version=COMPAT_API, timeout=120)
            client.ping()
        except (docker.errors.DockerException, OSError):
            continue
        return client
    return None


def create_network(
    client: Any, name: str, labels: Mapping[str, str], bridge: str, internal: bool
) -> tuple[str, str | None]:
    """A bridge network with DNS off, named `name`, on the Linux bridge `bridge`; returns its
    IPv4 subnet and gateway (None for an internal network: Podman gives its bridge no address,
    so the host is not even reachable there), which Podman picked from its free ones."""
    body = {
        "name": name,
        "driver": "bridge",
        "network_interface": bridge,
        "internal": internal,
        "dns_enabled": False,
        "labels": dict(labels),
        # as the compat API does for every bridge network: no traffic to other networks
        "options": {"isolate": "true"},
    }
    response = client.api.post(_url(client, "/networks/create"), json=body, timeout=120)
    if response.status_code >= 400:
        raise EngineError(f"Podman: creating network {name} failed: {_message(response)}")
    try:
        subnets = response.json().get("subnets") or []
    except ValueError as err:
        raise EngineError(f"Podman: creating network {name}: an answer that is not JSON") from err
    for subnet in subnets:
        if "." in subnet.get("subnet", ""):
            return subnet["subnet"], subnet.get("gateway")
    raise EngineError(f"Podman: network {name} has no IPv4 subnet")


def stats(client: Any, container_id: str) -> Iterator[UsageSample]:
    """One sample a second until the container no longer runs. Podman reports the memory in use
    now, not a high-water mark: the caller's maximum over the samples is the peak."""
    params = {"containers": container_id, "stream": "true", "interval": 1}
    try:
        response = client.api.get(
            _url(client, "/containers/stats"), params=params, stream=True, timeout=(30, None)
        )
        with contextlib.closing(response):
            if response.status_code >= 400:
                return
            for line in response.iter_lines():
                entries = json.loads(line).get("Stats") if line else None
                if entries is None:
                    continue
                if not entries or not entries[0].get("UpTime"):
                    return  # ended (Podman then reports zeros) or gone
                memory, cpu = entries[0].get("MemUsage"), entries[0].get("CPUNano")
                yield UsageSample(int(memory) if memory else None, cpu / 1e9 if cpu else None)
    except (OSError, ValueError):
        return  # the connection ended or the answer was not JSON: the samples so far stand


def _url(client: Any, path: str) -> str:
    return f"{client.api.base_url}{LIBPOD}{path}"


def _message(response: Any) -> str:
    try:
        return str(response.json().get("message") or response.text).strip()
    except ValueError:
        return response.text.strip() or str(response.status_code)
