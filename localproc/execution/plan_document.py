"""`localproc plan`: what `run` would do, as data, from the same preparation `run` uses (so the
plan is what runs), plus what the job would cost on SageMaker. Starts nothing, writes nothing.

Every rule (what is uploaded, the FIFO path, the network, the containers) is the plan's: this
module only adds what the host, the image and the catalog say, and `plan_json` writes the plan.
"""

from __future__ import annotations

from typing import Any

from localproc.catalog.cost import cost_estimate
from localproc.execution.prepare import Preparation
from localproc.plan import network_json, network_plan, plan_json, uploaded_outputs

FIRST_KEYS = 5


def plan_document(prepared: Preparation) -> dict[str, Any]:
    job, plan = prepared.job, prepared.plan
    planned = plan_json(plan) if plan else {}
    uploaded = {out.name for out in (plan.outputs if plan else uploaded_outputs(job))}
    return {
        "ProcessingJobName": job.name,
        "ProcessingJobArn": prepared.arn,
        "Region": prepared.region,
        "ObjectStore": prepared.store.describe(),
        "Image": {"Uri": job.image_uri, "Status": prepared.image_status},
        "Command": _command(prepared, planned.get("Argv")),
        "Environment": planned.get("Environment", dict(job.environment)),
        "Instances": {
            "Count": job.instance_count,
            "Type": job.instance_type,
            "Hosts": planned.get("Hosts", []),
            "CpuLimit": planned.get("CpuLimit"),
            "MemoryLimitBytes": planned.get("MemoryLimitBytes"),
            "Gpus": planned.get("Gpus", 0),
        },
        **(network_json(plan.network) if plan else network_json(network_plan(job))),
        "MaxRuntimeInSeconds": job.max_runtime_seconds,
        "RunId": planned.get("RunId"),
        "Labels": planned.get("Labels", {}),
        "InstancePlans": planned.get("InstancePlans", []),
        "Outputs": [
            {
                "OutputName": out.name,
                "LocalPath": out.local_path,
                "S3Uri": out.s3_uri,
                "S3UploadMode": out.upload_mode,
                "Uploaded": out.name in uploaded,
            }
            for out in job.outputs
        ],
        "Problem": prepared.failure.reason if prepared.failure else None,
        "EstimatedCost": cost_estimate(
            job.instance_type, job.instance_count, job.max_runtime_seconds, prepared.region
        ),
        "Notes": prepared.notes,
    }


def _command(prepared: Preparation, argv: list[str] | None) -> dict[str, Any]:
    job, image = prepared.job, prepared.image
    return {
        "ContainerEntrypoint": job.container_entrypoint,
        "ContainerArguments": job.container_arguments,
        "ImageEntrypoint": list(image.entrypoint or []) if image.present else None,
        "ImageCmd": list(image.cmd or []) if image.present else None,
        "Argv": argv,  # None: depends on the image's ENTRYPOINT/CMD, unknown until it is pulled
    }
