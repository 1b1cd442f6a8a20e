"""ManifestFile inputs read from a real S3 endpoint (moto's server, over HTTP): what both stores
share (helpers/manifest_cases.py), and a manifest named by its https:// URI."""

from __future__ import annotations

import json

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
from s3_endpoint import S3Helper

from localproc.storage import open_store
from localproc.transfer.manifest import read_manifest


@pytest.fixture(params=["s3"])
def buckets(s3: S3Helper) -> Buckets:
    """Two buckets in S3 (the folder side of these shared tests: tests/unit/test_manifest.py)."""

    def put_s3(bucket: str, key: str, body: bytes) -> None:
        s3.client.put_object(Bucket=bucket, Key=key, Body=body)

    store = open_store(None, s3.endpoint_url, "us-east-1")
    return Buckets(store, (s3.make_bucket(), s3.make_bucket()), put_s3)


def test_https_uri_of_the_manifest(s3: S3Helper) -> None:
    bucket = s3.make_bucket()
    s3.client.put_object(Bucket=bucket, Key="d/a", Body=b"a")
    s3.client.put_object(
        Bucket=bucket, Key="m.json", Body=json.dumps([{"prefix": f"s3://{bucket}/d/"}, "a"])
    )
    store = open_store(None, s3.endpoint_url, "us-east-1")

    manifest = read_manifest(store, f"https://{bucket}.s3.us-east-1.amazonaws.com/m.json", "data")

    assert [obj.key for obj in manifest.objects] == ["d/a"]
