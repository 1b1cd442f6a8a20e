"""The S3 object store through a real endpoint (moto's server, over HTTP): what both stores share
(helpers/store_cases.py) and what only S3 does."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

# The tests both stores share, collected here too.
from helpers.store_cases import (  # noqa: F401
    LARGE,
    StoreWithObjects,
    large_file,
    sha256,
    test_download_of_a_nested_key,
    test_download_of_an_empty_object,
    test_download_replaces_an_existing_file,
    test_failed_download_leaves_no_temporary_file,
    test_head_object,
    test_listing_is_in_s3_order,
    test_missing_bucket,
    test_missing_key_fails_and_leaves_no_file,
    test_prefix_matches_keys_as_strings,
    test_upload_then_download_round_trip,
)
from s3_endpoint import S3Helper

from localproc.storage import (
    FolderStore,
    ObjectInfo,
    ObjectStore,
    S3Store,
    StoreError,
    StoreUnreachable,
    open_store,
)
from localproc.storage.errors import CannotRunHere


@pytest.fixture(params=["s3"])
def store_with(s3: S3Helper) -> StoreWithObjects:
    """An S3 bucket holding the given objects (the folder side of these shared tests:
    tests/unit/test_storage.py)."""

    def make(objects: dict[str, bytes]) -> tuple[ObjectStore, str]:
        bucket = s3.make_bucket()
        put_s3(s3, bucket, objects)
        return S3Store(s3.endpoint_url, "us-east-1"), bucket

    return make


def closed_port() -> int:
    """A port on 127.0.0.1 that nothing listens on: bound by the OS, then released."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def s3_store(s3: S3Helper) -> S3Store:
    return S3Store(s3.endpoint_url, "us-east-1")


def test_listing_pages_through_continuation_tokens(s3: S3Helper) -> None:
    bucket = s3.make_bucket()
    keys = [f"part-{i:03d}" for i in range(11)]
    put_s3(s3, bucket, {key: b"x" for key in keys})
    store = S3Store(s3.endpoint_url, "us-east-1", list_page_size=3)

    assert [obj.key for obj in store.list_objects(bucket, "part-")] == keys


def test_listing_includes_folder_markers(s3: S3Helper, s3_store: S3Store) -> None:
    bucket = s3.make_bucket()
    put_s3(s3, bucket, {"data/": b"", "data/x": b"x"})

    assert [obj.key for obj in s3_store.list_objects(bucket, "data")] == ["data/", "data/x"]


def test_large_multipart_round_trip(s3: S3Helper, s3_store: S3Store, tmp_path: Path) -> None:
    bucket = s3.make_bucket()
    source = large_file(tmp_path / "large.bin")

    s3_store.upload_file(source, bucket, "big/large.bin")
    [info] = s3_store.list_objects(bucket, "big/")
    s3_store.download_file(info, tmp_path / "back" / "large.bin")

    assert info.size == LARGE
    assert info.etag is not None and info.etag.endswith("-3")  # uploaded in three parts
    assert sha256(tmp_path / "back" / "large.bin") == sha256(source)


def test_download_of_a_replaced_object_fails_and_leaves_nothing(
    s3: S3Helper, s3_store: S3Store, tmp_path: Path
) -> None:
    bucket = s3.make_bucket()
    s3_store.upload_file(large_file(tmp_path / "large.bin"), bucket, "big.bin")
    # What a listing said before the object was replaced: the ranged GETs must not mix versions.
    stale = ObjectInfo(bucket, "big.bin", LARGE, "0123456789abcdef0123456789abcdef-3")
    dest_dir = tmp_path / "dest"

    with pytest.raises(StoreError) as raised:
        s3_store.download_file(stale, dest_dir / "big.bin")

    assert raised.value.code == "PreconditionFailed"
    assert list(dest_dir.iterdir()) == []


def test_download_of_a_replaced_small_object_fails_and_leaves_nothing(
    s3: S3Helper, s3_store: S3Store, tmp_path: Path
) -> None:
    bucket = s3.make_bucket()
    s3.client.put_object(Bucket=bucket, Key="small.txt", Body=b"second version")
    # A listing taken before the object was replaced: one GET, conditional on that ETag.
    stale = ObjectInfo(bucket, "small.txt", 13, "0123456789abcdef0123456789abcdef")
    dest_dir = tmp_path / "dest"
    dest_dir.mkdir()

    with pytest.raises(StoreError) as raised:
        s3_store.download_file(stale, dest_dir / "small.txt")

    assert raised.value.code == "PreconditionFailed"
    assert list(dest_dir.iterdir()) == []


def test_upload_with_kms_key(s3: S3Helper, s3_store: S3Store, tmp_path: Path) -> None:
    import boto3

    kms = boto3.client("kms", endpoint_url=s3.endpoint_url, region_name="us-east-1")
    key_arn = kms.create_key(Description="localproc test")["KeyMetadata"]["Arn"]
    bucket = s3.make_bucket()
    source = tmp_path / "secret.txt"
    source.write_text("secret")

    s3_store.upload_file(source, bucket, "secret.txt", kms_key_id=key_arn)
    s3_store.upload_file(source, bucket, "plain.txt")

    encrypted = s3.client.head_object(Bucket=bucket, Key="secret.txt")
    assert encrypted["ServerSideEncryption"] == "aws:kms"
    assert encrypted["SSEKMSKeyId"] == key_arn
    assert s3.client.head_object(Bucket=bucket, Key="plain.txt").get("SSEKMSKeyId") is None


def test_upload_to_missing_bucket(s3_store: S3Store, tmp_path: Path) -> None:
    source = tmp_path / "f"
    source.write_text("x")

    with pytest.raises(StoreError) as raised:
        s3_store.upload_file(source, "no-such-bucket", "k")

    assert raised.value.code == "NoSuchBucket"


def test_unreachable_endpoint(aws_test_env: None) -> None:
    endpoint = f"http://127.0.0.1:{closed_port()}"
    store = S3Store(endpoint, "us-east-1", retry_attempts=1)

    with pytest.raises(StoreUnreachable) as raised:
        store.list_objects("bucket", "prefix/")

    assert isinstance(raised.value, CannotRunHere)
    assert endpoint in str(raised.value)
    assert "--s3-endpoint-url" in str(raised.value) and "--s3-root" in str(raised.value)


def test_unreachable_endpoint_on_download_leaves_nothing(
    aws_test_env: None, tmp_path: Path
) -> None:
    store = S3Store(f"http://127.0.0.1:{closed_port()}", "us-east-1", retry_attempts=1)

    with pytest.raises(StoreUnreachable):
        store.download_file(ObjectInfo("bucket", "k", 1, "abc"), tmp_path / "k")

    assert list(tmp_path.iterdir()) == []


def test_no_credentials(aws_test_env: None, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("AWS_ACCESS_KEY_ID")
    monkeypatch.delenv("AWS_SECRET_ACCESS_KEY")
    store = S3Store(f"http://127.0.0.1:{closed_port()}", "us-east-1")

    with pytest.raises(StoreUnreachable, match="credentials"):
        store.head_object("bucket", "key")


def test_describe(s3: S3Helper, monkeypatch: pytest.MonkeyPatch) -> None:
    assert S3Store(s3.endpoint_url, "eu-west-1").describe() == f"S3 endpoint {s3.endpoint_url}"
    assert S3Store(None, "eu-west-1").describe() == "S3 (AWS, region eu-west-1)"
    # boto3 reads the endpoint from the environment itself.
    monkeypatch.setenv("AWS_ENDPOINT_URL_S3", s3.endpoint_url)
    assert S3Store(None, None).describe() == f"S3 endpoint {s3.endpoint_url}"
    assert S3Store(None, None).region == "us-east-1"


def test_open_store(tmp_path: Path, s3: S3Helper) -> None:
    folder = open_store(tmp_path, "http://ignored", "eu-west-1")
    assert isinstance(folder, FolderStore) and folder.describe() == f"folder {tmp_path}"
    remote = open_store(None, s3.endpoint_url, None)
    assert isinstance(remote, S3Store) and isinstance(remote, ObjectStore)


def put_s3(s3: S3Helper, bucket: str, objects: dict[str, bytes]) -> None:
    for key, body in objects.items():
        s3.client.put_object(Bucket=bucket, Key=key, Body=body)
