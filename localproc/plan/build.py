"""Pure planning: a job, the input listings and the image's configuration become the exact plan
that `run` executes: which objects each instance gets, every container as the engine creates it
(name, command, environment, mounts by what they hold, config files, labels, network, limits,
hardening), the deadline and what is uploaded where. No I/O happens here, so a plan can be
printed, compared and unit-tested."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import Any

from localproc.catalog.instance_types import instance_type
from localproc.payload.echo import service_echo
from localproc.payload.job import InputSpec, JobSpec, OutputSpec
from localproc.plan.inputs import check_disk_space, plan_input_objects, shard
from localproc.plan.limits import resource_limits
from localproc.plan.model import (
    ContainerCommand,
    ContainerPlan,
    HostCapacity,
    ImageConfig,
    InputListing,
    InstanceInput,
    InstancePlan,
    JobPlan,
    MountPlan,
    NetworkPlan,
    ResourceLimits,
    StagedObject,
    UploadPlan,
)
from localproc.plan.naming import (
    CONFIG_DIR,
    DROPPED_CAPABILITIES,
    JOB_LABEL,
    JOB_OUTPUT_DIR,
    RUN_LABEL,
    RUNNER_LABEL,
    SECURITY_OPTIONS,
    container_name,
    job_network,
    new_run_id,
    pids_limit,
)

DEFAULT_ACCOUNT = "000000000000"
RESOURCE_CONFIG = "resourceconfig.json"
PROCESSING_JOB_CONFIG = "processingjobconfig.json"
EOJ = "EndOfJob"


def job_arn(name: str, region: str, account: str | None = None) -> str:
    return f"arn:aws:sagemaker:{region}:{account or DEFAULT_ACCOUNT}:processing-job/{name}"


def resolve_command(
    image: ImageConfig, entrypoint: Sequence[str] | None, arguments: Sequence[str] | None
) -> ContainerCommand:
    """SageMaker's rules: ContainerEntrypoint replaces ENTRYPOINT and drops CMD; ContainerArguments
    replace CMD, so alone they are appended to the image's ENTRYPOINT."""
    if entrypoint:
        return ContainerCommand(tuple(entrypoint), tuple(arguments or ()))
    image_entrypoint = image.entrypoint or ()
    if arguments:
        return ContainerCommand(image_entrypoint, tuple(arguments))
    return ContainerCommand(image_entrypoint, image.cmd or ())


def network_plan(job: JobSpec, run_id: str = "") -> NetworkPlan:
    """The network a job's containers join (see `job_network`)."""
    name = job_network(job.name, job.instance_count, job.network_isolation, run_id=run_id)
    return NetworkPlan(name, job.network_isolation)


def uploaded_outputs(job: JobSpec) -> tuple[OutputSpec, ...]:
    """The outputs a run uploads: those with an S3Uri that the application does not manage."""
    return tuple(out for out in job.outputs if out.s3_uri and not out.app_managed)


def config_text(data: Mapping[str, Any]) -> str:
    """A config file's exact contents, as the container reads it."""
    return json.dumps(data, indent=2)


def build_plan(
    job: JobSpec,
    listings: Mapping[str, InputListing],
    image: ImageConfig,
    region: str,
    host: HostCapacity,
    account: str | None = None,
    resource_limits_enabled: bool = True,
    *,
    run_id: str | None = None,
    runner_label: str = "",
    limits: ResourceLimits | None = None,
    overlay_network: bool = False,
) -> JobPlan:
    """`listings` maps each S3 input's name to its objects (see `InputListing`). `run_id` names
    every engine object of the run (a new one when not given); `runner_label` identifies the
    process that will run it (for `gc`). `limits`: the containers' limits when they are not
    this host's to decide (a cluster's, `placement.cluster_limits`); `overlay_network`: the
    job's network is a Swarm overlay."""
    run_id = run_id if run_id is not None else new_run_id()
    arn = job_arn(job.name, region, account)
    hosts = tuple(f"algo-{i}" for i in range(1, job.instance_count + 1))
    per_input = {
        item.name: plan_input_objects(item, listings[item.name])
        for item in job.inputs
        if item.s3 is not None
    }
    assigned = [
        tuple(
            _instance_input(item, per_input[item.name], index, len(hosts))
            for item in job.inputs
            if item.s3 is not None
        )
        for index in range(len(hosts))
    ]
    check_disk_space(
        [InstancePlan(h, inputs, {}) for h, inputs in zip(hosts, assigned, strict=True)], job, host
    )
    environment = dict(job.environment)
    environment.setdefault("AWS_REGION", region)
    plan = JobPlan(
        job=job,
        arn=arn,
        region=region,
        command=resolve_command(image, job.container_entrypoint, job.container_arguments),
        environment=environment,
        hosts=hosts,
        instances=(),
        processing_job_config={"ProcessingJobArn": arn, **service_echo(job.request)},
        outputs=uploaded_outputs(job),
        limits=limits
        or resource_limits(
            job.instance_type, job.instance_count, host, enabled=resource_limits_enabled
        ),
        run_id=run_id,
        labels={JOB_LABEL: job.name, RUN_LABEL: run_id, RUNNER_LABEL: runner_label},
        network=replace(network_plan(job, run_id), overlay=overlay_network),
        max_runtime_seconds=job.max_runtime_seconds,
        command_known=image.present or bool(job.container_entrypoint),
    )
    instances = tuple(
        _instance_plan(plan, hostname, inputs)
        for hostname, inputs in zip(hosts, assigned, strict=True)
    )
    return replace(plan, instances=instances)


def _instance_plan(plan: JobPlan, host: str, inputs: tuple[InstanceInput, ...]) -> InstancePlan:
    job = plan.job
    resource_config = {
        "current_host": host,
        "hosts": list(plan.hosts),
        "current_instance_type": job.instance_type,
        "network_interface_name": "eth0",
    }
    return InstancePlan(
        host=host,
        inputs=inputs,
        resource_config=resource_config,
        container=_container(plan, host, inputs, plan.limits),
        config_files={
            RESOURCE_CONFIG: config_text(resource_config),
            PROCESSING_JOB_CONFIG: config_text(plan.processing_job_config),
        },
        uploads=tuple(
            UploadPlan(out.name, str(out.local_path), str(out.s3_uri), out.upload_mode or EOJ)
            for out in plan.outputs
        ),
    )


def _container(
    plan: JobPlan, host: str, inputs: Sequence[InstanceInput], limits: ResourceLimits
) -> ContainerPlan:
    job = plan.job
    mounts = [
        MountPlan(CONFIG_DIR, "config", read_only=True),
        MountPlan(JOB_OUTPUT_DIR, "job-output"),
    ]
    mounts += [
        MountPlan(item.local_path, "pipe" if item.mode == "Pipe" else "input", item.name)
        for item in inputs
    ]
    mounts += [MountPlan(str(out.local_path), "output", out.name) for out in plan.outputs]
    return ContainerPlan(
        name=container_name(job.name, plan.run_id, host),
        hostname=host,
        image=job.image_uri,
        command=plan.command,
        environment=plan.environment,
        mounts=tuple(mounts),
        labels=plan.labels,
        network=plan.network,
        limits=limits,
        pids_limit=pids_limit(instance_type(job.instance_type).vcpus),
        cap_drop=DROPPED_CAPABILITIES,
        security_options=SECURITY_OPTIONS,
    )


def _instance_input(
    item: InputSpec, objects: Sequence[StagedObject], index: int, count: int
) -> InstanceInput:
    assert item.s3 is not None
    chosen = (
        shard(objects, index, count) if item.s3.distribution == "ShardedByS3Key" else tuple(objects)
    )
    return InstanceInput(
        item.name,
        item.s3.local_path,
        chosen,
        mode=item.s3.input_mode,
        gzip=item.s3.compression == "Gzip",
    )
