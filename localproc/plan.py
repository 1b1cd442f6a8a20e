"""Pure planning: a job, the input listings and the image's configuration become the exact plan
that `run` executes: which objects each instance gets and where, the command line, environment,
config files. No I/O happens here, so a plan can be printed, compared and unit-tested.
"""

from __future__ import annotations

import posixpath
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from localproc.catalog.instance_types import instance_type
from localproc.errors import client_error
from localproc.payload.echo import service_echo
from localproc.payload.job import InputSpec, JobSpec, OutputSpec
from localproc.storage import ObjectInfo, parse_s3_uri

DEFAULT_ACCOUNT = "000000000000"


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


# Leave the host some memory of its own when instances are sized down to fit.
HOST_MEMORY_SHARE = 0.9


@dataclass(frozen=True)
class ResourceLimits:
    """Per-container limits. None means unlimited (`--no-resource-limits`)."""

    cpus: float | None
    memory_bytes: int | None
    gpus: int  # GPUs handed to each container (0 when the host has no NVIDIA runtime)
    notes: tuple[str, ...] = ()  # one line each: scaling, GPUs not available


def resource_limits(
    type_name: str, count: int, host: HostCapacity, enabled: bool = True
) -> ResourceLimits:
    """The instance type's CPUs and memory per container; when the host cannot hold `count` of
    them, both are scaled down by the same factor so the instances keep their proportions."""
    spec = instance_type(type_name)
    notes: list[str] = []
    gpus = spec.gpus if host.has_nvidia_runtime else 0
    if spec.gpus and not host.has_nvidia_runtime:
        notes.append(
            f"{type_name} has {spec.gpus} GPU(s) ({spec.gpu_kind}), but this host has no NVIDIA "
            "container runtime: the job runs on the CPU."
        )
    if not enabled:
        return ResourceLimits(None, None, gpus, tuple(notes))
    factor = min(
        1.0,
        host.cpus / (count * spec.vcpus),
        host.memory_bytes * HOST_MEMORY_SHARE / (count * spec.memory_bytes),
    )
    cpus = round(spec.vcpus * factor, 2)
    memory = int(spec.memory_bytes * factor)
    if factor < 1.0:
        notes.append(
            f"this host ({host.cpus} CPUs, {host.memory_bytes / 2**30:.1f} GiB) cannot hold "
            f"{count} × {type_name} ({spec.vcpus} vCPUs, {spec.memory_gib:g} GiB): each container "
            f"gets {cpus:g} CPUs and {memory / 2**30:.2f} GiB instead ({factor:.0%})."
        )
    return ResourceLimits(cpus, memory, gpus, tuple(notes))


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
    def total_bytes(self) -> int:
        return sum(item.source.size for item in self.objects)


@dataclass(frozen=True)
class InstancePlan:
    host: str  # algo-1 ... algo-N
    inputs: tuple[InstanceInput, ...]
    resource_config: dict[str, Any]


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


def job_arn(name: str, region: str, account: str | None = None) -> str:
    return f"arn:aws:sagemaker:{region}:{account or DEFAULT_ACCOUNT}:processing-job/{name}"


def resolve_command(
    image: ImageConfig, entrypoint: Sequence[str] | None, arguments: Sequence[str] | None
) -> ContainerCommand:
    """SageMaker's rules: ContainerEntrypoint replaces ENTRYPOINT and drops CMD; ContainerArguments
    replace CMD, so alone they are appended to the image's ENTRYPOINT."""
    if entrypoint:
        return ContainerCommand(tuple(entrypoint), tuple(arguments or ()))
    image_entrypoint = image.entrypoint or ()
    if arguments:
        return ContainerCommand(image_entrypoint, tuple(arguments))
    return ContainerCommand(image_entrypoint, image.cmd or ())


def relative_input_path(prefix: str, key: str) -> str:
    """Where `key` lands below LocalPath for an S3Uri whose key part is `prefix`.

    A prefix naming the object itself lands as the key's basename. A prefix ending in '/' or at a
    path boundary gives the rest of the key. A prefix ending inside a name (`data/in` matching
    `data/input/a.csv`) gives the path from the prefix's folder (`input/a.csv`), so no name is cut.
    """
    if key == prefix:
        return posixpath.basename(key)
    rest = key[len(prefix) :]
    if prefix == "" or prefix.endswith("/"):
        return rest
    if rest.startswith("/"):
        return rest[1:]
    folder = prefix.rsplit("/", 1)[0] + "/" if "/" in prefix else ""
    return key[len(folder) :]


def safe_relative_path(relative: str, key: str, input_name: str) -> str:
    """Normalise a key-derived path; a path that would leave LocalPath fails the job."""
    parts = [part for part in relative.split("/") if part not in ("", ".")]
    if relative.startswith("/") or ".." in parts or not parts:
        raise client_error(
            f"S3 object key '{key}' of input '{input_name}' would be written outside the "
            "input's LocalPath; rename the object or narrow the S3Uri."
        )
    return "/".join(parts)


def plan_input_objects(item: InputSpec, listing: InputListing) -> list[StagedObject]:
    """Objects of one S3 input with their relative paths, in listing (or manifest) order."""
    assert item.s3 is not None
    _, prefix = parse_s3_uri(item.s3.s3_uri)
    staged: list[StagedObject] = []
    seen: set[tuple[str, str]] = set()
    for obj in listing.objects:
        if listing.manifest_prefix is not None:
            relative = obj.key[len(listing.manifest_prefix) :]
            if item.s3.input_mode == "File" and (obj.bucket, obj.key) in seen:
                continue  # a manifest may list an object twice; a folder holds it once
            seen.add((obj.bucket, obj.key))
        elif obj.key.endswith("/"):  # folder markers made by consoles hold no data
            continue
        else:
            relative = relative_input_path(prefix, obj.key)
        staged.append(StagedObject(obj, safe_relative_path(relative, obj.key, item.name)))
    if not staged:
        raise client_error(
            f'No S3 objects found under S3 URL "{item.s3.s3_uri}" given in input data source '
            f"'{item.name}'. Please ensure that the bucket exists and that objects exist under "
            "that S3 prefix."
        )
    if item.s3.input_mode == "File":
        _reject_path_conflicts(staged, item.name)
    return staged


def _reject_path_conflicts(staged: Sequence[StagedObject], input_name: str) -> None:
    """`a/b` and `a/b/c` cannot both exist on a filesystem: say so instead of failing mid-copy."""
    files = {item.relative_path: item.source.key for item in staged}
    for item in staged:
        parent = posixpath.dirname(item.relative_path)
        while parent:
            if parent in files:
                raise client_error(
                    f"S3 objects '{files[parent]}' and '{item.source.key}' of input "
                    f"'{input_name}' cannot both be staged: one would be a file and a folder."
                )
            parent = posixpath.dirname(parent)


def shard(objects: Sequence[StagedObject], index: int, count: int) -> tuple[StagedObject, ...]:
    """ShardedByS3Key: instance `index` (0-based) of `count` gets every count-th object of the
    listing starting at its own index, so shard sizes differ by at most one."""
    return tuple(objects[index::count])


def check_disk_space(instances: Sequence[InstancePlan], job: JobSpec, host: HostCapacity) -> None:
    """Fail before any download when the inputs cannot fit: on the instance's volume
    (VolumeSizeInGB) or on this host's disk."""
    volume = job.volume_size_gb * 2**30
    for instance in instances:
        staged = sum(item.total_bytes for item in instance.inputs if item.mode == "File")
        if staged > volume:
            raise client_error(
                f"The inputs of {instance.host} ({_gib(staged)}) do not fit its "
                f"VolumeSizeInGB of {job.volume_size_gb} GB ({_gib(volume)})."
            )
    unique = {
        (o.source.bucket, o.source.key): o.source.size
        for instance in instances
        for item in instance.inputs
        if item.mode == "File"
        for o in item.objects
    }
    needed = sum(unique.values())
    if needed > host.free_disk_bytes:
        raise client_error(
            f"The inputs ({_gib(needed)}) do not fit the free disk space of this host "
            f"({_gib(host.free_disk_bytes)} free where jobs are staged)."
        )


def _gib(count: int) -> str:
    return f"{count / 2**30:.2f} GiB"


def build_plan(
    job: JobSpec,
    listings: Mapping[str, InputListing],
    image: ImageConfig,
    region: str,
    host: HostCapacity,
    account: str | None = None,
    resource_limits_enabled: bool = True,
) -> JobPlan:
    """`listings` maps each S3 input's name to its objects (see `InputListing`)."""
    arn = job_arn(job.name, region, account)
    hosts = tuple(f"algo-{i}" for i in range(1, job.instance_count + 1))
    per_input = {
        item.name: plan_input_objects(item, listings[item.name])
        for item in job.inputs
        if item.s3 is not None
    }
    instances = tuple(
        InstancePlan(
            host=host,
            inputs=tuple(
                _instance_input(item, per_input[item.name], index, len(hosts))
                for item in job.inputs
                if item.s3 is not None
            ),
            resource_config={
                "current_host": host,
                "hosts": list(hosts),
                "current_instance_type": job.instance_type,
                "network_interface_name": "eth0",
            },
        )
        for index, host in enumerate(hosts)
    )
    check_disk_space(instances, job, host)
    environment = dict(job.environment)
    environment.setdefault("AWS_REGION", region)
    config = {"ProcessingJobArn": arn, **service_echo(job.request)}
    return JobPlan(
        job=job,
        arn=arn,
        region=region,
        command=resolve_command(image, job.container_entrypoint, job.container_arguments),
        environment=environment,
        hosts=hosts,
        instances=instances,
        processing_job_config=config,
        outputs=tuple(out for out in job.outputs if out.s3_uri and not out.app_managed),
        limits=resource_limits(
            job.instance_type, job.instance_count, host, enabled=resource_limits_enabled
        ),
    )


def _instance_input(
    item: InputSpec, objects: Sequence[StagedObject], index: int, count: int
) -> InstanceInput:
    assert item.s3 is not None
    chosen = (
        shard(objects, index, count) if item.s3.distribution == "ShardedByS3Key" else tuple(objects)
    )
    return InstanceInput(
        item.name,
        item.s3.local_path,
        chosen,
        mode=item.s3.input_mode,
        gzip=item.s3.compression == "Gzip",
    )
