"""Reading a payload file and turning it into a CreateProcessingJob request."""

from __future__ import annotations

import json
import typing
from pathlib import Path

from localproc.errors import PayloadError
from localproc.spec.service_model import describe_only_members

STDIN_SOURCE = "-"
_STDIN_NAME = "<stdin>"

# boto3 adds this to every response; it is never part of a request.
_RESPONSE_METADATA = "ResponseMetadata"

_JSON_TYPE_NAMES: tuple[tuple[type, str], ...] = (
    # bool before int/float: bool is a subclass of int in Python.
    (bool, "a boolean"),
    (list, "an array"),
    (str, "a string"),
    (int, "a number"),
    (float, "a number"),
    (type(None), "null"),
)


class _NonStandardConstant(ValueError):
    """Python's json module accepts NaN and Infinity; JSON (and the service) does not."""


def load_payload(source: str, stdin: typing.TextIO) -> dict[str, typing.Any]:
    """Read the JSON object in the file `source`, or in `stdin` when `source` is `-`.

    Raises PayloadError with one line naming the file when it cannot be read, is not valid JSON or
    is not a JSON object.
    """
    name = _STDIN_NAME if source == STDIN_SOURCE else source
    text = _read_text(source, name, stdin)
    value = _parse_json(text, name)
    if not isinstance(value, dict):
        raise PayloadError(f"payload '{name}' must be a JSON object, got {_json_type_name(value)}")
    return value


def _read_text(source: str, name: str, stdin: typing.TextIO) -> str:
    try:
        # Files saved by Windows editors often start with a byte order mark; json rejects it.
        if source == STDIN_SOURCE:
            return stdin.read().removeprefix("\ufeff")
        return Path(source).read_text(encoding="utf-8-sig")
    except OSError as error:
        reason = error.strerror or str(error)
        raise PayloadError(f"cannot read payload '{name}': {reason}") from error
    except UnicodeDecodeError as error:
        raise PayloadError(
            f"cannot read payload '{name}': not UTF-8 text ({error.reason} at byte {error.start})"
        ) from error


def _parse_json(text: str, name: str) -> typing.Any:
    try:
        return json.loads(text, parse_constant=_reject_constant)
    except json.JSONDecodeError as error:
        where = f"line {error.lineno} column {error.colno}"
        raise PayloadError(f"payload '{name}' is not valid JSON: {error.msg} at {where}") from error
    except _NonStandardConstant as error:
        raise PayloadError(f"payload '{name}' is not valid JSON: {error}") from error


def _reject_constant(constant: str) -> typing.NoReturn:
    raise _NonStandardConstant(f"{constant} is not allowed")


def _json_type_name(value: object) -> str:
    for python_type, json_name in _JSON_TYPE_NAMES:
        if isinstance(value, python_type):
            return json_name
    return type(value).__name__


def to_create_request(payload: dict[str, typing.Any]) -> dict[str, typing.Any]:
    """The CreateProcessingJob request in `payload`, a Create request or a Describe response.

    Dropped, so that `aws sagemaker describe-processing-job` output can be re-run as is:

    - the members the service computes, i.e. those of the DescribeProcessingJob output shape that
      the CreateProcessingJob input shape lacks (ProcessingJobArn, ProcessingJobStatus, ExitMessage,
      FailureReason, the timestamps, MonitoringScheduleArn, AutoMLJobArn, TrainingJobArn, ...),
      taken from the service model so new ones are dropped after a botocore upgrade;
    - `ResponseMetadata`, which boto3 adds to every response;
    - every key whose value is null, at any depth. Describe output and hand-edited payloads echo
      absent optional members as null, and the service treats a null member as absent; botocore
      would instead reject null as a wrong type. Nulls inside lists are kept, so they are still
      reported.

    Anything else, unknown members included, is kept for validation to report. Returns a new dict;
    `payload` is not modified.
    """
    computed = describe_only_members()
    return {
        key: _without_null_members(value)
        for key, value in payload.items()
        if key not in computed and key != _RESPONSE_METADATA and value is not None
    }


def _without_null_members(value: typing.Any) -> typing.Any:
    if isinstance(value, dict):
        return {key: _without_null_members(item) for key, item in value.items() if item is not None}
    if isinstance(value, list):
        return [_without_null_members(item) for item in value]
    return value
