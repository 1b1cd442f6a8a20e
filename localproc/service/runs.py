"""The use cases of a run, as both front doors call them: validate a payload, plan it, run it
here to its end, and reproduce a real job's request. (Starting one in the background is
detach.py's.) Errors are LocalprocErrors for the front door to show; nothing here prints."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TextIO

from localproc.payload.reproduce import ResourceOverrides

if TYPE_CHECKING:
    from collections.abc import Callable

    from localproc.execution.prepare import RunOutcome, RunSettings


def load_request(payload: str, stdin: TextIO, name: str | None = None) -> dict[str, Any]:
    """`validate`: the payload file (or `-`: stdin) as a validated CreateProcessingJob request,
    renamed to `name` if given; ValidationException (and the like) otherwise."""
    from localproc.payload.load import load_payload

    return validated_request(load_payload(payload, stdin), name)


def validated_request(body: dict[str, Any], name: str | None = None) -> dict[str, Any]:
    """A Create request (or Describe response) as sent, validated as CreateProcessingJob."""
    from localproc.payload.validate import prepare_request

    return prepare_request(body, name)


def plan(request: dict[str, Any], settings: RunSettings) -> dict[str, Any]:
    """`plan`: what `run` would do, as `plan --json` prints it. Starts and writes nothing."""
    from localproc.execution.plan_document import plan_document
    from localproc.execution.prepare import prepare

    return plan_document(prepare(request, settings, dry_run=True))


@dataclass(frozen=True)
class Reproduction:
    """A real job's request, ready to run here, and where its description came from."""

    request: dict[str, Any]
    source: str  # the endpoint, or "SageMaker in REGION"


def reproduction(
    job_name: str,
    endpoint_url: str | None,
    overrides: ResourceOverrides,
    region: str | None,
    name: str | None = None,
) -> Reproduction:
    """`reproduce`: DescribeProcessingJob of `job_name` on SageMaker (or `endpoint_url`) made
    into a validated request, with `overrides` applied and renamed to `name` if given."""
    from localproc.execution.prepare import resolve_region
    from localproc.payload.reproduce import request_from_description
    from localproc.sagemaker_api import describe_remote_job

    where = endpoint_url or f"SageMaker in {resolve_region(region)}"
    described = describe_remote_job(job_name, resolve_region(region), endpoint_url)
    request = validated_request(request_from_description(described, overrides, where), name)
    return Reproduction(request, where)


def run_here(
    request: dict[str, Any],
    settings: RunSettings,
    log_stream: TextIO,
    notify: Callable[[str], None],
    colour: bool,
    progress_stream: TextIO,
    show_progress: bool,
) -> RunOutcome:
    """`run`: run the request in this process to its end; SIGINT and SIGTERM stop the job.
    The containers' lines go to `log_stream`, localproc's notes to `notify`, transfer progress
    to `progress_stream` (when it is a terminal and `show_progress`)."""
    from localproc.execution.prepare import run_job
    from localproc.transfer.progress import TransferProgress

    shown = TransferProgress(progress_stream, enabled=show_progress)
    return run_job(
        request, settings, log_stream, notify, colour=colour, handle_signals=True,
        progress=shown,
    )  # fmt: skip


def described_record(settings: RunSettings, name: str) -> dict[str, Any]:
    """The recorded job in DescribeProcessingJob's shape, as `run --json` prints it."""
    from localproc.records.store import JobStore

    return dict(JobStore(settings.state_dir).load_record(name).members)
