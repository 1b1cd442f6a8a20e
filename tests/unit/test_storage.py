"""The object stores: the behaviour every store shares, against the folder store, and the folder
store's own rules; S3 URIs. The same shared tests against a real S3 endpoint, and S3 alone:
tests/integration/test_storage.py."""

from __future__ import annotations

import hashlib
import os
import stat
from collections.abc import Callable
from pathlib import Path

import pytest

from localproc.storage import (
    FolderStore,
    ObjectInfo,
    ObjectStore,
    StoreError,
    parse_s3_uri,
)

# Keys that S3 orders by UTF-8 bytes: uppercase before lowercase, `/` (0x2F) before digits,
# and a non-ASCII key after every ASCII one.
KEYS = ["data/B.csv", "data/a.csv", "data/a/nested.csv", "data/a0.csv", "data/ü.csv", "data/Ä.csv"]
S3_ORDER = sorted(KEYS, key=lambda key: key.encode("utf-8"))

LARGE = 20 * 1024 * 1024  # above the 8 MB multipart threshold: three parts


def put_folder(root: Path, bucket: str, objects: dict[str, bytes]) -> None:
    (root / bucket).mkdir(parents=True, exist_ok=True)
    for key, body in objects.items():
        path = root / bucket / key
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(body)


def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as stream:
        for chunk in iter(lambda: stream.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def large_file(path: Path) -> Path:
    path.write_bytes(os.urandom(LARGE))
    return path


def current_umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


@pytest.fixture
def folder_store(tmp_path: Path) -> FolderStore:
    return FolderStore(tmp_path / "root")


# A store with a bucket holding some objects, whichever kind of store it is: behaviour the two
# must share is tested once against both.
StoreWithObjects = Callable[[dict[str, bytes]], tuple[ObjectStore, str]]


@pytest.fixture(params=["folder"])
def store_with(request: pytest.FixtureRequest, tmp_path: Path) -> StoreWithObjects:
    def make(objects: dict[str, bytes]) -> tuple[ObjectStore, str]:
        root = tmp_path / "root"
        put_folder(root, "bucket", objects)
        return FolderStore(root), "bucket"

    return make


# --- behaviour both stores share -------------------------------------------------------------


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
