"""`open_object`: objects read as streams, from a real S3 endpoint (moto's server) and the folder
store, and from an endpoint that breaks off in the middle of a body."""

from __future__ import annotations

import hashlib
import os
import socket
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from s3_endpoint import S3Helper

from localproc.storage import (
    FolderStore,
    ObjectInfo,
    ObjectStore,
    S3Store,
    StoreError,
    StoreUnreachable,
)

CHUNK = 1024 * 1024
LARGE = 20 * 1024 * 1024  # several chunks, and more than any buffer the stores use

StoreWithObjects = Callable[[dict[str, bytes]], tuple[ObjectStore, str]]


@pytest.fixture(params=["s3", "folder"])
def store_with(request: pytest.FixtureRequest, tmp_path: Path) -> StoreWithObjects:
    """A store with a bucket holding the given objects, whichever kind of store it is."""

    def make(objects: dict[str, bytes]) -> tuple[ObjectStore, str]:
        if request.param == "s3":
            s3: S3Helper = request.getfixturevalue("s3")
            bucket = s3.make_bucket()
            for key, body in objects.items():
                s3.client.put_object(Bucket=bucket, Key=key, Body=body)
            return S3Store(s3.endpoint_url, "us-east-1"), bucket
        root = tmp_path / "root"
        (root / "bucket").mkdir(parents=True)
        for key, body in objects.items():
            path = root / "bucket" / key
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(body)
        return FolderStore(root), "bucket"

    return make


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


# --- both stores ---------------------------------------------------------------------------------


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


# --- S3 ----------------------------------------------------------------------------------------


def test_s3_stream_translates_a_body_cut_short(aws_test_env: None) -> None:
    """An endpoint that promises 1000 bytes and sends 10: the read fails with StoreError instead
    of the object looking shorter than it is."""
    with _truncating_endpoint(promised=1000, sent=b"0123456789") as endpoint:
        store = S3Store(endpoint, "us-east-1", retry_attempts=1)
        obj = ObjectInfo("bucket", "cut.bin", 1000, "etag")

        with pytest.raises(StoreError) as raised, store.open_object(obj) as stream:
            stream.read()

    assert "s3://bucket/cut.bin" in str(raised.value)
    assert raised.value.key == "cut.bin"


def test_s3_download_of_a_small_object_fetches_a_cut_body_again(
    aws_test_env: None, tmp_path: Path
) -> None:
    whole = bytes(range(256)) * 4
    bodies = [whole[:10], whole[:500], whole]  # cut twice, then whole
    with _scripted_endpoint(len(whole), bodies) as (endpoint, served):
        store = S3Store(endpoint, "us-east-1", retry_attempts=1)
        store.download_file(ObjectInfo("bucket", "small.bin", len(whole), "etag"), tmp_path / "f")

    assert len(served) == 3
    assert (tmp_path / "f").read_bytes() == whole


def test_s3_download_of_a_small_object_gives_up_after_three_cut_bodies(
    aws_test_env: None, tmp_path: Path
) -> None:
    with _scripted_endpoint(1000, [b"0123456789"] * 4) as (endpoint, served):
        store = S3Store(endpoint, "us-east-1", retry_attempts=1)
        with pytest.raises(StoreError) as raised:
            store.download_file(ObjectInfo("bucket", "cut.bin", 1000, "etag"), tmp_path / "f")

    assert len(served) == 3
    assert raised.value.key == "cut.bin"
    assert list(tmp_path.iterdir()) == []  # no partial file, no temporary file


def test_s3_unreachable(aws_test_env: None) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    store = S3Store(f"http://127.0.0.1:{port}", "us-east-1", retry_attempts=1)

    with pytest.raises(StoreUnreachable), store.open_object(ObjectInfo("b", "k", 1, None)):
        pass


def test_s3_get_without_etag_is_unconditional(s3: S3Helper) -> None:
    bucket = s3.make_bucket()
    s3.client.put_object(Bucket=bucket, Key="k", Body=b"v1")
    s3.client.put_object(Bucket=bucket, Key="k", Body=b"v2")
    store = S3Store(s3.endpoint_url, "us-east-1")

    with store.open_object(ObjectInfo(bucket, "k", 2, None)) as stream:
        assert stream.read() == b"v2"


# --- folder store ------------------------------------------------------------------------------


def test_folder_store_does_not_open_a_fifo(tmp_path: Path) -> None:
    """A FIFO under the root is not an object; opening it must neither hang nor read it."""
    (tmp_path / "bucket").mkdir()
    os.mkfifo(tmp_path / "bucket" / "pipe")
    store = FolderStore(tmp_path)

    with (
        pytest.raises(StoreError) as raised,
        store.open_object(ObjectInfo("bucket", "pipe", 0, None)),
    ):
        pass

    assert raised.value.code == "NoSuchKey"


def test_folder_store_does_not_open_links_out_of_the_root(tmp_path: Path) -> None:
    secret = tmp_path / "secret.txt"
    secret.write_text("not for jobs")
    root = tmp_path / "root"
    (root / "bucket").mkdir(parents=True)
    (root / "bucket" / "link").symlink_to(secret)
    store = FolderStore(root)

    with (
        pytest.raises(StoreError) as raised,
        store.open_object(ObjectInfo("bucket", "link", 12, None)),
    ):
        pass

    assert raised.value.code == "NoSuchKey"


# --- a misbehaving endpoint ------------------------------------------------------------------


@contextmanager
def _truncating_endpoint(promised: int, sent: bytes) -> Iterator[str]:
    """An HTTP endpoint that answers one request with a 200 promising `promised` bytes, sends
    `sent`, and hangs up: what a dropped connection looks like to the client."""
    with _scripted_endpoint(promised, [sent]) as (endpoint, _served):
        yield endpoint


@contextmanager
def _scripted_endpoint(promised: int, bodies: list[bytes]) -> Iterator[tuple[str, list[bytes]]]:
    """Answers one request per connection, the n-th with a 200 promising `promised` bytes and
    sending `bodies[n]`, then hangs up; yields the URL and the list of request lines served."""
    listener = socket.create_server(("127.0.0.1", 0))
    served: list[bytes] = []

    def serve() -> None:
        for body in bodies:
            try:
                conn, _ = listener.accept()
            except OSError:
                return  # closed before any request came
            with conn:
                request = b""
                while b"\r\n\r\n" not in request:
                    data = conn.recv(65536)
                    if not data:
                        return
                    request += data
                served.append(request.split(b"\r\n", 1)[0])
                conn.sendall(
                    b"HTTP/1.1 200 OK\r\n"
                    + f"Content-Length: {promised}\r\n".encode()
                    + b'ETag: "etag"\r\nContent-Type: application/octet-stream\r\n'
                    + b"Connection: close\r\n\r\n"
                    + body
                )

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{listener.getsockname()[1]}", served
    finally:
        listener.close()
        thread.join(5)
