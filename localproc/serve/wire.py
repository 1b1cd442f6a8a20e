"""AWS JSON 1.1 as the served APIs speak it: request bodies parsed and checked against the
operation's input shape, and results with their timestamps in wire form."""

from __future__ import annotations

import json
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

from localproc.errors import ValidationException
from localproc.payload.service_model import sagemaker_model
from localproc.payload.validate import validate_operation_input, violation
from localproc.serve.errors import ApiError

if TYPE_CHECKING:
    from botocore.model import Shape

# Deeper JSON than any request shape of the served APIs has (theirs are under 10 levels): refused
# before the parser or the validator's recursion meet it.
MAX_JSON_DEPTH = 64


def checked_input(operation: str, body: dict[str, Any]) -> dict[str, Any]:
    """The request of a Describe/List/Stop/Delete operation, checked against the operation's
    input shape by the same validator as CreateProcessingJob; timestamp members become
    datetimes."""
    validate_operation_input(operation, body)
    members = sagemaker_model().operation_model(operation).input_shape.members
    result: dict[str, Any] = {}
    for key, value in body.items():
        if value is not None and members[key].type_name == "timestamp":
            moment = _request_time(value)
            if moment is None:
                field = key[:1].lower() + key[1:]
                raise ValidationException(
                    [violation(value, field, "Member must be a time: epoch seconds or ISO 8601")]
                )
            value = moment
        result[key] = value
    return result


def _request_time(value: Any) -> datetime | None:
    """botocore sends timestamps as epoch seconds; people writing JSON by hand use ISO 8601."""
    if isinstance(value, bool):
        return None
    if isinstance(value, str):
        try:
            value = float(value)
        except ValueError:
            return _iso_time(value)
    try:
        return datetime.fromtimestamp(value, timezone.utc)
    except (OverflowError, OSError, ValueError):
        return None


def _iso_time(text: str) -> datetime | None:
    try:
        moment = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)


def to_wire(value: Any, shape: Shape) -> Any:
    """`value` with every timestamp member of `shape` (at any depth) as epoch seconds, the form
    the service sends and botocore parses. Records keep timestamps as ISO 8601 strings."""
    kind = shape.type_name
    if kind == "structure" and isinstance(value, dict):
        members = shape.members
        return {k: to_wire(v, members[k]) if k in members else v for k, v in value.items()}
    if kind == "list" and isinstance(value, list):
        return [to_wire(item, shape.member) for item in value]
    if kind == "map" and isinstance(value, dict):
        return {k: to_wire(v, shape.value) for k, v in value.items()}
    if kind == "timestamp":
        moment = _iso_time(value) if isinstance(value, str) else value
        if isinstance(moment, datetime):
            return round(moment.timestamp(), 3)
    return value


def target_prefix() -> str:
    return str(sagemaker_model().metadata["targetPrefix"])


def parse_body(raw: bytes) -> dict[str, Any]:
    if not raw.strip():
        return {}
    try:
        body = json.loads(raw.decode("utf-8"), parse_constant=_no_constant)
    except RecursionError:
        raise _too_deep() from None
    except (UnicodeDecodeError, ValueError) as err:
        # e.g. an integer of more than 4,300 digits: Python's int() limit, met by the parser
        raise ApiError("SerializationException", f"The request body is not JSON: {err}") from None
    if not isinstance(body, dict):
        raise ApiError("SerializationException", "The request body must be a JSON object.")
    if _depth_exceeds(body, MAX_JSON_DEPTH):
        raise _too_deep()
    return body


def _too_deep() -> ApiError:
    return ApiError(
        "SerializationException",
        f"The request body nests JSON arrays or objects more than {MAX_JSON_DEPTH} levels deep.",
    )


def _depth_exceeds(value: Any, limit: int) -> bool:
    """Whether `value` nests containers more than `limit` deep (walked without recursion)."""
    pending = [(value, 1)]
    while pending:
        item, depth = pending.pop()
        if depth > limit:
            return True
        children = item.values() if isinstance(item, dict) else item
        pending.extend((c, depth + 1) for c in children if isinstance(c, (dict, list)))
    return False


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")
