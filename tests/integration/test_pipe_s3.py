"""Pipe mode feeding from a real S3 endpoint (moto's server, over HTTP) into a real FIFO on this
host, read by a thread the way a container reads it: what the feeder does whichever store it
reads (helpers/pipe_cases.py). No Docker needed."""

from __future__ import annotations

import pytest

# The tests both stores share, collected here too.
from helpers.pipe_cases import (  # noqa: F401
    Bucket,
    test_gzip_objects_are_decompressed,
    test_object_deleted_before_streaming_fails_with_client_error,
    test_object_replaced_before_streaming_fails,
    test_objects_stream_in_the_given_order,
    test_reader_that_closes_early_ends_the_feeder_without_error,
)
from s3_endpoint import S3Helper

from localproc.storage import open_store

# Every wait below is bounded; this only catches a hang the waits would not.
pytestmark = pytest.mark.timeout(120)


@pytest.fixture(params=["s3"])
def bucket(s3: S3Helper) -> Bucket:
    """A bucket in S3 (the folder side of these shared tests: tests/unit/test_pipe.py)."""
    name = s3.make_bucket()
    return Bucket(
        open_store(None, s3.endpoint_url, "us-east-1"),
        name,
        lambda key, body: s3.client.put_object(Bucket=name, Key=key, Body=body),
        lambda key: s3.client.delete_object(Bucket=name, Key=key),
    )
