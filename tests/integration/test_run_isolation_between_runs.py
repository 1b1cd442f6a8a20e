"""Runs never touch each other's engine objects, whatever state dir or name they use: a run of
the same job name in another state dir that fails does not harm the running one."""

from __future__ import annotations

import os
import subprocess
import sys
from typing import Any

from docker_engine import Localproc, job_payload, job_resources, unique_name, wait_for


def test_a_failed_run_of_the_same_name_elsewhere_leaves_the_running_job_alone(
    localproc: Localproc, s3: Any, docker_client: Any, tmp_path: Any
) -> None:
    name = unique_name("twin")
    long_job = job_payload(
        name, entrypoint=["sh", "-c", "echo started; sleep 12; echo done"], instance_count=2
    )
    env = {**os.environ, "LOCALPROC_HOME": str(localproc.state_dir)}
    first = subprocess.Popen(
        [sys.executable, "-m", "localproc", "run", str(localproc.write_payload(long_job)),
         "--s3-endpoint-url", s3.endpoint_url],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, cwd=localproc.workdir,
    )  # fmt: skip
    try:
        log = localproc.job_dir(name) / "logs" / "algo-2.log"
        wait_for(lambda: log.exists() and "started" in log.read_text(), 60, "the first run")
        ours = job_resources(docker_client, {name})
        failing = job_payload(name, entrypoint=["/no/such/program"], instance_count=2)
        other_state = tmp_path / "other-state"
        second = localproc(
            "run", str(localproc.write_payload(failing)), "--s3-endpoint-url", s3.endpoint_url,
            "--state-dir", str(other_state),
        )  # fmt: skip
        assert second.exit_code == 1, second.output
        # The first run's containers and network are all still there.
        assert job_resources(docker_client, {name}) == ours
        out, err = first.communicate(timeout=120)
    finally:
        first.kill()
    assert first.returncode == 0, err
    assert "algo-1 | done" in out and "algo-2 | done" in out
    assert localproc.record(name)["ProcessingJobStatus"] == "Completed"
