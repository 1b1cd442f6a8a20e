"""Loading payload files, turning Describe responses into Create requests, and the service echo.
Pure unit tests, no Docker."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import typing
from pathlib import Path

import pytest

from localproc.errors import PayloadError
from localproc.payload.echo import service_echo
from localproc.payload.load import load_payload, to_create_request
from localproc.payload.service_model import describe_only_members

Payload = dict[str, typing.Any]

REQUEST: Payload = {
    "ProcessingJobName": "unit-job",
    "RoleArn": "arn:aws:iam::123456789012:role/LocalprocRole",
    "AppSpecification": {"ImageUri": "localproc/example-python:bookworm"},
    "ProcessingResources": {
        "ClusterConfig": {"InstanceCount": 1, "InstanceType": "ml.t3.medium", "VolumeSizeInGB": 30}
    },
}


def write(tmp_path: Path, text: str, name: str = "payload.json") -> str:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return str(path)


def load_error(source: str, stdin_text: str = "") -> str:
    with pytest.raises(PayloadError) as raised:
        load_payload(source, io.StringIO(stdin_text))
    assert raised.value.code == "InvalidPayload"
    assert "\n" not in str(raised.value)
    return str(raised.value)


# ------------------------------------------------------------------------------------------------
# load_payload
# ------------------------------------------------------------------------------------------------


def test_loads_a_file(tmp_path: Path) -> None:
    source = write(tmp_path, json.dumps(REQUEST))
    assert load_payload(source, io.StringIO("")) == REQUEST


def test_loads_stdin() -> None:
    assert load_payload("-", io.StringIO(json.dumps(REQUEST))) == REQUEST


def test_accepts_a_byte_order_mark(tmp_path: Path) -> None:
    path = tmp_path / "bom.json"
    path.write_bytes(b"\xef\xbb\xbf" + json.dumps(REQUEST).encode())
    assert load_payload(str(path), io.StringIO("")) == REQUEST


def test_missing_file(tmp_path: Path) -> None:
    source = str(tmp_path / "x.json")
    assert load_error(source) == f"cannot read payload '{source}': No such file or directory"


def test_directory(tmp_path: Path) -> None:
    assert load_error(str(tmp_path)) == f"cannot read payload '{tmp_path}': Is a directory"


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads files whatever their mode")
def test_unreadable_file(tmp_path: Path) -> None:
    source = write(tmp_path, "{}")
    os.chmod(source, 0)
    assert load_error(source) == f"cannot read payload '{source}': Permission denied"


def test_unreadable_file_whoever_runs_the_tests(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def refuse(*args: object, **kwargs: object) -> str:
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(Path, "open", refuse)
    source = str(tmp_path / "x.json")
    assert load_error(source) == f"cannot read payload '{source}': Permission denied"


def test_not_utf8(tmp_path: Path) -> None:
    path = tmp_path / "latin1.json"
    path.write_bytes(b'{"a": "\xe9"}')
    assert load_error(str(path)) == (
        f"cannot read payload '{path}': not UTF-8 text (invalid continuation byte at byte 7)"
    )


def test_invalid_json_names_line_and_column(tmp_path: Path) -> None:
    source = write(tmp_path, '{\n  "ProcessingJobName": "x",\n  "RoleArn": \n}')
    assert load_error(source) == (
        f"payload '{source}' is not valid JSON: Expecting value at line 4 column 1"
    )


def test_invalid_json_on_one_line(tmp_path: Path) -> None:
    source = write(tmp_path, '{"a": }')
    assert load_error(source) == (
        f"payload '{source}' is not valid JSON: Expecting value at line 1 column 7"
    )


def test_empty_file(tmp_path: Path) -> None:
    source = write(tmp_path, "")
    assert load_error(source) == (
        f"payload '{source}' is not valid JSON: Expecting value at line 1 column 1"
    )


def test_invalid_json_on_stdin() -> None:
    assert load_error("-", "{'single': 'quotes'}") == (
        "payload '<stdin>' is not valid JSON: "
        "Expecting property name enclosed in double quotes at line 1 column 2"
    )


def test_nan_is_not_json(tmp_path: Path) -> None:
    source = write(tmp_path, '{"a": NaN}')
    assert load_error(source) == f"payload '{source}' is not valid JSON: NaN is not allowed"


# Payloads that crashed with a traceback (issue 12, item 13): each is one line naming the file.


def test_a_payload_larger_than_the_cap_is_refused_naming_the_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import localproc.payload.load as load

    monkeypatch.setattr(load, "MAX_PAYLOAD_BYTES", 64)
    source = write(tmp_path, json.dumps({"a": "x" * 64}))
    assert load_error(source) == (
        f"payload '{source}' is larger than 64 B, the most a CreateProcessingJob request may carry"
    )
    assert load_error("-", json.dumps({"a": "x" * 64})).startswith("payload '<stdin>' is larger")
    exactly = write(tmp_path, '{"a": "' + "x" * 55 + '"}', "exact.json")
    assert load_payload(exactly, io.StringIO("")) == {"a": "x" * 55}


def test_dev_zero_is_refused_after_reading_no_more_than_the_cap() -> None:
    assert load_error("/dev/zero") == (
        "payload '/dev/zero' is larger than 16 MiB, the most a CreateProcessingJob request may "
        "carry"
    )


def test_the_cap_is_the_one_serve_applies_to_request_bodies() -> None:
    import localproc.payload.load as load
    from localproc.serve.server import MAX_BODY_BYTES

    assert load.MAX_PAYLOAD_BYTES == MAX_BODY_BYTES == 16 * 2**20


@pytest.mark.parametrize("depth", [101, 1_000, 100_000])
def test_deep_nesting_is_refused(tmp_path: Path, depth: int) -> None:
    source = write(tmp_path, '{"a": ' + "[" * depth + "]" * depth + "}")
    assert load_error(source) == (
        f"payload '{source}' nests arrays and objects deeper than 100 levels"
    )


def test_nesting_up_to_the_limit_is_loaded(tmp_path: Path) -> None:
    source = write(tmp_path, '{"a": ' + "[" * 99 + "]" * 99 + "}")
    assert load_payload(source, io.StringIO(""))["a"]


@pytest.mark.parametrize("digits", [101, 4_301, 100_000])
def test_integers_of_too_many_digits_are_refused(tmp_path: Path, digits: int) -> None:
    source = write(tmp_path, '{"a": 1' + "0" * (digits - 1) + "}")
    assert load_error(source) == (
        f"payload '{source}' is not valid JSON: a number has more than 100 digits"
    )


def test_numbers_beyond_a_double_are_refused(tmp_path: Path) -> None:
    source = write(tmp_path, '{"a": 1e400}')
    assert load_error(source) == (f"payload '{source}' is not valid JSON: 1e400 is out of range")


@pytest.mark.parametrize(
    ("text", "kind"),
    [
        ("[1, 2]", "an array"),
        ('"text"', "a string"),
        ("42", "a number"),
        ("4.2", "a number"),
        ("true", "a boolean"),
        ("null", "null"),
    ],
)
def test_payload_must_be_an_object(tmp_path: Path, text: str, kind: str) -> None:
    source = write(tmp_path, text)
    assert load_error(source) == f"payload '{source}' must be a JSON object, got {kind}"


def test_importing_the_spec_layer_loads_neither_botocore_nor_regex() -> None:
    code = (
        "import sys\n"
        "import localproc.payload.echo, localproc.payload.load, localproc.payload.validate\n"
        "print(sorted(m for m in ('boto3', 'botocore', 'regex') if m in sys.modules))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == "[]"


# ------------------------------------------------------------------------------------------------
# to_create_request
# ------------------------------------------------------------------------------------------------


def test_create_request_is_unchanged() -> None:
    assert to_create_request(REQUEST) == REQUEST


def test_describe_only_members_come_from_the_model() -> None:
    assert {
        "ProcessingJobArn",
        "ProcessingJobStatus",
        "ExitMessage",
        "FailureReason",
        "ProcessingEndTime",
        "ProcessingStartTime",
        "LastModifiedTime",
        "CreationTime",
        "MonitoringScheduleArn",
        "AutoMLJobArn",
        "TrainingJobArn",
    } <= describe_only_members()
    assert not describe_only_members() & set(REQUEST)


def test_describe_response_loses_read_only_members_and_nulls() -> None:
    describe = {
        **REQUEST,
        "ProcessingJobArn": "arn:aws:sagemaker:eu-west-1:123456789012:processing-job/unit-job",
        "ProcessingJobStatus": "Completed",
        "ExitMessage": None,
        "FailureReason": None,
        "CreationTime": "2024-05-01T10:00:00+00:00",
        "LastModifiedTime": "2024-05-01T10:05:00+00:00",
        "ProcessingStartTime": "2024-05-01T10:01:00+00:00",
        "ProcessingEndTime": "2024-05-01T10:04:00+00:00",
        "MonitoringScheduleArn": None,
        "AutoMLJobArn": None,
        "TrainingJobArn": None,
        "ResponseMetadata": {"RequestId": "r", "HTTPStatusCode": 200},
        "Environment": None,
        "ProcessingOutputConfig": {
            "Outputs": [
                {"OutputName": "o", "FeatureStoreOutput": None, "S3Output": {"S3Uri": "s3://b/k"}}
            ],
            "KmsKeyId": None,
        },
    }
    assert to_create_request(describe) == {
        **REQUEST,
        "ProcessingOutputConfig": {
            "Outputs": [{"OutputName": "o", "S3Output": {"S3Uri": "s3://b/k"}}]
        },
    }


def test_unknown_members_and_nulls_in_lists_are_kept_for_validation() -> None:
    payload = {**REQUEST, "Foo": 1, "Tags": [None]}
    assert to_create_request(payload) == payload


def test_to_create_request_returns_a_new_dict() -> None:
    payload = {**REQUEST, "ProcessingJobArn": "arn", "Environment": {"A": None}}
    snapshot = json.loads(json.dumps(payload))
    result = to_create_request(payload)
    assert payload == snapshot
    result["AppSpecification"]["ImageUri"] = "changed"
    assert payload["AppSpecification"]["ImageUri"] == "localproc/example-python:bookworm"


# ------------------------------------------------------------------------------------------------
# service_echo
# ------------------------------------------------------------------------------------------------


def test_echo_fills_absent_members_with_null_and_drops_tags() -> None:
    echo = service_echo({**REQUEST, "Tags": [{"Key": "k", "Value": "v"}]})
    assert "Tags" not in echo
    assert "ProcessingJobArn" not in echo
    assert echo["ProcessingInputs"] is None
    assert echo["Environment"] is None
    assert echo["AppSpecification"] == {
        "ImageUri": "localproc/example-python:bookworm",
        "ContainerEntrypoint": None,
        "ContainerArguments": None,
    }
    assert echo["ProcessingResources"]["ClusterConfig"]["VolumeKmsKeyId"] is None


def test_echo_fills_service_defaults() -> None:
    request = {
        **REQUEST,
        "ProcessingInputs": [
            {
                "InputName": "data",
                "S3Input": {
                    "S3Uri": "s3://b/p",
                    "S3DataType": "S3Prefix",
                    "LocalPath": "/opt/ml/processing/input",
                },
            }
        ],
        "ProcessingOutputConfig": {
            "Outputs": [
                {
                    "OutputName": "out",
                    "S3Output": {
                        "S3Uri": "s3://b/o",
                        "LocalPath": "/opt/ml/processing/output",
                        "S3UploadMode": "EndOfJob",
                    },
                }
            ]
        },
    }
    echo = service_echo(request)
    assert echo["ProcessingInputs"] == [
        {
            "InputName": "data",
            "AppManaged": False,
            "S3Input": {
                "S3Uri": "s3://b/p",
                "LocalPath": "/opt/ml/processing/input",
                "S3DataType": "S3Prefix",
                "S3InputMode": "File",
                "S3DataDistributionType": "FullyReplicated",
                "S3CompressionType": "None",
            },
            "DatasetDefinition": None,
        }
    ]
    assert echo["ProcessingOutputConfig"] == {
        "Outputs": [
            {
                "OutputName": "out",
                "S3Output": {
                    "S3Uri": "s3://b/o",
                    "LocalPath": "/opt/ml/processing/output",
                    "S3UploadMode": "EndOfJob",
                },
                "FeatureStoreOutput": None,
                "AppManaged": False,
            }
        ],
        "KmsKeyId": None,
    }


def test_echo_keeps_given_values_over_defaults() -> None:
    s3 = {
        "S3Uri": "s3://b/p",
        "S3DataType": "S3Prefix",
        "LocalPath": "/opt/ml/processing/input",
        "S3InputMode": "Pipe",
        "S3DataDistributionType": "ShardedByS3Key",
        "S3CompressionType": "Gzip",
    }
    request = {
        **REQUEST,
        "ProcessingInputs": [{"InputName": "d", "AppManaged": True, "S3Input": s3}],
    }
    (echoed,) = service_echo(request)["ProcessingInputs"]
    assert echoed["S3Input"] == s3
    assert echoed["AppManaged"] is True


def test_echo_is_json_serialisable_and_does_not_modify_the_request() -> None:
    request = json.loads(json.dumps({**REQUEST, "Environment": {"A": "1"}}))
    snapshot = json.loads(json.dumps(request))
    echo = service_echo(request)
    json.dumps(echo)
    assert request == snapshot
    echo["Environment"]["A"] = "2"
    assert request["Environment"]["A"] == "1"
