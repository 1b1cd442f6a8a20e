"""Jobs you can come back to: describe, list, stop, logs, delete, detached runs, crashed runners,
and stopping by MaxRuntimeInSeconds or Ctrl-C. Real Docker, real S3, the CLI as users run it.
Marked tests also run on Podman and on a remote engine reached over TCP (tests/engine_nodes.py):
there `gc` must also remove the run's volumes."""

from __future__ import annotations

import json
import logging
import re
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from docker_engine import (
    EngineUnderTest,
    Localproc,
    all_engines,
    docker_and_remote,
    job_payload,
    job_resources,
    job_volumes,
    s3_input,
    s3_output,
    script_input,
    unique_name,
    wait_for,
)


def describe_output_shape_problems(described: dict[str, Any]) -> str | None:
    """Check a describe result against botocore's DescribeProcessingJob output shape: members,
    types and required members, with botocore's own validator."""
    import botocore.session
    from botocore.validate import ParamValidator

    model = botocore.session.get_session().get_service_model("sagemaker")
    shape = model.operation_model("DescribeProcessingJob").output_shape
    report = ParamValidator().validate(described, shape)
    return report.generate_report() if report.has_errors() else None


def started(localproc: Localproc, name: str) -> Callable[[], bool]:
    """The sleeper has said 'sleeping': its SIGTERM handler is installed."""

    def check() -> bool:
        log = localproc.job_dir(name) / "logs" / "algo-1.log"
        return log.exists() and "sleeping" in log.read_text()

    return check


def assert_nothing_left(localproc: Localproc, docker_client: Any, name: str) -> None:
    """No container or network of the job's remains, and its staging folder is gone."""
    assert job_resources(docker_client, localproc.names) == ([], [])
    assert not (localproc.job_dir(name) / "staging").exists()


def spawn_run(localproc: Localproc, *args: str) -> subprocess.Popen[str]:
    env = localproc.env  # LOCALPROC_HOME, and DOCKER_HOST when the test runs on Podman
    return subprocess.Popen(
        [sys.executable, "-m", "localproc", "run", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
        cwd=localproc.workdir,
    )


SLEEPER = r"""
import pathlib, signal, sys, time
def on_term(signum, frame):
    pathlib.Path('/opt/ml/processing/output/terminated.txt').write_text('got SIGTERM')
    sys.exit(0)
signal.signal(signal.SIGTERM, on_term)
pathlib.Path('/opt/ml/processing/output/started.txt').write_text('started')
print('sleeping', flush=True)
time.sleep(120)
"""


def sleeper_payload(
    s3: Any, bucket: str, name: str, max_runtime: int = 300, instance_count: int = 1
) -> dict[str, Any]:
    entrypoint, code = script_input(s3, bucket, SLEEPER)
    payload = job_payload(
        name,
        entrypoint=entrypoint,
        inputs=[code],
        outputs=[s3_output("out", f"s3://{bucket}/{name}/", "/opt/ml/processing/output")],
        instance_count=instance_count,
    )
    payload["StoppingCondition"] = {"MaxRuntimeInSeconds": max_runtime}
    return payload


def output_keys(s3: Any, bucket: str, name: str) -> list[str]:
    listing = s3.client.list_objects_v2(Bucket=bucket, Prefix=f"{name}/")
    return sorted(o["Key"][len(name) + 1 :] for o in listing.get("Contents", []))


def test_describe_completed_and_failed_jobs_match_the_botocore_shape(
    localproc: Localproc, s3: Any
) -> None:
    ok, bad = unique_name("ok"), unique_name("bad")
    for name, command in [
        (ok, ["true"]),
        (bad, ["sh", "-c", "echo oops > /opt/ml/output/message; exit 2"]),
    ]:
        payload = job_payload(name, entrypoint=command)
        localproc(
            "run", str(localproc.write_payload(payload)), "--s3-endpoint-url", s3.endpoint_url
        )

    completed = json.loads(localproc("describe", ok, "--json").stdout)
    failed = json.loads(localproc("describe", bad, "--json").stdout)

    for described in (completed, failed):
        assert describe_output_shape_problems(described) is None
        assert "Localproc" not in described
        for field in (
            "CreationTime",
            "ProcessingStartTime",
            "ProcessingEndTime",
            "LastModifiedTime",
        ):
            assert field in described
    assert completed["ProcessingJobStatus"] == "Completed"
    assert "FailureReason" not in completed
    assert failed["ProcessingJobStatus"] == "Failed"
    assert failed["FailureReason"].startswith("AlgorithmError: algo-1 exited with code 2")
    assert failed["ExitMessage"] == "oops\n"
    assert failed["AppSpecification"]["ContainerEntrypoint"][0] == "sh"
    table = localproc("describe", bad)
    assert table.exit_code == 0 and "Status" in table.stdout and "Failed" in table.stdout

    missing = localproc("describe", "no-such-job")
    assert missing.exit_code == 2
    assert "ResourceNotFound" in missing.stderr


@all_engines
def test_max_runtime_stops_the_job_uploads_outputs_and_exits_3(
    localproc: Localproc, s3: Any, engine: EngineUnderTest
) -> None:
    bucket = s3.make_bucket()
    name = unique_name("deadline")
    payload = sleeper_payload(s3, bucket, name, max_runtime=3)
    began = time.monotonic()

    result = localproc(
        "run",
        str(localproc.write_payload(payload)),
        "--s3-endpoint-url",
        s3.endpoint_url,
        "--stop-grace",
        "2",
    )

    elapsed = time.monotonic() - began
    assert result.exit_code == 3, result.output
    assert elapsed < 3 + 2 + 15  # limit + grace + start-up and upload slack
    record = localproc.record(name)
    assert record["ProcessingJobStatus"] == "Stopped"
    assert "MaxRuntimeInSeconds (3 s)" in record["FailureReason"]
    # The container trapped SIGTERM and got to write its file; both files were uploaded.
    assert output_keys(s3, bucket, name) == ["started.txt", "terminated.txt"]
    described = json.loads(localproc("describe", name, "--json").stdout)
    assert describe_output_shape_problems(described) is None
    assert_nothing_left(localproc, engine.client, name)


def test_ctrl_c_while_staging_starts_no_further_download_and_no_container(
    localproc: Localproc, s3: Any, docker_client: Any, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="werkzeug")  # moto's server logs every request
    bucket = s3.make_bucket()
    count = 300
    for index in range(count):
        s3.client.put_object(Bucket=bucket, Key=f"many/{index:03d}.txt", Body=b"x")
    name = unique_name("stop-staging")
    payload = job_payload(
        name,
        entrypoint=["true"],
        inputs=[s3_input("many", f"s3://{bucket}/many/", "/opt/ml/processing/many")],
    )

    def gets() -> int:
        pattern = re.compile(rf'"GET /{bucket}/many/\d+\.txt ')
        return sum(1 for r in caplog.records if pattern.search(r.getMessage()))

    process = spawn_run(
        localproc, str(localproc.write_payload(payload)), "--s3-endpoint-url", s3.endpoint_url
    )
    try:
        wait_for(lambda: gets() > 0, 60, "the first download")
        process.send_signal(signal.SIGINT)
        assert process.wait(timeout=60) == 3
    finally:
        process.kill()
    record = localproc.record(name)
    assert record["ProcessingJobStatus"] == "Stopped"
    assert "ProcessingStartTime" not in record or record["ProcessingStartTime"] is None
    assert gets() < count  # the downloads not yet started when the stop came were never made
    assert_nothing_left(localproc, docker_client, name)


def spawn_stubborn(
    localproc: Localproc, s3: Any, stop_grace: int
) -> tuple[str, subprocess.Popen[str]]:
    """A running job whose container ignores SIGTERM: only SIGKILL, after the grace, ends it."""
    bucket = s3.make_bucket()
    name = unique_name("stubborn")
    entrypoint, code = script_input(s3, bucket, STUBBORN)
    payload = job_payload(name, entrypoint=entrypoint, inputs=[code])
    process = spawn_run(
        localproc, str(localproc.write_payload(payload)),
        "--s3-endpoint-url", s3.endpoint_url, "--stop-grace", str(stop_grace),
    )  # fmt: skip
    return name, process


def test_the_record_shows_stopping_during_the_grace_period(localproc: Localproc, s3: Any) -> None:
    name, process = spawn_stubborn(localproc, s3, stop_grace=6)
    try:
        wait_for(started(localproc, name), 60, "the container to start")
        process.send_signal(signal.SIGINT)
        # The container ignores SIGTERM, so it runs on for the whole grace period.
        wait_for(lambda: localproc.record(name)["ProcessingJobStatus"] == "Stopping", 5, "Stopping")
        assert process.poll() is None
        assert process.wait(timeout=60) == 3
    finally:
        process.kill()
    assert localproc.record(name)["ProcessingJobStatus"] == "Stopped"


def test_ctrl_c_stops_the_job_and_cleans_up(
    localproc: Localproc, s3: Any, docker_client: Any
) -> None:
    bucket = s3.make_bucket()
    name = unique_name("ctrlc")
    process = spawn_run(
        localproc,
        str(localproc.write_payload(sleeper_payload(s3, bucket, name))),
        "--s3-endpoint-url",
        s3.endpoint_url,
        "--stop-grace",
        "2",
    )
    try:
        wait_for(started(localproc, name), 60, "the container to start")
        process.send_signal(signal.SIGINT)
        assert process.wait(timeout=60) == 3
    finally:
        process.kill()
    assert localproc.record(name)["ProcessingJobStatus"] == "Stopped"
    assert "terminated.txt" in output_keys(s3, bucket, name)
    assert_nothing_left(localproc, docker_client, name)


@all_engines
def test_stop_from_another_process(localproc: Localproc, s3: Any) -> None:
    bucket = s3.make_bucket()
    name = unique_name("stopme")
    process = spawn_run(
        localproc,
        str(localproc.write_payload(sleeper_payload(s3, bucket, name))),
        "--s3-endpoint-url",
        s3.endpoint_url,
        "--stop-grace",
        "2",
    )
    try:
        wait_for(started(localproc, name), 60, "the container to start")
        stopped = localproc("stop", name)
        assert stopped.exit_code == 0, stopped.output
        assert localproc.record(name)["ProcessingJobStatus"] in ("Stopping", "Stopped")
        assert process.wait(timeout=60) == 3
    finally:
        process.kill()
    record = localproc.record(name)
    assert record["ProcessingJobStatus"] == "Stopped"
    assert "terminated.txt" in output_keys(s3, bucket, name)

    again = localproc("stop", name)
    assert again.exit_code == 2
    assert f"the processing job {name} is in status Stopped" in again.stderr
    assert "ValidationException" in again.stderr


@docker_and_remote
def test_detached_run_logs_follow_delete(localproc: Localproc, s3: Any) -> None:
    bucket = s3.make_bucket()
    name = unique_name("detached")
    script = (
        "import time\nfor i in range(3):\n    print('tick', i, flush=True)\n    time.sleep(1)\n"
    )
    entrypoint, code = script_input(s3, bucket, script)
    payload = job_payload(name, entrypoint=entrypoint, inputs=[code])

    began = time.monotonic()
    detached = localproc(
        "run",
        str(localproc.write_payload(payload)),
        "--s3-endpoint-url",
        s3.endpoint_url,
        "--detach",
    )
    assert detached.exit_code == 0, detached.output
    assert (
        detached.stdout.strip() == f"arn:aws:sagemaker:us-east-1:000000000000:processing-job/{name}"
    )
    assert time.monotonic() - began < 30
    assert localproc.record(name)["ProcessingJobStatus"] == "InProgress"

    refused = localproc("delete", name)
    assert refused.exit_code == 2 and "ResourceInUse" in refused.stderr

    followed = localproc("logs", name, "--follow", timeout=120)
    assert followed.exit_code == 0
    assert followed.stdout.splitlines() == ["algo-1 | tick 0", "algo-1 | tick 1", "algo-1 | tick 2"]
    assert localproc.record(name)["ProcessingJobStatus"] == "Completed"
    only = localproc("logs", name, "--instance", "algo-1")
    assert only.stdout.splitlines() == ["tick 0", "tick 1", "tick 2"]

    runner_log = localproc.state_dir / "runners" / f"{name}.log"
    assert runner_log.is_file()
    deleted = localproc("delete", name)
    assert deleted.exit_code == 0, deleted.output
    assert not localproc.job_dir(name).exists()
    assert not runner_log.exists()
    assert localproc("describe", name).exit_code == 2
    # The name is free again.
    rerun = localproc(
        "run", str(localproc.write_payload(payload)), "--s3-endpoint-url", s3.endpoint_url
    )
    assert rerun.exit_code == 0, rerun.output


@all_engines
def test_sigkilled_runner_is_reconciled_and_gc_removes_leftovers(
    localproc: Localproc, s3: Any, engine: EngineUnderTest
) -> None:
    bucket = s3.make_bucket()
    name = unique_name("killed")
    process = spawn_run(
        localproc,
        str(localproc.write_payload(sleeper_payload(s3, bucket, name, instance_count=2))),
        "--s3-endpoint-url",
        s3.endpoint_url,
        "--keep-staging",
    )
    try:
        wait_for(started(localproc, name), 60, "the container to start")
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=30)
    finally:
        process.kill()
    containers, networks = job_resources(engine.client, localproc.names)
    assert len(containers) == 2 and networks  # the dead runner left them behind
    if engine.name == "remote":  # the archive backend's volumes, one per instance mount
        assert job_volumes(engine.client, localproc.names)

    described = json.loads(localproc("describe", name, "--json").stdout)
    assert described["ProcessingJobStatus"] == "Failed"
    assert described["FailureReason"] == "InternalServerError: the runner exited unexpectedly"

    collected = localproc("gc")
    assert collected.exit_code == 0, collected.output
    assert job_resources(engine.client, localproc.names) == ([], [])
    assert job_volumes(engine.client, localproc.names) == []


def test_eight_concurrent_runs_keep_eight_intact_records(localproc: Localproc, s3: Any) -> None:
    names = [unique_name(f"many{i}") for i in range(8)]
    processes = [
        spawn_run(
            localproc,
            str(localproc.write_payload(job_payload(n, entrypoint=["sh", "-c", f"echo {n}"]))),
            "--s3-endpoint-url",
            s3.endpoint_url,
        )
        for n in names
    ]
    codes = [p.wait(timeout=180) for p in processes]
    assert codes == [0] * 8, [p.stderr.read() for p in processes if p.stderr]
    for n in names:
        record = localproc.record(n)
        assert record["ProcessingJobName"] == n
        assert record["ProcessingJobStatus"] == "Completed"
        assert (localproc.job_dir(n) / "logs" / "algo-1.log").read_text() == f"{n}\n"
    listed = json.loads(localproc("list", "--json", "--max-results", "100").stdout)
    assert sorted(s["ProcessingJobName"] for s in listed["ProcessingJobSummaries"]) == sorted(names)


@pytest.fixture
def many_records(tmp_path: Path) -> Path:
    """A dozen records written as a run writes them (pure data: listing is pure logic)."""
    from localproc.records.store import JobStore

    store = JobStore(tmp_path / "state")
    statuses = ["Completed", "Failed", "Stopped"]
    for i in range(12):
        name = f"job-{i:02d}" if i % 2 else f"other-{i:02d}"
        store.claim(name, "arn")
        store.create(
            name,
            {
                "ProcessingJobName": name,
                "ProcessingJobArn": f"arn:aws:sagemaker:us-east-1:0:processing-job/{name}",
                "ProcessingJobStatus": statuses[i % 3],
                "CreationTime": f"2026-11-{10 + i:02d}T10:00:00.000+00:00",
                "LastModifiedTime": f"2026-11-{10 + i:02d}T11:00:00.000+00:00",
            },
        )
    return tmp_path / "state"


def test_list_filters_sorting_and_paging(localproc: Localproc, many_records: Path) -> None:
    def listed(*args: str) -> dict[str, Any]:
        result = localproc("list", "--json", "--state-dir", str(many_records), *args)
        assert result.exit_code == 0, result.output
        return json.loads(result.stdout)

    def names(page: dict[str, Any]) -> list[str]:
        return [s["ProcessingJobName"] for s in page["ProcessingJobSummaries"]]

    newest_first = names(listed())
    assert newest_first[0] == "job-11" and newest_first[-1] == "other-00"
    assert names(listed("--sort-by", "Name", "--sort-order", "Ascending"))[:2] == [
        "job-01",
        "job-03",
    ]
    failed = names(
        listed("--status-equals", "Failed", "--sort-by", "Name", "--sort-order", "Ascending")
    )
    assert failed == ["job-01", "job-07", "other-04", "other-10"]
    assert names(listed("--name-contains", "OTHER", "--max-results", "100")) == [
        f"other-{i:02d}" for i in (10, 8, 6, 4, 2, 0)
    ]
    window = names(
        listed(
            "--creation-time-after",
            "2026-11-15T00:00:00Z",
            "--creation-time-before",
            "2026-11-18T00:00:00Z",
        )
    )
    assert window == ["job-07", "other-06", "job-05"]
    # Each record was last modified at 11:00, an hour after its creation.
    modified = names(
        listed(
            "--last-modified-time-after",
            "2026-11-15T10:30:00Z",
            "--last-modified-time-before",
            "2026-11-17T10:30:00Z",
        )
    )
    assert modified == ["other-06", "job-05"]

    first = listed("--max-results", "5")
    second = listed("--max-results", "5", "--next-token", first["NextToken"])
    third = listed("--max-results", "5", "--next-token", second["NextToken"])
    assert "NextToken" not in third
    assert names(first) + names(second) + names(third) == newest_first
    assert len(names(third)) == 2

    table = localproc("list", "--state-dir", str(many_records), "--max-results", "2")
    assert table.stdout.splitlines()[0].split() == ["NAME", "STATUS", "CREATED", "ENDED"]
    assert "more: --next-token" in table.stdout

    bad = localproc("list", "--state-dir", str(many_records), "--sort-by", "Size")
    assert bad.exit_code == 2
    assert "Member must satisfy enum value set: [Name, CreationTime, Status]" in bad.stderr


STUBBORN = r"""
import signal, time
signal.signal(signal.SIGTERM, signal.SIG_IGN)  # only SIGKILL ends this one
print('sleeping', flush=True)
time.sleep(120)
"""


def test_a_second_ctrl_c_kills_the_containers_at_once(localproc: Localproc, s3: Any) -> None:
    name, process = spawn_stubborn(localproc, s3, stop_grace=60)
    try:
        wait_for(started(localproc, name), 60, "the container to start")
        process.send_signal(signal.SIGINT)
        time.sleep(1)
        began = time.monotonic()
        process.send_signal(signal.SIGINT)
        assert process.wait(timeout=30) == 3
        assert time.monotonic() - began < 20  # not the 60 s grace period
    finally:
        process.kill()
    assert localproc.record(name)["ProcessingJobStatus"] == "Stopped"


def test_the_next_run_cleans_up_after_a_killed_runner(
    localproc: Localproc, s3: Any, docker_client: Any
) -> None:
    bucket = s3.make_bucket()
    killed = unique_name("killed")
    process = spawn_run(
        localproc, str(localproc.write_payload(sleeper_payload(s3, bucket, killed))),
        "--s3-endpoint-url", s3.endpoint_url,
    )  # fmt: skip
    try:
        wait_for(started(localproc, killed), 60, "the container to start")
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=30)
    finally:
        process.kill()
    assert job_resources(docker_client, {killed}) != ([], [])

    after = localproc(
        "run", str(localproc.write_payload(job_payload(unique_name("next"), entrypoint=["true"]))),
        "--s3-endpoint-url", s3.endpoint_url,
    )  # fmt: skip

    assert after.exit_code == 0, after.output
    assert job_resources(docker_client, {killed}) == ([], [])
    assert localproc.record(killed)["ProcessingJobStatus"] == "Failed"


def test_a_detached_run_that_cannot_record_its_job_in_time_is_ended(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, aws_test_env: None
) -> None:
    """An S3 endpoint that accepts connections and never answers keeps the background run from
    recording its job; the caller is told it did not run, so it must not run later either."""
    import socket

    from localproc.execution.prepare import RunSettings
    from localproc.records.store import JobStore
    from localproc.service import detach

    monkeypatch.setattr(detach, "START_TIMEOUT_SECONDS", 3)
    with socket.create_server(("127.0.0.1", 0)) as silent:  # listens, never answers
        endpoint = f"http://127.0.0.1:{silent.getsockname()[1]}"
        settings = RunSettings(state_dir=tmp_path / "state", s3_endpoint_url=endpoint)
        name = unique_name("too-slow")
        request = job_payload(
            name,
            entrypoint=["true"],
            inputs=[s3_input("data", "s3://bucket/in/", "/opt/ml/processing/in")],
        )
        with pytest.raises(detach.DetachedRunRejected) as rejected:
            detach.start_detached(request, settings)

        assert rejected.value.exit_status == 4
        assert "did not record the job within 3 s" in str(rejected.value)
        assert not _processes_mentioning(str(settings.state_dir))  # the background run ended
        assert not JobStore(settings.state_dir).exists(name)
        assert JobStore(settings.state_dir).runner_log(name).is_file()


def _processes_mentioning(text: str) -> list[int]:
    import psutil

    found = []
    for process in psutil.process_iter(["cmdline", "status"]):
        cmdline = process.info["cmdline"] or []
        if process.info["status"] != psutil.STATUS_ZOMBIE and any(text in a for a in cmdline):
            found.append(process.pid)
    return found
