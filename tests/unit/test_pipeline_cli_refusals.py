"""`localproc pipeline run` as users call it, refusing before anything starts: a clear message,
exit 2, and no pipeline recorded. Condition steps only, so no engine is needed."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

CHECK = {
    "Name": "Check",
    "Type": "Condition",
    "Arguments": {
        "Conditions": [{"Type": "Equals", "LeftValue": {"Get": "Parameters.N"}, "RightValue": 1}]
    },
}


def pipeline_run(tmp_path: Path, steps: list[dict], *args: str) -> subprocess.CompletedProcess:
    definition = {
        "Version": "2020-12-01",
        "Parameters": [{"Name": "N", "Type": "Integer", "DefaultValue": 1}],
        "Steps": steps,
    }
    path = tmp_path / "flow.json"
    path.write_text(json.dumps(definition))
    (tmp_path / "s3").mkdir(exist_ok=True)
    command = [sys.executable, "-m", "localproc", "pipeline", "run", str(path)]
    command += ["--state-dir", str(tmp_path / "state"), "--s3-root", str(tmp_path / "s3"), *args]
    return subprocess.run(command, capture_output=True, text=True, timeout=120)


@pytest.mark.parametrize(
    "steps, args, says",
    [
        ([CHECK], ["-p", "N=abc"], "Parameter 'N': 'abc' is not a valid Integer value"),
        ([CHECK], ["-p", "Ghost=1"], "Parameter 'Ghost' is not defined by the pipeline"),
        (
            [CHECK, {"Name": "Train", "Type": "Training", "Arguments": {}}],
            [],
            "step 'Train' is a Training step",
        ),
    ],
    ids=["wrong-type", "unknown-parameter", "training-step"],
)
def test_a_refused_pipeline_run_says_why_exits_2_and_records_nothing(
    tmp_path: Path, steps: list[dict], args: list[str], says: str
) -> None:
    result = pipeline_run(tmp_path, steps, *args)
    assert result.returncode == 2, result.stderr
    assert says in result.stderr
    assert "Traceback" not in result.stderr
    assert not list((tmp_path / "state").glob("pipeline*/*.json"))


@pytest.mark.parametrize(
    "arguments",
    [
        {"AppSpecification": "x", "ProcessingInputs": [1], "ProcessingOutputConfig": "y"},
        {"AppSpecification": {"ContainerEntrypoint": "python3", "ContainerArguments": ["a"]}},
        {"ProcessingInputs": {"a": 1}, "ProcessingOutputConfig": {"Outputs": [{"S3Output": 2}]}},
    ],
    ids=["not-objects", "entrypoint-not-a-list", "inputs-not-a-list"],
)
def test_pipeline_plan_shows_malformed_processing_arguments_without_a_traceback(
    arguments: dict,
) -> None:
    from localproc.cli.pipeline_render import plan_text
    from localproc.service.pipeline_jobs import plan_pipeline

    text = json.dumps(
        {
            "Version": "2020-12-01",
            "Steps": [{"Name": "A", "Type": "Processing", "Arguments": arguments}],
        }
    )
    shown = plan_text(plan_pipeline(text, []))
    assert "[1] A (Processing, runs here)" in shown
