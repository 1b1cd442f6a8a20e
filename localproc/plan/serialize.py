"""The one serializer of a JobPlan: what `plan --json` prints about the plan is this, and `run`
executes the same object. Nothing here decides a rule; it only writes the plan's values out."""

from __future__ import annotations

from typing import Any

from localproc.plan.model import ContainerPlan, InstanceInput, InstancePlan, JobPlan, NetworkPlan


def plan_json(plan: JobPlan) -> dict[str, Any]:
    """The plan's own keys of `plan --json` (the rest describe the host, the image and cost)."""
    return {
        "RunId": plan.run_id,
        "Labels": dict(plan.labels),
        "Argv": list(plan.command.argv) if plan.command_known else None,
        "Environment": dict(plan.environment),
        "Hosts": list(plan.hosts),
        "CpuLimit": plan.limits.cpus,
        "MemoryLimitBytes": plan.limits.memory_bytes,
        "Gpus": plan.limits.gpus,
        **network_json(plan.network),
        "MaxRuntimeInSeconds": plan.max_runtime_seconds,
        "InstancePlans": [instance_json(instance, plan) for instance in plan.instances],
    }


def network_json(network: NetworkPlan) -> dict[str, Any]:
    return {
        "Network": network.description,
        "NetworkName": network.name,
        "OwnNetwork": network.own,
        "NetworkIsolation": network.isolated,
    }


def instance_json(instance: InstancePlan, plan: JobPlan) -> dict[str, Any]:
    return {
        "Host": instance.host,
        "Inputs": [_input_json(item) for item in instance.inputs],
        **(_container_json(instance.container, plan) if instance.container else {}),
        "ConfigFiles": dict(instance.config_files),
        "Uploads": [
            {
                "OutputName": upload.output_name,
                "LocalPath": upload.local_path,
                "S3Uri": upload.s3_uri,
                "S3UploadMode": upload.mode,
            }
            for upload in instance.uploads
        ],
    }


def _input_json(item: InstanceInput) -> dict[str, Any]:
    return {
        "InputName": item.name,
        "LocalPath": item.local_path,
        "Mode": item.mode,
        "Gzip": item.gzip,
        "Pipe": item.pipe_path,
        "ObjectCount": len(item.objects),
        "Bytes": item.total_bytes,
        "Objects": [
            {"S3Uri": f"s3://{o.source.bucket}/{o.source.key}", "Path": o.relative_path}
            for o in item.objects
        ],
    }


def _container_json(container: ContainerPlan, plan: JobPlan) -> dict[str, Any]:
    known = plan.command_known
    return {
        "ContainerName": container.name,
        "Hostname": container.hostname,
        "Image": container.image,
        "Entrypoint": list(container.command.entrypoint) if known else None,
        "Cmd": list(container.command.command) if known else None,
        "ContainerEnvironment": dict(container.environment),
        "Mounts": [
            {
                "ContainerPath": m.container_path,
                "Holds": m.holds,
                "Name": m.name,
                "ReadOnly": m.read_only,
            }
            for m in container.mounts
        ],
        "Labels": dict(container.labels),
        "NetworkName": container.network.name,
        "NetworkIsolation": container.network.isolated,
        "CpuLimit": container.limits.cpus,
        "MemoryLimitBytes": container.limits.memory_bytes,
        "Gpus": container.limits.gpus,
        "PidsLimit": container.pids_limit,
        "CapDrop": list(container.cap_drop),
        "SecurityOpt": list(container.security_options),
    }
