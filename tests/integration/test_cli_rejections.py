"""`localproc run` and `validate` as users call them, with payloads the service would reject:
one per validation rule, plus unreadable payloads. Each must exit 2 with the service's wording
and create nothing: no container, network, job record or S3 object."""

from __future__ import annotations

import copy
import json
import time
from collections.abc import Callable
from typing import Any

import pytest
from docker_engine import Localproc, job_payload, resources_created_since, s3_input, s3_output

Mutation = Callable[[dict[str, Any]], None]

INPUT = "processingInputs.1.member"
OUTPUT = "processingOutputConfig.outputs.1.member"


def valid(name: str = "rejected-job") -> dict[str, Any]:
    payload = job_payload(
        name,
        entrypoint=["python3", "-c", "print('must never run')"],
        inputs=[s3_input("data", "s3://bucket/in/", "/opt/ml/processing/input")],
        outputs=[s3_output("out", "s3://bucket/out/", "/opt/ml/processing/output")],
    )
    return payload


def setter(path: str, value: Any) -> Mutation:
    """Set (or with value DELETE, remove) the member at a dotted path; digits index lists."""

    def mutate(payload: dict[str, Any]) -> None:
        *parents, last = path.split(".")
        node: Any = payload
        for part in parents:
            node = node[int(part)] if part.isdigit() else node[part]
        key: Any = int(last) if last.isdigit() else last
        if value is DELETE:
            del node[key]
        else:
            node[key] = value

    return mutate


DELETE = object()

CASES: list[tuple[str, Mutation, str]] = [
    (
        "required",
        setter("ProcessingResources", DELETE),
        "Value null at 'processingResources' failed to satisfy constraint: Member must not be null",
    ),
    (
        "string-max-length",
        setter("ProcessingJobName", "n" * 64),
        "at 'processingJobName' failed to satisfy constraint: "
        "Member must have length less than or equal to 63",
    ),
    (
        "string-pattern",
        setter("ProcessingJobName", "bad_name"),
        "Value 'bad_name' at 'processingJobName' failed to satisfy constraint: "
        "Member must satisfy regular expression pattern: [a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}",
    ),
    (
        "integer-min",
        setter("ProcessingResources.ClusterConfig.InstanceCount", 0),
        "Value '0' at 'processingResources.clusterConfig.instanceCount' failed to satisfy "
        "constraint: Member must have value greater than or equal to 1",
    ),
    (
        "integer-max",
        setter("StoppingCondition.MaxRuntimeInSeconds", 777601),
        "at 'stoppingCondition.maxRuntimeInSeconds' failed to satisfy constraint: "
        "Member must have value less than or equal to 777600",
    ),
    (
        "enum",
        setter("ProcessingInputs.0.S3Input.S3InputMode", "Stream"),
        f"Value 'Stream' at '{INPUT}.s3Input.s3InputMode' failed to satisfy constraint: "
        "Member must satisfy enum value set: [Pipe, File]",
    ),
    (
        "list-max-length",
        setter(
            "ProcessingInputs",
            [s3_input(f"in{i}", "s3://b/p", f"/opt/ml/processing/i{i}") for i in range(11)],
        ),
        "at 'processingInputs' failed to satisfy constraint: "
        "Member must have length less than or equal to 10",
    ),
    (
        "map-key",
        setter("Environment", {"1-bad key": "x"}),
        "at 'environment' failed to satisfy constraint: Map keys must satisfy constraint",
    ),
    (
        "local-path-required",
        setter("ProcessingInputs.0.S3Input.LocalPath", DELETE),
        f"Value null at '{INPUT}.s3Input.localPath' failed to satisfy constraint: "
        "LocalPath must be set unless AppManaged is true",
    ),
    (
        "local-path-prefix",
        setter("ProcessingOutputConfig.Outputs.0.S3Output.LocalPath", "/data/out"),
        f"Value '/data/out' at '{OUTPUT}.s3Output.localPath' failed to satisfy constraint: "
        "LocalPath must start with /opt/ml/processing/",
    ),
    (
        "local-path-unique",
        setter("ProcessingInputs.1", s3_input("other", "s3://b/p", "/opt/ml/processing/input")),
        "LocalPath must be unique across processing inputs",
    ),
    (
        "names-unique",
        setter("ProcessingInputs.1", s3_input("data", "s3://b/p", "/opt/ml/processing/other")),
        "InputName must be unique across processing inputs",
    ),
    (
        "one-source",
        setter("ProcessingInputs.0.S3Input", DELETE),
        "Exactly one of S3Input or DatasetDefinition must be set",
    ),
    (
        "one-destination",
        setter("ProcessingOutputConfig.Outputs.0.S3Output", DELETE),
        "Exactly one of S3Output or FeatureStoreOutput must be set",
    ),
    (
        "gzip-needs-pipe",
        setter("ProcessingInputs.0.S3Input.S3CompressionType", "Gzip"),
        "S3CompressionType Gzip requires S3InputMode Pipe",
    ),
    (
        "feature-store-needs-app-managed",
        setter(
            "ProcessingOutputConfig.Outputs.0",
            {"OutputName": "fs", "FeatureStoreOutput": {"FeatureGroupName": "group"}},
        ),
        "FeatureStoreOutput requires AppManaged to be true",
    ),
    (
        "no-empty-entrypoint-strings",
        setter("AppSpecification.ContainerEntrypoint", ["python3", ""]),
        "ContainerEntrypoint must not contain empty strings",
    ),
    (
        "string-min-length",
        setter("RoleArn", "short"),
        "Value 'short' at 'roleArn' failed to satisfy constraint: "
        "Member must have length greater than or equal to 20",
    ),
    (
        "list-min-length",
        setter("AppSpecification.ContainerArguments", []),
        "Value '[]' at 'appSpecification.containerArguments' failed to satisfy constraint: "
        "Member must have length greater than or equal to 1",
    ),
    (
        "map-value-constraints",
        setter("Environment", {"K": "v" * 257}),
        "at 'environment' failed to satisfy constraint: Map value must satisfy constraint: "
        "[Member must have length less than or equal to 256",
    ),
    (
        "map-size",
        setter("Environment", {f"K{i}": "v" for i in range(101)}),
        "at 'environment' failed to satisfy constraint: "
        "Member must have length less than or equal to 100",
    ),
    (
        "unicode-class-pattern",
        setter("Tags", [{"Key": "bad!", "Value": "v"}]),
        "Value 'bad!' at 'tags.1.member.key' failed to satisfy constraint: Member must satisfy "
        r"regular expression pattern: ([\p{L}\p{Z}\p{N}_.:/=+\-@]*)",
    ),
    (
        "output-local-paths-unique",
        setter(
            "ProcessingOutputConfig.Outputs",
            [
                s3_output("out", "s3://bucket/out/", "/opt/ml/processing/output"),
                s3_output("out2", "s3://bucket/out2/", "/opt/ml/processing/output"),
            ],
        ),
        "LocalPath must be unique across processing outputs; also used at "
        f"'{OUTPUT}.s3Output.localPath'",
    ),
    (
        "output-names-unique",
        setter(
            "ProcessingOutputConfig.Outputs",
            [
                s3_output("out", "s3://bucket/out/", "/opt/ml/processing/output"),
                s3_output("out", "s3://bucket/out2/", "/opt/ml/processing/output2"),
            ],
        ),
        "OutputName must be unique across processing outputs",
    ),
    (
        "no-empty-argument-strings",
        setter("AppSpecification.ContainerArguments", ["--flag", ""]),
        "Value '' at 'appSpecification.containerArguments.2.member' failed to satisfy "
        "constraint: ContainerArguments must not contain empty strings",
    ),
    (
        "dataset-definition-needs-one-query",
        setter(
            "ProcessingInputs.0",
            {
                "InputName": "data",
                "DatasetDefinition": {
                    "LocalPath": "/opt/ml/processing/input",
                    "DataDistributionType": "FullyReplicated",
                    "InputMode": "File",
                },
            },
        ),
        "Exactly one of AthenaDatasetDefinition or RedshiftDatasetDefinition must be set",
    ),
    (
        "s3-uri-names-an-s3-bucket",
        setter("ProcessingInputs.0.S3Input.S3Uri", "https://example.com/bucket/key"),
        f"Value 'https://example.com/bucket/key' at '{INPUT}.s3Input.s3Uri' failed to satisfy "
        "constraint: Not an S3 URL",
    ),
    (
        "s3-uri-without-query",
        setter(
            "ProcessingOutputConfig.Outputs.0.S3Output.S3Uri",
            "https://s3.amazonaws.com/bucket/out/?versionId=1",
        ),
        f"at '{OUTPUT}.s3Output.s3Uri' failed to satisfy constraint: S3 URI "
        "'https://s3.amazonaws.com/bucket/out/?versionId=1' has a query or fragment",
    ),
    (
        "local-path-dot-dot",
        setter("ProcessingInputs.0.S3Input.LocalPath", "/opt/ml/processing/x/../../../usr/bin"),
        f"Value '/opt/ml/processing/x/../../../usr/bin' at '{INPUT}.s3Input.localPath' failed to "
        "satisfy constraint: LocalPath must not contain '.', '..' or empty ('//') path segments",
    ),
    (
        "output-local-path-dot-dot",
        setter("ProcessingOutputConfig.Outputs.0.S3Output.LocalPath", "/opt/ml/processing/../x"),
        f"at '{OUTPUT}.s3Output.localPath' failed to satisfy constraint: LocalPath must not",
    ),
    (
        "image-uri-docker-refuses",
        setter("AppSpecification.ImageUri", "UPPER/case"),
        "Value 'UPPER/case' at 'appSpecification.imageUri' failed to satisfy constraint: "
        "ImageUri must be a Docker image reference",
    ),
    (
        "nul-in-an-argument",
        setter("AppSpecification.ContainerArguments", ["a\x00b"]),
        "Value 'a\\x00b' at 'appSpecification.containerArguments.1.member' failed to satisfy "
        "constraint: Member must not contain the NUL character",
    ),
    (
        "lone-surrogate-in-environment",
        setter("Environment", {"KEY": "\ud800"}),
        "at 'environment.KEY' failed to satisfy constraint: Member must be valid Unicode text",
    ),
    (
        "input-name-not-a-folder-name",
        setter("ProcessingInputs.0.InputName", "../../etc"),
        f"at '{INPUT}.inputName' failed to satisfy constraint: InputName must be usable as a "
        "folder name",
    ),
    (
        "output-name-of-100000-characters",
        setter("ProcessingOutputConfig.Outputs.0.OutputName", "n" * 100_000),
        f"at '{OUTPUT}.outputName' failed to satisfy constraint: OutputName must be usable",
    ),
    (
        "unknown-parameter",
        setter("Colour", "blue"),
        'Unknown parameter in input: "Colour", must be one of:',
    ),
    (
        "wrong-type",
        setter("ProcessingResources.ClusterConfig.VolumeSizeInGB", "30"),
        "Invalid type for parameter ProcessingResources.ClusterConfig.VolumeSizeInGB",
    ),
]


@pytest.mark.parametrize(("mutate", "expected"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_run_rejects_before_anything_starts(
    localproc: Localproc, docker_client: Any, mutate: Mutation, expected: str
) -> None:
    payload = valid()
    # A second input, so the rules about pairs of inputs have one to clash with.
    payload["ProcessingInputs"].append(
        s3_input("second", "s3://bucket/second/", "/opt/ml/processing/second")
    )
    mutate(payload)
    path = localproc.write_payload(payload)
    since = time.time()

    result = localproc("run", str(path), "--s3-root", str(localproc.workdir))

    assert result.exit_code == 2, result.output
    assert expected in result.stderr
    assert "Traceback" not in result.output
    assert not localproc.state_dir.exists() or not any(localproc.state_dir.rglob("record.json"))
    assert resources_created_since(docker_client, since, localproc.names) == []
    assert sorted(p.name for p in localproc.workdir.iterdir()) == [path.name]


def test_every_problem_is_listed_at_once_with_the_count(localproc: Localproc) -> None:
    payload = valid()
    payload["ProcessingJobName"] = "bad_name"
    payload["ProcessingResources"]["ClusterConfig"]["InstanceCount"] = 0
    payload["ProcessingInputs"][0]["S3Input"]["LocalPath"] = "/elsewhere"

    result = localproc("validate", str(localproc.write_payload(payload)))

    assert result.exit_code == 2
    assert "ValidationException: 3 validation errors detected: Value 'bad_name'" in result.stderr
    assert result.stderr.count("failed to satisfy constraint") == 3


def test_validate_prints_ok_for_a_valid_payload(localproc: Localproc) -> None:
    result = localproc("validate", str(localproc.write_payload(valid())))
    assert result.exit_code == 0
    assert result.stdout == "OK\n"


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        ("{not json", "is not valid JSON: Expecting property name enclosed in double quotes"),
        ("[1, 2]", "must be a JSON object, got an array"),
        ("", "is not valid JSON"),
        ('{"a": ' + "[" * 100_000 + "]" * 100_000 + "}", "nests arrays and objects deeper than"),
        ('{"a": ' + "9" * 5_000 + "}", "is not valid JSON: a number has more than 100 digits"),
        ('{"a": "' + "x" * (16 * 2**20) + '"}', "is larger than 16 MiB"),
    ],
    ids=["invalid-json", "not-an-object", "empty", "deep-nesting", "huge-integer", "too-large"],
)
def test_unusable_payload_files(localproc: Localproc, content: str, expected: str) -> None:
    path = localproc.workdir / "payload.json"
    path.write_text(content)

    result = localproc("run", str(path))

    assert result.exit_code == 2
    assert expected in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert not localproc.state_dir.exists()


def test_missing_payload_file(localproc: Localproc) -> None:
    result = localproc("run", "no-such-file.json")
    assert result.exit_code == 2
    assert "cannot read payload 'no-such-file.json': No such file or directory" in result.stderr


def test_payload_from_stdin_and_describe_shape(localproc: Localproc, s3: Any) -> None:
    """A DescribeProcessingJob response (as `aws sagemaker describe-processing-job` prints it)
    runs as-is: its read-only fields are ignored."""
    described = copy.deepcopy(valid("from-describe"))
    del described["ProcessingInputs"]
    del described["ProcessingOutputConfig"]
    described["AppSpecification"]["ContainerEntrypoint"] = ["python3", "-c", "print('hi')"]
    described.update(
        {
            "ProcessingJobArn": "arn:aws:sagemaker:us-east-1:123456789012:processing-job/x",
            "ProcessingJobStatus": "Failed",
            "FailureReason": "AlgorithmError: boom",
            "ExitMessage": "boom",
            "CreationTime": "2026-11-28T10:00:00.000000+00:00",
            "LastModifiedTime": "2026-11-28T10:05:00.000000+00:00",
            "ProcessingEndTime": "2026-11-28T10:05:00.000000+00:00",
        }
    )

    result = localproc(
        "run", "-", "--s3-endpoint-url", s3.endpoint_url, stdin=json.dumps(described)
    )

    assert result.exit_code == 0, result.output
    assert "algo-1 | hi" in result.stdout
    record = localproc.record("from-describe")
    assert record["ProcessingJobStatus"] == "Completed"
    assert "FailureReason" not in record


def test_dataset_definition_inputs_are_refused_with_exit_4_naming_the_input(
    localproc: Localproc,
) -> None:
    payload = valid("athena")
    payload["ProcessingInputs"].append(
        {
            "InputName": "query",
            "DatasetDefinition": {
                "AthenaDatasetDefinition": {
                    "Catalog": "AwsDataCatalog",
                    "Database": "sales",
                    "QueryString": "SELECT * FROM orders",
                    "OutputS3Uri": "s3://bucket/athena/",
                    "OutputFormat": "PARQUET",
                },
                "LocalPath": "/opt/ml/processing/query",
                "DataDistributionType": "FullyReplicated",
                "InputMode": "File",
            },
        }
    )

    path = localproc.write_payload(payload)
    for command in ("run", "plan"):
        result = localproc(command, str(path))

        assert result.exit_code == 4, command
        assert "input 'query': DatasetDefinition inputs (Athena/Redshift queries)" in result.stderr
        assert not localproc.state_dir.exists()


def test_an_input_and_an_output_on_one_local_path_are_refused_before_anything_starts(
    localproc: Localproc, docker_client: Any
) -> None:
    payload = valid("shared-path")
    payload["ProcessingOutputConfig"]["Outputs"][0]["S3Output"]["LocalPath"] = (
        "/opt/ml/processing/input/"  # the input's LocalPath, written another way
    )
    path = localproc.write_payload(payload)
    since = time.time()
    for command in ("run", "plan"):
        result = localproc(command, str(path), "--s3-root", str(localproc.workdir))

        assert result.exit_code == 4, result.output
        assert (
            "input 'data' and output 'out' share LocalPath /opt/ml/processing/input"
            in result.stderr
        )
    assert not localproc.state_dir.exists()
    assert resources_created_since(docker_client, since, localproc.names) == []


# -- run options (issue 12, item 14) ------------------------------------------------------------


@pytest.mark.parametrize("value", ["-1", "nan", "inf", "-inf", "1e12", "3601"])
@pytest.mark.parametrize("command", ["run", "reproduce", "serve"])
def test_stop_grace_outside_0_to_3600_seconds_is_refused(
    localproc: Localproc, command: str, value: str
) -> None:
    """-1 spun the runner for minutes, nan/inf/1e12 crashed its stop thread: refused while the
    options are read, before the payload, SageMaker or a port is touched."""
    path = localproc.write_payload(valid("grace"))
    arguments = {
        "run": ["run", str(path), "--s3-root", str(localproc.workdir)],
        "reproduce": ["reproduce", "grace", "--sagemaker-endpoint-url", "http://127.0.0.1:9"],
        "serve": ["serve", "--port", "0"],
    }[command]

    result = localproc(*arguments, "--stop-grace", value, timeout=20)

    assert result.exit_code == 2, result.output
    assert "--stop-grace" in result.stderr
    assert "between 0 and 3600" in result.stderr
    assert "Traceback" not in result.output
    assert not localproc.state_dir.exists()


@pytest.mark.parametrize("value", ["-1", "nan", "inf"])
def test_cache_size_must_be_a_finite_size(localproc: Localproc, value: str) -> None:
    path = localproc.write_payload(valid("cache-size"))

    result = localproc("run", str(path), "--cache-size-gb", value)

    assert result.exit_code == 2, result.output
    assert "--cache-size-gb" in result.stderr
    assert "Traceback" not in result.output


@pytest.mark.parametrize("value", ["0", "2.5", "3600"])
def test_stop_grace_from_0_to_3600_seconds_is_accepted(localproc: Localproc, value: str) -> None:
    payload = valid("grace-ok")
    payload["ProcessingJobName"] = "bad_name"  # stops the run at validation, after the options
    path = localproc.workdir / "p.json"
    path.write_text(json.dumps(payload))

    result = localproc("run", str(path), "--stop-grace", value)

    assert result.exit_code == 2
    assert "ValidationException" in result.stderr
    assert "--stop-grace" not in result.stderr
