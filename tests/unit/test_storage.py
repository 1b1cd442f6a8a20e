"""The object stores: what both must share (helpers/store_cases.py), against the folder store, and
what only the folder store does; S3 through a real endpoint:
tests/integration/test_storage_s3.py."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

# The tests both stores share, collected here too.
from helpers.store_cases import (  # noqa: F401
    LARGE,
    StoreWithObjects,
    large_file,
    put_folder,
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

from localproc.storage import (
    FolderStore,
    ObjectInfo,
    ObjectStore,
    StoreError,
    parse_s3_uri,
)


@pytest.fixture
def folder_store(tmp_path: Path) -> FolderStore:
    return FolderStore(tmp_path / "root")


@pytest.fixture(params=["folder"])
def store_with(tmp_path: Path) -> StoreWithObjects:
    """A folder store with a bucket holding the given objects (the S3 side of these shared
    tests: tests/integration/test_storage_s3.py)."""

    def make(objects: dict[str, bytes]) -> tuple[ObjectStore, str]:
        root = tmp_path / "root"
        put_folder(root, "bucket", objects)
        return FolderStore(root), "bucket"

    return make


# --- behaviour both stores share -------------------------------------------------------------


# --- S3 ---------------------------------------------------------------------------------------


# --- the folder store -------------------------------------------------------------------------


def test_folder_store_refuses_keys_that_escape(folder_store: FolderStore, tmp_path: Path) -> None:
    (folder_store.root / "bucket").mkdir(parents=True)
    source = tmp_path / "f"
    source.write_text("x")

    for key in ["../escaped", "a/../../escaped", "/absolute", "a//b", "./a", "dir/"]:
        with pytest.raises(StoreError) as raised:
            folder_store.upload_file(source, "bucket", key)
        assert raised.value.code == "InvalidKey", key
    with pytest.raises(StoreError):
        folder_store.upload_file(source, "..", "escaped")

    assert not (folder_store.root / "escaped").exists()
    assert not (tmp_path / "escaped").exists()
    assert folder_store.head_object("bucket", "../../f") is None


def test_folder_store_does_not_follow_links_out_of_the_root(
    folder_store: FolderStore, tmp_path: Path
) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret").write_text("secret")
    bucket = folder_store.root / "bucket"
    bucket.mkdir(parents=True)
    (bucket / "inside").write_text("inside")
    (bucket / "link-out").symlink_to(outside / "secret")
    (bucket / "dir-out").symlink_to(outside, target_is_directory=True)
    (bucket / "link-in").symlink_to(bucket / "inside")
    (bucket / "loop").symlink_to(bucket, target_is_directory=True)
    os.mkfifo(bucket / "fifo")

    keys = [obj.key for obj in folder_store.list_objects("bucket", "")]

    # The loop is visited once: its real folder is the bucket, which was already walked.
    assert keys == ["inside", "link-in"]
    assert folder_store.head_object("bucket", "link-out") is None
    assert folder_store.head_object("bucket", "dir-out/secret") is None
    assert folder_store.head_object("bucket", "fifo") is None
    with pytest.raises(StoreError):
        folder_store.download_file(ObjectInfo("bucket", "link-out", 6, None), tmp_path / "x")
    source = tmp_path / "f"
    source.write_text("x")
    with pytest.raises(StoreError):
        folder_store.upload_file(source, "bucket", "dir-out/planted")
    assert not (outside / "planted").exists()


def test_folder_store_upload_needs_the_bucket_folder(
    folder_store: FolderStore, tmp_path: Path
) -> None:
    source = tmp_path / "f"
    source.write_text("x")

    with pytest.raises(StoreError) as raised:
        folder_store.upload_file(source, "missing", "k")

    assert raised.value.code == "NoSuchBucket"
    assert str(folder_store.root / "missing") in str(raised.value)


def test_folder_store_upload_ignores_kms_and_replaces(
    folder_store: FolderStore, tmp_path: Path
) -> None:
    (folder_store.root / "bucket").mkdir(parents=True)
    source = tmp_path / "f"
    for content in ("first", "second"):
        source.write_text(content)
        folder_store.upload_file(source, "bucket", "out/f.txt", kms_key_id="alias/whatever")

    assert (folder_store.root / "bucket" / "out" / "f.txt").read_text() == "second"
    assert os.listdir(folder_store.root / "bucket" / "out") == ["f.txt"]


def test_folder_store_skips_half_written_files(folder_store: FolderStore) -> None:
    put_folder(folder_store.root, "bucket", {"k": b"x", ".localproc-tmp-0123456789abcdef": b"x"})

    assert [obj.key for obj in folder_store.list_objects("bucket", "")] == ["k"]


def test_folder_store_etag_changes_with_content(folder_store: FolderStore) -> None:
    put_folder(folder_store.root, "bucket", {"k": b"one"})
    before = folder_store.head_object("bucket", "k")
    path = folder_store.root / "bucket" / "k"
    path.write_bytes(b"three")

    after = folder_store.head_object("bucket", "k")

    assert before is not None and after is not None
    assert before.etag != after.etag
    assert after == folder_store.head_object("bucket", "k")  # stable while the file is unchanged


def test_folder_store_large_round_trip(folder_store: FolderStore, tmp_path: Path) -> None:
    (folder_store.root / "bucket").mkdir(parents=True)
    source = large_file(tmp_path / "large.bin")

    folder_store.upload_file(source, "bucket", "big/large.bin")
    [info] = folder_store.list_objects("bucket", "big/")
    folder_store.download_file(info, tmp_path / "back.bin")

    assert info.size == LARGE
    assert sha256(tmp_path / "back.bin") == sha256(source)


# --- S3 URIs ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("uri", "expected"),
    [
        ("s3://bucket/key/part.csv", ("bucket", "key/part.csv")),
        ("s3://bucket", ("bucket", "")),
        ("s3://bucket/", ("bucket", "")),
        ("s3://bucket/dir/", ("bucket", "dir/")),
        ("s3://bucket/a b?c#d%20", ("bucket", "a b?c#d%20")),  # taken literally
        ("s3://my.dotted.bucket/ü.csv", ("my.dotted.bucket", "ü.csv")),
        ("https://bucket.s3.us-west-2.amazonaws.com/key/x", ("bucket", "key/x")),
        ("https://bucket.s3.amazonaws.com/key", ("bucket", "key")),
        ("https://bucket.s3-eu-west-1.amazonaws.com/key", ("bucket", "key")),
        ("https://my.bucket.s3.eu-central-1.amazonaws.com/k", ("my.bucket", "k")),
        ("https://bucket.s3.amazonaws.com/", ("bucket", "")),
        ("https://bucket.s3.amazonaws.com/a%20b/c%2Bd", ("bucket", "a b/c+d")),
        ("https://s3.us-east-1.amazonaws.com/bucket/key/x", ("bucket", "key/x")),
        ("https://s3.amazonaws.com/bucket/key", ("bucket", "key")),
        ("https://s3.amazonaws.com/bucket", ("bucket", "")),
        ("https://bucket.s3.cn-north-1.amazonaws.com.cn/key", ("bucket", "key")),
    ],
)
def test_parse_s3_uri(uri: str, expected: tuple[str, str]) -> None:
    assert parse_s3_uri(uri) == expected


@pytest.mark.parametrize(
    "uri",
    [
        "bucket/key",
        "/local/path",
        "s3://",
        "s3:///key",
        "gs://bucket/key",
        "http://bucket.s3.amazonaws.com/key",
        "https://example.com/bucket/key",
        "https://s3.amazonaws.com/",
        "https://bucket.s3.amazonaws.com/key?versionId=3",
        "https://bucket.s3.amazonaws.com.evil.example/key",
    ],
)
def test_parse_s3_uri_rejects(uri: str) -> None:
    with pytest.raises(ValueError, match="S3"):
        parse_s3_uri(uri)
