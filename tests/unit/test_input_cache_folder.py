"""The input cache over the folder store: a cached file changed in place is never served; the cache
is trimmed to its cap."""

from __future__ import annotations

import os
import time
from pathlib import Path

from localproc.storage import ObjectInfo, open_store
from localproc.transfer.cache import InputCache


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
