"""The SageMaker service model shipped in botocore, the source of truth for the payload's shape.

botocore is imported inside the functions so importing localproc stays fast; the model is parsed
once per process and then shared.
"""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from botocore.model import ServiceModel, StructureShape

SERVICE_NAME = "sagemaker"
CREATE_OPERATION = "CreateProcessingJob"
DESCRIBE_OPERATION = "DescribeProcessingJob"


@functools.cache
def sagemaker_model() -> ServiceModel:
    """The botocore ServiceModel for SageMaker (including any override in ~/.aws/models)."""
    from botocore.loaders import create_loader
    from botocore.model import ServiceModel

    data = create_loader().load_service_model(SERVICE_NAME, "service-2")
    return ServiceModel(data, service_name=SERVICE_NAME)


def create_request_shape() -> StructureShape:
    """The input shape of CreateProcessingJob (CreateProcessingJobRequest)."""
    return sagemaker_model().operation_model(CREATE_OPERATION).input_shape


def describe_response_shape() -> StructureShape:
    """The output shape of DescribeProcessingJob (DescribeProcessingJobResponse)."""
    return sagemaker_model().operation_model(DESCRIBE_OPERATION).output_shape


@functools.cache
def describe_only_members() -> frozenset[str]:
    """Members the service computes (ARN, status, timestamps, ...): in Describe, not in Create."""
    create_members = create_request_shape().members
    return frozenset(
        name for name in describe_response_shape().members if name not in create_members
    )
