"""open_object against S3: through a real endpoint (moto's server, over HTTP), what both stores
share (helpers/stream_cases.py), and from an endpoint that breaks off in the middle of a body."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

# The tests both stores share, collected here too.
from helpers.stream_cases import (  # noqa: F401
    StoreWithObjects,
    test_large_object_streams_in_bounded_chunks,
    test_listing_info_opens_too,
    test_missing_bucket,
    test_missing_key,
    test_object_deleted_after_listing,
    test_object_replaced_after_listing,
    test_reads_the_content,
    test_stream_closed_after_the_block,
)
from s3_endpoint import S3Helper

from localproc.storage import (
    ObjectInfo,
    ObjectStore,
    S3Store,
    StoreError,
    StoreUnreachable,
)


@pytest.fixture(params=["s3"])
def store_with(s3: S3Helper) -> StoreWithObjects:
    """An S3 bucket holding the given objects (the folder side of these shared tests:
    tests/unit/test_storage_streams.py)."""

    def make(objects: dict[str, bytes]) -> tuple[ObjectStore, str]:
        bucket = s3.make_bucket()
        for key, body in objects.items():
            s3.client.put_object(Bucket=bucket, Key=key, Body=body)
        return S3Store(s3.endpoint_url, "us-east-1"), bucket

    return make


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
