"""Passes 1 and 2 of the validation (see validate.py), walked generically over a botocore shape:
botocore's client-side checks (unknown members, wrong JSON types) in ParamValidator's wording, and
the service's model constraints (required, length, range, enum, pattern) in the service's
`Value 'X' at 'a.b' failed to satisfy constraint: Member must ...` wording; plus the text rule
(every string valid Unicode without NUL), walked the same way. The wording helpers (`violation`,
`render`, field paths) live here because the service rules (service_rules.py) speak the same
sentences."""

from __future__ import annotations

import functools
import re
import typing
from collections.abc import Callable, Iterator, Mapping

from localproc.printable import printable_line

if typing.TYPE_CHECKING:
    from botocore.model import ListShape, MapShape, Shape, StructureShape

from localproc.payload.java_regex import compile_java_pattern

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
