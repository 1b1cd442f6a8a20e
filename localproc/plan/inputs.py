"""Which objects each instance gets and where they land: key → path, manifests, sharding, and
whether they fit the instance's volume and this host's disk."""

from __future__ import annotations

import posixpath
from collections.abc import Sequence

from localproc.errors import client_error
from localproc.payload.job import InputSpec, JobSpec
from localproc.plan.model import HostCapacity, InputListing, InstancePlan, StagedObject
from localproc.storage import parse_s3_uri


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
