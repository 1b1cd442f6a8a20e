"""How a job ends: exit codes, FailureReason, ExitMessage, outputs uploaded on success and on
failure, symlinks never followed, and runs that cannot happen here (exit 4, nothing created). The
tests marked `docker_and_remote` also run on a remote engine reached over TCP
(tests/engine_nodes.py), where outputs come back as archives from a container: hostile ones."""

from __future__ import annotations

import time
from typing import Any

from docker_engine import (
    Localproc,
    docker_and_remote,
    job_payload,
    resources_created_since,
    s3_output,
    script_input,
    unique_name,
)

FAILING_SCRIPT = r"""
import pathlib, sys
pathlib.Path('/opt/ml/processing/output/partial.txt').write_text('written before failing')
pathlib.Path('/opt/ml/processing/output/nested/deeper').mkdir(parents=True)
pathlib.Path('/opt/ml/processing/output/nested/deeper/log.txt').write_text('debug me')
pathlib.Path('/opt/ml/output/message').write_text('ValueError: bad row 17' + 'x' * 2000)
print('about to fail', flush=True)
sys.exit(3)
"""


@docker_and_remote
def test_failing_container_records_reason_exit_message_and_still_uploads(
    localproc: Localproc, s3: Any
) -> None:
    bucket = s3.make_bucket()
    name = unique_name("fails")
    payload = job_payload(
        name,
        entrypoint=script_input(s3, bucket, FAILING_SCRIPT)[0],
        inputs=[script_input(s3, bucket, FAILING_SCRIPT)[1]],
        outputs=[s3_output("debug", f"s3://{bucket}/debug", "/opt/ml/processing/output")],
    )

    result = localproc(
        "run", str(localproc.write_payload(payload)), "--s3-endpoint-url", s3.endpoint_url
    )

    assert result.exit_code == 1, result.output
    assert "algo-1 | about to fail" in result.stdout
    record = localproc.record(name)
    assert record["ProcessingJobStatus"] == "Failed"
    assert record["FailureReason"].startswith("AlgorithmError: algo-1 exited with code 3")
    assert record["ExitMessage"].startswith("ValueError: bad row 17")
    assert len(record["ExitMessage"]) == 1024
    assert "ProcessingEndTime" in record and "ProcessingStartTime" in record
    listing = s3.client.list_objects_v2(Bucket=bucket, Prefix="debug/")["Contents"]
    assert sorted(o["Key"] for o in listing) == ["debug/nested/deeper/log.txt", "debug/partial.txt"]


PLANT_SYMLINKS = r"""
import os
out = '/opt/ml/processing/output'
os.symlink('/etc/passwd', out + '/passwd-link')
os.symlink('/etc', out + '/etc-dir-link')
os.mkfifo(out + '/a-fifo')
open(out + '/real.txt', 'w').write('real')
os.symlink('/opt/ml/output/message', '/opt/ml/output/message-link')
"""


@docker_and_remote
def test_symlinks_and_special_files_are_never_uploaded(localproc: Localproc, s3: Any) -> None:
    bucket = s3.make_bucket()
    name = unique_name("symlinks")
    payload = job_payload(
        name,
        entrypoint=script_input(s3, bucket, PLANT_SYMLINKS)[0],
        inputs=[script_input(s3, bucket, PLANT_SYMLINKS)[1]],
        outputs=[s3_output("out", f"s3://{bucket}/out/", "/opt/ml/processing/output")],
    )

    result = localproc(
        "run", str(localproc.write_payload(payload)), "--s3-endpoint-url", s3.endpoint_url
    )

    assert result.exit_code == 0, result.output
    listing = s3.client.list_objects_v2(Bucket=bucket, Prefix="out/")["Contents"]
    assert [o["Key"] for o in listing] == ["out/real.txt"]
    assert "not uploaded (not a regular file): a-fifo" in result.stderr


def test_missing_image_exits_4_and_creates_nothing(
    localproc: Localproc, s3: Any, docker_client: Any
) -> None:
    name = unique_name("noimage")
    payload = job_payload(name, image="localproc-test/does-not-exist:1")
    since = time.time()

    result = localproc(
        "run", str(localproc.write_payload(payload)), "--s3-endpoint-url", s3.endpoint_url
    )

    assert result.exit_code == 4
    assert "Image 'localproc-test/does-not-exist:1' is not on this host" in result.stderr
    assert "docker pull" in result.stderr
    assert not localproc.job_dir(name).exists()
    assert resources_created_since(docker_client, since, localproc.names) == []


def test_no_docker_engine_exits_4(localproc: Localproc, s3: Any) -> None:
    name = unique_name("nodocker")
    payload = job_payload(name)

    result = localproc(
        "run",
        str(localproc.write_payload(payload)),
        "--s3-endpoint-url",
        s3.endpoint_url,
        env={"DOCKER_HOST": "unix:///nonexistent/docker.sock"},
    )

    assert result.exit_code == 4
    assert "No Docker engine answers" in result.stderr
    assert not localproc.job_dir(name).exists()


def test_unreachable_s3_endpoint_exits_4(localproc: Localproc, docker_client: Any) -> None:
    import socket

    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        closed_port = probe.getsockname()[1]
    name = unique_name("nos3")
    payload = job_payload(
        name,
        inputs=[
            {
                "InputName": "data",
                "S3Input": {
                    "S3Uri": "s3://bucket/data/",
                    "LocalPath": "/opt/ml/processing/data",
                    "S3DataType": "S3Prefix",
                },
            }
        ],
    )

    result = localproc(
        "run",
        str(localproc.write_payload(payload)),
        "--s3-endpoint-url",
        f"http://127.0.0.1:{closed_port}",
        env={"AWS_ACCESS_KEY_ID": "x", "AWS_SECRET_ACCESS_KEY": "y"},
    )

    assert result.exit_code == 4, result.output
    assert f"127.0.0.1:{closed_port}" in result.stderr
    assert not localproc.job_dir(name).exists()
