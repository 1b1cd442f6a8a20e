"""The bundled example: `localproc run fixtures/jobs/quickstart.json --s3-root fixtures/s3`."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from docker_engine import REPO_ROOT, Localproc, both_engines


@both_engines
def test_quickstart_runs_offline_and_writes_outputs_to_the_folder_store(
    localproc: Localproc, tmp_path: Path
) -> None:
    s3_root = tmp_path / "s3"
    shutil.copytree(REPO_ROOT / "fixtures" / "s3", s3_root)
    payload = REPO_ROOT / "fixtures" / "jobs" / "quickstart.json"

    result = localproc("run", str(payload), "--s3-root", str(s3_root))

    assert result.exit_code == 0, result.output
    # The container's own output, live and prefixed with its instance.
    assert "algo-1 | running on algo-1 of ['algo-1']" in result.stdout
    assert "algo-1 | read 2024/q2/april.csv" in result.stdout
    # One summary line at the end.
    last_line = result.stdout.strip().splitlines()[-1]
    assert last_line.startswith("Completed: quickstart in ")
    assert "2 output file(s)" in last_line

    report = s3_root / "localproc-examples" / "quickstart" / "output" / "report"
    summary = json.loads((report / "summary.json").read_text())
    assert summary == {
        "title": "Sales by region",
        "files": 3,
        "totals": {"east": 352.0, "north": 160.75, "south": 179.99, "west": 250.0},
    }
    assert (report / "report.txt").read_text().startswith("Sales by region\n")

    record = localproc.record("quickstart")
    assert record["ProcessingJobStatus"] == "Completed"
    assert record["ProcessingJobArn"] == (
        "arn:aws:sagemaker:us-east-1:000000000000:processing-job/quickstart"
    )
    assert (
        (localproc.job_dir("quickstart") / "logs" / "algo-1.log")
        .read_text()
        .startswith("running on algo-1")
    )
    # Staging is removed by default; what the job wrote stays inspectable.
    assert not (localproc.job_dir("quickstart") / "staging").exists()
    assert (
        localproc.job_dir("quickstart") / "algo-1" / "outputs" / "report" / "summary.json"
    ).exists()


def test_same_name_twice_is_refused_before_anything_starts(
    localproc: Localproc, tmp_path: Path
) -> None:
    s3_root = tmp_path / "s3"
    shutil.copytree(REPO_ROOT / "fixtures" / "s3", s3_root)
    payload = str(REPO_ROOT / "fixtures" / "jobs" / "quickstart.json")
    assert localproc("run", payload, "--s3-root", str(s3_root)).exit_code == 0

    again = localproc("run", payload, "--s3-root", str(s3_root))

    assert again.exit_code == 2
    assert "ResourceInUse" in again.stderr
    assert localproc.record("quickstart")["ProcessingJobStatus"] == "Completed"
    renamed = localproc("run", payload, "--s3-root", str(s3_root), "--name", "quickstart-2")
    assert renamed.exit_code == 0, renamed.output
