"""The real SageMaker API, for `reproduce`: fetch a job's DescribeProcessingJob with the user's
AWS configuration (or another endpoint, such as a `localproc serve`)."""

from __future__ import annotations

import json
from typing import Any

from localproc.errors import CannotRunHere, ResourceNotFound


def describe_remote_job(name: str, region: str, endpoint_url: str | None) -> dict[str, Any]:
    import boto3
    import botocore.exceptions

    where = endpoint_url or f"SageMaker in {region}"
    try:
        client = boto3.client("sagemaker", region_name=region, endpoint_url=endpoint_url)
        response = client.describe_processing_job(ProcessingJobName=name)
    except botocore.exceptions.ClientError as err:
        code = err.response.get("Error", {}).get("Code", "")
        message = err.response.get("Error", {}).get("Message", str(err))
        if code in ("ResourceNotFound", "ValidationException") and "not" in message.lower():
            raise ResourceNotFound(f"{where}: {message}") from err
        raise CannotRunHere(f"{where} refused DescribeProcessingJob: {code}: {message}") from err
    except (botocore.exceptions.BotoCoreError, ValueError) as err:
        raise CannotRunHere(
            f"Cannot reach {where} ({err}). Check your AWS configuration (AWS_PROFILE, "
            "AWS_REGION, credentials) or pass --sagemaker-endpoint-url."
        ) from err
    response.pop("ResponseMetadata", None)
    # botocore gives datetimes; the payload is JSON from here on, as `aws ... describe` prints it.
    return json.loads(json.dumps(response, default=str))
