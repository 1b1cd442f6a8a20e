"""A SageMaker Pipeline built with the SageMaker Python SDK (v2), run against `localproc serve`.

Executed by the SDK's own virtual environment's Python (see serve_clients.py), not by pytest:

    python serve_sdk_pipeline.py definition BUCKET IMAGE
    python serve_sdk_pipeline.py run SERVER_URL BUCKET IMAGE PIPELINE_NAME

`definition` prints `pipeline.definition()` (fixtures/pipelines/evaluate-and-report.json is its
output for the bucket `localproc-pipelines`). `run` upserts the pipeline and starts it three
times: parameters overridden at start(), then again (the cached Prep step is reused), then with a
threshold no evaluation can reach (the ConditionStep chooses the FailStep). Each execution is
waited for with `execution.wait()` and its steps listed with `execution.list_steps()`; the
results are printed as JSON on the last line. S3 is whatever boto3's configuration says.

The pipeline: Prep (processing, cached) → Evaluate (processing, input is Prep's output, writes a
PropertyFile) → CheckAccuracy (condition on the property file against a parameter) → Report
(processing) or TooInaccurate (fail).
"""

from __future__ import annotations

import json
import sys

import boto3
from botocore.exceptions import WaiterError
from sagemaker.processing import ProcessingInput, ProcessingOutput, Processor
from sagemaker.workflow.condition_step import ConditionStep
from sagemaker.workflow.conditions import ConditionGreaterThanOrEqualTo
from sagemaker.workflow.execution_variables import ExecutionVariables
from sagemaker.workflow.fail_step import FailStep
from sagemaker.workflow.functions import Join, JsonGet
from sagemaker.workflow.parameters import ParameterFloat, ParameterString
from sagemaker.workflow.pipeline import Pipeline
from sagemaker.workflow.pipeline_context import PipelineSession
from sagemaker.workflow.properties import PropertyFile
from sagemaker.workflow.steps import CacheConfig, ProcessingStep

SDK_CONFIG = {
    "SchemaVersion": "1.0",
    "SageMaker": {"PythonSDK": {"Modules": {"TelemetryOptOut": True}}},
}
ROLE = "arn:aws:iam::123456789012:role/PipelineRole"
CODE = "/opt/ml/processing/input/code"


def build(session: PipelineSession, bucket: str, image: str, name: str) -> Pipeline:
    input_data = ParameterString("InputData", default_value=f"s3://{bucket}/data/data.csv")
    threshold = ParameterFloat("AccuracyThreshold", default_value=0.9)
    title = ParameterString("ReportTitle", default_value="Weather")
    code = ProcessingInput(
        source=f"s3://{bucket}/code/steps.py", destination=CODE, input_name="code"
    )

    def processor(step: str) -> Processor:
        return Processor(
            role=ROLE,
            image_uri=image,
            instance_count=1,
            instance_type="ml.t3.medium",
            entrypoint=["python3", "-u", f"{CODE}/steps.py", step],
            env={"REPORT_TITLE": title},
            max_runtime_in_seconds=300,
            sagemaker_session=session,
        )

    prep = ProcessingStep(
        "Prep",
        step_args=processor("prep").run(
            inputs=[
                code,
                ProcessingInput(
                    source=input_data,
                    destination="/opt/ml/processing/input/data",
                    input_name="data",
                ),
            ],
            outputs=[
                ProcessingOutput(
                    output_name="train",
                    source="/opt/ml/processing/output/train",
                    destination=f"s3://{bucket}/prep/train",
                )
            ],
        ),
        cache_config=CacheConfig(enable_caching=True, expire_after="PT1H"),
    )
    evaluation = PropertyFile(name="Evaluation", output_name="evaluation", path="evaluation.json")
    evaluate = ProcessingStep(
        "Evaluate",
        step_args=processor("evaluate").run(
            inputs=[
                code,
                ProcessingInput(
                    source=prep.properties.ProcessingOutputConfig.Outputs["train"].S3Output.S3Uri,
                    destination="/opt/ml/processing/input/train",
                    input_name="train",
                ),
            ],
            outputs=[
                ProcessingOutput(
                    output_name="evaluation",
                    source="/opt/ml/processing/output/evaluation",
                    destination=Join(
                        on="/",
                        values=[
                            "s3:/",
                            bucket,
                            "runs",
                            ExecutionVariables.PIPELINE_EXECUTION_ID,
                            "evaluation",
                        ],
                    ),
                )
            ],
        ),
        property_files=[evaluation],
    )
    report = ProcessingStep(
        "Report",
        step_args=processor("report").run(
            inputs=[
                code,
                ProcessingInput(
                    source=evaluate.properties.ProcessingOutputConfig.Outputs[
                        "evaluation"
                    ].S3Output.S3Uri,
                    destination="/opt/ml/processing/input/evaluation",
                    input_name="evaluation",
                ),
            ],
            outputs=[
                ProcessingOutput(
                    output_name="report",
                    source="/opt/ml/processing/output/report",
                    destination=Join(
                        on="/",
                        values=[
                            "s3:/",
                            bucket,
                            "runs",
                            ExecutionVariables.PIPELINE_EXECUTION_ID,
                            "report",
                        ],
                    ),
                )
            ],
        ),
    )
    accuracy = JsonGet(
        step_name=evaluate.name, property_file=evaluation, json_path="metrics.accuracy.value"
    )
    too_inaccurate = FailStep(
        "TooInaccurate",
        error_message=Join(on=" ", values=["Accuracy below the threshold of", threshold]),
    )
    check = ConditionStep(
        "CheckAccuracy",
        conditions=[ConditionGreaterThanOrEqualTo(left=accuracy, right=threshold)],
        if_steps=[report],
        else_steps=[too_inaccurate],
    )
    return Pipeline(
        name=name,
        parameters=[input_data, threshold, title],
        steps=[prep, evaluate, check],
        sagemaker_session=session,
    )


def session_for(server_url: str | None, bucket: str) -> PipelineSession:
    boto_session = boto3.Session(region_name="us-east-1")
    clients = {}
    if server_url:
        clients["sagemaker_client"] = boto_session.client("sagemaker", endpoint_url=server_url)
    return PipelineSession(
        boto_session=boto_session, default_bucket=bucket, sagemaker_config=SDK_CONFIG, **clients
    )


def execute(pipeline: Pipeline, **start: object) -> dict[str, object]:
    client = pipeline.sagemaker_session.sagemaker_client
    execution = pipeline.start(**start)
    try:
        execution.wait(delay=1, max_attempts=300)
        waited = "ok"
    except WaiterError as err:
        waited = f"WaiterError: {err}"
    described = execution.describe()
    steps = execution.list_steps()
    return {
        "arn": execution.arn,
        "waited": waited,
        "status": described["PipelineExecutionStatus"],
        "display_name": described.get("PipelineExecutionDisplayName"),
        "steps": {
            step["StepName"]: {
                "status": step["StepStatus"],
                "job": step.get("Metadata", {}).get("ProcessingJob", {}).get("Arn"),
                "cache": step.get("CacheHitResult", {}).get("SourcePipelineExecutionArn"),
                "reason": step.get("FailureReason"),
                "outcome": step.get("Metadata", {}).get("Condition", {}).get("Outcome"),
                "error": step.get("Metadata", {}).get("Fail", {}).get("ErrorMessage"),
            }
            for step in steps
        },
        "parameters": {
            p["Name"]: p["Value"]
            for p in client.list_pipeline_parameters_for_execution(
                PipelineExecutionArn=execution.arn
            )["PipelineParameters"]
        },
    }


def main() -> None:
    mode = sys.argv[1]
    if mode == "definition":
        bucket, image = sys.argv[2:4]
        pipeline = build(session_for(None, bucket), bucket, image, "evaluate-and-report")
        print(json.dumps(json.loads(pipeline.definition()), indent=2))
        return
    server_url, bucket, image, name = sys.argv[2:6]
    pipeline = build(session_for(server_url, bucket), bucket, image, name)
    pipeline.upsert(
        role_arn=ROLE, description="localproc test", tags=[{"Key": "team", "Value": "ml"}]
    )
    pipeline.upsert(role_arn=ROLE, description="localproc test, updated")  # exists: updated
    # The second execution has the same arguments for Prep (the same ReportTitle is in its
    # environment): its first run is reused.
    chosen = {"AccuracyThreshold": 0.25, "ReportTitle": "Warm cities"}
    results = [
        execute(pipeline, parameters=chosen, execution_display_name="first"),
        execute(pipeline, parameters=chosen),
        execute(pipeline),
    ]
    described = pipeline.describe()
    print(
        "\n"
        + json.dumps(
            {
                "executions": results,
                "pipeline_arn": described["PipelineArn"],
                "description": described.get("PipelineDescription"),
            }
        )
    )


if __name__ == "__main__":
    main()
