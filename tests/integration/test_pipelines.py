"""SageMaker Pipelines on localhost: the SageMaker Python SDK (v2) building and running a real
Pipeline against `localproc serve`, boto3 for failing, stopped and refused executions and for a
restart of the server, and `localproc pipeline run` running the SDK's own definition file. Real
Docker, a real S3 endpoint (moto) or --s3-root, real clients, the server and CLI as users run
them."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from docker_engine import EXAMPLE_IMAGE, Localproc, unique_name, wait_for
from serve_clients import (
    SAGEMAKER_SDK_REQUIREMENTS,
    ServerProcess,
    end_running_jobs,
    ensure_venv,
    python_of,
    sagemaker_client,
    start_server,
)

pytestmark = pytest.mark.docker

REGION = "us-east-1"
FIXTURES = Path(__file__).parents[2] / "fixtures" / "pipelines"
DEFINITION = FIXTURES / "evaluate-and-report.json"
FIXTURE_BUCKET = "localproc-pipelines"  # the bucket the fixture definition names
VENV_TEST_TIMEOUT = 1500
ROLE = "arn:aws:iam::123456789012:role/PipelineRole"
SLEEPER = "import time; print('sleeping', flush=True); time.sleep(300)"
FAILER = "import sys; print('about to fail', flush=True); sys.exit(3)"

ServerFactory = Callable[..., ServerProcess]


@pytest.fixture
def serve(localproc: Localproc, s3: Any, tmp_path: Path) -> Iterator[ServerFactory]:
    """`localproc serve` on a free port with the test's state dir and S3; at the end every job
    still running is stopped and every server stopped."""
    servers: list[ServerProcess] = []

    def start(*extra: str) -> ServerProcess:
        args = ["--port", "0", "--state-dir", str(localproc.state_dir)]
        args += ["--s3-endpoint-url", s3.endpoint_url, "--stop-grace", "2", *extra]
        server = start_server(args, tmp_path / f"serve-{len(servers)}.log")
        servers.append(server)
        return server

    yield start
    try:
        end_running_jobs(localproc)
    finally:
        for server in servers:
            server.stop()


def script_step(name: str, bucket: str, key: str, **extra: Any) -> dict[str, Any]:
    """A processing step running the script s3://bucket/key."""
    code = "/opt/ml/processing/input/code"
    script = f"{code}/{key.rsplit('/', 1)[-1]}"
    cluster = {"InstanceType": "ml.t3.medium", "InstanceCount": 1, "VolumeSizeInGB": 5}
    source = {"S3Uri": f"s3://{bucket}/{key}", "LocalPath": code, "S3DataType": "S3Prefix"}
    arguments = {
        "ProcessingResources": {"ClusterConfig": cluster},
        "AppSpecification": {
            "ImageUri": EXAMPLE_IMAGE,
            "ContainerEntrypoint": ["python3", "-u", script],
        },
        "RoleArn": ROLE,
        "ProcessingInputs": [{"InputName": "code", "S3Input": {**source, "S3InputMode": "File"}}],
        "StoppingCondition": {"MaxRuntimeInSeconds": 300},
    }
    return {"Name": name, "Type": "Processing", "Arguments": arguments, **extra}


def definition(*steps: dict[str, Any]) -> str:
    return json.dumps({"Version": "2020-12-01", "Parameters": [], "Steps": list(steps)})


def wait_for_execution(client: Any, arn: str, timeout: float = 180) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        described = client.describe_pipeline_execution(PipelineExecutionArn=arn)
        if described["PipelineExecutionStatus"] not in ("Executing", "Stopping"):
            return dict(described)
        assert time.monotonic() < deadline, described
        time.sleep(0.5)


def steps_of(client: Any, arn: str) -> dict[str, dict[str, Any]]:
    listed = client.list_pipeline_execution_steps(PipelineExecutionArn=arn)
    return {s["StepName"]: s for s in listed["PipelineExecutionSteps"]}


def job_name_of(step: dict[str, Any]) -> str:
    return str(step["Metadata"]["ProcessingJob"]["Arn"].rsplit("/", 1)[-1])


# -- the SageMaker Python SDK --------------------------------------------------------------------
@pytest.fixture(scope="session")
def sagemaker_sdk_python() -> Path:
    return python_of(ensure_venv("sagemaker-sdk", SAGEMAKER_SDK_REQUIREMENTS))


@pytest.mark.timeout(VENV_TEST_TIMEOUT)
def test_sdk_pipeline_with_property_file_condition_cache_and_fail_step(
    sagemaker_sdk_python: Path, serve: ServerFactory, s3: Any, localproc: Localproc
) -> None:
    server = serve()
    bucket = s3.make_bucket()
    s3.client.put_object(
        Bucket=bucket, Key="code/steps.py", Body=(FIXTURES / "steps.py").read_bytes()
    )
    s3.client.put_object(
        Bucket=bucket, Key="data/data.csv", Body=(FIXTURES / "data.csv").read_bytes()
    )
    name = unique_name("sdk-pipeline")
    env = {
        **os.environ,
        "AWS_ENDPOINT_URL": s3.endpoint_url,
        "AWS_ENDPOINT_URL_S3": s3.endpoint_url,
        "AWS_ENDPOINT_URL_SAGEMAKER": server.url,
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "HTTPS_PROXY": "http://127.0.0.1:9",
        "HTTP_PROXY": "http://127.0.0.1:9",
        "NO_PROXY": "127.0.0.1,localhost",
        "SAGEMAKER_SUPPRESS_V2_WARNING": "1",
    }
    script = Path(__file__).with_name("serve_sdk_pipeline.py")
    done = subprocess.run(
        [str(sagemaker_sdk_python), str(script), "run", server.url, bucket, EXAMPLE_IMAGE, name],
        capture_output=True, text=True, env=env, timeout=600,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr + server.log()
    result = json.loads(done.stdout.strip().splitlines()[-1])
    first, second, third = result["executions"]
    assert result["description"] == "localproc test, updated"  # upsert updated the pipeline

    # Parameters overridden at start(); outputs feed the next steps; the condition held.
    assert first["waited"] == "ok" and first["status"] == "Succeeded", first
    assert first["display_name"] == "first"
    assert first["parameters"]["AccuracyThreshold"] == "0.25"
    assert first["parameters"]["ReportTitle"] == "Warm cities"
    steps = first["steps"]
    assert {n: s["status"] for n, s in steps.items()} == dict.fromkeys(
        ["Prep", "Evaluate", "CheckAccuracy", "Report"], "Succeeded"
    )
    assert steps["CheckAccuracy"]["outcome"] == "True"
    execution_id = first["arn"].rsplit("/", 1)[-1]
    prep_job = steps["Prep"]["job"].rsplit("/", 1)[-1]
    assert prep_job.startswith(f"pipelines-{execution_id}-Prep-") and len(prep_job) <= 63
    report = s3.client.get_object(Bucket=bucket, Key=f"runs/{execution_id}/report/report.txt")
    assert report["Body"].read().decode() == "Warm cities: accuracy 0.500\n"
    assert localproc.record(prep_job)["ProcessingJobStatus"] == "Completed"  # a localproc job

    # The second execution reuses Prep (same arguments) and runs the others again.
    assert second["status"] == "Succeeded", second
    assert second["steps"]["Prep"]["cache"] == first["arn"]
    assert second["steps"]["Prep"]["job"] == steps["Prep"]["job"]
    assert second["steps"]["Evaluate"]["cache"] is None
    assert second["steps"]["Evaluate"]["job"] != steps["Evaluate"]["job"]

    # The default threshold (0.9) is not reached: the ConditionStep chooses the FailStep.
    assert third["status"] == "Failed" and third["waited"].startswith("WaiterError")
    assert third["steps"]["CheckAccuracy"]["outcome"] == "False"
    assert third["steps"]["TooInaccurate"]["status"] == "Failed"
    assert third["steps"]["TooInaccurate"]["error"] == "Accuracy below the threshold of 0.9"
    assert "Report" not in third["steps"]

    client = sagemaker_client(server.url)
    tags = client.list_tags(ResourceArn=result["pipeline_arn"])["Tags"]
    assert {"Key": "team", "Value": "ml"} in tags
    versions = client.list_pipeline_versions(PipelineName=name)["PipelineVersionSummaries"]
    assert len(versions) == 2


# -- boto3: failures, stop, refusal, restarts ----------------------------------------------------
def test_a_failing_step_fails_the_execution_with_the_jobs_reason(
    serve: ServerFactory, s3: Any, localproc: Localproc
) -> None:
    server = serve()
    client = sagemaker_client(server.url)
    bucket = s3.make_bucket()
    s3.client.put_object(Bucket=bucket, Key="fail.py", Body=FAILER.encode())
    name = unique_name("failing")
    after = script_step("After", bucket, "fail.py", DependsOn=["Broken"])
    client.create_pipeline(
        PipelineName=name,
        RoleArn=ROLE,
        PipelineDefinition=definition(script_step("Broken", bucket, "fail.py"), after),
    )
    arn = client.start_pipeline_execution(PipelineName=name)["PipelineExecutionArn"]
    described = wait_for_execution(client, arn)
    assert described["PipelineExecutionStatus"] == "Failed"
    assert described["FailureReason"] == "Step failure: One or multiple steps failed."
    steps = steps_of(client, arn)
    assert list(steps) == ["Broken"]  # After never started
    assert steps["Broken"]["StepStatus"] == "Failed"
    assert steps["Broken"]["FailureReason"].startswith("AlgorithmError:")
    assert localproc.record(job_name_of(steps["Broken"]))["ProcessingJobStatus"] == "Failed"


def test_stop_pipeline_execution_stops_the_running_step_job(
    serve: ServerFactory, s3: Any, localproc: Localproc
) -> None:
    server = serve()
    client = sagemaker_client(server.url)
    bucket = s3.make_bucket()
    s3.client.put_object(Bucket=bucket, Key="sleep.py", Body=SLEEPER.encode())
    name = unique_name("stopped")
    client.create_pipeline(
        PipelineName=name,
        RoleArn=ROLE,
        PipelineDefinition=definition(script_step("Sleep", bucket, "sleep.py")),
    )
    arn = client.start_pipeline_execution(PipelineName=name)["PipelineExecutionArn"]
    wait_for(lambda: steps_of(client, arn).get("Sleep", {}).get("StepStatus") == "Executing", 120)
    job = job_name_of(steps_of(client, arn)["Sleep"])
    wait_for(lambda: "sleeping" in _log(localproc, job), 60)
    client.stop_pipeline_execution(PipelineExecutionArn=arn)
    assert client.describe_pipeline_execution(PipelineExecutionArn=arn)[
        "PipelineExecutionStatus"
    ] in ("Stopping", "Stopped")
    described = wait_for_execution(client, arn, timeout=120)
    assert described["PipelineExecutionStatus"] == "Stopped"
    assert steps_of(client, arn)["Sleep"]["StepStatus"] == "Stopped"
    assert localproc.record(job)["ProcessingJobStatus"] == "Stopped"


def _log(localproc: Localproc, job: str) -> str:
    log = localproc.job_dir(job) / "logs" / "algo-1.log"
    return log.read_text(errors="replace") if log.exists() else ""


def test_a_pipeline_with_a_training_step_is_refused_up_front(
    serve: ServerFactory, s3: Any, localproc: Localproc
) -> None:
    from botocore.exceptions import ClientError

    server = serve()
    client = sagemaker_client(server.url)
    train = {"Name": "Train", "Type": "Training", "Arguments": {}}
    name = unique_name("training")
    client.create_pipeline(
        PipelineName=name,
        RoleArn=ROLE,
        PipelineDefinition=definition(script_step("Prep", "b", "x.py"), train),
    )
    with pytest.raises(ClientError) as refused:
        client.start_pipeline_execution(PipelineName=name)
    error = refused.value.response["Error"]
    assert error["Code"] == "ValidationException"
    assert "no execution was started" in error["Message"]
    assert "step 'Train' is a Training step" in error["Message"]
    assert client.list_pipeline_executions(PipelineName=name)["PipelineExecutionSummaries"] == []
    assert not (localproc.state_dir / "jobs").exists()  # no job was started


def test_records_survive_a_restart_and_an_interrupted_execution_is_failed(
    serve: ServerFactory, s3: Any, localproc: Localproc
) -> None:
    server = serve()
    client = sagemaker_client(server.url)
    bucket = s3.make_bucket()
    s3.client.put_object(Bucket=bucket, Key="quick.py", Body=b"print('quick', flush=True)")
    s3.client.put_object(Bucket=bucket, Key="sleep.py", Body=SLEEPER.encode())
    name = unique_name("restart")
    steps = definition(
        script_step("Quick", bucket, "quick.py"),
        script_step("Sleep", bucket, "sleep.py", DependsOn=["Quick"]),
    )
    client.create_pipeline(PipelineName=name, RoleArn=ROLE, PipelineDefinition=steps)
    arn = client.start_pipeline_execution(
        PipelineName=name, PipelineExecutionDisplayName="before-restart"
    )["PipelineExecutionArn"]
    wait_for(lambda: steps_of(client, arn).get("Sleep", {}).get("StepStatus") == "Executing", 120)
    job = job_name_of(steps_of(client, arn)["Sleep"])
    server.stop(signum=signal.SIGKILL)  # the server dies while the execution runs

    again = serve()
    client = sagemaker_client(again.url)
    assert client.describe_pipeline(PipelineName=name)["PipelineDefinition"] == steps
    described = client.describe_pipeline_execution(PipelineExecutionArn=arn)
    assert described["PipelineExecutionDisplayName"] == "before-restart"
    assert described["PipelineExecutionStatus"] == "Failed"
    assert "ended while it ran" in described["FailureReason"]
    after = steps_of(client, arn)
    assert after["Quick"]["StepStatus"] == "Succeeded"
    assert after["Sleep"]["StepStatus"] == "Failed"
    # The step's job, which the dead server had started, is stopped.
    wait_for(lambda: localproc.record(job)["ProcessingJobStatus"] == "Stopped", 60)
    summaries = client.list_pipeline_executions(PipelineName=name)["PipelineExecutionSummaries"]
    assert [s["PipelineExecutionArn"] for s in summaries] == [arn]
    recorded = client.describe_pipeline_definition_for_execution(PipelineExecutionArn=arn)
    assert recorded["PipelineDefinition"] == steps

    # RetryPipelineExecution keeps the Succeeded step and runs the failed one again.
    client.retry_pipeline_execution(PipelineExecutionArn=arn)
    wait_for(lambda: steps_of(client, arn).get("Sleep", {}).get("StepStatus") == "Executing", 120)
    retried = steps_of(client, arn)
    assert retried["Quick"] == after["Quick"]
    assert job_name_of(retried["Sleep"]) != job
    client.stop_pipeline_execution(PipelineExecutionArn=arn)
    assert wait_for_execution(client, arn, timeout=120)["PipelineExecutionStatus"] == "Stopped"


# -- the CLI -------------------------------------------------------------------------------------
def test_the_cli_runs_the_sdk_definition_file(localproc: Localproc, tmp_path: Path) -> None:
    root = tmp_path / "s3"
    (root / FIXTURE_BUCKET / "code").mkdir(parents=True)
    (root / FIXTURE_BUCKET / "data").mkdir(parents=True)
    shutil.copy(FIXTURES / "steps.py", root / FIXTURE_BUCKET / "code" / "steps.py")
    shutil.copy(FIXTURES / "data.csv", root / FIXTURE_BUCKET / "data" / "data.csv")

    plan = localproc("pipeline", "plan", str(DEFINITION), "-p", "AccuracyThreshold=0.25")
    assert plan.exit_code == 0, plan.output
    assert "AccuracyThreshold = 0.25" in plan.stdout
    assert (
        "input train: <Steps.Prep.ProcessingOutputConfig.Outputs['train'].S3Output.S3Uri>"
        in plan.stdout
    )

    name = unique_name("cli-pipeline")
    run = ["pipeline", "run", str(DEFINITION), "--s3-root", str(root), "--name", name]
    passed = localproc(*run, "--parameter", "AccuracyThreshold=0.25", "-p", "ReportTitle=CLI")
    assert passed.exit_code == 0, passed.output
    assert "[Prep algo-1] prep kept 4 rows" in passed.stdout
    assert "[Report algo-1] CLI: accuracy 0.500" in passed.stdout
    assert ": Succeeded" in passed.stderr
    [report] = list((root / FIXTURE_BUCKET / "runs").glob("*/report/report.txt"))
    assert report.read_text() == "CLI: accuracy 0.500\n"

    # The default threshold: the FailStep. Prep's arguments are the same (the same ReportTitle
    # in its environment), so its earlier run is reused.
    failed = localproc(*run, "-p", "ReportTitle=CLI")
    assert failed.exit_code == 1, failed.output
    assert "Accuracy below the threshold of 0.9" in failed.stderr

    executions = localproc("pipeline", "executions", name, "--json")
    found = json.loads(executions.stdout)
    assert [e["PipelineExecutionStatus"] for e in found] == ["Failed", "Succeeded"]
    steps = json.loads(
        localproc("pipeline", "steps", found[0]["PipelineExecutionArn"], "--json").stdout
    )
    assert [s["StepName"] for s in steps] == ["Prep", "Evaluate", "CheckAccuracy", "TooInaccurate"]
    assert (
        steps[0]["CacheHitResult"]["SourcePipelineExecutionArn"] == found[1]["PipelineExecutionArn"]
    )
    listed = localproc("pipeline", "list")
    assert name in listed.stdout
    described = localproc("pipeline", "describe", name)
    assert "Steps: Prep, Evaluate, CheckAccuracy" in described.stdout
    as_json = json.loads(localproc("pipeline", "describe", name, "--json").stdout)
    assert as_json["PipelineDefinition"] == DEFINITION.read_text()

    # A step whose arguments the API would refuse fails at its turn, in the API's words.
    invalid = script_step("Bad", FIXTURE_BUCKET, "code/steps.py")
    invalid["Arguments"]["ProcessingResources"]["ClusterConfig"]["InstanceCount"] = 0
    bad = tmp_path / "bad.json"
    bad.write_text(definition(invalid))
    refused_step = localproc("pipeline", "run", str(bad), "--s3-root", str(root))
    assert refused_step.exit_code == 1, refused_step.output
    assert "ValidationException: 1 validation error detected" in refused_step.stderr
    assert "instanceCount" in refused_step.stderr

    training = tmp_path / "training.json"
    training.write_text(definition({"Name": "Train", "Type": "Training", "Arguments": {}}))
    refused = localproc("pipeline", "run", str(training), "--s3-root", str(root))
    assert refused.exit_code == 2
    assert "step 'Train' is a Training step" in refused.stderr
    assert localproc("pipeline", "plan", str(training)).exit_code == 1


def test_bad_pipeline_requests_get_the_services_errors(serve: ServerFactory) -> None:
    from botocore.exceptions import ClientError

    server = serve()
    client = sagemaker_client(server.url)

    def error_of(call: Callable[[], Any]) -> tuple[str, str]:
        with pytest.raises(ClientError) as caught:
            call()
        return caught.value.response["Error"]["Code"], caught.value.response["Error"]["Message"]

    name = unique_name("bad")
    code, message = error_of(
        lambda: client.create_pipeline(
            PipelineName=name, RoleArn=ROLE, PipelineDefinition="{not json"
        )
    )
    assert code == "ValidationException" and "not valid JSON" in message
    looping = definition(
        {"Name": "A", "Type": "Fail", "Arguments": {}, "DependsOn": ["A2"]},
        {"Name": "A2", "Type": "Fail", "Arguments": {}, "DependsOn": ["A"]},
    )
    code, message = error_of(
        lambda: client.create_pipeline(PipelineName=name, RoleArn=ROLE, PipelineDefinition=looping)
    )
    assert code == "ValidationException" and "cycle" in message
    code, message = error_of(
        lambda: client.create_pipeline(
            PipelineName="no_underscores", RoleArn=ROLE, PipelineDefinition="{}"
        )
    )
    assert code == "ValidationException" and "pipelineName" in message
    code, _ = error_of(lambda: client.describe_pipeline(PipelineName="missing"))
    assert code == "ResourceNotFound"
    unknown = f"arn:aws:sagemaker:{REGION}:000000000000:pipeline/missing/execution/abc123"
    code, _ = error_of(lambda: client.describe_pipeline_execution(PipelineExecutionArn=unknown))
    assert code == "ResourceNotFound"

    fail = {"Name": "Stop", "Type": "Fail", "Arguments": {"ErrorMessage": {"Get": "Parameters.N"}}}
    with_parameter = json.dumps(
        {
            "Version": "2020-12-01",
            "Parameters": [{"Name": "N", "Type": "Integer", "DefaultValue": 1}],
            "Steps": [fail],
        }
    )
    client.create_pipeline(PipelineName=name, RoleArn=ROLE, PipelineDefinition=with_parameter)
    code, message = error_of(
        lambda: client.start_pipeline_execution(
            PipelineName=name, PipelineParameters=[{"Name": "N", "Value": "many"}]
        )
    )
    assert code == "ValidationException" and "'many' is not a valid Integer value" in message
    start = {"PipelineName": name, "PipelineParameters": [{"Name": "N", "Value": "7"}]}
    arn = client.start_pipeline_execution(
        **start, ClientRequestToken="the-same-request-token-0000000001"
    )["PipelineExecutionArn"]
    # The same token again is the same request: the same execution, no second one.
    again = client.start_pipeline_execution(
        **start, ClientRequestToken="the-same-request-token-0000000001"
    )
    assert again["PipelineExecutionArn"] == arn
    assert wait_for_execution(client, arn)["PipelineExecutionStatus"] == "Failed"
    assert steps_of(client, arn)["Stop"]["FailureReason"] == "7"
    code, message = error_of(lambda: client.stop_pipeline_execution(PipelineExecutionArn=arn))
    assert code == "ValidationException" and "only an Executing execution can be stopped" in message
    assert " 500 " not in server.log()


@pytest.mark.parametrize("how", ["pipeline stop", "Ctrl-C"])
def test_pipeline_stop_from_another_terminal_or_ctrl_c_ends_the_foreground_run_stopped(
    how: str, localproc: Localproc, tmp_path: Path
) -> None:
    root = tmp_path / "s3"
    (root / "code").mkdir(parents=True)
    (root / "code" / "sleep.py").write_text(SLEEPER)
    path = tmp_path / "sleepy.json"
    path.write_text(definition(script_step("Sleep", "code", "sleep.py")))
    name = unique_name("cli-stop")
    command = [
        sys.executable,
        "-m",
        "localproc",
        "pipeline",
        "run",
        str(path),
        "--s3-root",
        str(root),
        "--name",
        name,
    ]
    env = {**os.environ, "LOCALPROC_HOME": str(localproc.state_dir)}
    running = subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env
    )
    try:

        def executing() -> list[dict[str, Any]]:
            listed = localproc("pipeline", "executions", name, "--json")
            return json.loads(listed.stdout) if listed.exit_code == 0 else []

        wait_for(lambda: bool(executing()), 60)
        arn = executing()[0]["PipelineExecutionArn"]
        wait_for(lambda: "Executing" in localproc("pipeline", "steps", arn).stdout, 120)
        if how == "Ctrl-C":
            running.send_signal(signal.SIGINT)
        else:
            stopped = localproc("pipeline", "stop", arn.rsplit("/", 1)[-1])
            assert stopped.exit_code == 0, stopped.output
        out, err = running.communicate(timeout=120)
    finally:
        if running.poll() is None:
            running.kill()
            running.wait()
    assert running.returncode == 3, out + err
    assert "[Sleep algo-1] sleeping" in out
    assert f"{arn}: Stopped" in err
    steps = json.loads(localproc("pipeline", "steps", arn, "--json").stdout)
    assert steps[0]["StepStatus"] == "Stopped"
    job = steps[0]["Metadata"]["ProcessingJob"]["Arn"].rsplit("/", 1)[-1]
    assert localproc.record(job)["ProcessingJobStatus"] == "Stopped"


HOSTILE_WRITER = """
import os
out = "/opt/ml/processing/evaluation"
os.symlink("/etc/passwd", f"{out}/link.json")  # a host file, if the upload followed it
os.mkfifo(f"{out}/fifo.json")  # would block a reader forever
with open(f"{out}/big.json", "w") as big:
    big.write('{"a": "' + "x" * (2 * 1024 * 1024) + '"}')
print("wrote", sorted(os.listdir(out)), flush=True)
"""


@pytest.mark.parametrize(
    "file_path, says",
    [
        ("link.json", "cannot be read: there is no object"),
        ("fifo.json", "cannot be read: there is no object"),
        ("big.json", "more than the 1048576 allowed"),
        ("../../../../etc/passwd", "cannot be read: there is no object"),
    ],
    ids=["symlink-to-host-file", "fifo", "huge", "path-out-of-the-output"],
)
def test_a_property_file_a_hostile_container_planted_fails_its_step_and_reads_no_host_file(
    localproc: Localproc, tmp_path: Path, file_path: str, says: str
) -> None:
    root = tmp_path / "s3"
    (root / "hostile").mkdir(parents=True)
    (root / "hostile" / "writer.py").write_text(HOSTILE_WRITER)
    step = script_step("Write", "hostile", "writer.py")
    output = {"LocalPath": "/opt/ml/processing/evaluation", "S3UploadMode": "EndOfJob"}
    step["Arguments"]["ProcessingOutputConfig"] = {
        "Outputs": [
            {"OutputName": "evaluation", "S3Output": {**output, "S3Uri": "s3://hostile/out"}}
        ]
    }
    report = {"PropertyFileName": "Report", "OutputName": "evaluation", "FilePath": file_path}
    step["PropertyFiles"] = [report]
    score = {"Std:JsonGet": {"PropertyFile": {"Get": "Steps.Write.PropertyFiles.Report"},
                             "Path": "a"}}  # fmt: skip
    check = {"Name": "Check", "Type": "Condition", "Arguments": {
        "Conditions": [{"Type": "Equals", "LeftValue": score, "RightValue": "x"}]}}  # fmt: skip
    path = tmp_path / "hostile.json"
    path.write_text(definition(step, check))
    name = unique_name("hostile-files")
    ran = localproc("pipeline", "run", str(path), "--s3-root", str(root), "--name", name)
    assert ran.exit_code == 1, ran.output
    assert "wrote ['big.json', 'fifo.json', 'link.json']" in ran.stdout
    [execution] = json.loads(localproc("pipeline", "executions", name, "--json").stdout)
    steps = json.loads(
        localproc("pipeline", "steps", execution["PipelineExecutionArn"], "--json").stdout
    )
    assert [s["StepName"] for s in steps] == ["Write"]
    assert (
        f"Property file Report (s3://hostile/out/{file_path.lstrip('/')})"
        in steps[0]["FailureReason"]
    )
    assert says in steps[0]["FailureReason"]
    assert "root:" not in ran.output
    assert not (root / "hostile" / "out" / "link.json").exists()


def test_stopping_serve_stops_its_running_executions_and_their_step_jobs(
    serve: ServerFactory, s3: Any, localproc: Localproc
) -> None:
    server = serve()
    client = sagemaker_client(server.url)
    bucket = s3.make_bucket()
    s3.client.put_object(Bucket=bucket, Key="sleep.py", Body=SLEEPER.encode())
    name = unique_name("serve-ends")
    steps = definition(script_step("Sleep", bucket, "sleep.py"))
    client.create_pipeline(PipelineName=name, RoleArn=ROLE, PipelineDefinition=steps)
    arn = client.start_pipeline_execution(PipelineName=name)["PipelineExecutionArn"]
    wait_for(lambda: steps_of(client, arn).get("Sleep", {}).get("StepStatus") == "Executing", 120)
    job = job_name_of(steps_of(client, arn)["Sleep"])
    wait_for(lambda: "sleeping" in _log(localproc, job), 60)
    assert server.stop(timeout=60) == 0  # Ctrl-C or SIGTERM: a clean stop
    # Nothing of the execution runs on once the server has ended: no container sleeps on.
    assert localproc.record(job)["ProcessingJobStatus"] == "Stopped"
    [execution] = json.loads(localproc("pipeline", "executions", name, "--json").stdout)
    assert execution["PipelineExecutionStatus"] == "Stopped"
    assert "stopping 1 running pipeline execution(s) and their step jobs" in server.log()
