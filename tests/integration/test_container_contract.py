"""What the container sees: command line, environment, hostname, the two config files, folders."""

from __future__ import annotations

import json
from typing import Any

import pytest
from docker_engine import Localproc, job_payload, s3_output, script_input, unique_name


def read_text(s3: Any, bucket: str, key: str) -> str:
    return s3.client.get_object(Bucket=bucket, Key=key)["Body"].read().decode()


@pytest.mark.parametrize(
    ("entrypoint", "arguments", "expected"),
    [
        (None, None, "image-entrypoint image-cmd"),
        (["echo", "job-entrypoint"], None, "job-entrypoint"),  # CMD is dropped
        (None, ["arg-1", "arg 2"], "image-entrypoint arg-1 arg 2"),  # appended to ENTRYPOINT
        (["echo", "job-entrypoint"], ["arg-1"], "job-entrypoint arg-1"),
    ],
    ids=["image-defaults", "entrypoint-only", "arguments-only", "both"],
)
def test_entrypoint_and_arguments_follow_sagemaker_rules(
    localproc: Localproc,
    s3: Any,
    entrypoint_image: str,
    entrypoint: list[str] | None,
    arguments: list[str] | None,
    expected: str,
) -> None:
    name = unique_name("argv")
    payload = job_payload(name, image=entrypoint_image, entrypoint=entrypoint, arguments=arguments)

    result = localproc(
        "run", str(localproc.write_payload(payload)), "--s3-endpoint-url", s3.endpoint_url
    )

    assert result.exit_code == 0, result.output
    assert f"algo-1 | {expected}\n" in result.stdout


CONTRACT_SCRIPT = r"""
import json, os, socket, pathlib
out = pathlib.Path('/opt/ml/processing/output')
before = {
    'dirs': sorted(os.listdir('/opt/ml')),
    'empty': os.listdir(out) == [] and os.listdir('/opt/ml/output') == [],
}
seen = {
    'env': dict(os.environ),
    'hostname': socket.gethostname(),
    'resolved': socket.gethostbyname('algo-1'),
    'resourceconfig': json.load(open('/opt/ml/config/resourceconfig.json')),
    'processingjobconfig': json.load(open('/opt/ml/config/processingjobconfig.json')),
    'output_dirs_before_start': before['dirs'],
    'output_is_empty': before['empty'],
    'config_writable': os.access('/opt/ml/config', os.W_OK),
}
(out / 'seen.json').write_text(json.dumps(seen))
"""


def test_environment_hostname_and_config_files_as_seen_inside(
    localproc: Localproc, s3: Any
) -> None:
    bucket = s3.make_bucket()
    name = unique_name("contract")
    entrypoint, code = script_input(s3, bucket, CONTRACT_SCRIPT)
    payload = job_payload(
        name,
        entrypoint=entrypoint,
        inputs=[code],
        environment={"MY_SETTING": "value with spaces", "AWS_DEFAULT_OUTPUT": "json"},
        outputs=[s3_output("seen", f"s3://{bucket}/out", "/opt/ml/processing/output")],
    )
    env = {"AWS_ACCESS_KEY_ID": "host-key-must-not-leak", "AWS_SECRET_ACCESS_KEY": "host-secret"}

    result = localproc(
        "run",
        str(localproc.write_payload(payload)),
        "--s3-endpoint-url",
        s3.endpoint_url,
        "--region",
        "eu-west-1",
        env=env,
    )

    assert result.exit_code == 0, result.output
    seen = json.loads(read_text(s3, bucket, "out/seen.json"))
    assert seen["env"]["MY_SETTING"] == "value with spaces"
    assert seen["env"]["AWS_REGION"] == "eu-west-1"
    assert not any(
        key.startswith("AWS_ACCESS") or key.startswith("AWS_SECRET") for key in seen["env"]
    )
    assert seen["hostname"] == "algo-1"
    assert seen["resolved"].count(".") == 3
    assert seen["resourceconfig"] == {
        "current_host": "algo-1",
        "hosts": ["algo-1"],
        "current_instance_type": "ml.t3.medium",
        "network_interface_name": "eth0",
    }
    config = seen["processingjobconfig"]
    assert config["ProcessingJobArn"] == (
        f"arn:aws:sagemaker:eu-west-1:000000000000:processing-job/{name}"
    )
    assert config["ProcessingJobName"] == name
    assert config["AppSpecification"]["ImageUri"] == payload["AppSpecification"]["ImageUri"]
    assert config["AppSpecification"]["ContainerArguments"] is None  # absent → null
    assert config["Environment"] == payload["Environment"]
    assert config["ProcessingResources"] == payload["ProcessingResources"] | {
        "ClusterConfig": payload["ProcessingResources"]["ClusterConfig"] | {"VolumeKmsKeyId": None}
    }
    assert (
        config["ProcessingOutputConfig"]["Outputs"][0]["S3Output"]["S3Uri"] == f"s3://{bucket}/out"
    )
    assert config["ProcessingOutputConfig"]["KmsKeyId"] is None
    assert "Tags" not in config
    assert {"config", "output", "processing"} <= set(seen["output_dirs_before_start"])
    assert seen["output_is_empty"] is True
    assert seen["config_writable"] is False


def test_input_defaults_are_filled_in_processingjobconfig(localproc: Localproc, s3: Any) -> None:
    bucket = s3.make_bucket()
    s3.client.put_object(Bucket=bucket, Key="in/a.txt", Body=b"a")
    name = unique_name("defaults")
    payload = job_payload(
        name,
        entrypoint=[
            "sh",
            "-c",
            "cp /opt/ml/config/processingjobconfig.json /opt/ml/processing/out/",
        ],
        inputs=[
            {
                "InputName": "data",
                "S3Input": {
                    "S3Uri": f"s3://{bucket}/in/",
                    "LocalPath": "/opt/ml/processing/data",
                    "S3DataType": "S3Prefix",
                },
            }
        ],
        outputs=[s3_output("out", f"s3://{bucket}/out/", "/opt/ml/processing/out")],
    )

    result = localproc(
        "run", str(localproc.write_payload(payload)), "--s3-endpoint-url", s3.endpoint_url
    )

    assert result.exit_code == 0, result.output
    config = json.loads(read_text(s3, bucket, "out/processingjobconfig.json"))
    s3_input = config["ProcessingInputs"][0]["S3Input"]
    assert s3_input["S3InputMode"] == "File"
    assert s3_input["S3DataDistributionType"] == "FullyReplicated"
    assert s3_input["S3CompressionType"] == "None"
    assert config["ProcessingInputs"][0]["AppManaged"] is False
    assert config["ProcessingInputs"][0]["DatasetDefinition"] is None


def test_host_credentials_only_when_asked(localproc: Localproc, s3: Any) -> None:
    show = ["sh", "-c", "echo key=${AWS_ACCESS_KEY_ID:-none} token=${AWS_SESSION_TOKEN:-none}"]
    env = {
        "AWS_ACCESS_KEY_ID": "AKIAHOSTKEY",
        "AWS_SECRET_ACCESS_KEY": "host-secret",
        "AWS_SESSION_TOKEN": "host-token",
    }
    plain = job_payload(unique_name("nocreds"), entrypoint=show)
    passed = job_payload(unique_name("creds"), entrypoint=show)

    without = localproc(
        "run", str(localproc.write_payload(plain)), "--s3-endpoint-url", s3.endpoint_url, env=env
    )
    with_them = localproc(
        "run", str(localproc.write_payload(passed)), "--s3-endpoint-url", s3.endpoint_url,
        "--pass-aws-credentials", env=env,
    )  # fmt: skip

    assert "algo-1 | key=none token=none" in without.stdout
    assert "algo-1 | key=AKIAHOSTKEY token=host-token" in with_them.stdout
    config = localproc.job_dir(passed["ProcessingJobName"]) / "algo-1" / "config"
    assert "AKIAHOSTKEY" not in (config / "processingjobconfig.json").read_text()
