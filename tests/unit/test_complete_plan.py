"""The plan names everything a run does, per instance (no Docker, no S3)."""

from __future__ import annotations

import json

from localproc.payload.job import job_from_request
from localproc.plan import (
    HostCapacity,
    ImageConfig,
    InputListing,
    build_plan,
    plan_json,
)
from localproc.storage import ObjectInfo

GIB = 2**30
HOST = HostCapacity(cpus=64, memory_bytes=512 * GIB, free_disk_bytes=100 * GIB)
IMAGE = ImageConfig("img", entrypoint=("ep",), cmd=("cmd",))


def request(count: int = 2, isolated: bool = False) -> dict:
    return {
        "ProcessingJobName": "whole",
        "RoleArn": "arn:aws:iam::123456789012:role/R",
        "AppSpecification": {"ImageUri": "img"},
        "ProcessingResources": {
            "ClusterConfig": {
                "InstanceCount": count,
                "InstanceType": "ml.m5.xlarge",
                "VolumeSizeInGB": 5,
            }
        },
        "NetworkConfig": {"EnableNetworkIsolation": isolated},
        "StoppingCondition": {"MaxRuntimeInSeconds": 77},
        "ProcessingInputs": [
            {
                "InputName": "data",
                "S3Input": {
                    "S3Uri": "s3://b/p/",
                    "LocalPath": "/opt/ml/processing/data",
                    "S3DataType": "S3Prefix",
                    "S3InputMode": "Pipe",
                },
            }
        ],
        "ProcessingOutputConfig": {
            "Outputs": [
                {
                    "OutputName": "out",
                    "S3Output": {
                        "S3Uri": "s3://b/out",
                        "LocalPath": "/opt/ml/processing/out",
                        "S3UploadMode": "Continuous",
                    },
                }
            ]
        },
    }


def plan_of(req: dict):  # type: ignore[no-untyped-def]
    listing = InputListing([ObjectInfo("b", "p/a", 1, "e")])
    return build_plan(
        job_from_request(req), {"data": listing}, IMAGE, "us-east-1", HOST,
        run_id="abc123def456", runner_label="runner",
    )  # fmt: skip


def test_each_instance_has_its_container_config_files_and_uploads() -> None:
    plan = plan_of(request())
    assert plan.run_id == "abc123def456" and plan.max_runtime_seconds == 77
    second = plan.instances[1]
    container = second.container
    assert container is not None
    assert container.name == "localproc-whole-abc123def456-algo-2"
    assert container.hostname == "algo-2"
    assert container.labels == {
        "localproc.job": "whole",
        "localproc.run": "abc123def456",
        "localproc.execution.runner": "runner",
    }
    assert container.network.name == "localproc-whole-abc123def456" and container.network.own
    assert [(m.container_path, m.holds, m.name, m.read_only) for m in container.mounts] == [
        ("/opt/ml/config", "config", None, True),
        ("/opt/ml/output", "job-output", None, False),
        ("/opt/ml/processing/data", "pipe", "data", False),
        ("/opt/ml/processing/out", "output", "out", False),
    ]
    assert "NET_RAW" in container.cap_drop and container.security_options == ("no-new-privileges",)
    assert container.pids_limit == 4096
    assert json.loads(second.config_files["resourceconfig.json"])["current_host"] == "algo-2"
    assert second.config_files["processingjobconfig.json"] == json.dumps(
        plan.processing_job_config, indent=2
    )
    assert [(u.output_name, u.s3_uri, u.mode) for u in second.uploads] == [
        ("out", "s3://b/out", "Continuous")
    ]
    assert second.inputs[0].pipe_path == "/opt/ml/processing/data/data_0"


def test_a_lone_instance_uses_the_default_bridge_and_isolation_a_network_of_its_own() -> None:
    assert not plan_of(request(count=1)).network.own
    isolated = plan_of(request(count=1, isolated=True)).network
    assert isolated.own and isolated.isolated


def test_the_serializer_writes_the_plans_values() -> None:
    plan = plan_of(request())
    doc = plan_json(plan)
    assert doc["RunId"] == plan.run_id and doc["Argv"] == ["ep", "cmd"]
    assert doc["NetworkName"] == plan.network.name and doc["MaxRuntimeInSeconds"] == 77
    instance = doc["InstancePlans"][0]
    assert instance["ContainerName"] == plan.instances[0].container.name  # type: ignore[union-attr]
    assert instance["Inputs"][0]["Pipe"] == "/opt/ml/processing/data/data_0"
    assert instance["ConfigFiles"] == dict(plan.instances[0].config_files)
    json.dumps(doc)  # all of it is JSON
