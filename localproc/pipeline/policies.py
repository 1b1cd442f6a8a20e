"""How the service applies a processing step's CacheConfig and RetryPolicies: the cache key of a
step run, when a cached run has expired, which failures a policy retries and after how long."""

from __future__ import annotations

import hashlib
import json
import re
from typing import Any

from localproc.errors import ValidationException

# ISO 8601 durations as CacheConfig.ExpireAfter takes them (PT1H, P30D, P1Y2M3DT4H5M6S, P2W).
_DURATION = re.compile(
    r"P(?:(\d+)Y)?(?:(\d+)M)?(?:(\d+)W)?(?:(\d+)D)?(?:T(?:(\d+)H)?(?:(\d+)M)?(?:(\d+(?:\.\d+)?)S)?)?"
)
_UNIT_SECONDS = (365 * 86400, 30 * 86400, 7 * 86400, 86400, 3600, 60, 1)

# The exception types of RetryPolicies, and what makes a local step run one of them.
JOB_INTERNAL_ERROR = "SageMaker.JOB_INTERNAL_ERROR"
RESOURCE_LIMIT = "SageMaker.RESOURCE_LIMIT"
SERVICE_FAULT = "Step.SERVICE_FAULT"
DEFAULT_INTERVAL_SECONDS = 1.0
DEFAULT_BACKOFF_RATE = 2.0


def duration_seconds(text: Any) -> float:
    """ExpireAfter as seconds; ValidationException for anything that is not a duration."""
    match = _DURATION.fullmatch(text) if isinstance(text, str) else None
    if match is None or text in ("P", "PT") or text.endswith("T"):
        raise ValidationException.single(
            f"CacheConfig ExpireAfter must be an ISO 8601 duration such as PT1H or P30D, not "
            f"{json.dumps(text)}"
        )
    return sum(float(g) * unit for g, unit in zip(match.groups(), _UNIT_SECONDS, strict=True) if g)


def cache_enabled(cache_config: dict[str, Any] | None) -> bool:
    return bool(cache_config and cache_config.get("Enabled"))


def cache_expiry_seconds(cache_config: dict[str, Any]) -> float | None:
    """None: a cached run never expires (no ExpireAfter)."""
    expire = cache_config.get("ExpireAfter")
    return None if expire is None else duration_seconds(expire)


def cache_key(step_type: str, arguments: dict[str, Any]) -> str:
    """The signature of a step run: its type and its arguments with every expression evaluated
    (parameters, execution variables, other steps' properties), the job name left out. Two
    runs of the same pipeline with the same key are the same run."""
    essential = {k: v for k, v in arguments.items() if k != "ProcessingJobName"}
    text = json.dumps({"Type": step_type, "Arguments": essential}, sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()


def failure_type(failure_reason: str | None) -> str | None:
    """The retry exception type of a processing job that ended Failed (None: not retried,
    e.g. ClientError and AlgorithmError, as on the service)."""
    if failure_reason and failure_reason.startswith("InternalServerError"):
        return JOB_INTERNAL_ERROR
    return None


def retry_delay(
    policies: tuple[dict[str, Any], ...] | list[dict[str, Any]],
    exception_type: str | None,
    retries_done: int,
    seconds_since_first_attempt: float,
) -> float | None:
    """Seconds to wait before the next attempt, or None: no retry. The first policy naming the
    exception type applies: IntervalSeconds × BackoffRate^retries, at most MaxAttempts retries,
    and none that would start after ExpireAfterMin minutes."""
    if exception_type is None:
        return None
    for policy in policies:
        if exception_type not in (policy.get("ExceptionType") or []):
            continue
        interval = float(policy.get("IntervalSeconds", DEFAULT_INTERVAL_SECONDS))
        delay = interval * float(policy.get("BackoffRate", DEFAULT_BACKOFF_RATE)) ** retries_done
        attempts = policy.get("MaxAttempts")
        if attempts is not None and retries_done >= int(attempts):
            return None
        expire = policy.get("ExpireAfterMin")
        if expire is not None and seconds_since_first_attempt + delay > float(expire) * 60:
            return None
        if attempts is None and expire is None:
            return None
        return delay
    return None
