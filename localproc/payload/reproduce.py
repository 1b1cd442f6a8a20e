"""`localproc reproduce`: turn a real job's description into a request this host can run.

Some endpoints (moto's emulator, for one) leave members out of DescribeProcessingJob that
CreateProcessingJob requires; rather than fail obscurely, say which, and which option supplies
them."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from localproc.errors import ValidationException
from localproc.payload.load import to_create_request
from localproc.payload.service_model import create_request_shape

DEFAULT_VOLUME_SIZE_GB = 30  # what the SageMaker Python SDK asks for when not told


@dataclass(frozen=True)
class ResourceOverrides:
    instance_type: str | None = None
    instance_count: int | None = None
    volume_size_gb: int | None = None

    def any(self) -> bool:
        return any(
            v is not None for v in (self.instance_type, self.instance_count, self.volume_size_gb)
        )


SUPPLIED_BY = {
    "ProcessingResources": "--instance-type and --instance-count (and --volume-size-gb)",
}


def request_from_description(
    described: dict[str, Any], overrides: ResourceOverrides, source: str
) -> dict[str, Any]:
    request = to_create_request(described)
    _apply_overrides(request, overrides)
    missing = [
        member for member in create_request_shape().required_members if member not in request
    ]
    if missing:
        raise ValidationException.single(
            f"The description of {described.get('ProcessingJobName', 'the job')} from {source} "
            f"lacks required field(s) {', '.join(missing)}. "
            + " ".join(_how_to_supply(member) for member in missing)
        )
    return request


def _apply_overrides(request: dict[str, Any], overrides: ResourceOverrides) -> None:
    if not overrides.any():
        return
    cluster = request.setdefault("ProcessingResources", {}).setdefault("ClusterConfig", {})
    if overrides.instance_type is not None:
        cluster["InstanceType"] = overrides.instance_type
    if overrides.instance_count is not None:
        cluster["InstanceCount"] = overrides.instance_count
    if overrides.volume_size_gb is not None:
        cluster["VolumeSizeInGB"] = overrides.volume_size_gb
    cluster.setdefault("VolumeSizeInGB", DEFAULT_VOLUME_SIZE_GB)


def _how_to_supply(member: str) -> str:
    if member in SUPPLIED_BY:
        return f"Supply {member} with {SUPPLIED_BY[member]}."
    return (
        f"Supply {member} by saving the description to a file, adding it, and running "
        "`localproc run FILE`."
    )
