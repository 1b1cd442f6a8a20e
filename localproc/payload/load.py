"""Reading a payload file and turning it into a CreateProcessingJob request."""

from __future__ import annotations

import json
import math
import re
import typing
from pathlib import Path

from localproc.errors import PayloadError
from localproc.payload.service_model import describe_only_members

STDIN_SOURCE = "-"
_STDIN_NAME = "<stdin>"

# The service caps a request's size; so does `localproc serve` (server.MAX_BODY_BYTES). Reading
# stops one byte past it, so `/dev/zero` or a runaway pipe costs no more than that.
MAX_PAYLOAD_BYTES = 16 * 2**20
# The model's deepest member is five levels down; nothing deeper can be valid, and Python's
# recursion (json, validation, json.dumps of the record) must never meet such a value.
MAX_NESTING = 100
# No member of the model holds a number of more than 19 digits (Java's long).
MAX_DIGITS = 100

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
    return parse_payload(text, name)


def parse_payload(text: str, name: str) -> dict[str, typing.Any]:
    """The JSON object in `text` (named `name` in messages); PayloadError for anything else:
    not JSON, NaN or Infinity, numbers of more than MAX_DIGITS digits or beyond a double,
    nesting deeper than MAX_NESTING, not an object."""
    value = _parse_json(text, name)
    if not isinstance(value, dict):
        raise PayloadError(f"payload '{name}' must be a JSON object, got {_json_type_name(value)}")
    return value


def _read_text(source: str, name: str, stdin: typing.TextIO) -> str:
    try:
        if source == STDIN_SOURCE:
            data: bytes | str = _read_capped(getattr(stdin, "buffer", stdin))
        else:
            with Path(source).open("rb") as handle:
                data = _read_capped(handle)
    except OSError as error:
        reason = error.strerror or str(error)
        raise PayloadError(f"cannot read payload '{name}': {reason}") from error
    if len(data) > MAX_PAYLOAD_BYTES:
        raise PayloadError(
            f"payload '{name}' is larger than {_size(MAX_PAYLOAD_BYTES)}, the most a "
            "CreateProcessingJob request may carry"
        )
    try:
        # Files saved by Windows editors often start with a byte order mark; json rejects it.
        text = data.decode("utf-8-sig") if isinstance(data, bytes) else data
    except UnicodeDecodeError as error:
        raise PayloadError(
            f"cannot read payload '{name}': not UTF-8 text ({error.reason} at byte {error.start})"
        ) from error
    return text.removeprefix("\ufeff")


def _read_capped(handle: typing.IO[typing.Any]) -> typing.Any:
    """At most one byte (or character, for a text stream) more than the cap."""
    return handle.read(MAX_PAYLOAD_BYTES + 1)


def _size(count: int) -> str:
    if count >= 2**20 and count % 2**20 == 0:
        return f"{count // 2**20} MiB"
    return f"{count} B"


def _parse_json(text: str, name: str) -> typing.Any:
    if _nesting_deeper_than(text, MAX_NESTING):
        raise PayloadError(
            f"payload '{name}' nests arrays and objects deeper than {MAX_NESTING} levels"
        )
    try:
        return json.loads(
            text, parse_constant=_reject_constant, parse_int=_parse_int, parse_float=_parse_float
        )
    except json.JSONDecodeError as error:
        where = f"line {error.lineno} column {error.colno}"
        raise PayloadError(f"payload '{name}' is not valid JSON: {error.msg} at {where}") from error
    except _NonStandardConstant as error:
        raise PayloadError(f"payload '{name}' is not valid JSON: {error}") from error
    except (RecursionError, ValueError) as error:  # a limit of Python's json, should one remain
        raise PayloadError(f"payload '{name}' is not usable: {error}") from error


_BRACKETS_AND_STRINGS = re.compile(r'[\[\]{}]|"(?:[^"\\]|\\.)*"')


def _nesting_deeper_than(text: str, limit: int) -> bool:
    """True when arrays and objects in `text` (read as JSON, strings skipped) nest deeper than
    `limit`: checked before parsing, because json itself recurses once per level."""
    if text.count("[") + text.count("{") <= limit:
        return False
    depth = 0
    for match in _BRACKETS_AND_STRINGS.finditer(text):
        token = match.group()
        if token in "[{":
            depth += 1
            if depth > limit:
                return True
        elif token in "]}":
            depth -= 1
    return False


def _reject_constant(constant: str) -> typing.NoReturn:
    raise _NonStandardConstant(f"{constant} is not allowed")


def _parse_int(literal: str) -> int:
    if len(literal.lstrip("-")) > MAX_DIGITS:
        raise _NonStandardConstant(f"a number has more than {MAX_DIGITS} digits")
    return int(literal)


def _parse_float(literal: str) -> float:
    value = float(literal)
    if not math.isfinite(value):
        raise _NonStandardConstant(f"{_shorten(literal)} is out of range")
    return value


def _shorten(literal: str, keep: int = 40) -> str:
    return literal if len(literal) <= keep else f"{literal[:keep]}… ({len(literal)} characters)"


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
