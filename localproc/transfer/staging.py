"""Inputs: list them (read-only, before anything is created) and download each instance's objects
into its own local folder (the engine says which, and makes it appear at the input's LocalPath);
Pipe inputs are streamed into the FIFO the engine gives."""

from __future__ import annotations

import os
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING

from localproc.errors import client_error
from localproc.payload.job import JobSpec
from localproc.plan import InputListing, JobPlan, StagedObject
from localproc.storage import ObjectStore, StoreError, StoreUnreachable, parse_s3_uri
from localproc.transfer.cache import InputCache, copy_from_cache, link_or_copy

if TYPE_CHECKING:
    from localproc.transfer.pipe import PipeFeeder

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
            from localproc.transfer.manifest import read_manifest

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


FolderFor = Callable[[str, str], Path]  # (host, input name) → the local folder to fill


def stage_inputs(
    plan: JobPlan,
    store: ObjectStore,
    folder_for: FolderFor,
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
            if item.mode == "Pipe":
                continue  # streamed while the container runs
            root = folder_for(instance.host, item.name)
            _make_writable_dir(root)
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


def start_pipe_feeders(plan: JobPlan, store: ObjectStore, fifo_for: FolderFor) -> list[PipeFeeder]:
    """One feeder per instance and Pipe input, streaming that instance's objects (its shard)
    into the FIFO `fifo_for(host, input name)` in order; each waits for a reader."""
    from localproc.transfer.pipe import PipeFeeder  # only for jobs with Pipe inputs

    feeders = []
    for instance in plan.instances:
        for item in instance.inputs:
            if item.mode != "Pipe":
                continue
            feeder = PipeFeeder(
                fifo_for(instance.host, item.name), [o.source for o in item.objects], store,
                gzip=item.gzip, input_name=item.name,
            )  # fmt: skip
            feeder.start()
            feeders.append(feeder)
    return feeders


def _make_writable_dir(path: Path) -> None:
    # Containers may run as any user; SageMaker gives them writable input folders, so do we.
    path.mkdir(parents=True, exist_ok=True)
    os.chmod(path, 0o777)
