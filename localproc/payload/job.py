"""The typed job: a validated CreateProcessingJob request in the names the rest of the code uses.

Built only from a request that `validate_create_request` accepted, so missing required members are
not re-checked here; defaults the service applies are filled in.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class S3InputSpec:
    s3_uri: str
    local_path: str
    data_type: str  # S3Prefix | ManifestFile
    input_mode: str  # File | Pipe
    distribution: str  # FullyReplicated | ShardedByS3Key
    compression: str  # None | Gzip


@dataclass(frozen=True)
class InputSpec:
    name: str
    app_managed: bool
    s3: S3InputSpec | None
    dataset_definition: dict[str, Any] | None


@dataclass(frozen=True)
class OutputSpec:
    name: str
    app_managed: bool
    s3_uri: str | None
    local_path: str | None
    upload_mode: str | None  # Continuous | EndOfJob
    feature_store: dict[str, Any] | None


@dataclass(frozen=True)
class JobSpec:
    name: str
    image_uri: str
    container_entrypoint: list[str] | None
    container_arguments: list[str] | None
    environment: dict[str, str]
    inputs: list[InputSpec]
    outputs: list[OutputSpec]
    output_kms_key_id: str | None
    instance_count: int
    instance_type: str
    volume_size_gb: int
    max_runtime_seconds: int | None
    network_isolation: bool
    inter_container_encryption: bool
    vpc_config: dict[str, Any] | None
    role_arn: str
    request: dict[str, Any] = field(repr=False)


def job_from_request(request: dict[str, Any]) -> JobSpec:
    app = request["AppSpecification"]
    cluster = request["ProcessingResources"]["ClusterConfig"]
    network = request.get("NetworkConfig") or {}
    output_config = request.get("ProcessingOutputConfig") or {}
    stopping = request.get("StoppingCondition") or {}
    return JobSpec(
        name=request["ProcessingJobName"],
        image_uri=app["ImageUri"],
        container_entrypoint=app.get("ContainerEntrypoint"),
        container_arguments=app.get("ContainerArguments"),
        environment=dict(request.get("Environment") or {}),
        inputs=[_input(item) for item in request.get("ProcessingInputs") or []],
        outputs=[_output(item) for item in output_config.get("Outputs") or []],
        output_kms_key_id=output_config.get("KmsKeyId"),
        instance_count=cluster["InstanceCount"],
        instance_type=cluster["InstanceType"],
        volume_size_gb=cluster["VolumeSizeInGB"],
        max_runtime_seconds=stopping.get("MaxRuntimeInSeconds"),
        network_isolation=bool(network.get("EnableNetworkIsolation", False)),
        inter_container_encryption=bool(
            network.get("EnableInterContainerTrafficEncryption", False)
        ),
        vpc_config=network.get("VpcConfig"),
        role_arn=request["RoleArn"],
        request=request,
    )


def _input(item: dict[str, Any]) -> InputSpec:
    s3 = item.get("S3Input")
    return InputSpec(
        name=item["InputName"],
        app_managed=bool(item.get("AppManaged", False)),
        s3=None
        if s3 is None
        else S3InputSpec(
            s3_uri=s3["S3Uri"],
            local_path=s3.get("LocalPath", ""),
            data_type=s3["S3DataType"],
            input_mode=s3.get("S3InputMode") or "File",
            distribution=s3.get("S3DataDistributionType") or "FullyReplicated",
            compression=s3.get("S3CompressionType") or "None",
        ),
        dataset_definition=item.get("DatasetDefinition"),
    )


def _output(item: dict[str, Any]) -> OutputSpec:
    s3 = item.get("S3Output") or {}
    return OutputSpec(
        name=item["OutputName"],
        app_managed=bool(item.get("AppManaged", False)),
        s3_uri=s3.get("S3Uri"),
        local_path=s3.get("LocalPath"),
        upload_mode=s3.get("S3UploadMode"),
        feature_store=item.get("FeatureStoreOutput"),
    )
