"""Pass 3 of the validation (see validate.py): the documented service rules the model cannot
express (LocalPath, unique names, exactly one source per channel, ...) and the rules that keep
every value usable here (names usable as folder names, LocalPaths without `.` or `..` segments,
an ImageUri Docker accepts), in the same sentence style as the model's constraints."""

from __future__ import annotations

import posixpath
import typing
from collections.abc import Iterator, Mapping, Sequence

from localproc.payload import image_reference
from localproc.payload.model_checks import (
    _child_path,
    _element_path,
    _shown,
    _text_problem,
    _violated_constraints,
    violation,
)
from localproc.payload.service_model import create_request_shape
from localproc.s3uri import parse_s3_uri

# --------------------------------------------------------------------------------------------
# Pass 3: documented service rules
# --------------------------------------------------------------------------------------------

LOCAL_PATH_PREFIX = "/opt/ml/processing/"
_EMPTY_STRING_LISTS = ("ContainerEntrypoint", "ContainerArguments")


class _ChannelRules(typing.NamedTuple):
    """Where the inputs or the outputs sit in the request and which members the rules look at."""

    list_path: str
    kind: str
    name_member: str
    source_members: tuple[str, str]
    local_path_sources: tuple[str, ...]


_INPUT_RULES = _ChannelRules(
    list_path="processingInputs",
    kind="input",
    name_member="InputName",
    source_members=("S3Input", "DatasetDefinition"),
    local_path_sources=("S3Input", "DatasetDefinition"),
)
_OUTPUT_RULES = _ChannelRules(
    list_path="processingOutputConfig.outputs",
    kind="output",
    name_member="OutputName",
    source_members=("S3Output", "FeatureStoreOutput"),
    local_path_sources=("S3Output",),
)


def _service_rule_problems(request: Mapping[str, typing.Any]) -> Iterator[str]:
    inputs = request.get("ProcessingInputs") or []
    outputs = (request.get("ProcessingOutputConfig") or {}).get("Outputs") or []
    yield from _channel_problems(inputs, _INPUT_RULES)
    yield from _dataset_definition_problems(inputs)
    yield from _gzip_problems(inputs)
    yield from _channel_problems(outputs, _OUTPUT_RULES)
    yield from _feature_store_problems(outputs)
    yield from _empty_string_problems(request.get("AppSpecification") or {})
    yield from _image_uri_problems(request.get("AppSpecification") or {})
    yield from _s3_uri_problems(inputs, "S3Input", _INPUT_RULES.list_path)
    yield from _s3_uri_problems(outputs, "S3Output", _OUTPUT_RULES.list_path)


def _s3_uri_problems(
    channels: Sequence[Mapping[str, typing.Any]], source_member: str, list_path: str
) -> Iterator[str]:
    """The model's pattern lets any host through (`https://example.com/x`); an S3 URI must name
    an S3 bucket, or the run would fail only after its containers had started."""
    for index, channel in enumerate(channels):
        uri = (channel.get(source_member) or {}).get("S3Uri")
        if not isinstance(uri, str) or not uri.lower().startswith(("s3://", "https://")):
            continue  # absent, or already reported against the model's pattern
        try:
            parse_s3_uri(uri)
        except ValueError as err:
            field = _child_path(
                _child_path(_element_path(list_path, index), source_member), "S3Uri"
            )
            yield violation(uri, field, str(err))


def _channel_problems(
    channels: Sequence[Mapping[str, typing.Any]], rules: _ChannelRules
) -> Iterator[str]:
    """Rules shared by inputs and outputs: one source each, LocalPath set and under
    /opt/ml/processing/, LocalPaths and names unique within the list."""
    local_paths = _FirstSeen(f"LocalPath must be unique across processing {rules.kind}s")
    names = _FirstSeen(f"{rules.name_member} must be unique across processing {rules.kind}s")
    for index, channel in enumerate(channels):
        path = _element_path(rules.list_path, index)
        yield from _exactly_one(channel, path, rules.source_members)
        app_managed = channel.get("AppManaged") is True
        for member in rules.local_path_sources:
            source = channel.get(member)
            if source is None:
                continue
            local_path = source.get("LocalPath")
            field = f"{_child_path(path, member)}.localPath"
            yield from _local_path_problems(local_path, field, app_managed)
            if local_path is not None:
                # Normalised so /opt/ml/processing/in and /opt/ml/processing/in/ count as one.
                yield from local_paths.check(posixpath.normpath(local_path), local_path, field)
        name = channel.get(rules.name_member)
        if name is not None:
            name_field = _child_path(path, rules.name_member)
            yield from _folder_name_problems(name, name_field, rules.name_member)
            yield from names.check(name, name, name_field)


class _FirstSeen:
    """Reports a value seen before at another field, naming where it was first seen."""

    def __init__(self, rule: str) -> None:
        self._rule = rule
        self._first_field: dict[str, str] = {}

    def check(self, key: str, value: str, field: str) -> Iterator[str]:
        first = self._first_field.setdefault(key, field)
        if first != field:
            yield violation(value, field, f"{self._rule}; also used at '{first}'")


def _exactly_one(
    value: Mapping[str, typing.Any], path: str, members: tuple[str, str]
) -> Iterator[str]:
    first, second = members
    rule = f"Exactly one of {first} or {second} must be set"
    present = [member for member in members if value.get(member) is not None]
    if not present:
        yield violation(None, _child_path(path, first), rule)
    elif len(present) > 1:
        yield violation(value[second], _child_path(path, second), rule)


def _local_path_problems(local_path: str | None, field: str, app_managed: bool) -> Iterator[str]:
    if local_path is None:
        if not app_managed:
            yield violation(None, field, "LocalPath must be set unless AppManaged is true")
    elif not local_path.startswith(LOCAL_PATH_PREFIX):
        yield violation(local_path, field, f"LocalPath must start with {LOCAL_PATH_PREFIX}")
    elif not _plain_segments(local_path.removeprefix(LOCAL_PATH_PREFIX).removesuffix("/")):
        # `..` leaves /opt/ml/processing/ (`/opt/ml/processing/../../usr/bin` would hide the
        # image's programs) and `.` or `//` write one folder two ways (two mounts on one path):
        # only a trailing slash is allowed, and means the same as none.
        yield violation(local_path, field, _LOCAL_PATH_SEGMENTS_RULE)


_LOCAL_PATH_SEGMENTS_RULE = "LocalPath must not contain '.', '..' or empty ('//') path segments"


def _plain_segments(relative: str) -> bool:
    """True unless a segment of `relative` (a path below LOCAL_PATH_PREFIX) is '.', '..' or
    empty; the prefix itself ('') is a plain path."""
    return relative == "" or all(part not in ("", ".", "..") for part in relative.split("/"))


# Each input and each output has a folder of that name on the host (staging, outputs).
_NAME_MAX_BYTES = 255


def _folder_name_problems(name: object, field: str, member: str) -> Iterator[str]:
    if not isinstance(name, str) or _text_problem(name):
        return  # reported by the type or text checks
    size = len(name.encode("utf-8"))
    if size == 0 or size > _NAME_MAX_BYTES or "/" in name or name in (".", ".."):
        shown = name if size <= _NAME_MAX_BYTES else f"{name[:40]}… ({size} bytes)"
        yield violation(
            _shown(shown),
            field,
            f"{member} must be usable as a folder name: 1 to {_NAME_MAX_BYTES} bytes of UTF-8, "
            "without '/', and not '.' or '..'",
        )


def _image_uri_problems(app_specification: Mapping[str, typing.Any]) -> Iterator[str]:
    uri = app_specification.get("ImageUri")
    shape = create_request_shape().members["AppSpecification"].members["ImageUri"]
    if not isinstance(uri, str) or _text_problem(uri) or _violated_constraints(uri, shape):
        return  # absent (reported as required), or reported by the model or the text checks
    problem = image_reference.image_reference_problem(uri)
    if problem:
        yield violation(
            _shown(uri), "appSpecification.imageUri", f"{image_reference.RULE}: {problem}"
        )


def _dataset_definition_problems(inputs: Sequence[Mapping[str, typing.Any]]) -> Iterator[str]:
    for index, channel in enumerate(inputs):
        definition = channel.get("DatasetDefinition")
        if definition is not None:
            path = _child_path(_element_path("processingInputs", index), "DatasetDefinition")
            yield from _exactly_one(
                definition, path, ("AthenaDatasetDefinition", "RedshiftDatasetDefinition")
            )


def _gzip_problems(inputs: Sequence[Mapping[str, typing.Any]]) -> Iterator[str]:
    for index, channel in enumerate(inputs):
        s3_input = channel.get("S3Input") or {}
        # An absent S3InputMode means File, the service's default.
        if s3_input.get("S3CompressionType") == "Gzip" and s3_input.get("S3InputMode") != "Pipe":
            field = f"{_element_path('processingInputs', index)}.s3Input.s3CompressionType"
            yield violation("Gzip", field, "S3CompressionType Gzip requires S3InputMode Pipe")


def _feature_store_problems(outputs: Sequence[Mapping[str, typing.Any]]) -> Iterator[str]:
    for index, channel in enumerate(outputs):
        feature_store = channel.get("FeatureStoreOutput")
        if feature_store is not None and channel.get("AppManaged") is not True:
            field = f"{_element_path('processingOutputConfig.outputs', index)}.featureStoreOutput"
            yield violation(
                feature_store, field, "FeatureStoreOutput requires AppManaged to be true"
            )


def _empty_string_problems(app_specification: Mapping[str, typing.Any]) -> Iterator[str]:
    for member in _EMPTY_STRING_LISTS:
        for index, item in enumerate(app_specification.get(member) or []):
            if item == "":
                field = _element_path(_child_path("appSpecification", member), index)
                yield violation(item, field, f"{member} must not contain empty strings")
