"""Run a processing job with the SageMaker Python SDK (v2) against `localproc serve`.

Executed by the SDK's own virtual environment's Python (see serve_clients.py), not by pytest:

    python serve_sdk_job.py SERVER_URL BUCKET JOB_NAME IMAGE DATA_FILE [--default-run]

S3 is whatever boto3's configuration says (the test sets AWS_ENDPOINT_URL_S3 to its S3 server).
The SDK's own code runs unchanged: the session gets a SageMaker client for the server, as any
user's code would, and an explicit default bucket so that the SDK needs no STS call to name one.
With --default-run the session makes its own clients (AWS_ENDPOINT_URL names the server, for
SageMaker and CloudWatch Logs alike) and `run()` gets its default wait=True, logs=True, so the
SDK tails the job's log streams and prints them.
Prints the job's final DescribeProcessingJob status as JSON on the last line.
"""

from __future__ import annotations

import json
import sys

import boto3
from sagemaker.processing import ProcessingInput, ProcessingOutput, Processor
from sagemaker.session import Session

SCRIPT = """
import json, pathlib
rows = pathlib.Path('/opt/ml/processing/input/data/data.csv').read_text().splitlines()
out = pathlib.Path('/opt/ml/processing/output/summary.json')
out.write_text(json.dumps({'rows': len(rows) - 1, 'header': rows[0]}))
print('summarised', len(rows) - 1, 'rows')
"""

# The SDK's telemetry would call STS and an S3 URL of AWS's on every run; opting out is its own
# documented switch.
SDK_CONFIG = {
    "SchemaVersion": "1.0",
    "SageMaker": {"PythonSDK": {"Modules": {"TelemetryOptOut": True}}},
}


def main() -> None:
    server_url, bucket, job_name, image, data_file = sys.argv[1:6]
    default_run = "--default-run" in sys.argv[6:]
    boto_session = boto3.Session(region_name="us-east-1")
    clients = (
        {}
        if default_run
        else {"sagemaker_client": boto_session.client("sagemaker", endpoint_url=server_url)}
    )
    session = Session(
        boto_session=boto_session, default_bucket=bucket, sagemaker_config=SDK_CONFIG, **clients
    )
    # The script travels as an S3 input, as ScriptProcessor would ship it.
    script_key = f"{job_name}/code/summarise.py"
    session.upload_string_as_file_body(SCRIPT, bucket, script_key)
    processor = Processor(
        role="arn:aws:iam::123456789012:role/R",
        image_uri=image,
        instance_count=1,
        instance_type="ml.t3.medium",
        entrypoint=["python3", "-u", "/opt/ml/processing/input/code/summarise.py"],
        max_runtime_in_seconds=300,
        sagemaker_session=session,
    )
    processor.run(
        inputs=[
            ProcessingInput(
                source=f"s3://{bucket}/{script_key}",
                destination="/opt/ml/processing/input/code",
                input_name="code",
            ),
            # A local file: the SDK uploads it to the session's default bucket itself.
            ProcessingInput(
                source=data_file, destination="/opt/ml/processing/input/data", input_name="data"
            ),
        ],
        outputs=[
            ProcessingOutput(
                source="/opt/ml/processing/output",
                destination=f"s3://{bucket}/{job_name}/output",
                output_name="summary",
            )
        ],
        job_name=job_name,
        **({} if default_run else {"wait": True, "logs": False}),
    )
    described = processor.latest_job.describe()
    # The SDK prints its progress dots without a final newline.
    print("\n" + json.dumps({"ProcessingJobStatus": described["ProcessingJobStatus"]}))


if __name__ == "__main__":
    main()
