"""The request as the service echoes it back (processingjobconfig.json, DescribeProcessingJob)."""

from __future__ import annotations

import typing

from localproc.payload.service_model import create_request_shape, describe_response_shape

if typing.TYPE_CHECKING:
    from botocore.model import Shape, StructureShape

# What the service fills in when a request leaves these members out, by structure shape name.
SERVICE_DEFAULTS: dict[str, dict[str, object]] = {
    "ProcessingS3Input": {
        "S3InputMode": "File",
        "S3DataDistributionType": "FullyReplicated",
        "S3CompressionType": "None",
    },
    "ProcessingInput": {"AppManaged": False},
    "ProcessingOutput": {"AppManaged": False},
}


def service_echo(request: dict[str, typing.Any]) -> dict[str, typing.Any]:
    """`request` (a validated CreateProcessingJob request) the way DescribeProcessingJob echoes it.

    Only request members that the DescribeProcessingJob output shape has are kept (so `Tags` is
    not echoed); every member of the request and of each structure present in it is included,
    absent optional ones as None; SERVICE_DEFAULTS are filled in. Members the service computes
    (ProcessingJobArn, status, timestamps) are left to the caller. Returns a new dict.
    """
    create_members = create_request_shape().members
    return {
        name: _echo(request.get(name), shape)
        for name, shape in describe_response_shape().members.items()
        if name in create_members
    }


def _echo(value: object, shape: Shape) -> object:
    if value is None:
        return None
    if shape.type_name == "structure":
        return _echo_structure(typing.cast(dict, value), shape)
    if shape.type_name == "list":
        return [_echo(item, shape.member) for item in typing.cast(list, value)]
    if shape.type_name == "map":
        return {key: _echo(item, shape.value) for key, item in typing.cast(dict, value).items()}
    return value


def _echo_structure(value: dict[str, object], shape: StructureShape) -> dict[str, object]:
    defaults = SERVICE_DEFAULTS.get(shape.name, {})
    echoed: dict[str, object] = {}
    for name, member_shape in shape.members.items():
        member_value = value.get(name)
        if member_value is None:
            member_value = defaults.get(name)
        echoed[name] = _echo(member_value, member_shape)
    return echoed
