"""`localproc logs NAME --instance X` reads only the job's own instances' logs (issue 12, item 3):
an instance is one of algo-1 … algo-N of the recorded InstanceCount, anything else (`../../x`,
`algo-99`) is refused with exit 2 naming the option and the valid instances. No Docker needed:
the jobs are recorded by hand, as a run records them."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from docker_engine import Localproc


def record_job(
    state_dir: Path, name: str, instance_count: int, logs: dict[str, str], **fields: Any
) -> Path:
    """A Completed job as `run` records it, with the given log files; returns its folder."""
    folder = state_dir / "jobs" / name
    (folder / "logs").mkdir(parents=True)
    record = {
        "ProcessingJobName": name,
        "ProcessingJobArn": f"arn:aws:sagemaker:us-east-1:000000000000:processing-job/{name}",
        "ProcessingJobStatus": "Completed",
        "CreationTime": "2026-12-01T10:00:00.000+00:00",
        "LastModifiedTime": "2026-12-01T10:01:00.000+00:00",
        "ProcessingStartTime": "2026-12-01T10:00:01.000+00:00",
        "ProcessingEndTime": "2026-12-01T10:01:00.000+00:00",
        "AppSpecification": {"ImageUri": "localproc/example-python:bookworm"},
        "ProcessingResources": {
            "ClusterConfig": {
                "InstanceCount": instance_count,
                "InstanceType": "ml.t3.medium",
                "VolumeSizeInGB": 5,
            }
        },
        "RoleArn": "arn:aws:iam::123456789012:role/LocalprocTestRole",
        **fields,
    }
    (folder / "record.json").write_text(json.dumps(record))
    for host, text in logs.items():
        (folder / "logs" / f"{host}.log").write_text(text)
    return folder


@pytest.fixture
def cli(tmp_path: Path) -> Localproc:
    work = tmp_path / "work"
    work.mkdir()
    return Localproc(tmp_path / "state", work)


def test_an_instance_outside_the_job_is_refused_naming_the_valid_ones(cli: Localproc) -> None:
    folder = record_job(
        cli.state_dir, "two", 2, {"algo-1": "one\n", "algo-2": "two\n"}
    )  # fmt: skip
    # A *.log file elsewhere that a path in --instance could reach.
    (folder.parent / "secret.log").write_text("SECRET\n")
    (cli.state_dir / "secret.log").write_text("SECRET\n")
    for instance in ("../../secret", "../secret", "algo-99", "algo-0", "algo-3", "x", ""):
        result = cli("logs", "two", "--instance", instance)

        assert result.exit_code == 2, (instance, result.output)
        assert "SECRET" not in result.output
        assert "--instance" in result.stderr
        assert "algo-1, algo-2" in result.stderr
        assert "Traceback" not in result.output


def test_an_instance_of_the_job_prints_its_log(cli: Localproc) -> None:
    record_job(cli.state_dir, "two", 2, {"algo-1": "one\n", "algo-2": "two\n"})

    result = cli("logs", "two", "--instance", "algo-2")

    assert result.exit_code == 0, result.output
    assert result.stdout == "two\n"
    result = cli("logs", "two")
    assert result.exit_code == 0, result.output
    assert result.stdout == "algo-1 | one\nalgo-2 | two\n"


def test_an_instance_that_wrote_nothing_yet_prints_nothing(cli: Localproc) -> None:
    record_job(cli.state_dir, "three", 3, {"algo-1": "one\n"})

    result = cli("logs", "three", "--instance", "algo-3")

    assert result.exit_code == 0, result.output
    assert result.stdout == ""
