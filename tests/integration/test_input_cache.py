"""The input cache: an unchanged object is downloaded once across runs; a changed one again;
`--no-cache` always downloads; a cached file changed through a staged link is never served;
the cache is trimmed to its cap."""

from __future__ import annotations

import logging
import os
import re
import time
from pathlib import Path
from typing import Any

import pytest
from docker_engine import Localproc, job_payload, s3_input, unique_name

from localproc.storage import ObjectInfo, open_store
from localproc.transfer.cache import InputCache


def gets_of(caplog: pytest.LogCaptureFixture, bucket: str, key: str) -> int:
    pattern = re.compile(rf'"GET /{bucket}/{re.escape(key)} ')
    return sum(1 for r in caplog.records if pattern.search(r.getMessage()))


def test_unchanged_inputs_are_not_downloaded_again(
    localproc: Localproc, s3: Any, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="werkzeug")
    bucket = s3.make_bucket()
    s3.client.put_object(Bucket=bucket, Key="in/data.bin", Body=b"x" * 100_000)

    def run(*extra: str) -> None:
        payload = job_payload(
            unique_name("cached"),
            entrypoint=["cat", "/opt/ml/processing/in/data.bin"],
            inputs=[s3_input("data", f"s3://{bucket}/in/", "/opt/ml/processing/in")],
        )
        result = localproc(
            "run", str(localproc.write_payload(payload)), "--s3-endpoint-url", s3.endpoint_url,
            *extra,
        )  # fmt: skip
        assert result.exit_code == 0, result.output
        assert "x" * 1000 in result.stdout

    run()
    run()
    assert gets_of(caplog, bucket, "in/data.bin") == 1  # the second run used the cache
    run("--no-cache")
    assert gets_of(caplog, bucket, "in/data.bin") == 2
    s3.client.put_object(Bucket=bucket, Key="in/data.bin", Body=b"y" * 100_000)  # new ETag
    payload = job_payload(
        unique_name("changed"),
        entrypoint=["head", "-c", "5", "/opt/ml/processing/in/data.bin"],
        inputs=[s3_input("data", f"s3://{bucket}/in/", "/opt/ml/processing/in")],
    )
    changed = localproc(
        "run", str(localproc.write_payload(payload)), "--s3-endpoint-url", s3.endpoint_url
    )
    assert "algo-1 | yyyyy" in changed.stdout
    assert gets_of(caplog, bucket, "in/data.bin") == 3


def folder_object(root: Path, key: str, content: bytes) -> ObjectInfo:
    path = root / "bucket" / key
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(content)
    return open_store(root, None, None).head_object("bucket", key)  # type: ignore[return-value]


def test_a_cached_file_changed_in_place_is_not_served(tmp_path: Path) -> None:
    store = open_store(tmp_path / "s3", None, None)
    obj = folder_object(tmp_path / "s3", "a.txt", b"original")
    cache = InputCache(tmp_path / "cache")
    entry = cache.fetch(obj, store)
    staged = tmp_path / "staged.txt"
    staged.hardlink_to(entry)

    with staged.open("r+b") as handle:  # what a container could do to its input
        handle.write(b"CHANGED!")

    assert cache.lookup(obj) is None
    assert cache.fetch(obj, store).read_bytes() == b"original"


def test_the_cache_is_trimmed_to_its_cap_least_recently_used_first(tmp_path: Path) -> None:
    store = open_store(tmp_path / "s3", None, None)
    cache = InputCache(tmp_path / "cache", cap_bytes=250)
    objects = [folder_object(tmp_path / "s3", f"{i}.bin", bytes(100)) for i in range(3)]
    for obj in objects:
        cache.fetch(obj, store)
    meta = cache._entry(objects[0]).with_suffix(".json")
    os.utime(meta, (time.time() - 100, time.time() - 100))  # the oldest use

    assert cache.trim() == 100
    assert cache.lookup(objects[0]) is None
    assert cache.lookup(objects[1]) is not None and cache.lookup(objects[2]) is not None
