"""A damaged record (truncated, not an object, garbage, a partial object) affects only its own
job: `list` shows it as unreadable with its path, `describe` explains it, `delete` removes it,
and every other command — `gc`, `logs`, a new `run`, `serve` — goes on working."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest
from docker_engine import REPO_ROOT, Localproc
from serve_clients import raw_request, start_server

pytestmark = pytest.mark.docker

GOOD = {
    "ProcessingJobName": "healthy",
    "ProcessingJobArn": "arn:aws:sagemaker:us-east-1:000000000000:processing-job/healthy",
    "ProcessingJobStatus": "Completed",
    "CreationTime": "2026-11-30T10:00:00.000+00:00",
    "LastModifiedTime": "2026-11-30T10:01:00.000+00:00",
    "ProcessingEndTime": "2026-11-30T10:01:00.000+00:00",
    "AppSpecification": {"ImageUri": "example"},
    "ProcessingResources": {
        "ClusterConfig": {"InstanceCount": 1, "InstanceType": "ml.t3.medium", "VolumeSizeInGB": 5}
    },
    "RoleArn": "arn:aws:iam::123456789012:role/R",
}

DAMAGES = {
    "truncated": json.dumps(GOOD)[:40],
    "a-list": "[]",
    "garbage": "\x00\xff not json at all",
    "partial-object": json.dumps({"ProcessingJobName": "partial-object"}),
    "wrong-types": json.dumps({**GOOD, "ProcessingJobStatus": 7, "CreationTime": ["x"]}),
    "empty": "",
    # Valid JSON with the right top-level fields, but what localproc reads inside is wrong:
    "runner-without-start": json.dumps(
        {**GOOD, "ProcessingJobStatus": "InProgress", "Localproc": {"RunnerPid": 999999}}
    ),
    "negative-pid": json.dumps(
        {
            **GOOD,
            "ProcessingJobStatus": "InProgress",
            "Localproc": {"RunnerPid": -5, "RunnerStartTime": 1.0},
        }
    ),  # fmt: skip
    "app-a-list": json.dumps({**GOOD, "AppSpecification": [1, 2]}),
    "outputs-a-string": json.dumps({**GOOD, "ProcessingOutputConfig": {"Outputs": "x"}}),
    "inputs-odd": json.dumps({**GOOD, "ProcessingInputs": [1, None, {"InputName": 5}]}),
    "reason-a-number": json.dumps({**GOOD, "FailureReason": 123, "ExitMessage": ["x"]}),
    "count-a-string": json.dumps(
        {**GOOD, "ProcessingResources": {"ClusterConfig": {"InstanceCount": "2"}}}
    ),
}


def _write_record(state: Path, name: str, text: str) -> Path:
    folder = state / "jobs" / name
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "record.json"
    path.write_text(text, encoding="utf-8", errors="surrogateescape")
    return path


@pytest.fixture
def damaged_state(localproc: Localproc) -> dict[str, Path]:
    _write_record(localproc.state_dir, "healthy", json.dumps(GOOD))
    logs = localproc.state_dir / "jobs" / "healthy" / "logs"
    logs.mkdir()
    (logs / "algo-1.log").write_text("hello from healthy\n")
    return {name: _write_record(localproc.state_dir, name, text) for name, text in DAMAGES.items()}


def _no_traceback(result: Any) -> None:
    assert "Traceback" not in result.output, result.output


def test_list_shows_damaged_records_as_unreadable_with_their_path(
    localproc: Localproc, damaged_state: dict[str, Path]
) -> None:
    listed = localproc("list")
    _no_traceback(listed)
    assert listed.exit_code == 0, listed.output
    assert "healthy" in listed.stdout
    for name, path in damaged_state.items():
        line = next(line for line in listed.stdout.splitlines() if line.startswith(name + " "))
        assert "unreadable" in line and str(path) in line, listed.stdout

    as_json = localproc("list", "--json")
    _no_traceback(as_json)
    assert as_json.exit_code == 0, as_json.output
    page = json.loads(as_json.stdout)
    assert [s["ProcessingJobName"] for s in page["ProcessingJobSummaries"]] == ["healthy"]
    for path in damaged_state.values():  # said on stderr, beside the API's shape
        assert str(path) in as_json.stderr


def test_describe_explains_a_damaged_record_and_delete_removes_it(
    localproc: Localproc, damaged_state: dict[str, Path]
) -> None:
    for name, path in damaged_state.items():
        described = localproc("describe", name)  # the text view reads nested members too
        _no_traceback(described)
        assert described.exit_code == 2, described.output
        assert str(path) in described.stderr and "damaged" in described.stderr
        assert f"localproc delete {name}" in described.stderr

        deleted = localproc("delete", name)
        _no_traceback(deleted)
        assert deleted.exit_code == 0, deleted.output
        assert not path.parent.exists()
    assert localproc("describe", "healthy").exit_code == 0


def test_gc_logs_and_a_new_run_work_beside_damaged_records(
    localproc: Localproc, damaged_state: dict[str, Path], tmp_path: Path
) -> None:
    collected = localproc("gc")
    _no_traceback(collected)
    assert collected.exit_code == 0, collected.output
    for path in damaged_state.values():
        assert path.exists()  # gc does not destroy what it cannot read

    healthy_logs = localproc("logs", "healthy")
    assert healthy_logs.exit_code == 0, healthy_logs.output
    assert "hello from healthy" in healthy_logs.stdout
    damaged_logs = localproc("logs", "truncated")
    _no_traceback(damaged_logs)
    assert damaged_logs.exit_code == 2 and "damaged" in damaged_logs.stderr

    s3_root = tmp_path / "s3"
    shutil.copytree(REPO_ROOT / "fixtures" / "s3", s3_root)
    payload = str(REPO_ROOT / "fixtures" / "jobs" / "quickstart.json")
    ran = localproc("run", payload, "--s3-root", str(s3_root))
    _no_traceback(ran)
    assert ran.exit_code == 0, ran.output

    # A damaged record under a name is still a job of that name: the name stays taken.
    again = localproc("run", payload, "--s3-root", str(s3_root), "--name", "truncated")
    assert again.exit_code == 2 and "ResourceInUse" in again.stderr, again.output


def _call(url: str, operation: str, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
    return raw_request(url, f"SageMaker.{operation}", json.dumps(body).encode(), timeout=30)


def test_serve_lists_and_describes_beside_damaged_records(
    localproc: Localproc, damaged_state: dict[str, Path], tmp_path: Path
) -> None:
    server = start_server(
        ["--port", "0", "--state-dir", str(localproc.state_dir)], tmp_path / "serve.log"
    )
    try:
        status, page = _call(server.url, "ListProcessingJobs", {})
        assert status == 200, page
        assert [s["ProcessingJobName"] for s in page["ProcessingJobSummaries"]] == ["healthy"]
        status, described = _call(
            server.url, "DescribeProcessingJob", {"ProcessingJobName": "garbage"}
        )
        assert status == 400, described
        assert described["__type"] != "InternalFailure"
        assert "damaged" in described["message"]
        status, _ = _call(server.url, "DescribeProcessingJob", {"ProcessingJobName": "healthy"})
        assert status == 200
    finally:
        server.stop()
    assert "Traceback" not in server.log()


def test_stop_never_signals_a_process_a_record_cannot_prove_is_its_runner(
    localproc: Localproc,
) -> None:
    import subprocess
    import time

    bystander = subprocess.Popen(["sleep", "300"])
    try:
        _write_record(
            localproc.state_dir,
            "victim",
            json.dumps(
                {
                    **GOOD,
                    "ProcessingJobName": "victim",
                    "ProcessingJobStatus": "InProgress",
                    "Localproc": {"RunnerPid": bystander.pid},
                }
            ),  # fmt: skip
        )
        stopped = localproc("stop", "victim")
        time.sleep(0.5)
        assert bystander.poll() is None, "an unrelated process was signalled"
        _no_traceback(stopped)
        assert stopped.exit_code == 2 and "damaged" in stopped.stderr, stopped.output
    finally:
        bystander.kill()
        bystander.wait()


def test_logs_of_a_job_whose_log_is_not_a_file_say_so(localproc: Localproc) -> None:
    for name, damage in (("logs-a-file", "file"), ("log-a-folder", "folder")):
        record = {**GOOD, "ProcessingJobName": name}
        _write_record(localproc.state_dir, name, json.dumps(record))
        logs = localproc.state_dir / "jobs" / name / "logs"
        if damage == "file":
            logs.write_text("not a folder")
        else:
            (logs / "algo-1.log").mkdir(parents=True)
        shown = localproc("logs", name)
        _no_traceback(shown)
        assert shown.exit_code == 2 and "log" in shown.stderr, shown.output
