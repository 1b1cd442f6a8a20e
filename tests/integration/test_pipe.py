"""Pipe mode feeding: a real FIFO on this host, read by a thread the way a container reads it,
fed from a real S3 endpoint (moto's server). No Docker needed. The same tests against the folder
store, and what needs no store at all: tests/unit/test_pipe.py."""

from __future__ import annotations

import pytest
from s3_endpoint import S3Helper

# The behaviour both kinds of store share, run against the folder store in
# tests/unit/test_pipe.py: here against S3 (through the fixture below).
from unit.test_pipe import (  # noqa: F401
    Bucket,
    test_gzip_objects_are_decompressed,
    test_object_deleted_before_streaming_fails_with_client_error,
    test_object_replaced_before_streaming_fails,
    test_objects_stream_in_the_given_order,
    test_reader_that_closes_early_ends_the_feeder_without_error,
)

from localproc.storage import open_store

# Every wait below is bounded; this only catches a hang the waits would not.
pytestmark = pytest.mark.timeout(120)


@pytest.fixture(params=["s3"])
def bucket(request: pytest.FixtureRequest) -> Bucket:
    s3: S3Helper = request.getfixturevalue("s3")
    name = s3.make_bucket()
    return Bucket(
        open_store(None, s3.endpoint_url, "us-east-1"),
        name,
        lambda key, body: s3.client.put_object(Bucket=name, Key=key, Body=body),
        lambda key: s3.client.delete_object(Bucket=name, Key=key),
    )
