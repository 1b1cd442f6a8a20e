"""How a planned container's mounts and limits are said to the Docker SDK."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from localproc.plan import ContainerPlan


@dataclass(frozen=True)
class Mount:
    """A host folder bind-mounted into a container, or (`volume`) a volume of the engine's
    mounted by name: known only inside runtime/."""

    host_path: str  # the volume's name when `volume`
    container_path: str
    read_only: bool = False
    volume: bool = False


def docker_mount(mount: Mount) -> Any:
    from docker.types import Mount as DockerMount

    if mount.volume:  # no_copy: the volume hides the image's folder, as a bind mount does
        return DockerMount(mount.container_path, mount.host_path, type="volume",
                           read_only=mount.read_only, no_copy=True)  # fmt: skip
    return DockerMount(
        mount.container_path, mount.host_path, type="bind", read_only=mount.read_only
    )


def resource_options(plan: ContainerPlan) -> dict[str, Any]:
    options: dict[str, Any] = {}
    limits = plan.limits
    if limits.cpus is not None:
        options["nano_cpus"] = int(limits.cpus * 1e9)
    if limits.memory_bytes is not None:
        # No swap beyond the limit: a job that needs more memory than its instance has is killed,
        # as it would be on SageMaker, instead of crawling along on this host's swap.
        options["mem_limit"] = limits.memory_bytes
        options["memswap_limit"] = limits.memory_bytes
    if limits.gpus:
        from docker.types import DeviceRequest

        options["device_requests"] = [DeviceRequest(count=limits.gpus, capabilities=[["gpu"]])]
    return options
