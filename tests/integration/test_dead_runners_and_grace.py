"""A runner that is SIGKILLed leaves containers running: the next command that notices (here
`describe` and `stop`) stops and removes them. And the runner does not spin while it waits out
the stop grace period after MaxRuntimeInSeconds."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from typing import Any

import psutil
from docker_engine import Localproc, job_payload, job_resources, unique_name, wait_for

STUBBORN = ["python3", "-c",
            "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); "
            "print('sleeping', flush=True); time.sleep(300)"]  # fmt: skip


def spawn(localproc: Localproc, payload: dict[str, Any], *args: str) -> subprocess.Popen[str]:
    env = {**os.environ, "LOCALPROC_HOME": str(localproc.state_dir)}
    output = (localproc.workdir / f"{payload['ProcessingJobName']}.out").open("w")
    return subprocess.Popen(
        [sys.executable, "-m", "localproc", "run", str(localproc.write_payload(payload)), *args],
        stdout=output, stderr=subprocess.STDOUT, text=True, env=env, cwd=localproc.workdir,
    )  # fmt: skip


def output_of(localproc: Localproc, name: str) -> str:
    return (localproc.workdir / f"{name}.out").read_text()


def sleeping(localproc: Localproc, name: str, host: str = "algo-1") -> bool:
    log = localproc.job_dir(name) / "logs" / f"{host}.log"
    return log.exists() and "sleeping" in log.read_text()


def kill_runner_of_running_job(localproc: Localproc, s3: Any, name: str) -> None:
    payload = job_payload(name, entrypoint=STUBBORN, instance_count=2)
    process = spawn(localproc, payload, "--s3-endpoint-url", s3.endpoint_url)
    try:
        wait_for(lambda: sleeping(localproc, name, "algo-2"), 60, "the containers to start")
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=30)
    finally:
        process.kill()


def test_describe_after_a_killed_runner_removes_its_containers(
    localproc: Localproc, s3: Any, docker_client: Any
) -> None:
    name = unique_name("orphan")
    kill_runner_of_running_job(localproc, s3, name)
    containers, networks = job_resources(docker_client, {name})
    assert len(containers) == 2 and networks  # still running, past any runner

    described = localproc("describe", name, "--json")

    assert described.exit_code == 0, described.output
    assert json.loads(described.stdout)["ProcessingJobStatus"] == "Failed"
    assert job_resources(docker_client, {name}) == ([], [])


def test_stop_works_on_a_job_whose_runner_was_killed(
    localproc: Localproc, s3: Any, docker_client: Any
) -> None:
    name = unique_name("orphan-stop")
    kill_runner_of_running_job(localproc, s3, name)
    assert job_resources(docker_client, {name}) != ([], [])

    stopped = localproc("stop", name)

    assert stopped.exit_code == 0, stopped.output
    assert job_resources(docker_client, {name}) == ([], [])
    record = localproc.record(name)
    assert record["ProcessingJobStatus"] == "Stopped"
    assert "runner" in record["FailureReason"]


def test_the_runner_does_not_spin_during_the_grace_period_after_the_deadline(
    localproc: Localproc, s3: Any
) -> None:
    name = unique_name("grace-cpu")
    payload = job_payload(name, entrypoint=STUBBORN)
    payload["StoppingCondition"] = {"MaxRuntimeInSeconds": 2}
    process = spawn(localproc, payload, "--s3-endpoint-url", s3.endpoint_url, "--stop-grace", "8")
    try:
        try:
            wait_for(
                lambda: localproc.job_dir(name).joinpath("record.json").exists()
                and localproc.record(name)["ProcessingJobStatus"] == "Stopping",
                60, "the deadline",
            )  # fmt: skip
        except AssertionError as err:
            raise AssertionError(f"{err}; the run said: {output_of(localproc, name)}") from None
        runner = psutil.Process(process.pid)
        before, began = runner.cpu_times(), time.monotonic()
        time.sleep(4)  # inside the 8 s grace: the container ignores SIGTERM
        after, wall = runner.cpu_times(), time.monotonic() - began
        assert process.poll() is None
        assert process.wait(timeout=60) == 3
    finally:
        process.kill()
    used = (after.user + after.system) - (before.user + before.system)
    # Waiting costs next to nothing (about 0.01 s in 4 s); a spinning runner takes a whole core,
    # or, on a machine busy with other work, still well above a tenth of one.
    assert used < 0.1 * wall, f"the runner used {used:.2f} s of CPU in {wall:.2f} s"
