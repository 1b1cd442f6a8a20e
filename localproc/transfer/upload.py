"""Outputs: after the containers end, every regular file under each instance's output folder is
uploaded to the output's S3Uri with its relative path. Symlinks are never followed and devices,
sockets and FIFOs are never read, so a container cannot make us upload a host file."""

from __future__ import annotations

import os
import stat
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from localproc.spec.job import OutputSpec
from localproc.storage import ObjectStore, StoreError, parse_s3_uri

UPLOAD_WORKERS = 8


@dataclass(frozen=True)
class UploadTask:
    source: Path
    bucket: str
    key: str
    host: str


@dataclass
class UploadReport:
    uploaded: list[UploadTask] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)  # one message per object that failed
    collisions: list[str] = field(default_factory=list)  # keys written by more than one instance
    skipped: list[str] = field(default_factory=list)  # symlinks and special files left alone

    @property
    def bytes(self) -> int:
        return sum(task.source.stat().st_size for task in self.uploaded)


def output_key(s3_uri: str, relative_path: str) -> tuple[str, str]:
    bucket, prefix = parse_s3_uri(s3_uri)
    if prefix and not prefix.endswith("/"):
        prefix += "/"
    return bucket, prefix + relative_path


def regular_files(root: Path, skipped: list[str]) -> Iterator[str]:
    """Relative '/'-paths of regular files below root, without following any symlink."""
    stack = [""]
    while stack:
        relative_dir = stack.pop()
        with os.scandir(root / relative_dir if relative_dir else root) as entries:
            for entry in sorted(entries, key=lambda e: e.name):
                relative = f"{relative_dir}/{entry.name}" if relative_dir else entry.name
                mode = entry.stat(follow_symlinks=False).st_mode
                if stat.S_ISDIR(mode):
                    stack.append(relative)
                elif stat.S_ISREG(mode):
                    yield relative
                else:
                    skipped.append(relative)


def upload_outputs(
    outputs: list[OutputSpec] | tuple[OutputSpec, ...],
    folders: dict[tuple[str, str], Path],
    store: ObjectStore,
    kms_key_id: str | None,
    on_upload: Callable[[UploadTask], None] | None = None,
) -> UploadReport:
    """`folders` maps (host, output name) to the host folder mounted at that output's LocalPath.
    Instances upload in host order, so when two write the same path the last host wins."""
    report = UploadReport()
    owner: dict[tuple[str, str], str] = {}
    tasks: list[UploadTask] = []
    for (host, name), folder in folders.items():
        output = next(out for out in outputs if out.name == name)
        assert output.s3_uri is not None
        if not folder.is_dir():
            continue
        for relative in regular_files(folder, report.skipped):
            bucket, key = output_key(output.s3_uri, relative)
            if (bucket, key) in owner:
                report.collisions.append(
                    f"s3://{bucket}/{key} written by {owner[(bucket, key)]} and {host}; "
                    f"{host}'s copy is kept"
                )
                tasks = [t for t in tasks if (t.bucket, t.key) != (bucket, key)]
            owner[(bucket, key)] = host
            tasks.append(UploadTask(folder / relative, bucket, key, host))

    def upload(task: UploadTask) -> None:
        try:
            store.upload_file(task.source, task.bucket, task.key, kms_key_id=kms_key_id)
        except (StoreError, OSError) as err:
            report.failures.append(f"s3://{task.bucket}/{task.key}: {err}")
            return
        report.uploaded.append(task)
        if on_upload is not None:
            on_upload(task)

    with ThreadPoolExecutor(max_workers=UPLOAD_WORKERS) as pool:
        list(pool.map(upload, tasks))
    return report
