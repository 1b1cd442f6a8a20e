"""Before a run: validate what only this host can tell, plan the job, claim and record it, then
hand it to the Runner (runner.py), whose steps take it to its end.

Everything a run could be rejected for (validation, name in use, no engine, no image, S3
unreachable) is checked before anything is created, so a rejected run leaves nothing behind.
Once the job is recorded, every problem ends it Failed or Stopped instead, with the reason.
"""

from __future__ import annotations

import contextlib
import os
import posixpath
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

import psutil

from localproc.errors import CannotRunHere, JobFailure
from localproc.execution.leftovers import collect_garbage
from localproc.execution.runner import Runner
from localproc.execution.settings import Notify, RunOutcome, RunSettings
from localproc.execution.stop import stop_on_signals
from localproc.liveness import RunnerIdentity
from localproc.plan import HostCapacity, ImageConfig, JobPlan, build_plan, job_arn
from localproc.plan.placement import cluster_limits
from localproc.records.store import JobRecord, JobStore

__all__ = ["Preparation", "RunOutcome", "RunSettings", "prepare", "prepare_request", "run_job"]
from localproc.payload.echo import service_echo
from localproc.payload.job import JobSpec, job_from_request
from localproc.payload.validate import prepare_request
from localproc.runtime import firewall
from localproc.runtime.engine import DockerEngine
from localproc.runtime.swarm import SwarmCluster
from localproc.storage import ObjectStore, open_store
from localproc.storage.credentials import configured_region, host_credentials_environment
from localproc.transfer.progress import TransferProgress
from localproc.transfer.staging import list_inputs

DEFAULT_REGION = "us-east-1"


def resolve_region(explicit: str | None) -> str:
    """--region, else the region boto3 would use (AWS_REGION, AWS_DEFAULT_REGION, the profile's
    in ~/.aws/config), else us-east-1. The environment is read first: it is free, while the
    profile needs botocore."""
    return (
        explicit
        or os.environ.get("AWS_REGION")
        or os.environ.get("AWS_DEFAULT_REGION")
        or configured_region()
        or DEFAULT_REGION
    )


def job_arn_for(request: dict[str, Any], settings: RunSettings) -> str:
    return job_arn(request["ProcessingJobName"], resolve_region(settings.region))


def unsupported_features(job: JobSpec) -> list[str]:
    """Features this version cannot execute yet; refused before anything starts (exit 4)."""
    problems = []
    for item in job.inputs:
        if item.dataset_definition is not None:
            problems.append(
                f"input '{item.name}': DatasetDefinition inputs (Athena/Redshift queries) need "
                "the AWS service to run the query; stage the query's result in S3 and use an "
                "S3Input instead"
            )
    problems += _shared_local_paths(job)
    return problems


def _shared_local_paths(job: JobSpec) -> list[str]:
    """The API lets an input and an output name the same LocalPath, but each is a folder of its
    own here (staged inputs, uploaded outputs), and Docker cannot mount two at one path."""
    inputs = {posixpath.normpath(item.s3.local_path): item.name for item in job.inputs if item.s3}
    mounted_outputs = [
        output for output in job.outputs if output.local_path and not output.app_managed
    ]
    return [
        f"input '{inputs[path]}' and output '{output.name}' share LocalPath {path}: give the "
        "output a LocalPath of its own (or copy the inputs there in the script)"
        for output in mounted_outputs
        if (path := posixpath.normpath(str(output.local_path))) in inputs
    ]


@dataclass
class Preparation:
    """Everything `run` decides before it creates anything, and all that `plan` shows: the two
    share this one code path, so what `plan` shows is what `run` does."""

    job: JobSpec
    region: str
    arn: str
    store: ObjectStore
    # None only for `plan` on a host where no engine answers; a SwarmCluster with --cluster swarm
    engine: DockerEngine | SwarmCluster | None
    image: ImageConfig
    image_status: str
    host: HostCapacity
    plan: JobPlan | None = None
    failure: JobFailure | None = None  # a problem that will fail the job (e.g. empty prefix)
    notes: list[str] = field(default_factory=list)
    credentials: dict[str, str] = field(default_factory=dict)  # --pass-aws-credentials


def prepare(request: dict[str, Any], settings: RunSettings, dry_run: bool = False) -> Preparation:
    """Validate what only this host can tell (engine, image, S3, the inputs) and plan the job.
    Reads only: no container, network, folder, record or S3 object is created. With `dry_run`,
    a missing engine or image is reported instead of refused, and nothing is pulled."""
    job = job_from_request(request)
    unsupported = unsupported_features(job)
    if unsupported:
        raise CannotRunHere("This version of localproc cannot run: " + "; ".join(unsupported) + ".")
    region = resolve_region(settings.region)
    arn = job_arn(job.name, region)
    records = JobStore(settings.state_dir)
    if records.exists(job.name) and not dry_run:
        records.claim(job.name, arn)  # raises ResourceInUse with the service's wording
    store = open_store(settings.s3_root, settings.s3_endpoint_url, region)
    engine, image, image_status = _engine_and_image(job.image_uri, dry_run, settings.cluster)
    host = measure_host(engine, settings.state_dir)
    preparation = Preparation(job, region, arn, store, engine, image, image_status, host)
    limits = None
    if isinstance(engine, SwarmCluster):
        limits = cluster_limits(
            job.instance_type, job.instance_count, [n.capacity for n in engine.nodes],
            enabled=settings.resource_limits,
        )  # fmt: skip
    try:
        preparation.plan = build_plan(
            job, list_inputs(job, store), image, region, host,
            resource_limits_enabled=settings.resource_limits,
            runner_label=RunnerIdentity.current().label(),
            limits=limits,
            overlay_network=isinstance(engine, SwarmCluster),
        )  # fmt: skip
    except JobFailure as failure:  # e.g. an empty prefix: the job exists, and fails
        preparation.failure = failure
    preparation.notes = _notes(job, preparation.plan)
    if isinstance(engine, SwarmCluster):
        preparation.notes.append(
            f"--cluster swarm: the instances are placed over {len(engine.nodes)} node(s) ("
            + ", ".join(n.name for n in engine.nodes)
            + "); inputs, config and outputs are copied through each node's engine (volumes)"
        )
    elif engine is not None and not engine.files_shared:
        preparation.notes.append(
            f"the Docker engine at {engine.endpoint.describe()} does not share this machine's "
            "folders: inputs, config and outputs are copied through the Engine API (volumes)"
        )
    if settings.pass_aws_credentials and not dry_run:
        preparation.credentials = host_credentials_environment()
    return preparation


def _engine_and_image(
    uri: str, dry_run: bool, cluster: str | None = None
) -> tuple[DockerEngine | SwarmCluster | None, ImageConfig, str]:
    unknown = ImageConfig(uri, entrypoint=None, cmd=None, present=False)
    if cluster == "swarm":
        return _cluster_and_image(uri, dry_run)
    try:
        engine = DockerEngine.connect()
    except CannotRunHere:
        if not dry_run:
            raise
        return None, unknown, "unknown: no Docker engine answers"
    if not dry_run:
        return engine, engine.image_config(uri), "present on this host"
    try:
        return engine, engine.image_config(uri, pull=False), "present on this host"
    except CannotRunHere:
        return engine, unknown, "not on this host: run would pull it"


def _cluster_and_image(uri: str, dry_run: bool) -> tuple[SwarmCluster | None, ImageConfig, str]:
    """The swarm and the image's configuration once every node has the image (each pulls it
    if it can; CannotRunHere naming the nodes that cannot). A dry run pulls nothing."""
    unknown = ImageConfig(uri, entrypoint=None, cmd=None, present=False)
    try:
        cluster = SwarmCluster.connect()
    except CannotRunHere as err:
        if not dry_run:
            raise
        return None, unknown, f"unknown: {err}"
    try:
        image = cluster.image_config(uri, pull=not dry_run)
    except CannotRunHere as err:
        if not dry_run:
            raise
        return cluster, unknown, f"not on every swarm node: {err}"
    return cluster, image, f"present on all {len(cluster.nodes)} swarm nodes"


def run_job(
    request: dict[str, Any],
    settings: RunSettings,
    log_stream: TextIO | None,
    notify: Notify,
    colour: bool = False,
    handle_signals: bool = False,
    progress: TransferProgress | None = None,
) -> RunOutcome:
    """Run a validated request to its end. With `handle_signals`, SIGINT and SIGTERM stop the
    job (Stopping → Stopped) instead of killing this process; a second SIGINT kills the
    containers at once."""
    prepared = prepare(request, settings)
    job, engine = prepared.job, prepared.engine
    assert engine is not None
    records = JobStore(settings.state_dir)
    # Leftovers of runs that died (killed, crashed, rebooted) are cleaned before this one starts.
    collect_garbage(records, engine)
    for note in prepared.notes:
        notify(note)

    records.claim(job.name, prepared.arn, token=settings.claim_token)
    runner = Runner(
        job, prepared.plan, settings, prepared.store, engine, records, records.folder(job.name),
        notify, progress,
        prepared.credentials,
    )  # fmt: skip
    # The handlers go in before the record exists: `stop` (or StopProcessingJob) may come the
    # moment it does, and must stop the job rather than kill this process.
    with stop_on_signals(runner.stop) if handle_signals else contextlib.nullcontext():
        _record_or_give_up(records, job, prepared.arn, settings)
        return runner.execute(prepared.failure, log_stream, colour)


def _record_or_give_up(records: JobStore, job: JobSpec, arn: str, settings: RunSettings) -> None:
    """Write the job's first record; a state dir that cannot take it (a full disk) means the
    job cannot run here: the claim is given up, nothing else was made."""
    try:
        records.create_record(job.name, _initial_record(job, arn, settings))
    except OSError as err:
        records.release_claim(job.name, records.claim_token(job.name))
        raise CannotRunHere(
            f"Cannot record processing job {job.name} in {settings.state_dir}: "
            f"{err.strerror or err}. Free some space there (`localproc delete` of old jobs, "
            "`localproc gc`) or use another --state-dir."
        ) from None


def measure_host(engine: DockerEngine | SwarmCluster | None, state_dir: Path) -> HostCapacity:
    where = state_dir
    while not where.exists():  # the state dir may not exist yet: measure the disk it will be on
        where = where.parent
    # A remote engine's containers get its machine's CPUs and memory; the inputs are staged
    # here first, so the disk that counts is still this one's.
    remote = engine.remote_machine_size() if engine is not None else None
    cpus, memory = remote or (psutil.cpu_count() or 1, psutil.virtual_memory().total)
    return HostCapacity(
        cpus=cpus,
        memory_bytes=memory,
        free_disk_bytes=shutil.disk_usage(where).free,
        has_nvidia_runtime=engine is not None and engine.has_nvidia_runtime(),
    )


def _notes(job: JobSpec, plan: JobPlan | None) -> list[str]:
    """One line for each setting that is emulated only in part, or adapted to this host."""
    notes = list(plan.limits.notes) if plan else []
    if job.vpc_config:
        notes.append(
            "VpcConfig is accepted but not emulated: the containers use "
            + ("a network of their own" if job.network_isolation else "a local bridge network")
            + ", not your subnets and security groups."
        )
    if job.inter_container_encryption:
        notes.append(
            "EnableInterContainerTrafficEncryption is accepted but not emulated: traffic between "
            "instances stays on this host's bridge, unencrypted."
        )
    for output in job.outputs:
        if output.app_managed or output.feature_store is not None:
            kind = "FeatureStoreOutput" if output.feature_store is not None else "AppManaged"
            notes.append(
                f"output '{output.name}' is {kind}: the application manages it, so localproc "
                "uploads nothing for it."
            )
    if job.network_isolation and not firewall.can_isolate_host():
        notes.append(
            "EnableNetworkIsolation: the containers cannot reach the internet or other "
            "containers, but localproc needs root and iptables to also shut them off from this "
            "host's own services, and has neither here."
        )
    return notes


def _initial_record(job: JobSpec, arn: str, settings: RunSettings) -> JobRecord:
    return JobRecord.new(
        service_echo(job.request), arn, RunnerIdentity.current(), settings.keep_staging
    )
