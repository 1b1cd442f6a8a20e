"""The plan's values: everything a run does, per instance, as frozen data. Nothing here names a
host path: a mount says what it holds, and the engine decides where that lives."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from localproc.payload.job import JobSpec, OutputSpec
from localproc.plan.naming import DEFAULT_NETWORK
from localproc.storage import ObjectInfo


@dataclass(frozen=True)
class ImageConfig:
    """What the engine tells about the image: its ENTRYPOINT and CMD (None when unset)."""

    uri: str
    entrypoint: tuple[str, ...] | None
    cmd: tuple[str, ...] | None
    present: bool = True  # False: not on this host (yet), so ENTRYPOINT and CMD are unknown


@dataclass(frozen=True)
class ContainerCommand:
    """The container's argv split the way Docker wants it; `argv` is what will execute."""

    entrypoint: tuple[str, ...]
    command: tuple[str, ...]

    @property
    def argv(self) -> tuple[str, ...]:
        return self.entrypoint + self.command


@dataclass(frozen=True)
class HostCapacity:
    """What this host offers the job's containers (measured by the caller, e.g. with psutil)."""

    cpus: int
    memory_bytes: int
    free_disk_bytes: int
    has_nvidia_runtime: bool = False


@dataclass(frozen=True)
class ResourceLimits:
    """Per-container limits. None means unlimited (`--no-resource-limits`)."""

    cpus: float | None
    memory_bytes: int | None
    gpus: int  # GPUs handed to each container (0 when the host has no NVIDIA runtime)
    notes: tuple[str, ...] = ()  # one line each: scaling, GPUs not available


@dataclass(frozen=True)
class StagedObject:
    source: ObjectInfo
    relative_path: str  # below the input's LocalPath, '/'-separated, never escaping it


@dataclass(frozen=True)
class InputListing:
    """An S3 input's objects in the order the job sees them. For a ManifestFile input,
    `manifest_prefix` is the manifest's prefix key: each object lands at its key minus it."""

    objects: Sequence[ObjectInfo]
    manifest_prefix: str | None = None


@dataclass(frozen=True)
class InstanceInput:
    name: str
    local_path: str
    objects: tuple[StagedObject, ...]
    mode: str = "File"  # File: staged on disk; Pipe: streamed into a FIFO
    gzip: bool = False  # Pipe mode: decompress while streaming

    @property
    def fifo_name(self) -> str:
        """Pipe mode's FIFO inside LocalPath: `<InputName>_0` (training's `<channel>_<epoch>`,
        with the single epoch a processing job has)."""
        return f"{self.name}_0"

    @property
    def pipe_path(self) -> str | None:
        """Where the container reads a Pipe input (None for File mode)."""
        if self.mode != "Pipe":
            return None
        return f"{self.local_path.rstrip('/')}/{self.fifo_name}"

    @property
    def total_bytes(self) -> int:
        return sum(item.source.size for item in self.objects)


# What a mount holds: the instance's config files, its /opt/ml/output, an input's staged tree,
# the folder holding a Pipe input's FIFO, or an output folder. `name` names the input/output.
MountKind = Literal["config", "job-output", "input", "pipe", "output"]


@dataclass(frozen=True)
class MountPlan:
    container_path: str
    holds: MountKind
    name: str | None = None
    read_only: bool = False


@dataclass(frozen=True)
class UploadPlan:
    """One instance's output folder and where it goes."""

    output_name: str
    local_path: str  # in the container
    s3_uri: str
    mode: str  # EndOfJob | Continuous


@dataclass(frozen=True)
class NetworkPlan:
    name: str  # DEFAULT_NETWORK: the engine's default bridge, nothing to create
    isolated: bool
    overlay: bool = False  # a Swarm overlay across nodes (`--cluster swarm`), not a bridge

    @property
    def own(self) -> bool:
        return self.name != DEFAULT_NETWORK

    @property
    def description(self) -> str:
        kind = "overlay network across the swarm's nodes" if self.overlay else "network"
        if self.isolated:
            return f"isolated: an internal {kind} of the job's own, no route out"
        if not self.own:
            return "Docker's default bridge, with outbound access (a lone instance needs no other)"
        if self.overlay:
            return f"an attachable {kind} of the job's own, with outbound access"
        return "a bridge network of the job's own, with outbound access"


@dataclass(frozen=True)
class ContainerPlan:
    """One instance's container, as the engine creates it."""

    name: str
    hostname: str
    image: str
    command: ContainerCommand
    environment: Mapping[str, str]  # without --pass-aws-credentials secrets: never planned
    mounts: tuple[MountPlan, ...]
    labels: Mapping[str, str]
    network: NetworkPlan
    limits: ResourceLimits
    pids_limit: int
    cap_drop: tuple[str, ...]
    security_options: tuple[str, ...]


@dataclass(frozen=True)
class InstancePlan:
    host: str  # algo-1 ... algo-N
    inputs: tuple[InstanceInput, ...]
    resource_config: dict[str, Any]
    container: ContainerPlan | None = None
    config_files: Mapping[str, str] = field(default_factory=dict)  # name → exact text
    uploads: tuple[UploadPlan, ...] = ()

    def mount_of(self, holds: MountKind, name: str | None = None) -> MountPlan:
        assert self.container is not None
        return next(m for m in self.container.mounts if m.holds == holds and m.name == name)


@dataclass(frozen=True)
class JobPlan:
    job: JobSpec
    arn: str
    region: str
    command: ContainerCommand
    environment: dict[str, str]
    hosts: tuple[str, ...]
    instances: tuple[InstancePlan, ...]
    processing_job_config: dict[str, Any]
    outputs: tuple[OutputSpec, ...]  # outputs this run uploads (S3Output, not AppManaged)
    limits: ResourceLimits
    run_id: str = ""
    labels: Mapping[str, str] = field(default_factory=dict)
    network: NetworkPlan = NetworkPlan(DEFAULT_NETWORK, False)
    max_runtime_seconds: int | None = None  # counts from the start of the containers
    command_known: bool = True  # False: depends on an image not on this host yet

    def instance(self, host: str) -> InstancePlan:
        return next(item for item in self.instances if item.host == host)
