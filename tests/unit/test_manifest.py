"""ManifestFile inputs: reading SageMaker's manifest format from the folder store, what both stores
share (helpers/manifest_cases.py) and the size limit; from a real S3 endpoint:
tests/integration/test_manifest_s3.py."""

from __future__ import annotations

from pathlib import Path

import pytest

# The tests both stores share, collected here too.
from helpers.manifest_cases import (  # noqa: F401
    Buckets,
    test_byte_order_mark_and_extra_prefix_members,
    test_duplicate_entries_are_kept,
    test_entries_that_cannot_be_keys_are_missing,
    test_malformed_manifest,
    test_manifest_in_a_missing_bucket,
    test_manifest_itself_missing,
    test_manifest_uri_naming_a_bucket_only,
    test_many_missing_entries_are_summarised,
    test_missing_entries_are_named,
    test_order_preserved_over_many_parallel_heads,
    test_prefix_bucket_missing,
    test_prefix_in_another_bucket_and_joined_as_a_string,
    test_prefix_naming_only_a_bucket,
    test_valid_manifest_in_manifest_order,
)

from localproc.errors import JobFailure
from localproc.storage import FolderStore, open_store
from localproc.transfer import manifest as manifest_module
from localproc.transfer.manifest import read_manifest


@pytest.fixture(params=["folder"])
def buckets(tmp_path: Path) -> Buckets:
    """Two buckets in a folder store (the S3 side of these shared tests:
    tests/integration/test_manifest_s3.py)."""
    root = tmp_path / "root"
    for name in ("data-bucket", "other-bucket"):
        (root / name).mkdir(parents=True)

    def put_folder(bucket: str, key: str, body: bytes) -> None:
        path = root / bucket / key
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(body)

    return Buckets(open_store(root, None, None), ("data-bucket", "other-bucket"), put_folder)


# --- size limit ----------------------------------------------------------------------------------


def test_manifest_larger_than_the_limit_is_refused_unread(tmp_path: Path) -> None:
    (tmp_path / "b").mkdir()
    with open(tmp_path / "b" / "huge.json", "wb") as sparse:
        sparse.truncate(manifest_module.MAX_MANIFEST_BYTES + 1)  # sparse: no disk, no reading
    store = FolderStore(tmp_path)

    with pytest.raises(JobFailure) as raised:
        read_manifest(store, "s3://b/huge.json", "data")

    assert "larger than 64 MiB are not supported" in raised.value.reason
