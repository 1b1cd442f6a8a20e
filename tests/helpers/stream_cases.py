"""open_object, what both object stores must share, tested once against each:
tests/unit/test_storage_streams.py runs these against the folder store,
tests/integration/test_storage_streams_s3.py against S3 through a real endpoint. Each defines
the `store_with` fixture these ask for."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable
from typing import TYPE_CHECKING

import pytest

from localproc.storage import (
    FolderStore,
    ObjectInfo,
    ObjectStore,
    StoreError,
)

if TYPE_CHECKING:
    from s3_endpoint import S3Helper

CHUNK = 1024 * 1024
LARGE = 20 * 1024 * 1024  # several chunks, and more than any buffer the stores use


StoreWithObjects = Callable[[dict[str, bytes]], tuple[ObjectStore, str]]


def head(store: ObjectStore, bucket: str, key: str) -> ObjectInfo:
    info = store.head_object(bucket, key)
    assert info is not None
    return info


def read_in_chunks(store: ObjectStore, obj: ObjectInfo) -> tuple[bytes, list[int]]:
    sizes: list[int] = []
    digest = hashlib.sha256()
    with store.open_object(obj) as stream:
        while chunk := stream.read(CHUNK):
            sizes.append(len(chunk))
            digest.update(chunk)
    return digest.digest(), sizes


def test_reads_the_content(store_with: StoreWithObjects) -> None:
    store, bucket = store_with({"data/a/b.csv": b"x,y\n1,2\n", "empty": b""})

    with store.open_object(head(store, bucket, "data/a/b.csv")) as stream:
        assert stream.read() == b"x,y\n1,2\n"
    with store.open_object(head(store, bucket, "empty")) as stream:
        assert stream.read(CHUNK) == b""


def test_large_object_streams_in_bounded_chunks(store_with: StoreWithObjects) -> None:
    body = os.urandom(LARGE)
    store, bucket = store_with({"big.bin": body})

    digest, sizes = read_in_chunks(store, head(store, bucket, "big.bin"))

    assert digest == hashlib.sha256(body).digest()
    assert sum(sizes) == LARGE and max(sizes) <= CHUNK and len(sizes) == LARGE // CHUNK


def test_listing_info_opens_too(store_with: StoreWithObjects) -> None:
    store, bucket = store_with({"p/one": b"1", "p/two": b"22"})

    contents = []
    for obj in store.list_objects(bucket, "p/"):
        with store.open_object(obj) as stream:
            contents.append(stream.read())

    assert contents == [b"1", b"22"]


def test_missing_key(store_with: StoreWithObjects) -> None:
    store, bucket = store_with({"present": b"x"})

    with (
        pytest.raises(StoreError) as raised,
        store.open_object(ObjectInfo(bucket, "gone", 1, None)),
    ):
        pytest.fail("the block must not run for a missing object")

    assert raised.value.code == "NoSuchKey"
    assert f"s3://{bucket}/gone" in str(raised.value)
    assert (raised.value.bucket, raised.value.key) == (bucket, "gone")


def test_object_deleted_after_listing(
    store_with: StoreWithObjects, request: pytest.FixtureRequest
) -> None:
    store, bucket = store_with({"k": b"content"})
    obj = head(store, bucket, "k")
    if isinstance(store, FolderStore):
        (store.root / bucket / "k").unlink()
    else:
        request.getfixturevalue("s3").client.delete_object(Bucket=bucket, Key="k")

    with pytest.raises(StoreError) as raised, store.open_object(obj):
        pass

    assert raised.value.code == "NoSuchKey"


def test_object_replaced_after_listing(
    store_with: StoreWithObjects, request: pytest.FixtureRequest
) -> None:
    store, bucket = store_with({"k": b"first version"})
    obj = head(store, bucket, "k")
    if isinstance(store, FolderStore):
        path = store.root / bucket / "k"
        path.write_bytes(b"second, longer version")
    else:
        s3: S3Helper = request.getfixturevalue("s3")
        s3.client.put_object(Bucket=bucket, Key="k", Body=b"second, longer version")

    with pytest.raises(StoreError) as raised, store.open_object(obj):
        pass

    assert raised.value.code == "PreconditionFailed"
    assert f"s3://{bucket}/k" in str(raised.value)


def test_missing_bucket(store_with: StoreWithObjects) -> None:
    store, _ = store_with({})

    with (
        pytest.raises(StoreError) as raised,
        store.open_object(ObjectInfo("no-such-bucket-here", "k", 1, None)),
    ):
        pass

    assert raised.value.code == "NoSuchBucket"


def test_stream_closed_after_the_block(store_with: StoreWithObjects) -> None:
    store, bucket = store_with({"k": b"x" * 1000})

    with store.open_object(head(store, bucket, "k")) as stream:
        assert stream.read(10) == b"x" * 10  # stop early, as a pipe whose reader left does

    assert stream.closed
