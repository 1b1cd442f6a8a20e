"""Know before you run: `plan` shows exactly what `run` stages, creates nothing, estimates the
SageMaker cost (its arithmetic: tests/unit/test_cost.py); `reproduce` runs a job described by a
SageMaker API endpoint."""

from __future__ import annotations

import json
import stat
import time
from pathlib import Path
from typing import Any

import pytest
from docker_engine import (
    REPO_ROOT,
    Localproc,
    job_payload,
    resources_created_since,
    s3_input,
    script_input,
    unique_name,
)


def mixed_job(s3: Any, bucket: str, name: str) -> dict[str, Any]:
    """Three instances; a sharded prefix, a sharded manifest, a replicated Pipe input."""
    for i in range(7):
        s3.client.put_object(Bucket=bucket, Key=f"prefix/p{i}.csv", Body=b"p" * (i + 1))
    for i in range(5):
        s3.client.put_object(Bucket=bucket, Key=f"pool/m{i}.csv", Body=b"m" * 10)
    manifest = [{"prefix": f"s3://{bucket}/pool/"}] + [f"m{i}.csv" for i in (4, 0, 2, 3)]
    s3.client.put_object(Bucket=bucket, Key="lists/m.json", Body=json.dumps(manifest).encode())
    s3.client.put_object(Bucket=bucket, Key="stream/s.txt", Body=b"streamed")
    entrypoint, code = script_input(s3, bucket, "print('ran')")
    return job_payload(
        name,
        entrypoint=entrypoint,
        instance_count=3,
        inputs=[
            s3_input("prefixed", f"s3://{bucket}/prefix/", "/opt/ml/processing/prefixed",
                     S3DataDistributionType="ShardedByS3Key"),
            s3_input("listed", f"s3://{bucket}/lists/m.json", "/opt/ml/processing/listed",
                     S3DataType="ManifestFile", S3DataDistributionType="ShardedByS3Key"),
            s3_input("piped", f"s3://{bucket}/stream/", "/opt/ml/processing/piped",
                     S3InputMode="Pipe"),
            code,
        ],
    )  # fmt: skip


def staged_tree(root: Path) -> list[str]:
    return sorted(
        str(path.relative_to(root)) + ("|fifo" if stat.S_ISFIFO(path.lstat().st_mode) else "")
        for path in root.rglob("*")
        if not path.is_dir()
    )


def test_plan_shows_what_run_then_stages(localproc: Localproc, s3: Any) -> None:
    bucket = s3.make_bucket()
    name = unique_name("planned")
    path = str(localproc.write_payload(mixed_job(s3, bucket, name)))

    planned = localproc("plan", path, "--s3-endpoint-url", s3.endpoint_url, "--json")
    assert planned.exit_code == 0, planned.output
    doc = json.loads(planned.stdout)
    ran = localproc("run", path, "--s3-endpoint-url", s3.endpoint_url, "--keep-staging")
    assert ran.exit_code == 0, ran.output

    staging = localproc.job_dir(name) / "staging"
    for instance in doc["InstancePlans"]:
        expected = []
        for item in instance["Inputs"]:
            if item["Mode"] == "Pipe":
                expected.append(f"{item['InputName']}/{item['InputName']}_0|fifo")
            else:
                expected += [f"{item['InputName']}/{o['Path']}" for o in item["Objects"]]
        assert staged_tree(staging / instance["Host"]) == sorted(expected)
    by_host = {i["Host"]: {x["InputName"]: x for x in i["Inputs"]} for i in doc["InstancePlans"]}
    assert [by_host[h]["prefixed"]["ObjectCount"] for h in ("algo-1", "algo-2", "algo-3")] == [
        3,
        2,
        2,
    ]
    assert [o["Path"] for o in by_host["algo-1"]["listed"]["Objects"]] == ["m4.csv", "m3.csv"]
    assert by_host["algo-2"]["piped"]["Pipe"] == "/opt/ml/processing/piped/piped_0"
    assert by_host["algo-2"]["piped"]["Objects"][0]["S3Uri"] == f"s3://{bucket}/stream/s.txt"
    assert doc["Command"]["Argv"][:2] == ["python3", "-u"]
    instances = doc["Instances"]
    assert (instances["Count"], instances["Type"], instances["Gpus"]) == (3, "ml.t3.medium", 0)
    assert instances["Hosts"] == ["algo-1", "algo-2", "algo-3"]
    assert doc["EstimatedCost"]["UpToUsd"] == pytest.approx(3 * 0.05 * 300 / 3600)
    assert doc["Network"] == "a bridge network of the job's own, with outbound access"


def test_plan_shows_the_network_run_uses(localproc: Localproc) -> None:
    quickstart = REPO_ROOT / "fixtures" / "jobs" / "quickstart.json"
    s3_root = str(quickstart.parent.parent / "s3")
    payload = json.loads(quickstart.read_text())

    def network(**changes: Any) -> str:
        payload["ProcessingResources"]["ClusterConfig"].update(changes)
        path = str(localproc.write_payload(payload))
        planned = localproc("plan", path, "--s3-root", s3_root, "--json")
        assert planned.exit_code == 0, planned.output
        return str(json.loads(planned.stdout)["Network"])

    # One instance joins Docker's default bridge (run creates no network for it).
    assert network(InstanceCount=1).startswith("Docker's default bridge")
    assert network(InstanceCount=2) == "a bridge network of the job's own, with outbound access"
    payload["NetworkConfig"] = {"EnableNetworkIsolation": True}
    assert network(InstanceCount=1).startswith("isolated: an internal network of the job's own")


def test_plan_creates_nothing(localproc: Localproc, s3: Any, docker_client: Any) -> None:
    bucket = s3.make_bucket()
    name = unique_name("dry")
    path = str(localproc.write_payload(mixed_job(s3, bucket, name)))
    before = sorted(o["Key"] for o in s3.client.list_objects_v2(Bucket=bucket)["Contents"])
    since = time.time()

    planned = localproc("plan", path, "--s3-endpoint-url", s3.endpoint_url)

    assert planned.exit_code == 0, planned.output
    assert (
        "algo-3" in planned.stdout
        and "piped → pipe /opt/ml/processing/piped/piped_0" in planned.stdout
    )
    assert "Estimated SageMaker cost: up to $0.0125 for 300 s" in planned.stdout
    assert resources_created_since(docker_client, since, localproc.names) == []
    assert sorted(o["Key"] for o in s3.client.list_objects_v2(Bucket=bucket)["Contents"]) == before
    assert not localproc.state_dir.exists()


def test_plan_of_a_job_that_would_fail_exits_1_and_says_why(localproc: Localproc, s3: Any) -> None:
    bucket = s3.make_bucket()
    payload = job_payload(
        unique_name("empty"),
        inputs=[s3_input("data", f"s3://{bucket}/nothing/", "/opt/ml/processing/data")],
    )
    planned = localproc(
        "plan", str(localproc.write_payload(payload)), "--s3-endpoint-url", s3.endpoint_url
    )
    assert planned.exit_code == 1
    assert "The job would fail: ClientError: No S3 objects found under S3 URL" in planned.stdout


def test_plan_reports_a_missing_image_instead_of_pulling(localproc: Localproc, s3: Any) -> None:
    payload = job_payload(unique_name("noimg"), image="localproc-test/not-here:1")
    planned = localproc("plan", str(localproc.write_payload(payload)), "--json")
    doc = json.loads(planned.stdout)
    assert doc["Image"]["Status"] == "not on this host: run would pull it"
    assert doc["Command"]["Argv"] is None


def test_describe_shows_what_the_run_would_have_cost(localproc: Localproc, s3: Any) -> None:
    name = unique_name("costed")
    payload = job_payload(name, entrypoint=["sleep", "1"])
    assert (
        localproc(
            "run", str(localproc.write_payload(payload)), "--s3-endpoint-url", s3.endpoint_url
        ).exit_code
        == 0
    )
    table = localproc("describe", name).stdout
    assert "SageMaker cost" in table and "for this run's" in table and "$0.05/h" in table


def test_reproduce_from_an_endpoint_whose_description_lacks_fields(
    localproc: Localproc, s3: Any
) -> None:
    """moto's DescribeProcessingJob drops ProcessingResources and Environment."""
    import boto3

    sagemaker = boto3.client("sagemaker", endpoint_url=s3.endpoint_url, region_name="us-east-1")
    name = unique_name("remote")
    sagemaker.create_processing_job(
        ProcessingJobName=name,
        ProcessingResources={
            "ClusterConfig": {
                "InstanceCount": 1,
                "InstanceType": "ml.t3.medium",
                "VolumeSizeInGB": 5,
            }
        },
        AppSpecification={
            "ImageUri": "localproc/example-python:bookworm",
            "ContainerEntrypoint": ["python3", "-c", "print('reproduced')"],
        },
        RoleArn="arn:aws:iam::123456789012:role/R",
    )
    common = ["--sagemaker-endpoint-url", s3.endpoint_url, "--s3-endpoint-url", s3.endpoint_url]

    lacking = localproc("reproduce", name, *common)
    assert lacking.exit_code == 2
    assert "lacks required field(s) ProcessingResources" in lacking.stderr
    assert "--instance-type and --instance-count" in lacking.stderr
    assert "Traceback" not in lacking.output

    ran = localproc(
        "reproduce", name, *common, "--instance-type", "ml.t3.medium", "--instance-count", "1"
    )
    assert ran.exit_code == 0, ran.output
    assert "algo-1 | reproduced" in ran.stdout
    record = localproc.record(name)
    assert record["ProcessingJobStatus"] == "Completed"
    assert record["ProcessingResources"]["ClusterConfig"]["VolumeSizeInGB"] == 30

    missing = localproc("reproduce", "no-such-remote-job", *common)
    assert missing.exit_code == 2
    assert "ResourceNotFound" in missing.stderr


def test_reproduce_a_job_recorded_by_another_localproc_serve(
    localproc: Localproc, s3: Any, tmp_path: Path
) -> None:
    """The 'real' SageMaker here is a `localproc serve` over a second state dir holding a
    finished job; reproduce reads its description and runs it again locally, same name."""
    import boto3
    from serve_clients import start_server

    bucket = s3.make_bucket()
    name = unique_name("original")
    entrypoint, code = script_input(s3, bucket, "import os; print('again', os.environ['X'])")
    payload = job_payload(name, entrypoint=entrypoint, inputs=[code], environment={"X": "42"})
    server = start_server(
        ["--port", "0", "--state-dir", str(tmp_path / "remote-state"),
         "--s3-endpoint-url", s3.endpoint_url],
        tmp_path / "serve.log",
    )  # fmt: skip
    try:
        remote = boto3.client("sagemaker", endpoint_url=server.url, region_name="us-east-1")
        remote.create_processing_job(**payload)
        remote.get_waiter("processing_job_completed_or_stopped").wait(
            ProcessingJobName=name, WaiterConfig={"Delay": 1, "MaxAttempts": 120}
        )

        ran = localproc(
            "reproduce", name, "--sagemaker-endpoint-url", server.url,
            "--s3-endpoint-url", s3.endpoint_url,
        )  # fmt: skip
    finally:
        assert server.stop() == 0, server.log()

    assert ran.exit_code == 0, ran.output
    assert f"reproducing {name} from {server.url}" in ran.stderr
    assert "algo-1 | again 42" in ran.stdout
    assert localproc.record(name)["ProcessingJobStatus"] == "Completed"


def test_the_region_defaults_to_the_aws_profiles(tmp_path: Path) -> None:
    import os
    import subprocess
    import sys

    config = tmp_path / "config"
    config.write_text("[profile work]\nregion = eu-west-1\n")
    env = {k: v for k, v in os.environ.items() if k not in ("AWS_REGION", "AWS_DEFAULT_REGION")}
    env.update(AWS_CONFIG_FILE=str(config), AWS_PROFILE="work", LOCALPROC_HOME=str(tmp_path))
    repo = REPO_ROOT

    def arn(*extra: str) -> str:
        planned = subprocess.run(
            [sys.executable, "-m", "localproc", "plan", str(repo / "fixtures/jobs/quickstart.json"),
             "--s3-root", str(repo / "fixtures/s3"), "--json", *extra],
            capture_output=True, text=True, env=env, timeout=120, check=False,
        )  # fmt: skip
        assert planned.returncode == 0, planned.stderr
        return str(json.loads(planned.stdout)["ProcessingJobArn"])

    assert arn().startswith("arn:aws:sagemaker:eu-west-1:")
    assert arn("--region", "ap-south-1").startswith("arn:aws:sagemaker:ap-south-1:")
