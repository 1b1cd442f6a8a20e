"""`open_object`: objects read as streams from the folder store, what both stores share
(helpers/stream_cases.py) and what only the folder store does; from S3 and from an endpoint that
breaks off in the middle of a body: tests/integration/test_storage_streams_s3.py."""

from __future__ import annotations

import os
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

from localproc.storage import (
    FolderStore,
    ObjectInfo,
    ObjectStore,
    StoreError,
)


@pytest.fixture(params=["folder"])
def store_with(tmp_path: Path) -> StoreWithObjects:
    """A folder store with a bucket holding the given objects (the S3 side of these shared
    tests: tests/integration/test_storage_streams_s3.py)."""

    def make(objects: dict[str, bytes]) -> tuple[ObjectStore, str]:
        root = tmp_path / "root"
        (root / "bucket").mkdir(parents=True)
        for key, body in objects.items():
            path = root / "bucket" / key
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(body)
        return FolderStore(root), "bucket"

    return make


# --- both stores ---------------------------------------------------------------------------------


# --- S3 ----------------------------------------------------------------------------------------


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
