"""The input cache: an unchanged object is downloaded once across runs; a changed one again;
`--no-cache` always downloads; a cached file changed through a staged link is never served;
the cache is trimmed to its cap."""

from __future__ import annotations

import logging
import re
from typing import Any

import pytest
from docker_engine import Localproc, job_payload, s3_input, unique_name


def gets_of(caplog: pytest.LogCaptureFixture, bucket: str, key: str) -> int:
    pattern = re.compile(rf'"GET /{bucket}/{re.escape(key)} ')
    return sum(1 for r in caplog.records if pattern.search(r.getMessage()))


def test_unchanged_inputs_are_not_downloaded_again(
    localproc: Localproc, s3: Any, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="werkzeug")
    bucket = s3.make_bucket()
    s3.client.put_object(Bucket=bucket, Key="in/data.bin", Body=b"x" * 100_000)

    def run(*extra: str) -> None:
        payload = job_payload(
            unique_name("cached"),
            entrypoint=["cat", "/opt/ml/processing/in/data.bin"],
            inputs=[s3_input("data", f"s3://{bucket}/in/", "/opt/ml/processing/in")],
        )
        result = localproc(
            "run", str(localproc.write_payload(payload)), "--s3-endpoint-url", s3.endpoint_url,
            *extra,
        )  # fmt: skip
        assert result.exit_code == 0, result.output
        assert "x" * 1000 in result.stdout

    run()
    run()
    assert gets_of(caplog, bucket, "in/data.bin") == 1  # the second run used the cache
    run("--no-cache")
    assert gets_of(caplog, bucket, "in/data.bin") == 2
    s3.client.put_object(Bucket=bucket, Key="in/data.bin", Body=b"y" * 100_000)  # new ETag
    payload = job_payload(
        unique_name("changed"),
        entrypoint=["head", "-c", "5", "/opt/ml/processing/in/data.bin"],
        inputs=[s3_input("data", f"s3://{bucket}/in/", "/opt/ml/processing/in")],
    )
    changed = localproc(
        "run", str(localproc.write_payload(payload)), "--s3-endpoint-url", s3.endpoint_url
    )
    assert "algo-1 | yyyyy" in changed.stdout
    assert gets_of(caplog, bucket, "in/data.bin") == 3
