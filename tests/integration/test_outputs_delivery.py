"""Outputs as the service delivers them, on real Docker and a real S3 endpoint: Continuous
uploads while the job runs, EndOfJob after it, SSE-KMS on every object, no symlinks followed,
and transfer progress on a terminal only. Marked tests also run on a remote engine reached over
TCP (`docker_and_remote`, `all_engines`), where Continuous outputs are brought back while the
instance runs (runtime/docker_remote.py)."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import time
from typing import Any

from docker_engine import (
    Localproc,
    all_engines,
    docker_and_remote,
    job_payload,
    s3_input,
    s3_output,
    script_input,
    unique_name,
    wait_for,
)

OUT = "/opt/ml/processing/out"


def spawn(localproc: Localproc, path: str, s3: Any, *extra: str) -> subprocess.Popen[str]:
    env = localproc.env  # LOCALPROC_HOME, and DOCKER_HOST when the test runs on Podman
    return subprocess.Popen(
        [sys.executable, "-m", "localproc", "run", path, "--s3-endpoint-url", s3.endpoint_url,
         *extra],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
    )  # fmt: skip


def body(s3: Any, bucket: str, key: str) -> bytes | None:
    try:
        return s3.client.get_object(Bucket=bucket, Key=key)["Body"].read()
    except s3.client.exceptions.NoSuchKey:
        return None


def continuous_job(s3: Any, bucket: str, name: str, script: str) -> dict[str, Any]:
    entrypoint, code = script_input(s3, bucket, script)
    return job_payload(
        name, entrypoint=entrypoint, inputs=[code],
        outputs=[s3_output("live", f"s3://{bucket}/{name}/live", OUT, mode="Continuous")],
    )  # fmt: skip


WRITE_THEN_SLEEP = r"""
import time
with open('/opt/ml/processing/out/early.txt', 'w') as f:
    f.write('written while running')
print('written', flush=True)
time.sleep(8)
"""


@all_engines
def test_a_closed_file_reaches_s3_while_the_job_is_still_running(
    localproc: Localproc, s3: Any
) -> None:
    bucket = s3.make_bucket()
    name = unique_name("live")
    payload = continuous_job(s3, bucket, name, WRITE_THEN_SLEEP)
    process = spawn(localproc, str(localproc.write_payload(payload)), s3)
    key = f"{name}/live/early.txt"
    try:
        log = localproc.job_dir(name) / "logs" / "algo-1.log"
        wait_for(lambda: log.exists() and "written" in log.read_text(), 60, "the file's close")
        closed_at = time.monotonic()
        wait_for(lambda: body(s3, bucket, key) is not None, 6, "the object in S3")
        latency = time.monotonic() - closed_at
        # Still running: the container sleeps 8 s after closing the file.
        assert localproc.record(name)["ProcessingJobStatus"] == "InProgress"
        assert process.wait(timeout=60) == 0, process.stderr.read() if process.stderr else ""
    finally:
        process.kill()
    assert body(s3, bucket, key) == b"written while running"
    assert latency < 6
    assert not (localproc.job_dir(name) / "scratch").exists()  # snapshots are not kept


REWRITE_AND_GROW = r"""
import os, time
out = '/opt/ml/processing/out'
for version in range(3):
    with open(out + '/state.txt', 'w') as f:
        f.write('version %d' % version)
    time.sleep(1.5)
chunk = os.urandom(1024 * 1024)
with open(out + '/big.bin', 'wb') as f:   # 30 MiB, written slowly, flushed as it goes
    for i in range(30):
        f.write(chunk)
        f.flush()
        time.sleep(0.1)
os.makedirs(out + '/nested/deeper')
open(out + '/nested/deeper/last.txt', 'w').write('made late')
os.symlink('/etc/passwd', out + '/passwd-link')
"""


@docker_and_remote
def test_rewritten_and_slowly_written_files_end_with_their_final_content(
    localproc: Localproc, s3: Any
) -> None:
    bucket = s3.make_bucket()
    name = unique_name("rewrite")
    payload = continuous_job(s3, bucket, name, REWRITE_AND_GROW)

    result = localproc(
        "run", str(localproc.write_payload(payload)), "--s3-endpoint-url", s3.endpoint_url
    )

    assert result.exit_code == 0, result.output
    folder = localproc.job_dir(name) / "algo-1" / "outputs" / "live"
    assert body(s3, bucket, f"{name}/live/state.txt") == b"version 2"
    big = body(s3, bucket, f"{name}/live/big.bin")
    assert big is not None and len(big) == 30 * 2**20
    assert (
        hashlib.sha256(big).digest() == hashlib.sha256((folder / "big.bin").read_bytes()).digest()
    )
    assert body(s3, bucket, f"{name}/live/nested/deeper/last.txt") == b"made late"
    listed = s3.client.list_objects_v2(Bucket=bucket, Prefix=f"{name}/")["Contents"]
    assert f"{name}/live/passwd-link" not in [o["Key"] for o in listed]


@docker_and_remote
def test_end_of_job_many_files_and_kms_on_every_object(localproc: Localproc, s3: Any) -> None:
    import boto3

    kms = boto3.client("kms", endpoint_url=s3.endpoint_url, region_name="us-east-1")
    key_id = kms.create_key()["KeyMetadata"]["Arn"]
    bucket = s3.make_bucket()
    name = unique_name("many")
    script = (
        "import os\n"
        "for i in range(120):\n"
        "    d = '/opt/ml/processing/out/part-%d/sub-%d' % (i % 4, i % 3)\n"
        "    os.makedirs(d, exist_ok=True)\n"
        "    open(d + '/f%03d.txt' % i, 'w').write(str(i))\n"
        "open('/opt/ml/processing/live/now.txt', 'w').write('continuous too')\n"
    )
    entrypoint, code = script_input(s3, bucket, script)
    payload = job_payload(
        name, entrypoint=entrypoint, inputs=[code],
        outputs=[
            s3_output("bulk", f"s3://{bucket}/{name}/bulk", OUT),
            s3_output("live", f"s3://{bucket}/{name}/live", "/opt/ml/processing/live",
                      mode="Continuous"),
        ],
    )  # fmt: skip
    payload["ProcessingOutputConfig"]["KmsKeyId"] = key_id

    result = localproc(
        "run", str(localproc.write_payload(payload)), "--s3-endpoint-url", s3.endpoint_url
    )

    assert result.exit_code == 0, result.output
    paginator = s3.client.get_paginator("list_objects_v2")
    keys = [o["Key"] for page in paginator.paginate(Bucket=bucket, Prefix=f"{name}/")
            for o in page.get("Contents", [])]  # fmt: skip
    assert len([k for k in keys if k.startswith(f"{name}/bulk/")]) == 120
    assert f"{name}/bulk/part-1/sub-0/f001.txt".replace("sub-0", "sub-1") in keys
    assert f"{name}/live/now.txt" in keys
    for key in keys:
        head = s3.client.head_object(Bucket=bucket, Key=key)
        assert head["ServerSideEncryption"] == "aws:kms", key
        assert key_id.endswith(head["SSEKMSKeyId"].split("/")[-1]), (key, head["SSEKMSKeyId"])
    assert "121 output file(s)" in result.stdout


def run_on_a_terminal(localproc: Localproc, *args: str) -> str:
    """Run localproc with stdout and stderr on a pseudo-terminal; return what it showed."""
    import pty

    main, secondary = pty.openpty()
    env = {**os.environ, "LOCALPROC_HOME": str(localproc.state_dir), "COLUMNS": "120"}
    process = subprocess.Popen(
        [sys.executable, "-m", "localproc", *args], stdout=secondary, stderr=secondary, env=env
    )
    os.close(secondary)
    shown = b""
    try:
        while True:
            try:
                chunk = os.read(main, 65536)
            except OSError:
                break
            if not chunk:
                break
            shown += chunk
        process.wait(timeout=120)
    finally:
        process.kill()
        os.close(main)
    return shown.decode(errors="replace")


def test_progress_on_a_terminal_and_none_with_json(localproc: Localproc, s3: Any) -> None:
    bucket = s3.make_bucket()
    for i in range(20):
        s3.client.put_object(Bucket=bucket, Key=f"in/{i}.bin", Body=b"z" * 50_000)

    def payload() -> str:
        return str(localproc.write_payload(job_payload(
            unique_name("progress"), entrypoint=["sh", "-c", f"cp -r /opt/ml/processing/in {OUT}"],
            inputs=[s3_input("data", f"s3://{bucket}/in/", "/opt/ml/processing/in")],
            outputs=[s3_output("out", f"s3://{bucket}/out", OUT)],
        )))  # fmt: skip

    shown = run_on_a_terminal(
        localproc, "run", payload(), "--s3-endpoint-url", s3.endpoint_url, "--no-cache"
    )
    assert "staging inputs" in shown and "20/20 files" in shown, shown
    assert "uploading outputs" in shown, shown

    quiet = run_on_a_terminal(
        localproc, "run", payload(), "--s3-endpoint-url", s3.endpoint_url, "--no-cache", "--json"
    )
    assert "staging inputs" not in quiet and "uploading outputs" not in quiet
    assert '"ProcessingJobStatus": "Completed"' in quiet


WRITE_THEN_WAIT = r"""
import time
open('/opt/ml/processing/out/result.txt', 'w').write('made before S3 went away')
print('written', flush=True)
time.sleep(4)
"""


def test_s3_gone_by_upload_time_fails_the_job_naming_the_object(
    localproc: Localproc, own_s3: tuple[str, Any, Any]
) -> None:
    # A server of this test's own, so that stopping it touches no other test.
    endpoint, client, server = own_s3
    client.put_object(Bucket="faults", Key="code/job.py", Body=WRITE_THEN_WAIT.encode())
    name = unique_name("s3-gone")
    payload = job_payload(
        name,
        entrypoint=["python3", "/opt/ml/processing/code/job.py"],
        inputs=[s3_input("code", "s3://faults/code/", "/opt/ml/processing/code")],
        outputs=[s3_output("result", f"s3://faults/{name}/", OUT)],
    )
    path = str(localproc.write_payload(payload))
    env = {**os.environ, "LOCALPROC_HOME": str(localproc.state_dir)}
    process = subprocess.Popen(
        [sys.executable, "-m", "localproc", "run", path, "--s3-endpoint-url", endpoint],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
    )  # fmt: skip
    try:
        log = localproc.job_dir(name) / "logs" / "algo-1.log"
        wait_for(lambda: log.exists() and "written" in log.read_text(), 60, "the output file")
    finally:
        server.stop()
    try:
        _out, err = process.communicate(timeout=120)
    finally:
        process.kill()

    assert process.returncode == 1, err
    assert "Traceback" not in err
    record = localproc.record(name)
    assert record["ProcessingJobStatus"] == "Failed"
    assert record["FailureReason"].startswith(
        f"ClientError: Failed to upload output s3://faults/{name}/result.txt: "
    )
