"""The CloudWatch Logs API's wire, as `serve` speaks it (see cloudwatch_logs.py): the service
model botocore ships, requests checked against it, Logs' own error codes, and the opaque paging
tokens. Kept apart from the operations so that what a client sees of an error or a token is
decided in one place."""

from __future__ import annotations

import base64
import functools
import json
import re
import zlib
from typing import TYPE_CHECKING, Any

from localproc.errors import LocalprocError, ParameterValidationError, ValidationException

if TYPE_CHECKING:
    from botocore.model import ServiceModel


GROUP = "/aws/sagemaker/ProcessingJobs"
SERVICE_NAME = "logs"
_TOKEN = re.compile(r"([fb])/(\d{1,19})")


class LogsError(LocalprocError):
    """An error in CloudWatch Logs' own codes."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


def _invalid(message: str) -> LogsError:
    return LogsError("InvalidParameterException", message)


def _no_group() -> LogsError:
    return LogsError("ResourceNotFoundException", "The specified log group does not exist.")


def _no_stream() -> LogsError:
    return LogsError("ResourceNotFoundException", "The specified log stream does not exist.")


@functools.cache
def logs_model() -> ServiceModel:
    """The CloudWatch Logs ServiceModel botocore ships (with any override in ~/.aws/models)."""
    from botocore.loaders import create_loader
    from botocore.model import ServiceModel

    data = create_loader().load_service_model(SERVICE_NAME, "service-2")
    return ServiceModel(data, service_name=SERVICE_NAME)


def target_prefix() -> str:
    return str(logs_model().metadata["targetPrefix"])


def check_request(operation: str, body: dict[str, Any]) -> None:
    """The model's checks (unknown members, types, min/max, enums, patterns) in the service's
    wording, as InvalidParameterException: CloudWatch Logs' code for all of them."""
    from localproc.payload.validate import _validate_against

    try:
        _validate_against(logs_model().operation_model(operation).input_shape, body, lambda: ())
    except (ParameterValidationError, ValidationException) as err:
        raise _invalid(err.message) from None


def _event_id(stamp: int, stream: str, number: int) -> str:
    return f"{stamp:016d}{zlib.crc32(stream.encode()):010d}{number:012d}"


def _encode(value: Any) -> str:
    return base64.urlsafe_b64encode(json.dumps(value).encode()).decode()


def _decode(token: str) -> Any:
    try:
        return json.loads(base64.urlsafe_b64decode(token.encode()))
    except (ValueError, TypeError):
        raise _invalid("The specified nextToken is invalid.") from None


def _offset_token(token: str | None) -> int:
    if token is None:
        return 0
    value = _decode(token)
    offset = value.get("o") if isinstance(value, dict) else None
    if not isinstance(offset, int) or isinstance(offset, bool) or offset < 0:
        raise _invalid("The specified nextToken is invalid.")
    return offset


def _filter_position(token: str | None) -> tuple[int, str, int] | None:
    if token is None:
        return None
    value = _decode(token)
    key = value.get("k") if isinstance(value, dict) else None
    if (
        not isinstance(key, list)
        or len(key) != 3
        or not isinstance(key[0], int)
        or not isinstance(key[1], str)
        or not isinstance(key[2], int)
    ):
        raise _invalid("The specified nextToken is invalid.")
    return key[0], key[1], key[2]
