"""The behaviour both object stores must share, tested once against each:
tests/unit/test_storage.py runs these against the folder store,
tests/integration/test_storage_s3.py against S3 through a real endpoint. Each defines the
`store_with` fixture these ask for."""

from __future__ import annotations

import hashlib
import os
import stat
from collections.abc import Callable
from pathlib import Path

import pytest

from localproc.storage import (
    ObjectInfo,
    ObjectStore,
    StoreError,
)

# Keys that S3 orders by UTF-8 bytes: uppercase before lowercase, `/` (0x2F) before digits,
# and a non-ASCII key after every ASCII one.
KEYS = ["data/B.csv", "data/a.csv", "data/a/nested.csv", "data/a0.csv", "data/ü.csv", "data/Ä.csv"]
S3_ORDER = sorted(KEYS, key=lambda key: key.encode("utf-8"))


def put_folder(root: Path, bucket: str, objects: dict[str, bytes]) -> None:
    (root / bucket).mkdir(parents=True, exist_ok=True)
    for key, body in objects.items():
        path = root / bucket / key
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(body)


def current_umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


# A store with a bucket holding some objects, whichever kind of store it is: behaviour the two
# must share is tested once against both.
StoreWithObjects = Callable[[dict[str, bytes]], tuple[ObjectStore, str]]


def test_listing_is_in_s3_order(store_with: StoreWithObjects) -> None:
    store, bucket = store_with({key: key.encode() for key in KEYS} | {"other/x": b"x"})

    listed = store.list_objects(bucket, "data/")

    assert [obj.key for obj in listed] == S3_ORDER
    assert all(obj.bucket == bucket and obj.size == len(obj.key.encode()) for obj in listed)
    assert all(obj.etag for obj in listed)


def test_prefix_matches_keys_as_strings(store_with: StoreWithObjects) -> None:
    store, bucket = store_with({key: b"x" for key in KEYS})

    assert [obj.key for obj in store.list_objects(bucket, "data/a")] == [
        "data/a.csv",
        "data/a/nested.csv",
        "data/a0.csv",
    ]
    assert store.list_objects(bucket, "data/a/") == [store.head_object(bucket, "data/a/nested.csv")]
    assert store.list_objects(bucket, "nothing/here") == []
    assert len(store.list_objects(bucket, "")) == len(KEYS)


def test_head_object(store_with: StoreWithObjects) -> None:
    store, bucket = store_with({"dir/file.txt": b"hello"})

    info = store.head_object(bucket, "dir/file.txt")

    assert info is not None
    assert (info.bucket, info.key, info.size) == (bucket, "dir/file.txt", 5)
    assert info.etag
    assert store.head_object(bucket, "dir/missing.txt") is None
    assert store.head_object(bucket, "dir") is None


def test_download_of_a_nested_key(store_with: StoreWithObjects, tmp_path: Path) -> None:
    store, bucket = store_with({"a/b/c/deep.bin": b"\x00\x01payload"})
    [obj] = store.list_objects(bucket, "a/")
    dest = tmp_path / "out" / "b" / "c" / "deep.bin"

    store.download_file(obj, dest)

    assert dest.read_bytes() == b"\x00\x01payload"
    assert os.listdir(dest.parent) == ["deep.bin"]
    # Readable like any new file (not a private 0600 temp file): containers may run as others.
    assert stat.S_IMODE(dest.stat().st_mode) == 0o666 & ~current_umask()


def test_download_of_an_empty_object(store_with: StoreWithObjects, tmp_path: Path) -> None:
    store, bucket = store_with({"out/_SUCCESS": b""})
    [obj] = store.list_objects(bucket, "out/")

    store.download_file(obj, tmp_path / "_SUCCESS")

    assert obj.size == 0
    assert (tmp_path / "_SUCCESS").read_bytes() == b""


def test_download_replaces_an_existing_file(store_with: StoreWithObjects, tmp_path: Path) -> None:
    store, bucket = store_with({"k": b"new"})
    dest = tmp_path / "k"
    dest.write_bytes(b"old content")

    store.download_file(ObjectInfo(bucket, "k", 3, None), dest)

    assert dest.read_bytes() == b"new"


def test_missing_key_fails_and_leaves_no_file(store_with: StoreWithObjects, tmp_path: Path) -> None:
    store, bucket = store_with({"present": b"x"})
    dest_dir = tmp_path / "dest"
    dest_dir.mkdir()

    with pytest.raises(StoreError) as raised:
        store.download_file(ObjectInfo(bucket, "absent/key", 1, None), dest_dir / "key")

    assert raised.value.code == "NoSuchKey"
    assert "absent/key" in str(raised.value) and bucket in str(raised.value)
    assert list(dest_dir.iterdir()) == []


def test_failed_download_leaves_no_temporary_file(
    store_with: StoreWithObjects, tmp_path: Path
) -> None:
    store, bucket = store_with({"k": b"content"})
    dest = tmp_path / "dest" / "k"
    dest.mkdir(parents=True)  # the content is fetched, then cannot replace a folder

    with pytest.raises(IsADirectoryError):
        store.download_file(ObjectInfo(bucket, "k", 7, None), dest)

    assert list(dest.parent.iterdir()) == [dest]


def test_missing_bucket(store_with: StoreWithObjects) -> None:
    store, _ = store_with({})

    with pytest.raises(StoreError) as raised:
        store.list_objects("no-such-bucket", "")

    assert raised.value.code == "NoSuchBucket"
    assert "no-such-bucket" in str(raised.value)


def test_upload_then_download_round_trip(store_with: StoreWithObjects, tmp_path: Path) -> None:
    store, bucket = store_with({})
    source = tmp_path / "source.txt"
    source.write_text("round trip")

    store.upload_file(source, bucket, "out/nested/result.txt")
    info = store.head_object(bucket, "out/nested/result.txt")
    assert info is not None and info.size == 10
    store.download_file(info, tmp_path / "back.txt")

    assert (tmp_path / "back.txt").read_text() == "round trip"


LARGE = 20 * 1024 * 1024  # above the 8 MB multipart threshold: three parts


def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as stream:
        for chunk in iter(lambda: stream.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def large_file(path: Path) -> Path:
    path.write_bytes(os.urandom(LARGE))
    return path
