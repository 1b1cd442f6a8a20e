"""The names and ARNs the service gives pipelines, their executions and their steps' jobs."""

from __future__ import annotations

import re
import secrets
import string

DEFAULT_ACCOUNT = "000000000000"
JOB_NAME_MAX = 63
_ALPHANUMERIC = string.ascii_lowercase + string.digits
_EXECUTION_ARN = re.compile(
    r"arn:aws[a-z\-]*:sagemaker:[a-z0-9\-]*:[0-9]{12}:pipeline/([^/]+)/execution/([a-z0-9]+)"
)


def new_execution_id() -> str:
    """12 lowercase letters and digits, as the service's execution ids are."""
    return "".join(secrets.choice(_ALPHANUMERIC) for _ in range(12))


def pipeline_arn(name: str, region: str, account: str = DEFAULT_ACCOUNT) -> str:
    # The service lowercases the name in pipeline ARNs.
    return f"arn:aws:sagemaker:{region}:{account}:pipeline/{name.lower()}"


def execution_arn(name: str, execution_id: str, region: str, account: str = DEFAULT_ACCOUNT) -> str:
    return f"{pipeline_arn(name, region, account)}/execution/{execution_id}"


def execution_id_of(arn: str) -> str | None:
    match = _EXECUTION_ARN.fullmatch(arn)
    return match.group(2) if match else None


def pipeline_name_of(name_or_arn: str) -> str:
    """A PipelineName member may be the name or the pipeline's ARN."""
    if name_or_arn.startswith("arn:"):
        return name_or_arn.rsplit("/", 1)[-1]
    return name_or_arn


def step_job_name(execution_id: str, step_name: str, suffix: str | None = None) -> str:
    """`pipelines-<execution id>-<step name>-<10 random characters>`, as the service names a
    processing step's job; the step name is cut (and made a valid job name) to fit 63."""
    suffix = suffix or "".join(
        secrets.choice(string.ascii_letters + string.digits) for _ in range(10)
    )
    room = JOB_NAME_MAX - len(f"pipelines-{execution_id}--{suffix}")
    step = re.sub(r"[^A-Za-z0-9]+", "-", step_name).strip("-")[:room].strip("-") or "step"
    return f"pipelines-{execution_id}-{step}-{suffix}"
