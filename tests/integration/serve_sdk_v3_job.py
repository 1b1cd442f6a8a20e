"""Run a processing job with the SageMaker Python SDK v3 (`sagemaker.core`) against
`localproc serve`, with `Processor.run()`'s default arguments (wait=True, logs=True).

Executed by the SDK v3 virtual environment's Python (see serve_clients.py), not by pytest:

    python serve_sdk_v3_job.py BUCKET JOB_NAME IMAGE

AWS_ENDPOINT_URL names the server (SageMaker and CloudWatch Logs), AWS_ENDPOINT_URL_S3 the S3
server. Prints the job's final DescribeProcessingJob status as JSON on the last line.
"""

from __future__ import annotations

import json
import sys

import boto3
from sagemaker.core.helper.session_helper import Session
from sagemaker.core.processing import Processor
from sagemaker.core.shapes import (
    ProcessingInput,
    ProcessingOutput,
    ProcessingS3Input,
    ProcessingS3Output,
)

SCRIPT = """
import pathlib
pathlib.Path('/opt/ml/processing/output/done.txt').write_text('v3')
print('hello from the v3 job', flush=True)
"""
SDK_CONFIG = {
    "SchemaVersion": "1.0",
    "SageMaker": {"PythonSDK": {"Modules": {"TelemetryOptOut": True}}},
}


def main() -> None:
    bucket, job_name, image = sys.argv[1:4]
    boto_session = boto3.Session(region_name="us-east-1")
    session = Session(boto_session=boto_session, default_bucket=bucket, sagemaker_config=SDK_CONFIG)
    script_key = f"{job_name}/code/job.py"
    boto_session.client("s3").put_object(Bucket=bucket, Key=script_key, Body=SCRIPT.encode())
    processor = Processor(
        role="arn:aws:iam::123456789012:role/R",
        image_uri=image,
        instance_count=1,
        instance_type="ml.t3.medium",
        entrypoint=["python3", "-u", "/opt/ml/processing/input/code/job.py"],
        max_runtime_in_seconds=300,
        sagemaker_session=session,
    )
    processor.run(
        inputs=[
            ProcessingInput(
                input_name="code",
                s3_input=ProcessingS3Input(
                    s3_uri=f"s3://{bucket}/{script_key}",
                    local_path="/opt/ml/processing/input/code",
                    s3_data_type="S3Prefix",
                    s3_input_mode="File",
                ),
            )
        ],
        outputs=[
            ProcessingOutput(
                output_name="out",
                s3_output=ProcessingS3Output(
                    s3_uri=f"s3://{bucket}/{job_name}/output",
                    local_path="/opt/ml/processing/output",
                    s3_upload_mode="EndOfJob",
                ),
            )
        ],
        job_name=job_name,
    )
    described = session.sagemaker_client.describe_processing_job(ProcessingJobName=job_name)
    print("\n" + json.dumps({"ProcessingJobStatus": described["ProcessingJobStatus"]}))


if __name__ == "__main__":
    main()
