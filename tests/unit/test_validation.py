"""Validation of CreateProcessingJob requests: botocore's client checks, the model's constraints in
the service's wording, and the documented service rules. Pure unit tests, no Docker."""

from __future__ import annotations

import copy
import typing

import pytest

from localproc.errors import ParameterValidationError, ValidationException
from localproc.payload.load import to_create_request
from localproc.payload.service_model import create_request_shape
from localproc.payload.validate import python_pattern, validate_create_request

Payload = dict[str, typing.Any]

ROLE_ARN = "arn:aws:iam::123456789012:role/LocalprocRole"
TAG_PATTERN = r"([\p{L}\p{Z}\p{N}_.:/=+\-@]*)"


def base_payload() -> Payload:
    return {
        "ProcessingJobName": "unit-job",
        "RoleArn": ROLE_ARN,
        "AppSpecification": {"ImageUri": "localproc/example-python:bookworm"},
        "ProcessingResources": {
            "ClusterConfig": {
                "InstanceCount": 1,
                "InstanceType": "ml.t3.medium",
                "VolumeSizeInGB": 30,
            }
        },
    }


def s3_input(name: str = "data", local_path: str | None = "/opt/ml/processing/input") -> Payload:
    s3: Payload = {"S3Uri": "s3://bucket/prefix", "S3DataType": "S3Prefix"}
    if local_path is not None:
        s3["LocalPath"] = local_path
    return {"InputName": name, "S3Input": s3}


def s3_output(
    name: str = "result", local_path: str | None = "/opt/ml/processing/output"
) -> Payload:
    s3: Payload = {"S3Uri": "s3://bucket/out", "S3UploadMode": "EndOfJob"}
    if local_path is not None:
        s3["LocalPath"] = local_path
    return {"OutputName": name, "S3Output": s3}


def with_inputs(*inputs: Payload) -> Payload:
    return {**base_payload(), "ProcessingInputs": list(inputs)}


def with_outputs(*outputs: Payload) -> Payload:
    return {**base_payload(), "ProcessingOutputConfig": {"Outputs": list(outputs)}}


def cluster(**changes: object) -> Payload:
    payload = base_payload()
    payload["ProcessingResources"]["ClusterConfig"].update(changes)
    return payload


def problems_of(request: Payload) -> list[str]:
    with pytest.raises(ValidationException) as raised:
        validate_create_request(request)
    return raised.value.problems


def client_problems_of(request: Payload) -> list[str]:
    with pytest.raises(ParameterValidationError) as raised:
        validate_create_request(request)
    return raised.value.problems


def constraint(value: str, path: str, text: str) -> str:
    return f"Value {value} at '{path}' failed to satisfy constraint: {text}"


# ------------------------------------------------------------------------------------------------
# Valid requests
# ------------------------------------------------------------------------------------------------


def test_minimal_request_is_valid() -> None:
    validate_create_request(base_payload())


def test_full_request_is_valid() -> None:
    request = base_payload()
    request.update(
        ProcessingInputs=[
            s3_input("train", "/opt/ml/processing/train"),
            {
                "InputName": "code",
                "S3Input": {
                    "S3Uri": "s3://bucket/code/script.py",
                    "S3DataType": "S3Prefix",
                    "LocalPath": "/opt/ml/processing/code",
                    "S3InputMode": "Pipe",
                    "S3DataDistributionType": "ShardedByS3Key",
                    "S3CompressionType": "Gzip",
                },
            },
            s3_input("managed", local_path=None) | {"AppManaged": True},
        ],
        ProcessingOutputConfig={
            "Outputs": [
                s3_output(),
                {
                    "OutputName": "fs",
                    "AppManaged": True,
                    "FeatureStoreOutput": {"FeatureGroupName": "fg-1"},
                },
            ],
            "KmsKeyId": "alias/key",
        },
        StoppingCondition={"MaxRuntimeInSeconds": 3600},
        Environment={"MODE": "train", "MULTILINE": "line one\nline two"},
        NetworkConfig={
            "EnableNetworkIsolation": False,
            "VpcConfig": {"SecurityGroupIds": ["sg-0123"], "Subnets": ["subnet-0123"]},
        },
        Tags=[{"Key": "team", "Value": "ml"}],
        ExperimentConfig={"ExperimentName": "exp-1"},
    )
    request["AppSpecification"].update(
        ContainerEntrypoint=["python3", "/opt/ml/processing/code/script.py"],
        ContainerArguments=["--epochs", "3"],
    )
    validate_create_request(request)


def test_validation_does_not_modify_the_request() -> None:
    request = with_inputs(s3_input(local_path="/data"))
    before = copy.deepcopy(request)
    problems_of(request)
    assert request == before


# ------------------------------------------------------------------------------------------------
# Model constraints, in the service's wording
# ------------------------------------------------------------------------------------------------


def test_missing_required_top_level_member() -> None:
    request = base_payload()
    del request["ProcessingResources"]
    assert problems_of(request) == [
        "Value null at 'processingResources' failed to satisfy constraint: Member must not be null"
    ]


def test_missing_required_nested_member() -> None:
    request = base_payload()
    del request["ProcessingResources"]["ClusterConfig"]["InstanceType"]
    assert problems_of(request) == [
        constraint(
            "null", "processingResources.clusterConfig.instanceType", "Member must not be null"
        )
    ]


def test_missing_required_member_of_a_list_element() -> None:
    request = with_inputs(s3_input())
    del request["ProcessingInputs"][0]["S3Input"]["S3DataType"]
    assert problems_of(request) == [
        constraint(
            "null", "processingInputs.1.member.s3Input.s3DataType", "Member must not be null"
        )
    ]


def test_string_shorter_than_min_length() -> None:
    request = {**base_payload(), "Tags": [{"Key": "", "Value": "v"}]}
    assert problems_of(request) == [
        constraint("''", "tags.1.member.key", "Member must have length greater than or equal to 1")
    ]


def test_string_longer_than_max_length() -> None:
    image = "a" * 256
    request = base_payload()
    request["AppSpecification"]["ImageUri"] = image
    assert problems_of(request) == [
        constraint(
            f"'{image}'",
            "appSpecification.imageUri",
            "Member must have length less than or equal to 255",
        )
    ]


def test_length_and_pattern_are_reported_separately() -> None:
    name = "a" * 64
    request = {**base_payload(), "ProcessingJobName": name}
    assert problems_of(request) == [
        constraint(
            f"'{name}'", "processingJobName", "Member must have length less than or equal to 63"
        ),
        constraint(
            f"'{name}'",
            "processingJobName",
            "Member must satisfy regular expression pattern: [a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}",
        ),
    ]


def test_list_shorter_than_min_length() -> None:
    request = base_payload()
    request["AppSpecification"]["ContainerEntrypoint"] = []
    assert problems_of(request) == [
        constraint(
            "'[]'",
            "appSpecification.containerEntrypoint",
            "Member must have length greater than or equal to 1",
        )
    ]


def test_list_longer_than_max_length() -> None:
    groups = [f"sg-{n}" for n in range(6)]
    request = {
        **base_payload(),
        "NetworkConfig": {"VpcConfig": {"SecurityGroupIds": groups, "Subnets": ["subnet-1"]}},
    }
    assert problems_of(request) == [
        constraint(
            "'[sg-0, sg-1, sg-2, sg-3, sg-4, sg-5]'",
            "networkConfig.vpcConfig.securityGroupIds",
            "Member must have length less than or equal to 5",
        )
    ]


def test_list_of_structures_longer_than_max_length_counts_elements() -> None:
    request = with_inputs(*(s3_input(f"in{n}", f"/opt/ml/processing/in{n}") for n in range(11)))
    (problem,) = problems_of(request)
    assert problem.startswith("Value '[{InputName=in0, S3Input={S3Uri=s3://bucket/prefix, ")
    assert problem.endswith(
        "' at 'processingInputs' failed to satisfy constraint: "
        "Member must have length less than or equal to 10"
    )


def test_scalar_list_member_reports_the_list_and_every_member_constraint() -> None:
    request = {
        **base_payload(),
        "NetworkConfig": {"VpcConfig": {"SecurityGroupIds": ["sg-1", "sg_2!"], "Subnets": ["s-1"]}},
    }
    assert problems_of(request) == [
        constraint(
            "'[sg-1, sg_2!]'",
            "networkConfig.vpcConfig.securityGroupIds",
            "Member must satisfy constraint: [Member must have length less than or equal to 32, "
            "Member must have length greater than or equal to 0, "
            "Member must satisfy regular expression pattern: [-0-9a-zA-Z]+]",
        )
    ]


def test_integer_below_min() -> None:
    assert problems_of(cluster(InstanceCount=0)) == [
        constraint(
            "'0'",
            "processingResources.clusterConfig.instanceCount",
            "Member must have value greater than or equal to 1",
        )
    ]


def test_integer_above_max() -> None:
    assert problems_of(cluster(InstanceCount=101)) == [
        constraint(
            "'101'",
            "processingResources.clusterConfig.instanceCount",
            "Member must have value less than or equal to 100",
        )
    ]


def test_max_runtime_above_max() -> None:
    request = {**base_payload(), "StoppingCondition": {"MaxRuntimeInSeconds": 777601}}
    assert problems_of(request) == [
        constraint(
            "'777601'",
            "stoppingCondition.maxRuntimeInSeconds",
            "Member must have value less than or equal to 777600",
        )
    ]


def test_enum_lists_values_in_model_order() -> None:
    request = with_inputs(s3_input())
    request["ProcessingInputs"][0]["S3Input"]["S3InputMode"] = "Stream"
    assert problems_of(request) == [
        constraint(
            "'Stream'",
            "processingInputs.1.member.s3Input.s3InputMode",
            "Member must satisfy enum value set: [Pipe, File]",
        )
    ]


def test_enum_is_case_sensitive() -> None:
    request = with_outputs(s3_output())
    request["ProcessingOutputConfig"]["Outputs"][0]["S3Output"]["S3UploadMode"] = "endofjob"
    assert problems_of(request) == [
        constraint(
            "'endofjob'",
            "processingOutputConfig.outputs.1.member.s3Output.s3UploadMode",
            "Member must satisfy enum value set: [Continuous, EndOfJob]",
        )
    ]


def test_instance_type_enum_comes_from_the_model() -> None:
    enum = (
        create_request_shape()
        .members["ProcessingResources"]
        .members["ClusterConfig"]
        .members["InstanceType"]
        .enum
    )
    assert enum[:2] == ["ml.t3.medium", "ml.t3.large"]
    assert problems_of(cluster(InstanceType="ml.x1.huge")) == [
        constraint(
            "'ml.x1.huge'",
            "processingResources.clusterConfig.instanceType",
            f"Member must satisfy enum value set: [{', '.join(enum)}]",
        )
    ]


def test_pattern_is_a_full_match() -> None:
    # `(https|s3)://...` would match inside "file+s3://..." with a search; the service anchors it.
    request = with_inputs(s3_input())
    request["ProcessingInputs"][0]["S3Input"]["S3Uri"] = "xs3://bucket/key"
    assert problems_of(request) == [
        constraint(
            "'xs3://bucket/key'",
            "processingInputs.1.member.s3Input.s3Uri",
            "Member must satisfy regular expression pattern: (https|s3)://([^/]+)/?(.*)",
        )
    ]


def test_role_arn_pattern() -> None:
    arn = "arn:aws:iam::12345:role/LocalprocRole"
    request = {**base_payload(), "RoleArn": arn}
    assert problems_of(request) == [
        constraint(
            f"'{arn}'",
            "roleArn",
            r"Member must satisfy regular expression pattern: "
            r"arn:aws[a-z\-]*:iam::\d{12}:role/?[a-zA-Z_0-9+=,.@\-_/]+",
        )
    ]


def test_java_digit_class_is_ascii_only() -> None:
    arabic_indic_digits = "١٢٣٤٥٦٧٨٩٠١٢"
    request = {**base_payload(), "RoleArn": f"arn:aws:iam::{arabic_indic_digits}:role/R"}
    (problem,) = problems_of(request)
    assert "at 'roleArn' failed to satisfy constraint: Member must satisfy regular" in problem


def test_unicode_letter_pattern_accepts_non_ascii_letters() -> None:
    request = {**base_payload(), "Tags": [{"Key": "Größe", "Value": "Ölstand 五 ٣"}]}
    validate_create_request(request)


def test_unicode_letter_pattern_rejects_other_characters() -> None:
    request = {**base_payload(), "Tags": [{"Key": "cost#center", "Value": "ok"}]}
    assert problems_of(request) == [
        constraint(
            "'cost#center'",
            "tags.1.member.key",
            f"Member must satisfy regular expression pattern: {TAG_PATTERN}",
        )
    ]


def test_java_dot_does_not_match_newlines() -> None:
    request = base_payload()
    request["AppSpecification"]["ContainerArguments"] = ["-c", "import os\nprint(1)"]
    assert problems_of(request) == [
        constraint(
            "'[-c, import os\nprint(1)]'",
            "appSpecification.containerArguments",
            "Member must satisfy constraint: [Member must have length less than or equal to 256, "
            "Member must have length greater than or equal to 0, "
            "Member must satisfy regular expression pattern: .*]",
        )
    ]


def test_environment_value_may_contain_newlines() -> None:
    validate_create_request({**base_payload(), "Environment": {"SCRIPT": "a\nb\r\n"}})


def test_map_key_constraint() -> None:
    request = {**base_payload(), "Environment": {"GOOD": "1", "1BAD": "2"}}
    assert problems_of(request) == [
        constraint(
            "'{GOOD=1, 1BAD=2}'",
            "environment",
            "Map keys must satisfy constraint: [Member must have length less than or equal to 256, "
            "Member must have length greater than or equal to 0, "
            "Member must satisfy regular expression pattern: [a-zA-Z_][a-zA-Z0-9_]*]",
        )
    ]


def test_map_value_constraint() -> None:
    long_value = "v" * 257
    request = {**base_payload(), "Environment": {"LONG": long_value}}
    assert problems_of(request) == [
        constraint(
            f"'{{LONG={long_value}}}'",
            "environment",
            "Map value must satisfy constraint: ["
            "Member must have length less than or equal to 256, "
            "Member must have length greater than or equal to 0, "
            r"Member must satisfy regular expression pattern: [\S\s]*]",
        )
    ]


def test_map_with_too_many_entries() -> None:
    request = {**base_payload(), "Environment": {f"K{n}": "v" for n in range(101)}}
    (problem,) = problems_of(request)
    assert problem.startswith("Value '{K0=v, K1=v, ")
    assert problem.endswith(
        "K100=v}' at 'environment' failed to satisfy constraint: "
        "Member must have length less than or equal to 100"
    )


def test_every_model_pattern_compiles() -> None:
    from localproc.payload.service_model import sagemaker_model
    from localproc.payload.validate import compile_java_pattern

    model = sagemaker_model()
    patterns = {
        shape.metadata["pattern"]
        for shape in map(model.shape_for, model.shape_names)
        if "pattern" in shape.metadata
    }
    assert patterns
    for pattern in patterns:
        compile_java_pattern(pattern)


def test_java_surrogate_pairs_become_code_points() -> None:
    java = r"[\u0020-\uD7FF\uE000-\uFFFD\uD800\uDC00-\uDBFF\uDFFF\t]*"
    assert python_pattern(java) == r"[\u0020-\uD7FF\uE000-\uFFFD\U00010000-\U0010FFFF\t]*"


# ------------------------------------------------------------------------------------------------
# botocore's client-side checks
# ------------------------------------------------------------------------------------------------


def test_unknown_top_level_parameter() -> None:
    members = ", ".join(create_request_shape().members)
    assert members.startswith("ProcessingInputs, ProcessingOutputConfig, ProcessingJobName, ")
    assert client_problems_of({**base_payload(), "Foo": 1}) == [
        f'Unknown parameter in input: "Foo", must be one of: {members}'
    ]


def test_unknown_nested_parameter() -> None:
    assert client_problems_of(cluster(Foo="x")) == [
        'Unknown parameter in ProcessingResources.ClusterConfig: "Foo", must be one of: '
        "InstanceCount, InstanceType, VolumeSizeInGB, VolumeKmsKeyId"
    ]


def test_unknown_parameter_in_a_list_element() -> None:
    request = with_inputs(s3_input())
    request["ProcessingInputs"][0]["S3Input"]["S3DownloadMode"] = "StartOfJob"
    (problem,) = client_problems_of(request)
    assert problem.startswith(
        'Unknown parameter in ProcessingInputs[0].S3Input: "S3DownloadMode", must be one of: '
        "S3Uri, LocalPath, S3DataType, "
    )


def test_string_for_integer_is_a_type_error() -> None:
    assert client_problems_of(cluster(InstanceCount="1")) == [
        "Invalid type for parameter ProcessingResources.ClusterConfig.InstanceCount, value: 1, "
        "type: <class 'str'>, valid types: <class 'int'>"
    ]


def test_boolean_is_not_an_integer() -> None:
    assert client_problems_of(cluster(InstanceCount=True)) == [
        "Invalid type for parameter ProcessingResources.ClusterConfig.InstanceCount, value: True, "
        "type: <class 'bool'>, valid types: <class 'int'>"
    ]


def test_float_is_not_an_integer() -> None:
    assert client_problems_of(cluster(VolumeSizeInGB=30.0)) == [
        "Invalid type for parameter ProcessingResources.ClusterConfig.VolumeSizeInGB, value: 30.0, "
        "type: <class 'float'>, valid types: <class 'int'>"
    ]


def test_string_for_boolean_is_a_type_error() -> None:
    request = with_inputs(s3_input() | {"AppManaged": "false"})
    assert client_problems_of(request) == [
        "Invalid type for parameter ProcessingInputs[0].AppManaged, value: false, "
        "type: <class 'str'>, valid types: <class 'bool'>"
    ]


def test_type_errors_for_containers() -> None:
    request = {**base_payload(), "ProcessingInputs": {}, "Environment": ["A=1"], "Tags": "x"}
    request["AppSpecification"] = "image"
    assert client_problems_of(request) == [
        "Invalid type for parameter AppSpecification, value: image, type: <class 'str'>, "
        "valid types: <class 'dict'>",
        "Invalid type for parameter ProcessingInputs, value: {}, type: <class 'dict'>, "
        "valid types: <class 'list'>, <class 'tuple'>",
        "Invalid type for parameter Environment, value: ['A=1'], type: <class 'list'>, "
        "valid types: <class 'dict'>",
        "Invalid type for parameter Tags, value: x, type: <class 'str'>, "
        "valid types: <class 'list'>, <class 'tuple'>",
    ]


def test_map_value_type_error_names_the_key() -> None:
    request = {**base_payload(), "Environment": {"N": 1}}
    assert client_problems_of(request) == [
        "Invalid type for parameter Environment.N, value: 1, type: <class 'int'>, "
        "valid types: <class 'str'>"
    ]


def test_client_problems_are_reported_together_and_before_constraints() -> None:
    request = cluster(InstanceCount="1", Foo="x")
    del request["RoleArn"]  # a server-side problem: not reached
    with pytest.raises(ParameterValidationError) as raised:
        validate_create_request(request)
    assert raised.value.code == "ParamValidationError"
    # botocore's order: a structure's unknown members first, then problems inside known ones.
    assert str(raised.value) == (
        "Parameter validation failed:\n"
        'Unknown parameter in ProcessingResources.ClusterConfig: "Foo", must be one of: '
        "InstanceCount, InstanceType, VolumeSizeInGB, VolumeKmsKeyId\n"
        "Invalid type for parameter ProcessingResources.ClusterConfig.InstanceCount, value: 1, "
        "type: <class 'str'>, valid types: <class 'int'>"
    )


# ------------------------------------------------------------------------------------------------
# Documented service rules
# ------------------------------------------------------------------------------------------------


def test_input_local_path_required_unless_app_managed() -> None:
    assert problems_of(with_inputs(s3_input(local_path=None))) == [
        constraint(
            "null",
            "processingInputs.1.member.s3Input.localPath",
            "LocalPath must be set unless AppManaged is true",
        )
    ]
    validate_create_request(with_inputs(s3_input(local_path=None) | {"AppManaged": True}))


def test_output_local_path_required_unless_app_managed() -> None:
    assert problems_of(with_outputs(s3_output(local_path=None))) == [
        constraint(
            "null",
            "processingOutputConfig.outputs.1.member.s3Output.localPath",
            "LocalPath must be set unless AppManaged is true",
        )
    ]
    validate_create_request(with_outputs(s3_output(local_path=None) | {"AppManaged": True}))


def test_input_local_path_must_be_under_opt_ml_processing() -> None:
    assert problems_of(with_inputs(s3_input(local_path="/data"))) == [
        constraint(
            "'/data'",
            "processingInputs.1.member.s3Input.localPath",
            "LocalPath must start with /opt/ml/processing/",
        )
    ]


def test_output_local_path_must_be_under_opt_ml_processing() -> None:
    assert problems_of(with_outputs(s3_output(local_path="/opt/ml/processing"))) == [
        constraint(
            "'/opt/ml/processing'",
            "processingOutputConfig.outputs.1.member.s3Output.localPath",
            "LocalPath must start with /opt/ml/processing/",
        )
    ]


def test_dataset_definition_local_path_rules() -> None:
    dataset = {
        "InputName": "query",
        "DatasetDefinition": {
            "LocalPath": "/tmp/query",
            "AthenaDatasetDefinition": {
                "Catalog": "AwsDataCatalog",
                "Database": "db",
                "QueryString": "SELECT 1",
                "OutputS3Uri": "s3://bucket/athena",
                "OutputFormat": "PARQUET",
            },
        },
    }
    assert problems_of(with_inputs(dataset)) == [
        constraint(
            "'/tmp/query'",
            "processingInputs.1.member.datasetDefinition.localPath",
            "LocalPath must start with /opt/ml/processing/",
        )
    ]


def test_input_local_paths_must_be_unique() -> None:
    request = with_inputs(
        s3_input("a", "/opt/ml/processing/input"),
        s3_input("b", "/opt/ml/processing/other"),
        s3_input("c", "/opt/ml/processing/input/"),
    )
    assert problems_of(request) == [
        constraint(
            "'/opt/ml/processing/input/'",
            "processingInputs.3.member.s3Input.localPath",
            "LocalPath must be unique across processing inputs; "
            "also used at 'processingInputs.1.member.s3Input.localPath'",
        )
    ]


def test_output_local_paths_must_be_unique() -> None:
    request = with_outputs(s3_output("a"), s3_output("b"))
    assert problems_of(request) == [
        constraint(
            "'/opt/ml/processing/output'",
            "processingOutputConfig.outputs.2.member.s3Output.localPath",
            "LocalPath must be unique across processing outputs; "
            "also used at 'processingOutputConfig.outputs.1.member.s3Output.localPath'",
        )
    ]


def test_an_input_and_an_output_may_share_a_local_path() -> None:
    request = with_inputs(s3_input(local_path="/opt/ml/processing/data"))
    request["ProcessingOutputConfig"] = {
        "Outputs": [s3_output(local_path="/opt/ml/processing/data")]
    }
    validate_create_request(request)


def test_input_names_must_be_unique() -> None:
    request = with_inputs(
        s3_input("data", "/opt/ml/processing/one"), s3_input("data", "/opt/ml/processing/two")
    )
    assert problems_of(request) == [
        constraint(
            "'data'",
            "processingInputs.2.member.inputName",
            "InputName must be unique across processing inputs; "
            "also used at 'processingInputs.1.member.inputName'",
        )
    ]


def test_output_names_must_be_unique() -> None:
    request = with_outputs(
        s3_output("out", "/opt/ml/processing/one"), s3_output("out", "/opt/ml/processing/two")
    )
    assert problems_of(request) == [
        constraint(
            "'out'",
            "processingOutputConfig.outputs.2.member.outputName",
            "OutputName must be unique across processing outputs; "
            "also used at 'processingOutputConfig.outputs.1.member.outputName'",
        )
    ]


def test_input_needs_a_source() -> None:
    assert problems_of(with_inputs({"InputName": "nothing"})) == [
        constraint(
            "null",
            "processingInputs.1.member.s3Input",
            "Exactly one of S3Input or DatasetDefinition must be set",
        )
    ]


def test_input_with_two_sources() -> None:
    both = s3_input() | {
        "DatasetDefinition": {
            "LocalPath": "/opt/ml/processing/query",
            "RedshiftDatasetDefinition": {
                "ClusterId": "c",
                "Database": "d",
                "DbUser": "u",
                "QueryString": "SELECT 1",
                "ClusterRoleArn": ROLE_ARN,
                "OutputS3Uri": "s3://bucket/rs",
                "OutputFormat": "CSV",
            },
        }
    }
    (problem,) = problems_of(with_inputs(both))
    assert problem.startswith(
        "Value '{LocalPath=/opt/ml/processing/query, RedshiftDatasetDefinition={ClusterId=c, "
    )
    assert problem.endswith(
        "}' at 'processingInputs.1.member.datasetDefinition' failed to satisfy constraint: "
        "Exactly one of S3Input or DatasetDefinition must be set"
    )


def test_dataset_definition_needs_exactly_one_query() -> None:
    request = with_inputs(
        {"InputName": "q", "DatasetDefinition": {"LocalPath": "/opt/ml/processing/q"}}
    )
    assert problems_of(request) == [
        constraint(
            "null",
            "processingInputs.1.member.datasetDefinition.athenaDatasetDefinition",
            "Exactly one of AthenaDatasetDefinition or RedshiftDatasetDefinition must be set",
        )
    ]


def test_output_needs_a_destination() -> None:
    assert problems_of(with_outputs({"OutputName": "nowhere"})) == [
        constraint(
            "null",
            "processingOutputConfig.outputs.1.member.s3Output",
            "Exactly one of S3Output or FeatureStoreOutput must be set",
        )
    ]


def test_output_with_two_destinations() -> None:
    both = s3_output() | {"AppManaged": True, "FeatureStoreOutput": {"FeatureGroupName": "fg"}}
    assert problems_of(with_outputs(both)) == [
        constraint(
            "'{FeatureGroupName=fg}'",
            "processingOutputConfig.outputs.1.member.featureStoreOutput",
            "Exactly one of S3Output or FeatureStoreOutput must be set",
        )
    ]


def test_gzip_requires_pipe_mode() -> None:
    request = with_inputs(s3_input())
    request["ProcessingInputs"][0]["S3Input"]["S3CompressionType"] = "Gzip"
    expected = [
        constraint(
            "'Gzip'",
            "processingInputs.1.member.s3Input.s3CompressionType",
            "S3CompressionType Gzip requires S3InputMode Pipe",
        )
    ]
    assert problems_of(request) == expected  # the default mode is File
    request["ProcessingInputs"][0]["S3Input"]["S3InputMode"] = "File"
    assert problems_of(request) == expected
    request["ProcessingInputs"][0]["S3Input"]["S3InputMode"] = "Pipe"
    validate_create_request(request)


def test_feature_store_output_requires_app_managed() -> None:
    output = {"OutputName": "fs", "FeatureStoreOutput": {"FeatureGroupName": "fg"}}
    assert problems_of(with_outputs(output)) == [
        constraint(
            "'{FeatureGroupName=fg}'",
            "processingOutputConfig.outputs.1.member.featureStoreOutput",
            "FeatureStoreOutput requires AppManaged to be true",
        )
    ]


def test_no_empty_strings_in_entrypoint_or_arguments() -> None:
    request = base_payload()
    request["AppSpecification"].update(
        ContainerEntrypoint=["python3", ""], ContainerArguments=["", "--x"]
    )
    assert problems_of(request) == [
        constraint(
            "''",
            "appSpecification.containerEntrypoint.2.member",
            "ContainerEntrypoint must not contain empty strings",
        ),
        constraint(
            "''",
            "appSpecification.containerArguments.1.member",
            "ContainerArguments must not contain empty strings",
        ),
    ]


# ------------------------------------------------------------------------------------------------
# Everything at once
# ------------------------------------------------------------------------------------------------


def test_every_problem_is_reported_at_once() -> None:
    request = with_inputs(s3_input(local_path="/data"))
    request["ProcessingJobName"] = "bad_name"
    del request["RoleArn"]
    request["ProcessingResources"]["ClusterConfig"]["InstanceCount"] = 0
    with pytest.raises(ValidationException) as raised:
        validate_create_request(request)
    error = raised.value
    assert len(error.problems) == 4
    assert error.code == "ValidationException"
    assert str(error) == "4 validation errors detected: " + "; ".join(
        [
            constraint(
                "'bad_name'",
                "processingJobName",
                "Member must satisfy regular expression pattern: [a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}",
            ),
            constraint(
                "'0'",
                "processingResources.clusterConfig.instanceCount",
                "Member must have value greater than or equal to 1",
            ),
            constraint("null", "roleArn", "Member must not be null"),
            constraint(
                "'/data'",
                "processingInputs.1.member.s3Input.localPath",
                "LocalPath must start with /opt/ml/processing/",
            ),
        ]
    )


def test_single_problem_message_uses_singular() -> None:
    request = base_payload()
    del request["RoleArn"]
    with pytest.raises(ValidationException) as raised:
        validate_create_request(request)
    assert str(raised.value).startswith("1 validation error detected: Value null at 'roleArn'")


# ------------------------------------------------------------------------------------------------
# A DescribeProcessingJob response re-run as a request
# ------------------------------------------------------------------------------------------------


def describe_payload() -> Payload:
    return {
        **with_inputs(s3_input() | {"AppManaged": False}),
        "ProcessingOutputConfig": {"Outputs": [s3_output()], "KmsKeyId": None},
        "ProcessingJobArn": "arn:aws:sagemaker:eu-west-1:123456789012:processing-job/unit-job",
        "ProcessingJobStatus": "Failed",
        "ExitMessage": "Traceback (most recent call last): ...",
        "FailureReason": "AlgorithmError: See job logs for more information",
        "CreationTime": "2024-05-01T10:00:00.000000+00:00",
        "ProcessingStartTime": "2024-05-01T10:02:00.000000+00:00",
        "ProcessingEndTime": "2024-05-01T10:05:00.000000+00:00",
        "LastModifiedTime": "2024-05-01T10:05:01.000000+00:00",
        "MonitoringScheduleArn": None,
        "StoppingCondition": {"MaxRuntimeInSeconds": 86400},
        "NetworkConfig": None,
        "Environment": {},
        "ResponseMetadata": {"RequestId": "abc", "HTTPStatusCode": 200},
    }


def test_describe_response_is_accepted_after_to_create_request() -> None:
    validate_create_request(to_create_request(describe_payload()))


def test_describe_response_as_is_is_rejected_by_client_checks() -> None:
    problems = client_problems_of(describe_payload())
    assert any('Unknown parameter in input: "ProcessingJobArn"' in p for p in problems)


# ------------------------------------------------------------------------------------------------
# LocalPath segments (issue 12, item 4): `..` would leave /opt/ml/processing/ or shadow the image
# ------------------------------------------------------------------------------------------------

SEGMENTS_RULE = "LocalPath must not contain '.', '..' or empty ('//') path segments"


@pytest.mark.parametrize(
    "local_path",
    [
        "/opt/ml/processing/../config",
        "/opt/ml/processing/x/../../../usr/bin",
        "/opt/ml/processing/..",
        "/opt/ml/processing/./input",
        "/opt/ml/processing/input/.",
        "/opt/ml/processing//input",
        "/opt/ml/processing/input//",
    ],
)
def test_local_path_with_dot_segments_is_refused_for_inputs_and_outputs(local_path: str) -> None:
    assert problems_of(with_inputs(s3_input(local_path=local_path))) == [
        constraint(f"'{local_path}'", "processingInputs.1.member.s3Input.localPath", SEGMENTS_RULE)
    ]
    assert problems_of(with_outputs(s3_output(local_path=local_path))) == [
        constraint(
            f"'{local_path}'",
            "processingOutputConfig.outputs.1.member.s3Output.localPath",
            SEGMENTS_RULE,
        )  # fmt: skip
    ]


@pytest.mark.parametrize(
    "local_path",
    ["/opt/ml/processing/input/", "/opt/ml/processing/a/b", "/opt/ml/processing/a..b/.c"],
)
def test_local_path_with_a_trailing_slash_or_dots_inside_names_is_accepted(
    local_path: str,
) -> None:
    validate_create_request(with_inputs(s3_input(local_path=local_path)))
    validate_create_request(with_outputs(s3_output(local_path=local_path)))


# ------------------------------------------------------------------------------------------------
# ImageUri: Docker's reference grammar (issue 12, item 13); the model's pattern is `.*`
# ------------------------------------------------------------------------------------------------

IMAGE_RULE = (
    "ImageUri must be a Docker image reference [REGISTRY[:PORT]/]PATH[:TAG][@DIGEST] "
    "with lowercase path components"
)
SHA = "0123456789abcdef" * 4


def with_image(image_uri: str) -> Payload:
    payload = base_payload()
    payload["AppSpecification"]["ImageUri"] = image_uri
    return payload


@pytest.mark.parametrize(
    "image_uri",
    [
        "UPPER/case",
        "Upper",
        "a b",
        "",
        "-rm",
        "::::",
        "ßü",
        "image@sha256:abc",
        f"image@sha256:{SHA[:-1]}",
        f"image@sha256:{SHA.upper()}",
        f"image@md5:{SHA}",
        "image@",
        "image:",
        "image:-tag",
        "image:" + "t" * 129,
        "a___b",
        "a..b",
        "a/b/",
        "/a",
        "a//b",
        "image\u200b",
        "localhost:port/x",
        "a" * 238,  # docker.io/library/aaa… is then longer than 255 characters
        "team/" + "a" * 241,
    ],
)
def test_image_uri_docker_refuses_is_refused_naming_the_field(image_uri: str) -> None:
    problems = [
        p for p in problems_of(with_image(image_uri)) if "at 'appSpecification.imageUri'" in p
    ]
    assert len(problems) == 1, problems
    assert IMAGE_RULE in problems[0]


def test_image_uri_with_nul_is_refused_once() -> None:
    problems = problems_of(with_image("image\x00:latest"))
    assert len(problems) == 1
    assert "at 'appSpecification.imageUri'" in problems[0]


@pytest.mark.parametrize(
    "image_uri",
    [
        "python",
        "python:3.11-slim",
        "localproc/example-python:bookworm",
        "123456789012.dkr.ecr.eu-west-1.amazonaws.com/my-repo/sub_dir:v1.2",
        "localhost:5000/a/b:tag",
        "localhost/x",
        "My.Registry.com/team/image",
        "127.0.0.1:5000/x",
        "registry.example.com:5000",  # a name and the tag 5000, as Docker reads it
        "a__b",
        "a--b.c_d:T_a.g",
        f"image@sha256:{SHA}",
        f"image:tag@sha256:{SHA}",
        f"image@sha512:{SHA * 2}",
        "a" * 237,
        "team/" + "a" * 240,
        "localhost:5000/" + "a" * 240,
    ],
)
def test_image_uri_docker_accepts_is_accepted(image_uri: str) -> None:
    validate_create_request(with_image(image_uri))


# ------------------------------------------------------------------------------------------------
# Text every string must be (issue 12, item 13): no NUL, no lone surrogate
# ------------------------------------------------------------------------------------------------


def test_nul_and_lone_surrogates_are_refused_in_every_string_naming_the_field() -> None:
    request = with_inputs(s3_input("in\x00put"), s3_input("\ud800", "/opt/ml/processing/two"))
    request["Environment"] = {"KEY": "va\x00lue", "OTHER": "x\udfff"}
    request["AppSpecification"]["ContainerArguments"] = ["--ok", "a\x00"]
    problems = problems_of(request)
    text = "\n".join(problems)
    for field in (
        "'processingInputs.1.member.inputName'",
        "'processingInputs.2.member.inputName'",
        "'environment.KEY'",
        "'environment.OTHER'",
        "'appSpecification.containerArguments.2.member'",
    ):
        assert f"at {field} failed to satisfy constraint: Member must" in text, field
    # The values are shown escaped, so the message itself is printable and encodable.
    assert "Value 'va\\x00lue'" in text
    assert "Value 'x\\udfff'" in text
    "\n".join(problems).encode("utf-8")
    assert "\x00" not in text


def test_a_lone_surrogate_in_an_environment_key_is_refused() -> None:
    request = base_payload()
    request["Environment"] = {"K\ud800": "v"}
    problems = problems_of(request)
    assert any("at 'environment'" in p and "\\ud800" in p for p in problems)
    "".join(problems).encode("utf-8")


# ------------------------------------------------------------------------------------------------
# Input and output names become folder names (issue 12, item 13)
# ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "name",
    ["", ".", "..", "a/b", "../../etc", "x" * 256, "é" * 128],
    ids=["empty", "dot", "dot-dot", "slash", "traversal", "256-bytes", "256-bytes-of-utf8"],
)
def test_names_that_cannot_be_a_folder_name_are_refused(name: str) -> None:
    problems = problems_of(with_inputs(s3_input(name)))
    assert any(
        "at 'processingInputs.1.member.inputName'" in p and "InputName must be" in p
        for p in problems
    ), problems
    problems = problems_of(with_outputs(s3_output(name)))
    assert any(
        "at 'processingOutputConfig.outputs.1.member.outputName'" in p and "OutputName must be" in p
        for p in problems
    ), problems


def test_an_output_name_of_100000_characters_is_refused_with_a_short_message() -> None:
    problems = problems_of(with_outputs(s3_output("n" * 100_000)))
    assert len(problems) == 1
    assert len(problems[0]) < 1000


@pytest.mark.parametrize(
    "name", ["x" * 255, "é" * 127, "code", "my input.v2"], ids=["255", "254-utf8", "code", "space"]
)
def test_names_up_to_255_bytes_are_accepted(name: str) -> None:
    validate_create_request(with_inputs(s3_input(name)))
