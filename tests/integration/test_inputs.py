"""File-mode inputs from a real S3 endpoint: key layout below LocalPath, single objects, folder
markers, empty prefixes and keys that would escape LocalPath."""

from __future__ import annotations

import json
from typing import Any

from docker_engine import Localproc, job_payload, s3_input, s3_output, script_input, unique_name

LIST_FILES = r"""
import json, os, pathlib
root = pathlib.Path('/opt/ml/processing/input')
files = {str(p.relative_to(root)): p.read_text() for p in root.rglob('*') if p.is_file()}
pathlib.Path('/opt/ml/processing/output/files.json').write_text(json.dumps(files))
"""


def run_listing_job(localproc: Localproc, s3: Any, bucket: str, inputs: list[dict]) -> tuple:
    name = unique_name("inputs")
    entrypoint, code = script_input(s3, bucket, LIST_FILES)
    code["S3Input"]["LocalPath"] = "/opt/ml/processing/code"
    payload = job_payload(
        name,
        entrypoint=[entrypoint[0], entrypoint[1], "/opt/ml/processing/code/script.py"],
        inputs=[*inputs, code],
        outputs=[s3_output("listing", f"s3://{bucket}/result", "/opt/ml/processing/output")],
    )
    result = localproc(
        "run", str(localproc.write_payload(payload)), "--s3-endpoint-url", s3.endpoint_url
    )
    return name, result


def staged_files(s3: Any, bucket: str) -> dict[str, str]:
    body = s3.client.get_object(Bucket=bucket, Key="result/files.json")["Body"].read()
    return json.loads(body)


def test_nested_keys_keep_their_paths_relative_to_the_prefix(localproc: Localproc, s3: Any) -> None:
    bucket = s3.make_bucket()
    for key in ["data/top.csv", "data/2024/01/a.csv", "data/2024/02/b.csv", "data/empty-folder/"]:
        s3.client.put_object(Bucket=bucket, Key=key, Body=key.encode())
    s3.client.put_object(Bucket=bucket, Key="elsewhere/c.csv", Body=b"not staged")

    _, result = run_listing_job(
        localproc,
        s3,
        bucket,
        [s3_input("data", f"s3://{bucket}/data/", "/opt/ml/processing/input/data")],
    )

    assert result.exit_code == 0, result.output
    assert staged_files(s3, bucket) == {
        "data/top.csv": "data/top.csv",
        "data/2024/01/a.csv": "data/2024/01/a.csv",
        "data/2024/02/b.csv": "data/2024/02/b.csv",
    }


def test_prefix_without_trailing_slash_and_single_object(localproc: Localproc, s3: Any) -> None:
    bucket = s3.make_bucket()
    s3.client.put_object(Bucket=bucket, Key="data/x/one.txt", Body=b"1")
    s3.client.put_object(Bucket=bucket, Key="code/run.py", Body=b"print()")

    _, result = run_listing_job(
        localproc,
        s3,
        bucket,
        [
            s3_input("data", f"s3://{bucket}/data/x", "/opt/ml/processing/input/data"),
            s3_input("code", f"s3://{bucket}/code/run.py", "/opt/ml/processing/input/code"),
        ],
    )

    assert result.exit_code == 0, result.output
    assert staged_files(s3, bucket) == {"data/one.txt": "1", "code/run.py": "print()"}


def test_empty_prefix_fails_the_job_before_the_containers_start(
    localproc: Localproc, s3: Any
) -> None:
    bucket = s3.make_bucket()
    s3.client.put_object(Bucket=bucket, Key="other/file", Body=b"x")

    name, result = run_listing_job(
        localproc,
        s3,
        bucket,
        [s3_input("data", f"s3://{bucket}/missing/", "/opt/ml/processing/input/data")],
    )

    assert result.exit_code == 1
    record = localproc.record(name)
    assert record["ProcessingJobStatus"] == "Failed"
    assert record["FailureReason"].startswith(
        f'ClientError: No S3 objects found under S3 URL "s3://{bucket}/missing/"'
    )
    assert "ProcessingStartTime" not in record  # no container ever started
    assert not (localproc.job_dir(name) / "logs").exists()


def test_key_escaping_local_path_is_never_written_and_fails_the_job(
    localproc: Localproc, s3: Any, tmp_path: Any
) -> None:
    bucket = s3.make_bucket()
    s3.client.put_object(Bucket=bucket, Key="data/ok.txt", Body=b"fine")
    s3.client.put_object(Bucket=bucket, Key="data//escape.txt", Body=b"absolute")

    name, result = run_listing_job(
        localproc,
        s3,
        bucket,
        [s3_input("data", f"s3://{bucket}/data/", "/opt/ml/processing/input/data")],
    )

    assert result.exit_code == 1
    reason = localproc.record(name)["FailureReason"]
    assert reason.startswith("ClientError: S3 object key 'data//escape.txt' of input 'data'")
    assert not list(localproc.state_dir.rglob("escape.txt"))
