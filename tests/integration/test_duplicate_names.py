"""Two users pick the same name at once: exactly one is told the job was created; the other
hears ResourceInUse before any success answer — through `run --detach` and through `serve`."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import pytest
from docker_engine import Localproc, job_payload, s3_input, unique_name, wait_for
from serve_clients import raw_request, start_server

from localproc.service.detach import END_TIMEOUT_SECONDS

pytestmark = pytest.mark.docker

SLOW = ["sh", "-c", "echo started; sleep 4"]


def _detach(localproc: Localproc, payload: Path) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "localproc", "run", str(payload), "--detach"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "LOCALPROC_HOME": str(localproc.state_dir)},
        cwd=localproc.workdir,
    )


def _ended(localproc: Localproc, name: str) -> bool:
    path = localproc.job_dir(name) / "record.json"
    return path.exists() and localproc.record(name)["ProcessingJobStatus"] == "Completed"


def test_two_detached_runs_of_one_name_one_succeeds_the_other_is_refused(
    localproc: Localproc,
) -> None:
    name = unique_name("twice")
    payload = localproc.write_payload(job_payload(name, entrypoint=SLOW))

    runs = [_detach(localproc, payload) for _ in range(2)]
    results = [(run.wait(timeout=120), *run.communicate()) for run in runs]

    codes = sorted(code for code, _, _ in results)
    assert codes == [0, 2], results
    refused = next(err for code, _, err in results if code == 2)
    assert "ResourceInUse" in refused, results
    arn = next(out for code, out, _ in results if code == 0).strip()
    assert arn.endswith(f"processing-job/{name}")
    wait_for(lambda: _ended(localproc, name), 60, "the one job to complete")


def _create(url: str, body: dict[str, Any], answers: list[tuple[int, dict[str, Any]]]) -> None:
    target = "SageMaker.CreateProcessingJob"
    answers.append(raw_request(url, target, json.dumps(body).encode(), timeout=120))


def test_two_concurrent_creates_of_one_name_through_serve_one_gets_resource_in_use(
    localproc: Localproc, tmp_path: Path
) -> None:
    name = unique_name("racing")
    localproc.names.add(name)
    body = job_payload(name, entrypoint=SLOW)
    server = start_server(
        ["--port", "0", "--state-dir", str(localproc.state_dir)], tmp_path / "serve.log"
    )
    try:
        answers: list[tuple[int, dict[str, Any]]] = []
        threads = [
            threading.Thread(target=_create, args=(server.url, body, answers)) for _ in range(2)
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=150)
        assert sorted(status for status, _ in answers) == [200, 400], answers
        refused = next(answer for status, answer in answers if status == 400)
        assert refused["__type"] == "ResourceInUse", answers
        wait_for(lambda: _ended(localproc, name), 60, "the one job to complete")
    finally:
        server.stop()


# Starts `python -m localproc ...` with SIGINT ignored, as a shell without job control starts a
# background command (`localproc run --detach ... &` in a script; a test suite started so).
SIGINT_IGNORED = (
    "import os, signal, sys; signal.signal(signal.SIGINT, signal.SIG_IGN); "
    "os.execv(sys.executable, [sys.executable, *sys.argv[1:]])"
)


@pytest.mark.parametrize("how", ["ctrl-c", "ctrl-c-ignored-on-entry", "sigterm"])
def test_ctrl_c_before_a_detached_run_has_recorded_its_job_ends_that_run(
    localproc: Localproc, own_s3: tuple[str, Any, Any], how: str
) -> None:
    """The caller of `run --detach` gives up while the background run still lists its inputs
    (S3 hangs): it is told so, and that run must not go on to run the job unannounced. Also
    when it was started with SIGINT ignored (as `run` in the foreground, it acts on it), and
    on SIGTERM (`timeout`, `kill`)."""
    import signal
    import time

    from freezable_proxy import FreezableProxy

    endpoint, client, _server = own_s3
    client.put_object(Bucket="faults", Key="in/data.txt", Body=b"data")
    proxy = FreezableProxy(("127.0.0.1", int(endpoint.rsplit(":", 1)[1])))
    proxy.freeze()
    name = unique_name("interrupted")
    payload = job_payload(
        name,
        entrypoint=["cat", "/opt/ml/processing/in/data.txt"],
        inputs=[s3_input("data", "s3://faults/in/", "/opt/ml/processing/in")],
    )
    path = localproc.write_payload(payload)
    python = [sys.executable, "-c", SIGINT_IGNORED] if "ignored" in how else [sys.executable]
    parent = subprocess.Popen(
        [*python, "-m", "localproc", "run", str(path), "--detach",
         "--s3-endpoint-url", proxy.url],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env={**os.environ, "LOCALPROC_HOME": str(localproc.state_dir)}, cwd=localproc.workdir,
    )  # fmt: skip
    try:
        # The scenario: the background run is started and hangs listing its inputs. Wait for it
        # (its runner log appears when it starts), not for a fixed time: a slow start of the
        # parent on a loaded host would otherwise take the SIGINT before there is any child.
        runner_log = localproc.state_dir / "runners" / f"{name}.log"
        started = time.monotonic()
        while not runner_log.exists() and time.monotonic() - started < 60:
            time.sleep(0.1)
        time.sleep(1)
        parent.send_signal(signal.SIGTERM if how == "sigterm" else signal.SIGINT)
        # It ends the background run and waits at most END_TIMEOUT_SECONDS for it to end; the
        # rest is for a loaded host.
        _out, err = parent.communicate(timeout=END_TIMEOUT_SECONDS + 60)
        proxy.thaw()
        time.sleep(8)  # time enough for a background run that went on to record the job
    finally:
        parent.kill()
        proxy.close()

    assert parent.returncode == 3, err
    assert "Traceback" not in err
    assert "interrupted before the background run had recorded the job" in err
    assert not (localproc.job_dir(name) / "record.json").exists()
