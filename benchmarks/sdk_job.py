"""The benchmark's trivial job through the SageMaker Python SDK's local mode.

Runs inside the SDK's own virtual environment (see `envs.py`), never in localproc's: the SDK
pins its own boto3. The S3 endpoint (moto) comes from `--s3-endpoint-url`, handed both to
`LocalSession(s3_endpoint_url=...)` and, by the caller, as `AWS_ENDPOINT_URL_S3`.

Telemetry is opted out (the SDK's `TelemetryOptOut` setting): with it on, every `run()` tries to
reach an AWS S3 URL, which this machine cannot, and the benchmark would time that instead of
local mode itself.
"""

from __future__ import annotations

import argparse
import json
import sys
import time


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--s3-endpoint-url", required=True)
    parser.add_argument("--image", required=True)
    parser.add_argument("--input", required=True, help="s3:// prefix of the inputs")
    parser.add_argument("--input-path", required=True)
    parser.add_argument("--output", required=True, help="s3:// prefix for the output")
    parser.add_argument("--output-path", required=True)
    parser.add_argument("--command", required=True, help="shell command run by sh -c")
    parser.add_argument("--instance-count", type=int, default=1)
    parser.add_argument("--bucket", required=True)
    args = parser.parse_args()

    started = time.perf_counter()
    import boto3
    from sagemaker.local import LocalSession
    from sagemaker.processing import ProcessingInput, ProcessingOutput, Processor

    imported = time.perf_counter()
    session = LocalSession(
        boto_session=boto3.Session(region_name="us-east-1"),
        default_bucket=args.bucket,
        s3_endpoint_url=args.s3_endpoint_url,
        sagemaker_config={
            "SchemaVersion": "1.0",
            "SageMaker": {"PythonSDK": {"Modules": {"TelemetryOptOut": True}}},
        },
    )
    session.config = {"local": {"local_code": True}}
    processor = Processor(
        role="arn:aws:iam::123456789012:role/Bench",
        image_uri=args.image,
        instance_count=args.instance_count,
        instance_type="local",
        entrypoint=["sh", "-c", args.command],
        sagemaker_session=session,
    )
    processor.run(
        inputs=[ProcessingInput(source=args.input, destination=args.input_path)],
        outputs=[ProcessingOutput(source=args.output_path, destination=args.output)],
        wait=True,
        logs=True,
    )
    finished = time.perf_counter()
    print(
        json.dumps(
            {
                "import_seconds": imported - started,
                "run_seconds": finished - imported,
                "job_name": processor.latest_job.job_name if processor.latest_job else None,
            }
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
