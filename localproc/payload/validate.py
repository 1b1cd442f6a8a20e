"""Validation of a CreateProcessingJob request, the way botocore and the service would reject it.

Three passes, all walked generically over the SageMaker model in botocore so they follow upgrades:

1. botocore's client-side checks (unknown members, wrong JSON types), in ParamValidator's wording.
   These stop everything: the real CLI never sends such a request.
2. The service's server-side model constraints (required, length, range, enum, pattern), in the
   service's wording: `Value 'X' at 'a.b' failed to satisfy constraint: Member must ...`.
3. The documented service rules the model cannot express (LocalPath, unique names, ...), in the
   same sentence style and reported together with pass 2, with the rules that keep every value
   usable here: every string valid Unicode text without NUL (they become argv, environment, paths
   and file contents), input and output names usable as folder names, LocalPaths without `.` or
   `..` segments, an ImageUri Docker accepts.
"""

from __future__ import annotations

import functools
import posixpath
import re
import typing
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence

from localproc.errors import ParameterValidationError, ValidationException
from localproc.payload import image_reference
from localproc.payload.service_model import create_request_shape
from localproc.printable import printable_line
from localproc.s3uri import parse_s3_uri

if typing.TYPE_CHECKING:
    from botocore.model import ListShape, MapShape, Shape, StructureShape
    from regex import Pattern

# --------------------------------------------------------------------------------------------
# Entry point
# --------------------------------------------------------------------------------------------


def validate_create_request(request: dict[str, typing.Any]) -> None:
    """Reject `request` the way `aws sagemaker create-processing-job` would.

    Raises ParameterValidationError for what botocore rejects before sending (unknown members,
    wrong types), otherwise ValidationException listing every model constraint violation and every
    broken service rule at once.
    """
    shape = create_request_shape()
    _validate_against(
        shape,
        request,
        lambda: [*_text_problems(request, shape, ""), *_service_rule_problems(request)],
    )


def validate_operation_input(operation: str, request: dict[str, typing.Any]) -> None:
    """The model's checks (both passes) for any SageMaker operation's input, e.g. the
    Describe/List/Stop/Delete requests `localproc serve` receives."""
    from localproc.payload.service_model import sagemaker_model

    shape = sagemaker_model().operation_model(operation).input_shape
    _validate_against(shape, request, lambda: list(_text_problems(request, shape, "")))


def _validate_against(
    shape: StructureShape,
    request: dict[str, typing.Any],
    rule_problems: Callable[[], Iterable[str]],
) -> None:
    """The rules (pass 3) run only on a request whose types pass 1 has checked."""
    client_problems = [_encodable(p) for p in _client_side_problems(request, shape, "")]
    if client_problems:
        raise ParameterValidationError(client_problems)
    problems = list(_constraint_problems(request, shape, ""))
    problems.extend(rule_problems())
    problems = [_encodable(p) for p in problems]
    if problems:
        raise ValidationException(problems)


# --------------------------------------------------------------------------------------------
# Pass 1: botocore's client-side checks
# --------------------------------------------------------------------------------------------


@functools.cache
def _python_types(type_name: str) -> tuple[type, ...] | None:
    """The Python types botocore accepts for a model type; None when botocore accepts anything."""
    from botocore.validate import ParamValidator

    table = {**ParamValidator.SCALAR_TYPES, **ParamValidator.CONTAINER_TYPES}
    # JSON has no timestamps or blobs; what botocore would parse or encode is a string or number.
    table.setdefault("timestamp", (str, int, float))
    table.setdefault("blob", (str,))
    return table.get(type_name)


def _has_valid_type(value: object, type_name: str) -> bool:
    valid_types = _python_types(type_name)
    if valid_types is None:
        return True
    if isinstance(value, bool) and bool not in valid_types:
        # botocore lets True through as an integer (bool subclasses int); the service does not.
        return False
    return isinstance(value, valid_types)


def _client_side_problems(value: object, shape: Shape, name: str) -> Iterator[str]:
    """botocore ParamValidator's unknown-member and type problems, with its parameter names."""
    if not _has_valid_type(value, shape.type_name):
        valid = ", ".join(str(t) for t in _python_types(shape.type_name) or ())
        yield (
            f"Invalid type for parameter {name or 'input'}, value: {value}, "
            f"type: {type(value)}, valid types: {valid}"
        )
        return
    if shape.type_name == "structure":
        yield from _client_side_structure_problems(value, shape, name)
    elif shape.type_name == "list":
        for index, item in enumerate(value):
            yield from _client_side_problems(item, shape.member, f"{name}[{index}]")
    elif shape.type_name == "map":
        for key, item in value.items():
            yield from _client_side_problems(key, shape.key, f"{name} (key: {key})")
            yield from _client_side_problems(item, shape.value, f"{name}.{key}")


def _client_side_structure_problems(
    value: Mapping[str, object], shape: StructureShape, name: str
) -> Iterator[str]:
    members = shape.members
    # botocore reports a structure's unknown members before descending into its known ones.
    for key in value:
        if key not in members:
            yield (
                f'Unknown parameter in {name or "input"}: "{key}", '
                f"must be one of: {', '.join(members)}"
            )
    for key, item in value.items():
        if key in members:
            yield from _client_side_problems(item, members[key], f"{name}.{key}" if name else key)


# --------------------------------------------------------------------------------------------
# Pass 2: the service's model constraints
# --------------------------------------------------------------------------------------------


def _field(member_name: str) -> str:
    """The service names fields by lowering the first letter only: S3Input -> s3Input."""
    return member_name[:1].lower() + member_name[1:]


def _child_path(path: str, member_name: str) -> str:
    return f"{path}.{_field(member_name)}" if path else _field(member_name)


def _element_path(path: str, index: int) -> str:
    return f"{path}.{index + 1}.member"


def render(value: object) -> str:
    """A value the way the service (Java) prints it: [a, b], {K=V}, true, null."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list):
        return "[" + ", ".join(render(item) for item in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{key}={render(item)}" for key, item in value.items()) + "}"
    return str(value)


def violation(value: object, path: str, constraint: str) -> str:
    """One problem in the service's sentence: `Value 'X' at 'path' failed to satisfy ...`."""
    shown = "null" if value is None else f"'{render(value)}'"
    return f"Value {shown} at '{path}' failed to satisfy constraint: {constraint}"


def _constraint_problems(value: object, shape: Shape, path: str) -> Iterator[str]:
    if shape.type_name == "structure":
        yield from _structure_constraint_problems(value, shape, path)
    elif shape.type_name == "list":
        yield from _list_constraint_problems(value, shape, path)
    elif shape.type_name == "map":
        yield from _map_constraint_problems(value, shape, path)
    else:
        for constraint in _violated_constraints(value, shape):
            yield violation(value, path, constraint)


def _structure_constraint_problems(
    value: Mapping[str, object], shape: StructureShape, path: str
) -> Iterator[str]:
    required = set(shape.required_members)
    for member_name, member_shape in shape.members.items():
        member_path = _child_path(path, member_name)
        member_value = value.get(member_name)
        if member_value is None:
            if member_name in required:
                yield violation(None, member_path, "Member must not be null")
            continue
        yield from _constraint_problems(member_value, member_shape, member_path)


def _list_constraint_problems(value: list[object], shape: ListShape, path: str) -> Iterator[str]:
    for constraint in _length_violations(len(value), shape):
        yield violation(value, path, constraint)
    member_shape = shape.member
    if member_shape.type_name in ("structure", "list", "map"):
        for index, item in enumerate(value):
            yield from _constraint_problems(item, member_shape, _element_path(path, index))
    elif any(_violated_constraints(item, member_shape) for item in value):
        # For scalar members the service reports the whole list once, with every constraint of
        # the member shape, not the offending element.
        yield violation(value, path, _all_constraints_of("Member", member_shape))


def _map_constraint_problems(value: dict[str, object], shape: MapShape, path: str) -> Iterator[str]:
    for constraint in _length_violations(len(value), shape):
        yield violation(value, path, constraint)
    if any(_violated_constraints(key, shape.key) for key in value):
        yield violation(value, path, _all_constraints_of("Map keys", shape.key))
    value_shape = shape.value
    if value_shape.type_name in ("structure", "list", "map"):
        for key, item in value.items():
            yield from _constraint_problems(item, value_shape, f"{path}.{key}")
    elif any(_violated_constraints(item, value_shape) for item in value.values()):
        yield violation(value, path, _all_constraints_of("Map value", value_shape))


def _all_constraints_of(subject: str, shape: Shape) -> str:
    """`Map keys must satisfy constraint: [Member must have length less than ..., ...]`."""
    return f"{subject} must satisfy constraint: [" + ", ".join(_constraints(shape)) + "]"


def _violated_constraints(value: object, shape: Shape) -> list[str]:
    return [text for text, holds in _checked_constraints(shape) if not holds(value)]


def _constraints(shape: Shape) -> list[str]:
    return [text for text, _ in _checked_constraints(shape)]


Check = Callable[[typing.Any], bool]


@functools.cache
def _checked_constraints(shape: Shape) -> tuple[tuple[str, Check], ...]:
    """Every model constraint of a scalar shape as (the service's wording, predicate), in the order
    the service lists them: max, min, enum, pattern."""
    metadata = shape.metadata
    measure: Callable[[typing.Any], int | float]
    if shape.type_name == "string":
        noun, measure = "length", len
    else:
        noun, measure = "value", _identity
    checks: list[tuple[str, Check]] = []
    if "max" in metadata:
        limit = metadata["max"]
        checks.append(
            (f"Member must have {noun} less than or equal to {limit}", _at_most(measure, limit))
        )
    if "min" in metadata:
        limit = metadata["min"]
        checks.append(
            (f"Member must have {noun} greater than or equal to {limit}", _at_least(measure, limit))
        )
    if "enum" in metadata:
        allowed = tuple(metadata["enum"])
        checks.append(
            (f"Member must satisfy enum value set: [{', '.join(allowed)}]", allowed.__contains__)
        )
    if "pattern" in metadata:
        pattern = metadata["pattern"]
        checks.append(
            (f"Member must satisfy regular expression pattern: {pattern}", _matches(pattern))
        )
    return tuple(checks)


def _identity(value: int | float) -> int | float:
    return value


def _at_most(measure: Callable[[typing.Any], int | float], limit: float) -> Check:
    return lambda value: measure(value) <= limit


def _at_least(measure: Callable[[typing.Any], int | float], limit: float) -> Check:
    return lambda value: measure(value) >= limit


def _matches(java_pattern: str) -> Check:
    compiled = compile_java_pattern(java_pattern)
    return lambda value: compiled.fullmatch(value) is not None


def _length_violations(length: int, shape: Shape) -> list[str]:
    """A list's or map's entry count against the shape's min/max."""
    problems = []
    if "max" in shape.metadata and length > shape.metadata["max"]:
        problems.append(f"Member must have length less than or equal to {shape.metadata['max']}")
    if "min" in shape.metadata and length < shape.metadata["min"]:
        problems.append(f"Member must have length greater than or equal to {shape.metadata['min']}")
    return problems


# --------------------------------------------------------------------------------------------
# Java regular expressions
# --------------------------------------------------------------------------------------------

# The service matches patterns with java.util.regex, whose defaults differ from Python's: `.` stops
# at every Java line terminator (the model writes [\S\s]* where newlines are allowed), and \d \w \s
# are ASCII-only. \p{L}, \p{Z}, \p{N} ... are Unicode categories in both, given the `regex` module.
_JAVA_DOT = "[^\\n\\r\\u0085\\u2028\\u2029]"
_JAVA_SHORTHAND = {"d": "0-9", "w": "a-zA-Z_0-9", "s": " \\t\\n\\x0B\\f\\r"}
_JAVA_POSIX = {
    "Lower": "a-z",
    "Upper": "A-Z",
    "ASCII": "\\x00-\\x7F",
    "Alpha": "a-zA-Z",
    "Digit": "0-9",
    "Alnum": "a-zA-Z0-9",
    "Punct": "!-/:-@\\[-`{-~",
    "Graph": "!-~",
    "Print": " -~",
    "Blank": " \\t",
    "Cntrl": "\\x00-\\x1F\\x7F",
    "XDigit": "0-9a-fA-F",
    "Space": " \\t\\n\\x0B\\f\\r",
}
# Java writes a code point above U+FFFF as its UTF-16 surrogate pair, e.g. \uD800\uDC00.
_SURROGATE_PAIR = re.compile(r"\\u(d[89ab][0-9a-f]{2})\\u(d[c-f][0-9a-f]{2})", re.IGNORECASE)
_POSIX_CLASS = re.compile(r"\\p\{(\w+)\}")


@functools.cache
def compile_java_pattern(java_pattern: str) -> Pattern[str]:
    """Compile a model pattern (Java syntax) once, for `fullmatch` as Java's matches() does."""
    import regex

    return regex.compile(python_pattern(java_pattern))


def python_pattern(java_pattern: str) -> str:
    """The `regex`-module spelling of a Java pattern, with Java's meaning of `.`, \\d, \\w, \\s,
    POSIX classes and surrogate pairs. Nested character classes (Java unions) are not used by the
    model and are not translated."""
    out: list[str] = []
    in_class = False
    index = 0
    while index < len(java_pattern):
        char = java_pattern[index]
        if char == "\\":
            token, index = _translate_escape(java_pattern, index, in_class)
            out.append(token)
            continue
        if char == "[" and not in_class:
            in_class = True
        elif char == "]" and in_class:
            in_class = False
        elif char == "." and not in_class:
            char = _JAVA_DOT
        out.append(char)
        index += 1
    return "".join(out)


def _translate_escape(pattern: str, index: int, in_class: bool) -> tuple[str, int]:
    """The translation of the escape at `index` and the index after it."""
    pair = _SURROGATE_PAIR.match(pattern, index)
    if pair:
        high, low = int(pair.group(1), 16), int(pair.group(2), 16)
        code_point = 0x10000 + ((high - 0xD800) << 10) + (low - 0xDC00)
        return f"\\U{code_point:08X}", pair.end()
    posix = _POSIX_CLASS.match(pattern, index)
    if posix and posix.group(1) in _JAVA_POSIX:
        body = _JAVA_POSIX[posix.group(1)]
        return (body if in_class else f"[{body}]"), posix.end()
    letter = pattern[index + 1 : index + 2]
    if letter in _JAVA_SHORTHAND:
        body = _JAVA_SHORTHAND[letter]
        return (body if in_class else f"[{body}]"), index + 2
    if not in_class and letter.lower() in _JAVA_SHORTHAND and letter.isupper():
        return f"[^{_JAVA_SHORTHAND[letter.lower()]}]", index + 2
    # Inside a class \D \W \S keep Python's Unicode meaning: the model only uses them as [\S\s],
    # where both meanings cover everything.
    return pattern[index : index + 2], index + 2


# --------------------------------------------------------------------------------------------
# Text: every string valid Unicode without NUL
# --------------------------------------------------------------------------------------------

# JSON lets a string hold a lone UTF-16 surrogate (`"\ud800"`), which no file, terminal or
# HTTP answer can encode, and NUL, which no argv, environment variable or path can hold.
_BAD_TEXT = re.compile("[\x00\ud800-\udfff]")
_NUL_RULE = "must not contain the NUL character (\\x00)"
_SURROGATE_RULE = "must be valid Unicode text: it has a lone surrogate"


def _encodable(message: str) -> str:
    """A problem message that any printer and encoder can take: the values it quotes may hold
    NUL or lone surrogates, shown as escapes (other controls are left to the printers)."""
    return _BAD_TEXT.sub(lambda bad: printable_line(bad.group()), message)


def _text_problem(text: str) -> str | None:
    """What makes `text` unusable, in the sentence's predicate form, or None."""
    bad = _BAD_TEXT.search(text)
    if bad is None:
        return None
    return (
        _NUL_RULE if bad.group() == "\x00" else f"{_SURROGATE_RULE} ({printable_line(bad.group())})"
    )


def _shown(value: str) -> str:
    """A value quoted in a problem, escaped so that the message itself is printable text."""
    return printable_line(value)


def _text_problems(value: object, shape: Shape, path: str) -> Iterator[str]:
    """Every string of the request (map keys included), walked along the model, at its field."""
    if shape.type_name == "structure":
        for member_name, member_shape in shape.members.items():
            member_value = value.get(member_name)  # type: ignore[attr-defined]
            if member_value is not None:
                yield from _text_problems(
                    member_value, member_shape, _child_path(path, member_name)
                )
    elif shape.type_name == "list":
        for index, item in enumerate(typing.cast(list, value)):
            yield from _text_problems(item, shape.member, _element_path(path, index))
    elif shape.type_name == "map":
        for key, item in typing.cast(dict, value).items():
            problem = _text_problem(key)
            if problem:
                yield violation(_shown(key), path, f"Map keys {problem}")
            yield from _text_problems(item, shape.value, f"{path}.{_shown(key)}")
    elif isinstance(value, str):
        problem = _text_problem(value)
        if problem:
            yield violation(_shown(value), path, f"Member {problem}")


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
