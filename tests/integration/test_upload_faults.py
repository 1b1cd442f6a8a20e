"""Uploads meeting faults: S3 going away for hundreds of objects gives a FailureReason within the
API's 1,024 characters (the full list in the run's log); a stop while the outputs upload ends
the job Stopped, and a second Ctrl-C abandons a frozen upload at once, saying what is missing."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from typing import Any

import pytest
from docker_engine import Localproc, job_payload, s3_input, s3_output, unique_name, wait_for
from freezable_proxy import FreezableProxy

pytestmark = pytest.mark.docker

OUT = "/opt/ml/processing/out"

MANY_THEN_WAIT = r"""
import time
for i in range(600):
    open(f'/opt/ml/processing/out/part-{i:04d}.txt', 'w').write(str(i))
print('written', flush=True)
time.sleep(3)
"""

ONE_THEN_EXIT = r"""
import time
open('/opt/ml/processing/out/result.txt', 'w').write('x' * 100_000)
print('written', flush=True)
time.sleep(2)  # the endpoint is frozen meanwhile: the upload starts into it
"""


def _spawn(localproc: Localproc, payload: dict[str, Any], endpoint: str) -> subprocess.Popen:
    path = str(localproc.write_payload(payload))
    return subprocess.Popen(
        [sys.executable, "-m", "localproc", "run", path, "--s3-endpoint-url", endpoint],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env={**os.environ, "LOCALPROC_HOME": str(localproc.state_dir)}, cwd=localproc.workdir,
    )  # fmt: skip


def _job(client: Any, name: str, script: str) -> dict[str, Any]:
    client.put_object(Bucket="faults", Key=f"{name}/code/job.py", Body=script.encode())
    return job_payload(
        name,
        entrypoint=["python3", "/opt/ml/processing/code/job.py"],
        inputs=[s3_input("code", f"s3://faults/{name}/code/", "/opt/ml/processing/code")],
        outputs=[s3_output("result", f"s3://faults/{name}/out/", OUT)],
    )


def _written(localproc: Localproc, name: str) -> bool:
    log = localproc.job_dir(name) / "logs" / "algo-1.log"
    return log.exists() and "written" in log.read_text()


def test_hundreds_of_failed_uploads_give_a_failure_reason_within_the_apis_limit(
    localproc: Localproc, own_s3: tuple[str, Any, Any]
) -> None:
    endpoint, client, server = own_s3
    name = unique_name("many-fail")
    process = _spawn(localproc, _job(client, name, MANY_THEN_WAIT), endpoint)
    try:
        wait_for(lambda: _written(localproc, name), 90, "the output files")
        server.stop()  # S3 is gone by upload time
        _out, err = process.communicate(timeout=240)
    finally:
        process.kill()

    assert process.returncode == 1, err
    assert "Traceback" not in err
    reason = localproc.record(name)["FailureReason"]
    assert len(reason) <= 1024, len(reason)
    assert reason.startswith(f"ClientError: Failed to upload output s3://faults/{name}/out/")
    assert "and 597 more object(s)" in reason
    # Every object is named in the run's own output (the runner's log for a background run).
    assert err.count("output not uploaded: s3://") == 600


def _interrupted_during_a_frozen_upload(
    localproc: Localproc, own_s3: tuple[str, Any, Any], name: str, interrupts: int
) -> tuple[subprocess.Popen[str], str, str, float]:
    """Run a job whose output upload hangs on a frozen endpoint and send it `interrupts`
    Ctrl-Cs meanwhile; after one, the endpoint is thawed, after two it stays frozen. Returns
    (process, stdout, stderr, seconds it took to end after the last Ctrl-C)."""
    endpoint, client, _server = own_s3
    proxy = FreezableProxy(("127.0.0.1", int(endpoint.rsplit(":", 1)[1])))
    process = _spawn(localproc, _job(client, name, ONE_THEN_EXIT), proxy.url)
    try:
        wait_for(lambda: _written(localproc, name), 90, "the output file")
        proxy.freeze()  # the upload hangs: the stop surely comes while it is in flight
        time.sleep(4)  # the container has exited; the runner is uploading
        for _ in range(interrupts):
            process.send_signal(signal.SIGINT)
            time.sleep(1)
        started = time.monotonic()
        if interrupts == 1:
            proxy.thaw()
        out, err = process.communicate(timeout=120)
        return process, out, err, time.monotonic() - started
    finally:
        process.kill()
        proxy.close()


def test_a_stop_while_the_outputs_upload_ends_the_job_stopped(
    localproc: Localproc, own_s3: tuple[str, Any, Any]
) -> None:
    name = unique_name("stop-upload")
    process, out, err, _took = _interrupted_during_a_frozen_upload(localproc, own_s3, name, 1)

    assert process.returncode == 3, out + err
    record = localproc.record(name)
    assert record["ProcessingJobStatus"] == "Stopped"
    assert "FailureReason" not in record  # the service gives none to a stop that was asked for
    # The stop does not throw away the outputs: the upload in flight completes.
    stored = own_s3[1].get_object(Bucket="faults", Key=f"{name}/out/result.txt")["Body"].read()
    assert stored == b"x" * 100_000


def test_a_second_ctrl_c_abandons_a_frozen_upload_at_once_and_says_what_is_missing(
    localproc: Localproc, own_s3: tuple[str, Any, Any]
) -> None:
    name = unique_name("abandon")
    process, out, err, took = _interrupted_during_a_frozen_upload(localproc, own_s3, name, 2)

    assert process.returncode == 3, out + err
    assert took < 30, took  # not the minutes a frozen endpoint can hold a request
    assert "Traceback" not in err
    assert f"not uploaded: s3://faults/{name}/out/result.txt" in err
    assert localproc.record(name)["ProcessingJobStatus"] == "Stopped"
