"""Inputs: list them (read-only, before anything is created) and download each instance's objects
into its own folder, which is bind-mounted at the input's LocalPath."""

from __future__ import annotations

import os
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from localproc.errors import client_error
from localproc.payload.job import JobSpec
from localproc.plan import InputListing, InstancePlan, JobPlan, StagedObject
from localproc.storage import ObjectStore, StoreError, StoreUnreachable, parse_s3_uri
from localproc.transfer.cache import InputCache, copy_from_cache, link_or_copy
from localproc.transfer.manifest import read_manifest
from localproc.transfer.pipe import PipeFeeder, make_fifo

DOWNLOAD_WORKERS = 16  # small objects are latency-bound: more in flight, as the AWS CLI does


def list_inputs(job: JobSpec, store: ObjectStore) -> dict[str, InputListing]:
    """Each S3 input's objects: the S3 listing under its prefix, or the objects its manifest
    names. Store errors and bad manifests fail the job as ClientError; an unreachable store
    raises StoreUnreachable (the run could not happen here)."""
    listings: dict[str, InputListing] = {}
    for item in job.inputs:
        if item.s3 is None:
            continue
        if item.s3.data_type == "ManifestFile":
            manifest = read_manifest(store, item.s3.s3_uri, item.name)
            listings[item.name] = InputListing(manifest.objects, manifest_prefix=manifest.prefix)
            continue
        bucket, prefix = parse_s3_uri(item.s3.s3_uri)
        try:
            listings[item.name] = InputListing(store.list_objects(bucket, prefix))
        except StoreError as err:
            raise client_error(
                f"Cannot list input '{item.name}' ({item.s3.s3_uri}): {err}"
            ) from err
    return listings


def input_dir(staging_root: Path, host: str, input_name: str) -> Path:
    return staging_root / host / input_name


def stage_inputs(
    plan: JobPlan,
    store: ObjectStore,
    staging_root: Path,
    cache: InputCache | None = None,
    on_object: Callable[[StagedObject], None] | None = None,
    cancelled: Callable[[], bool] = lambda: False,
) -> None:
    """Download every object once per job, in parallel. An object that several instances get
    (FullyReplicated) is downloaded for the first of them and hard-linked into the others'
    folders, so each instance has its own directory tree. With a cache, an object cached
    unchanged is linked from there instead of downloaded. Once `cancelled()` (the job is being
    stopped), no further object is started: staging ends after the ones in flight."""
    first_copy: dict[tuple[str, str], Path] = {}
    downloads: list[tuple[StagedObject, Path]] = []
    links: list[tuple[Path, Path]] = []
    for instance in plan.instances:
        for item in instance.inputs:
            root = input_dir(staging_root, instance.host, item.name)
            _make_writable_dir(root)
            if item.mode == "Pipe":
                make_fifo(root / item.fifo_name)  # fed while the container runs
                continue
            for staged in item.objects:
                dest = root / staged.relative_path
                identity = (staged.source.bucket, staged.source.key)
                if identity in first_copy:
                    links.append((first_copy[identity], dest))
                else:
                    first_copy[identity] = dest
                    downloads.append((staged, dest))

    def download(task: tuple[StagedObject, Path]) -> None:
        if cancelled():
            return
        staged, dest = task
        _make_writable_dir(dest.parent)
        try:
            if cache is not None and cache.cacheable(staged.source):
                copy_from_cache(cache.fetch(staged.source, store), dest)
            else:
                store.download_file(staged.source, dest)
        except (StoreError, StoreUnreachable) as err:
            # Once the job is recorded, even losing S3 altogether ends it Failed, with a reason.
            raise client_error(
                f"Cannot download s3://{staged.source.bucket}/{staged.source.key}: {err}"
            ) from err
        if on_object is not None:
            on_object(staged)

    with ThreadPoolExecutor(max_workers=DOWNLOAD_WORKERS) as pool:
        list(pool.map(download, downloads))
    if cancelled():
        return
    for source, dest in links:
        _make_writable_dir(dest.parent)
        link_or_copy(source, dest)
    if cache is not None:
        cache.trim()


def start_pipe_feeders(plan: JobPlan, store: ObjectStore, staging_root: Path) -> list[PipeFeeder]:
    """One feeder per instance and Pipe input, streaming that instance's objects (its shard)
    into the FIFO in order; each waits for the container to open its end."""
    feeders = []
    for instance in plan.instances:
        for item in instance.inputs:
            if item.mode != "Pipe":
                continue
            fifo = input_dir(staging_root, instance.host, item.name) / item.fifo_name
            feeder = PipeFeeder(
                fifo, [o.source for o in item.objects], store, gzip=item.gzip, input_name=item.name
            )
            feeder.start()
            feeders.append(feeder)
    return feeders


def instance_input_mounts(staging_root: Path, instance: InstancePlan) -> list[tuple[Path, str]]:
    """(host folder, LocalPath) for each of the instance's inputs."""
    return [
        (input_dir(staging_root, instance.host, item.name), item.local_path)
        for item in instance.inputs
    ]


def _make_writable_dir(path: Path) -> None:
    # Containers may run as any user; SageMaker gives them writable input folders, so do we.
    path.mkdir(parents=True, exist_ok=True)
    os.chmod(path, 0o777)
