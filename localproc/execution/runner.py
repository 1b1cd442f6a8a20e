"""One recorded job driven from staging to its final status: the containers, the pipes, the
deadline and stop requests, the uploads, the record — and the cleanup, whatever happens."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import stat
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

from localproc.catalog.instance_types import instance_type, smallest_fitting
from localproc.errors import ExitStatus, JobFailure, LocalprocError, algorithm_error
from localproc.execution.leftovers import SCRATCH_DIR
from localproc.files import remove_tree
from localproc.liveness import process_identity, runner_label
from localproc.payload.job import JobSpec
from localproc.plan import JobPlan
from localproc.records.store import (
    PRIVATE_KEY,
    IllegalTransition,
    JobStore,
    now,
    timestamp,
)
from localproc.runtime import JOB_LABEL, RUN_LABEL, RUNNER_LABEL
from localproc.runtime.cluster import DEADLINE_REASON, ClusterRun, InstanceResult
from localproc.runtime.engine import (
    DEFAULT_NETWORK,
    ContainerSpec,
    DockerEngine,
    EngineError,
    Mount,
    container_name,
    job_network,
    new_run_id,
    pids_limit,
)
from localproc.runtime.logs import LogSink
from localproc.storage import ObjectStore
from localproc.transfer.cache import DEFAULT_CAP_BYTES, InputCache
from localproc.transfer.continuous import ContinuousTarget, ContinuousUploader
from localproc.transfer.disarm import describe as describe_disarmed
from localproc.transfer.disarm import disarm_tree
from localproc.transfer.pipe import PipeFeeder
from localproc.transfer.progress import TransferProgress
from localproc.transfer.staging import (
    instance_input_mounts,
    stage_inputs,
    start_pipe_feeders,
)
from localproc.transfer.upload import UploadReport, upload_outputs

EXIT_MESSAGE_LIMIT = 1024
FAILURE_REASON_LIMIT = 1024  # the API's own cap on the field
Notify = Callable[[str], None]


@dataclass(frozen=True)
class RunSettings:
    state_dir: Path
    s3_root: Path | None = None
    s3_endpoint_url: str | None = None
    region: str | None = None
    keep_staging: bool = False
    stop_grace_seconds: float = 10.0
    resource_limits: bool = True
    use_cache: bool = True
    cache_cap_bytes: int = DEFAULT_CAP_BYTES
    pass_aws_credentials: bool = False
    # A claim of the job's name made for this run by the process that started it in the
    # background (`run --detach`, `serve`), which answered its caller only after claiming.
    claim_token: str | None = None


@dataclass
class RunOutcome:
    name: str
    arn: str
    status: str
    job_dir: Path
    failure_reason: str | None = None
    exit_message: str | None = None
    seconds: float = 0.0
    uploads: UploadReport = field(default_factory=UploadReport)
    usage: list[str] = field(default_factory=list)  # one line per instance: peak memory, CPU

    @property
    def exit_status(self) -> ExitStatus:
        return {
            "Completed": ExitStatus.COMPLETED,
            "Stopped": ExitStatus.STOPPED,
        }.get(self.status, ExitStatus.FAILED)


@contextlib.contextmanager
def stop_on_signals(runner: Runner) -> Iterator[None]:
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    interrupts = 0

    def on_interrupt(signum: int, _frame: Any) -> None:
        nonlocal interrupts
        interrupts += 1
        runner.request_stop("interrupted (Ctrl-C)", immediately=interrupts > 1)

    def on_terminate(signum: int, _frame: Any) -> None:
        runner.request_stop("stop requested")

    previous = {
        signal.SIGINT: signal.signal(signal.SIGINT, on_interrupt),
        signal.SIGTERM: signal.signal(signal.SIGTERM, on_terminate),
    }
    try:
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)


class Runner:
    """Drives one recorded job from staging to its final status; owns its cleanup."""

    def __init__(
        self,
        job: JobSpec,
        plan: JobPlan | None,
        settings: RunSettings,
        store: ObjectStore,
        engine: DockerEngine,
        records: JobStore,
        job_dir: Path,
        notify: Notify,
        progress: TransferProgress | None = None,
        credentials: dict[str, str] | None = None,
    ) -> None:
        self.job = job
        self.plan = plan
        self.settings = settings
        self.store = store
        self.engine = engine
        self.records = records
        self.job_dir = job_dir
        self.notify = notify
        self.staging_root = job_dir / "staging"
        self.started = time.monotonic()
        self.cluster: ClusterRun | None = None
        self.feeders: list[PipeFeeder] = []
        self.continuous: ContinuousUploader | None = None
        self._removal: threading.Thread | None = None
        # Kept out of the plan, so that neither `plan` nor processingjobconfig.json shows them.
        self.credentials = dict(credentials or {})
        self.continuous_report = UploadReport()
        self.progress = progress or TransferProgress(sys.stderr, enabled=False)
        self.stop_reason: str | None = None
        self.kill_now = False
        # Every engine object of this run carries its run id, in its name and in a label, and
        # only that label is used to remove them: no other run can collide with them or remove
        # them, whatever its state dir or job name. The job label names the job (for people
        # and tests); the runner label lets `gc` judge leftovers of a dead runner.
        self.run_id = plan.run_id if plan is not None else new_run_id()
        self.labels = (
            dict(plan.labels)
            if plan is not None
            else {
                JOB_LABEL: job.name,
                RUN_LABEL: self.run_id,
                RUNNER_LABEL: runner_label(process_identity()),
            }
        )
        self.network = (
            plan.network.name
            if plan is not None
            else job_network(job.name, job.instance_count, job.network_isolation, self.run_id)
        )
        self.peers: dict[str, str] = {}  # algo-i → fixed address on the job's network

    def request_stop(self, reason: str, immediately: bool = False) -> None:
        """Called from a signal handler: only sets fields that the run acts on."""
        if self.stop_reason is None:
            self.stop_reason = reason
        self.kill_now = self.kill_now or immediately
        if self.cluster is not None:
            self.cluster.request_stop(reason, immediately)

    def execute(
        self, planning_failure: JobFailure | None, log_stream: TextIO | None, colour: bool
    ) -> RunOutcome:
        arn = self.records.load(self.job.name)["ProcessingJobArn"]
        outcome = RunOutcome(self.job.name, arn, "InProgress", self.job_dir)
        try:
            if planning_failure is not None:
                raise planning_failure
            assert self.plan is not None
            results = self._run_containers(self.plan, log_stream, colour)
            outcome.status, outcome.failure_reason = _judge(results, self.plan)
            # A stream cut short by a missing object is the likely cause of any failure.
            pipe_failure = self._stop_feeders()
            if pipe_failure is not None:
                outcome.status, outcome.failure_reason = "Failed", pipe_failure.reason
            outcome.usage = self._record_usage(results)
            outcome.exit_message = self._exit_message(self.plan)
        except JobFailure as failure:
            outcome.status, outcome.failure_reason = "Failed", failure.reason
        except (EngineError, OSError, LocalprocError) as err:
            # Docker, this host's filesystem or S3 failed us, not the job: the service's wording.
            # Whatever it was, the recorded job ends with a status and a reason.
            outcome.status, outcome.failure_reason = "Failed", f"InternalServerError: {err}"
        finally:
            self._clean_up()
        if self.stop_reason is not None:
            self._mark_stopping()
        if self.plan is not None and self.plan.outputs:
            outcome.uploads = self._upload(self.plan)
        # A stop may also come while the outputs upload: it counts as much as an earlier one.
        stopped = self.stop_reason is not None
        outcome.status, outcome.failure_reason = settle_outcome(
            outcome.status, outcome.failure_reason,
            self._stopped_reason() if stopped else None, stopped, outcome.uploads,
        )  # fmt: skip
        if stopped:
            self._mark_stopping()  # the stop came during the uploads: Stopping before Stopped
        self._await_removal()
        self._disarm()
        outcome.seconds = time.monotonic() - self.started
        self._finish(outcome)
        return outcome

    # -- steps ---------------------------------------------------------------------------------
    def _run_containers(
        self, plan: JobPlan, log_stream: TextIO | None, colour: bool
    ) -> list[InstanceResult]:
        self._stage(plan)
        if self.stop_reason is not None:
            return []  # stopped while staging: no container is started
        if self.network != DEFAULT_NETWORK:  # first: the containers need their addresses
            self.peers = self.engine.create_network(
                self.network, self.run_id, self.labels,
                [instance.host for instance in plan.instances], self.job.network_isolation,
            )  # fmt: skip
        specs = [self._container_spec(plan, index) for index in range(len(plan.instances))]
        self.feeders = start_pipe_feeders(plan, self.store, self.staging_root)
        self._start_continuous_uploads(plan)
        sink = LogSink(log_stream, self.job_dir / "logs", colour=colour)
        cluster = ClusterRun(
            self.engine, specs, sink, self.settings.stop_grace_seconds,
            on_stopping=self._mark_stopping,
        )  # fmt: skip
        cluster.create()
        self.cluster = cluster
        if self.stop_reason is not None:
            cluster.request_stop(self.stop_reason, self.kill_now)
        self.records.update(self.job.name, {"ProcessingStartTime": timestamp(now())})
        self.notify(
            f"starting {len(specs)} container(s) of {self.job.image_uri}: "
            + " ".join(plan.command.argv)
        )
        # MaxRuntimeInSeconds counts from the moment the containers start.
        limit = self.job.max_runtime_seconds
        deadline = time.monotonic() + limit if limit else None
        results = cluster.run(deadline=deadline)
        if cluster.stop_reason is not None and self.stop_reason is None:
            self.stop_reason = cluster.stop_reason
        return results

    def _stage(self, plan: JobPlan) -> None:
        unique = {
            (o.source.bucket, o.source.key): o.source.size
            for instance in plan.instances
            for item in instance.inputs
            if item.mode == "File"
            for o in item.objects
        }
        if unique:
            self.notify(f"staging {len(unique)} input object(s) from {self.store.describe()}")
        cache = (
            InputCache(self.settings.state_dir / "cache", self.settings.cache_cap_bytes)
            if self.settings.use_cache
            else None
        )
        with self.progress.phase("staging inputs", len(unique), sum(unique.values())) as phase:
            stage_inputs(
                plan, self.store, self.staging_root, cache,
                on_object=lambda staged: phase.advance(1, staged.source.size),
                cancelled=lambda: self.stop_reason is not None,
            )  # fmt: skip

    def _start_continuous_uploads(self, plan: JobPlan) -> None:
        """Continuous outputs are watched from before the containers start until they end."""
        targets = [
            ContinuousTarget(instance.host, output, self._output_dir(instance.host, output.name))
            for instance in plan.instances
            for output in plan.outputs
            if output.upload_mode == "Continuous"
        ]
        if not targets:
            return
        self.continuous = ContinuousUploader(
            targets,
            self.store,
            self.job.output_kms_key_id,
            warn=lambda message: self.notify(f"warning: {message}"),
            scratch_dir=_private_dir(self.job_dir / SCRATCH_DIR),
        )
        self.continuous.start()

    def _finish_continuous_uploads(self) -> None:
        """Final pass: the S3 prefix ends up matching each folder's final content."""
        if self.continuous is not None:
            uploader, self.continuous = self.continuous, None
            self.continuous_report = uploader.finish()

    def _output_dir(self, host: str, output_name: str) -> Path:
        return self.job_dir / host / "outputs" / output_name

    def _container_spec(self, plan: JobPlan, index: int) -> ContainerSpec:
        instance = plan.instances[index]
        host_dir = self.job_dir / instance.host
        config_dir = host_dir / "config"
        config_dir.mkdir(parents=True, exist_ok=True)
        _write_json(config_dir / "resourceconfig.json", instance.resource_config)
        _write_json(config_dir / "processingjobconfig.json", plan.processing_job_config)
        mounts = [Mount(str(config_dir), "/opt/ml/config", read_only=True)]
        mounts.append(Mount(str(_writable(host_dir / "output")), "/opt/ml/output"))
        for folder, local_path in instance_input_mounts(self.staging_root, instance):
            mounts.append(Mount(str(folder), local_path))
        for output in plan.outputs:
            folder = _writable(self._output_dir(instance.host, output.name))
            mounts.append(Mount(str(folder), str(output.local_path)))
        return ContainerSpec(
            name=container_name(self.job.name, self.run_id, instance.host),
            image=self.job.image_uri,
            entrypoint=plan.command.entrypoint,
            command=plan.command.command,
            environment={**plan.environment, **self.credentials},
            hostname=instance.host,
            network=self.network,
            mounts=mounts,
            labels=self.labels,
            cpus=plan.limits.cpus,
            memory_bytes=plan.limits.memory_bytes,
            gpus=plan.limits.gpus,
            isolated=self.job.network_isolation,
            pids_limit=pids_limit(instance_type(self.job.instance_type).vcpus),
            ipv4_address=self.peers.get(instance.host),
            peers=self.peers,
        )

    def _record_usage(self, results: list[InstanceResult]) -> list[str]:
        """Each instance's peak memory and CPU time, and the smallest instance type of the same
        family that would have held that peak: local runs are how people size instances."""
        lines, usage = [], {}
        family = instance_type(self.job.instance_type).family
        for result in results:
            if result.peak_memory_bytes is None:
                lines.append(f"{result.host}: ended before its memory could be sampled")
                continue
            usage[result.host] = {
                "PeakMemoryBytes": result.peak_memory_bytes,
                "CpuSeconds": result.cpu_seconds,
            }
            fitting = smallest_fitting(family, result.peak_memory_bytes)
            advice = (
                f"smallest {family} that holds it: {fitting.name}"
                if fitting
                else f"no {family} type holds it"
            )
            lines.append(
                f"{result.host}: peak memory {result.peak_memory_bytes / 2**20:.0f} MiB, "
                f"CPU {result.cpu_seconds or 0:.1f} s; {advice}"
            )
        if usage:
            record = self.records.load(self.job.name)
            # The lines too, so that `describe` can give the same sizing advice later.
            private = {**record.get(PRIVATE_KEY, {}), "InstanceUsage": usage, "UsageLines": lines}
            self.records.update(self.job.name, {PRIVATE_KEY: private})
        return lines

    def _exit_message(self, plan: JobPlan) -> str | None:
        parts = []
        for instance in plan.instances:
            text = _read_no_follow(self.job_dir / instance.host / "output" / "message")
            if text:
                parts.append(text)
        return "".join(parts)[:EXIT_MESSAGE_LIMIT] or None

    def _upload(self, plan: JobPlan) -> UploadReport:
        """EndOfJob outputs now, joined with what the Continuous outputs' final pass did."""
        end_of_job = [out for out in plan.outputs if out.upload_mode != "Continuous"]
        folders = {
            (instance.host, output.name): self._output_dir(instance.host, output.name)
            for instance in plan.instances
            for output in end_of_job
        }
        with self.progress.phase("uploading outputs", None, None) as phase:
            report = upload_outputs(
                end_of_job, folders, self.store, self.job.output_kms_key_id,
                on_upload=lambda task: phase.advance(1, task.bytes),
                abandoned=lambda: self.kill_now,  # a second Ctrl-C: give up at once
            )  # fmt: skip
        for skipped in report.skipped:
            self.notify(f"warning: not uploaded (not a regular file): {skipped}")
        report.merge(self.continuous_report)
        for collision in report.collisions:
            self.notify(f"warning: {collision}")
        # Every one, here: FailureReason names only the first few.
        for failure in report.failures:
            self.notify(f"warning: output not uploaded: {failure}")
        if report.abandoned:
            self.notify(
                f"warning: uploads abandoned (Ctrl-C twice): {len(report.abandoned)} output "
                "object(s) not uploaded: " + ", ".join(report.abandoned)
            )
        return report

    def _stopped_reason(self) -> str | None:
        """The FailureReason of a stopped job: the service gives none for a stop that was asked
        for (it did not fail); running out of MaxRuntimeInSeconds names the limit."""
        if self.stop_reason == DEADLINE_REASON:
            return (
                "MaxRuntimeExceeded: the job ran for its StoppingCondition.MaxRuntimeInSeconds "
                f"({self.job.max_runtime_seconds} s) and was stopped."
            )
        return None

    def _mark_stopping(self) -> None:
        """`describe` shows Stopping from the moment a stop begins, as the service does."""
        # `localproc stop` may set it between the load and the update: then it is already so.
        with contextlib.suppress(IllegalTransition):
            if self.records.load(self.job.name)["ProcessingJobStatus"] == "InProgress":
                self.records.update(self.job.name, {"ProcessingJobStatus": "Stopping"})

    def _finish(self, outcome: RunOutcome) -> None:
        current = self.records.load(self.job.name)["ProcessingJobStatus"]
        if current == "Stopping" and outcome.status != "Stopped":
            # `localproc stop` came in as the job ended by itself: the service reports Stopped.
            outcome.status = "Stopped"
        outcome.failure_reason = _capped(outcome.failure_reason, FAILURE_REASON_LIMIT)
        self.records.update(
            self.job.name,
            {
                "ProcessingJobStatus": outcome.status,
                "ProcessingEndTime": timestamp(now()),
                "FailureReason": outcome.failure_reason,
                "ExitMessage": outcome.exit_message,
            },
        )

    def _stop_feeders(self) -> JobFailure | None:
        for feeder in self.feeders:
            feeder.stop()
        errors = [feeder.error() for feeder in self.feeders]
        self.feeders = []
        return next((error for error in errors if error is not None), None)

    def _clean_up(self) -> None:
        """Every step runs even when one before it fails. The containers and network are removed
        in a thread of their own (not a daemon: the process cannot end before it has), so the
        outputs upload meanwhile; `_await_removal` joins it."""
        try:
            self._stop_feeders()
        finally:
            self._removal = threading.Thread(target=self._remove_resources, name="removal")
            self._removal.start()
            try:
                self._finish_continuous_uploads()
            finally:
                # Snapshots of Continuous outputs wait in scratch/ only until uploaded.
                remove_tree(self.job_dir / SCRATCH_DIR)
                if not self.settings.keep_staging:
                    remove_tree(self.staging_root)

    def _remove_resources(self) -> None:
        try:
            self.engine.remove_run_resources(self.run_id)
        except EngineError as err:
            self.notify(f"warning: {err}; `localproc gc` removes what is left")

    def _disarm(self) -> None:
        """The containers are gone: nothing they left in the job's folder keeps a setuid bit
        or is a device node."""
        for line in describe_disarmed(disarm_tree(self.job_dir), self.job_dir):
            self.notify(line)

    def _await_removal(self) -> None:
        if self._removal is not None:
            self._removal.join()


def settle_outcome(
    status: str,
    reason: str | None,
    stopped_reason: str | None,
    stopped: bool,
    uploads: UploadReport,
) -> tuple[str, str | None]:
    """The final status and FailureReason from the containers' verdict (`status`, `reason`),
    whether a stop came at any time before the end, and how the uploads went."""
    if stopped:
        return "Stopped", stopped_reason
    if uploads.failures and status == "Completed":
        return "Failed", "ClientError: Failed to upload output " + uploads.failure_summary()
    return status, reason  # a failed job's own reason stands; the uploads were warned about


def _capped(text: str | None, limit: int) -> str | None:
    if text is None or len(text) <= limit:
        return text
    return text[: limit - 1] + "…"


def _judge(results: list[InstanceResult], plan: JobPlan) -> tuple[str, str | None]:
    """Completed when every instance exits 0; otherwise the first instance that failed by itself
    (not one we stopped because of it) names the reason."""
    failed = [r for r in results if r.exit_code != 0]
    if not failed:
        return "Completed", None
    culprit = next((r for r in failed if not r.stopped_by_us), failed[0])
    if culprit.oom_killed:
        limit = plan.limits.memory_bytes
        limit_text = f"its memory limit of {limit / 2**20:.0f} MiB" if limit else "memory"
        return "Failed", algorithm_error(
            f"{culprit.host} ran out of memory: it used all of {limit_text} "
            f"({plan.job.instance_type}) and was killed (exit code {culprit.exit_code})."
        ).reason
    return "Failed", algorithm_error(
        f"{culprit.host} exited with code {culprit.exit_code}. See the job's logs for more "
        "information."
    ).reason


def _private_dir(path: Path) -> Path:
    # Snapshots of output files wait here before upload: outside every folder a container sees.
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    return path


def _writable(path: Path) -> Path:
    # Containers may run as any user; the folders they write into must let them.
    path.mkdir(parents=True, exist_ok=True)
    os.chmod(path, 0o777)
    return path


def _write_json(path: Path, data: dict[str, Any]) -> None:
    path.write_text(json.dumps(data, indent=2), encoding="utf-8")


def _read_no_follow(path: Path) -> str | None:
    """Read a file the container wrote without following a symlink it may have planted there."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except OSError:
        return None
    with os.fdopen(fd, "rb") as handle:
        if not stat.S_ISREG(os.fstat(handle.fileno()).st_mode):
            return None
        return handle.read(EXIT_MESSAGE_LIMIT * 4).decode("utf-8", errors="replace")
