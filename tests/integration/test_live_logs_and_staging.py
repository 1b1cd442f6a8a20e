"""The container's output reaches the terminal while it runs, and `--keep-staging` keeps inputs."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from typing import Any

from docker_engine import Localproc, job_payload, s3_input, script_input, unique_name

SLOW_SCRIPT = r"""
import time
print('first line', flush=True)
time.sleep(4)
print('last line', flush=True)
"""


def test_log_lines_stream_live_while_the_container_runs(localproc: Localproc, s3: Any) -> None:
    bucket = s3.make_bucket()
    name = unique_name("live")
    entrypoint, code = script_input(s3, bucket, SLOW_SCRIPT)
    payload_path = localproc.write_payload(job_payload(name, entrypoint=entrypoint, inputs=[code]))
    env = {**os.environ, "LOCALPROC_HOME": str(localproc.state_dir)}
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "localproc",
            "run",
            str(payload_path),
            "--s3-endpoint-url",
            s3.endpoint_url,
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        env=env,
    )
    try:
        assert process.stdout is not None
        first = process.stdout.readline()
        # The first line arrived while the job is still running: it was not buffered to the end.
        status_then = localproc.record(name)["ProcessingJobStatus"]
        rest = process.stdout.read()
        assert process.wait(timeout=60) == 0
    finally:
        process.kill()
    assert first == "algo-1 | first line\n"
    assert status_then == "InProgress"
    assert "algo-1 | last line" in rest


def test_keep_staging_keeps_the_downloaded_inputs(localproc: Localproc, s3: Any) -> None:
    bucket = s3.make_bucket()
    s3.client.put_object(Bucket=bucket, Key="in/a/b.txt", Body=b"payload")
    name = unique_name("keep")
    payload = job_payload(
        name,
        entrypoint=["cat", "/opt/ml/processing/in/a/b.txt"],
        inputs=[s3_input("data", f"s3://{bucket}/in/", "/opt/ml/processing/in")],
    )

    result = localproc(
        "run",
        str(localproc.write_payload(payload)),
        "--s3-endpoint-url",
        s3.endpoint_url,
        "--keep-staging",
        "--json",
    )

    assert result.exit_code == 0, result.output
    kept = localproc.job_dir(name) / "staging" / "algo-1" / "data" / "a" / "b.txt"
    assert kept.read_text() == "payload"
    # --json: the DescribeProcessingJob-shaped record on stdout, the container's log on stderr.
    described = json.loads(result.stdout)
    assert described["ProcessingJobName"] == name
    assert described["ProcessingJobStatus"] == "Completed"
    assert "Localproc" not in described
    assert "algo-1 | payload" in result.stderr


def test_each_instance_has_its_colour_on_a_terminal(localproc: Localproc, s3: Any) -> None:
    """On a terminal (a pseudo-terminal here) the instance prefixes are coloured, one colour
    per instance; the saved logs stay plain."""
    import pty

    name = unique_name("colour")
    payload = job_payload(name, entrypoint=["echo", "hello"], instance_count=2)
    main, secondary = pty.openpty()
    env = {**os.environ, "LOCALPROC_HOME": str(localproc.state_dir)}
    env.pop("NO_COLOR", None)
    process = subprocess.Popen(
        [sys.executable, "-m", "localproc", "run", str(localproc.write_payload(payload)),
         "--s3-endpoint-url", s3.endpoint_url],
        stdout=secondary, stderr=subprocess.DEVNULL, env=env,
    )  # fmt: skip
    os.close(secondary)
    output = b""
    try:
        while True:
            try:
                chunk = os.read(main, 4096)
            except OSError:  # the terminal closed: the process is done writing
                break
            if not chunk:
                break
            output += chunk
        assert process.wait(timeout=60) == 0
    finally:
        process.kill()
        os.close(main)
    text = output.decode()
    assert "\x1b[36malgo-1\x1b[0m | hello" in text
    assert "\x1b[33malgo-2\x1b[0m | hello" in text
    assert (localproc.job_dir(name) / "logs" / "algo-2.log").read_text() == "hello\n"
