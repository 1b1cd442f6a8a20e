"""Pure planning: a job, the input listings and the image's configuration become the exact plan
that `run` executes: which objects each instance gets and where, the command line, environment,
config files. No I/O happens here, so a plan can be printed, compared and unit-tested.
"""

from __future__ import annotations

import posixpath
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from localproc.errors import client_error
from localproc.spec.echo import service_echo
from localproc.spec.job import InputSpec, JobSpec, OutputSpec
from localproc.storage import ObjectInfo, parse_s3_uri

DEFAULT_ACCOUNT = "000000000000"


@dataclass(frozen=True)
class ImageConfig:
    """What the engine tells about the image: its ENTRYPOINT and CMD (None when unset)."""

    uri: str
    entrypoint: tuple[str, ...] | None
    cmd: tuple[str, ...] | None


@dataclass(frozen=True)
class ContainerCommand:
    """The container's argv split the way Docker wants it; `argv` is what will execute."""

    entrypoint: tuple[str, ...]
    command: tuple[str, ...]

    @property
    def argv(self) -> tuple[str, ...]:
        return self.entrypoint + self.command


@dataclass(frozen=True)
class StagedObject:
    source: ObjectInfo
    relative_path: str  # below the input's LocalPath, '/'-separated, never escaping it


@dataclass(frozen=True)
class InstanceInput:
    name: str
    local_path: str
    objects: tuple[StagedObject, ...]

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


def plan_input_objects(item: InputSpec, listing: Sequence[ObjectInfo]) -> list[StagedObject]:
    """Objects of one S3Prefix input with their relative paths, in S3 listing order."""
    assert item.s3 is not None
    _, prefix = parse_s3_uri(item.s3.s3_uri)
    staged: list[StagedObject] = []
    for obj in listing:
        if obj.key.endswith("/"):  # folder markers made by consoles hold no data
            continue
        relative = safe_relative_path(relative_input_path(prefix, obj.key), obj.key, item.name)
        staged.append(StagedObject(obj, relative))
    if not staged:
        raise client_error(
            f'No S3 objects found under S3 URL "{item.s3.s3_uri}" given in input data source '
            f"'{item.name}'. Please ensure that the bucket exists and that objects exist under "
            "that S3 prefix."
        )
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


def build_plan(
    job: JobSpec,
    listings: Mapping[str, Sequence[ObjectInfo]],
    image: ImageConfig,
    region: str,
    account: str | None = None,
) -> JobPlan:
    """`listings` maps each S3 input's name to its objects in S3 listing order."""
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
    )


def _instance_input(
    item: InputSpec, objects: Sequence[StagedObject], index: int, count: int
) -> InstanceInput:
    assert item.s3 is not None
    chosen = (
        shard(objects, index, count) if item.s3.distribution == "ShardedByS3Key" else tuple(objects)
    )
    return InstanceInput(item.name, item.s3.local_path, chosen)
