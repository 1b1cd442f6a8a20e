"""Continuous outputs: the targets and the uploader the continuous-upload tests (unit and
integration) share."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from localproc.payload.job import OutputSpec
from localproc.storage import ObjectStore
from localproc.transfer.continuous import ContinuousTarget, ContinuousUploader
from localproc.transfer.upload import UploadReport

LOCAL_PATH = "/opt/ml/processing/output"


def output(bucket: str, prefix: str, name: str = "results") -> OutputSpec:
    return OutputSpec(
        name=name,
        app_managed=False,
        s3_uri=f"s3://{bucket}/{prefix}",
        local_path=LOCAL_PATH,
        upload_mode="Continuous",
        feature_store=None,
    )


def target(root: Path, bucket: str, prefix: str, host: str = "algo-1") -> ContinuousTarget:
    folder = root / host / "outputs" / "results"
    folder.mkdir(parents=True)
    return ContinuousTarget(host=host, output=output(bucket, prefix), folder=folder)


def eventually(check: Callable[[], bool], timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(0.05)
    return check()


@contextmanager
def uploading(
    targets: list[ContinuousTarget], store: ObjectStore, **options: Any
) -> Iterator[tuple[ContinuousUploader, list[UploadReport]]]:
    """A started uploader; finished when the block ends (the report lands in the list), so a
    failing assertion never leaves watcher threads behind."""
    uploader = ContinuousUploader(targets, store, options.pop("kms_key_id", None), **options)
    reports: list[UploadReport] = []
    uploader.start()
    try:
        yield uploader, reports
    finally:
        reports.append(uploader.finish())
