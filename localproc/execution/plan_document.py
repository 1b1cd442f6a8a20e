"""`localproc plan`: what `run` would do, as data, from the same preparation `run` uses (so the
plan is what runs), plus what the job would cost on SageMaker. Starts nothing, writes nothing."""

from __future__ import annotations

from typing import Any

from localproc.catalog.cost import cost_estimate
from localproc.execution.prepare import Preparation
from localproc.plan import JobPlan
from localproc.runtime.engine import DEFAULT_NETWORK, job_network

FIRST_KEYS = 5


def plan_document(prepared: Preparation) -> dict[str, Any]:
    job, plan = prepared.job, prepared.plan
    return {
        "ProcessingJobName": job.name,
        "ProcessingJobArn": prepared.arn,
        "Region": prepared.region,
        "ObjectStore": prepared.store.describe(),
        "Image": {"Uri": job.image_uri, "Status": prepared.image_status},
        "Command": _command(prepared),
        "Environment": plan.environment if plan else dict(job.environment),
        "Instances": _instances(prepared),
        "Network": _network(prepared),
        "MaxRuntimeInSeconds": job.max_runtime_seconds,
        "InstancePlans": _instance_plans(plan) if plan else [],
        "Outputs": [
            {
                "OutputName": out.name,
                "LocalPath": out.local_path,
                "S3Uri": out.s3_uri,
                "S3UploadMode": out.upload_mode,
                "Uploaded": bool(out.s3_uri) and not out.app_managed,
            }
            for out in job.outputs
        ],
        "Problem": prepared.failure.reason if prepared.failure else None,
        "EstimatedCost": cost_estimate(
            job.instance_type, job.instance_count, job.max_runtime_seconds, prepared.region
        ),
        "Notes": prepared.notes,
    }


def _command(prepared: Preparation) -> dict[str, Any]:
    job, plan = prepared.job, prepared.plan
    known = prepared.image.present or bool(job.container_entrypoint)
    argv = list(plan.command.argv) if plan and known else None
    return {
        "ContainerEntrypoint": job.container_entrypoint,
        "ContainerArguments": job.container_arguments,
        "ImageEntrypoint": list(prepared.image.entrypoint or [])
        if prepared.image.present
        else None,
        "ImageCmd": list(prepared.image.cmd or []) if prepared.image.present else None,
        "Argv": argv,  # None: depends on the image's ENTRYPOINT/CMD, unknown until it is pulled
    }


def _instances(prepared: Preparation) -> dict[str, Any]:
    job, plan = prepared.job, prepared.plan
    limits = plan.limits if plan else None
    return {
        "Count": job.instance_count,
        "Type": job.instance_type,
        "Hosts": list(plan.hosts) if plan else [],
        "CpuLimit": limits.cpus if limits else None,
        "MemoryLimitBytes": limits.memory_bytes if limits else None,
        "Gpus": limits.gpus if limits else 0,
    }


def _network(prepared: Preparation) -> str:
    job = prepared.job
    if job.network_isolation:
        return "isolated: an internal network of the job's own, no route out"
    if job_network(job.name, job.instance_count, isolated=False) == DEFAULT_NETWORK:
        return "Docker's default bridge, with outbound access (a lone instance needs no other)"
    return "a bridge network of the job's own, with outbound access"


def _instance_plans(plan: JobPlan) -> list[dict[str, Any]]:
    return [
        {
            "Host": instance.host,
            "Inputs": [
                {
                    "InputName": item.name,
                    "LocalPath": item.local_path,
                    "Mode": item.mode,
                    "Gzip": item.gzip,
                    "Pipe": f"{item.local_path.rstrip('/')}/{item.fifo_name}"
                    if item.mode == "Pipe"
                    else None,
                    "ObjectCount": len(item.objects),
                    "Bytes": item.total_bytes,
                    "Objects": [
                        {"S3Uri": f"s3://{o.source.bucket}/{o.source.key}", "Path": o.relative_path}
                        for o in item.objects
                    ],
                }
                for item in instance.inputs
            ],
        }
        for instance in plan.instances
    ]
