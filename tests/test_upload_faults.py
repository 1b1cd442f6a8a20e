"""Uploads meeting faults: S3 going away for hundreds of objects gives a FailureReason within the
API's 1,024 characters (the full list in the run's log); a stop while the outputs upload ends
the job Stopped, and a second Ctrl-C abandons a frozen upload at once, saying what is missing."""

from __future__ import annotations

import contextlib
import os
import select
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
from docker_engine import Localproc, job_payload, s3_input, s3_output, unique_name, wait_for

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


class FreezableProxy:
    """A TCP proxy on 127.0.0.1 in front of the S3 endpoint; `freeze()` makes it stop passing
    bytes either way (connections stay open, as with a hung endpoint), `thaw()` resumes."""

    def __init__(self, target: tuple[str, int]) -> None:
        self.target = target
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.passing = threading.Event()
        self.passing.set()
        self.closed = False
        threading.Thread(target=self._accept, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def freeze(self) -> None:
        self.passing.clear()

    def thaw(self) -> None:
        self.passing.set()

    def close(self) -> None:
        self.closed = True
        self.passing.set()
        self.listener.close()

    def _accept(self) -> None:
        while not self.closed:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            upstream = socket.create_connection(self.target)
            for source, sink in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pipe, args=(source, sink), daemon=True).start()

    def _pipe(self, source: socket.socket, sink: socket.socket) -> None:
        try:
            while not self.closed:
                ready, _, _ = select.select([source], [], [], 0.1)
                if not ready:
                    continue
                self.passing.wait()
                data = source.recv(65536)
                if not data:
                    break
                self.passing.wait()
                sink.sendall(data)
        except OSError:
            pass
        finally:
            for end in (source, sink):
                with contextlib.suppress(OSError):
                    end.shutdown(socket.SHUT_RDWR)


@pytest.fixture
def own_s3(aws_test_env: None) -> Iterator[tuple[str, Any]]:
    """An S3 server of the test's own (the test stops or freezes it without touching others)."""
    import boto3
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    endpoint = f"http://{host}:{port}"
    client = boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1")
    client.create_bucket(Bucket="faults")
    try:
        yield endpoint, client, server
    finally:
        server.stop()


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
