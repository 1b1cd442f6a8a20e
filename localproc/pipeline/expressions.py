"""The expressions of a pipeline definition: `{"Get": "Parameters.X"}`, `{"Get": "Execution.X"}`,
`{"Get": "Steps.S.<property path>"}`, `{"Std:Join": {"On", "Values"}}` and
`{"Std:JsonGet": {"PropertyFile" | "S3Uri", "Path"}}`, evaluated against a Scope that the
executor fills in. Pure: step properties and property files come through the Scope."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

EXECUTION_VARIABLES = (
    "PipelineExecutionId",
    "PipelineExecutionArn",
    "StartDateTime",
    "CurrentDateTime",
    "PipelineName",
    "PipelineArn",
)
_FUNCTIONS = ("Get", "Std:Join", "Std:JsonGet")
# A property file (or an object Std:JsonGet reads) is a small report; one nested deeper is hostile:
# the execution record that keeps it must stay writable and readable.
MAX_DOCUMENT_DEPTH = 100
# How much text one Scope's expressions may produce (each value a Get or Std:JsonGet gives, each
# Std:Join's result): far more than a processing job's request can hold, so only a definition
# built to exhaust the server's memory (a long default referenced thousands of times) meets it.
MAX_EVALUATED_CHARS = 4 * 1024 * 1024
# One step of a property path: `.Name`, `[3]`, `['key']` or `["key"]`.
_SEGMENT = re.compile(r"\.?([A-Za-z_][A-Za-z0-9_]*)|\[(\d+)\]|\['([^']*)'\]|\[\"([^\"]*)\"\]")


class ExpressionError(Exception):
    """An expression cannot be evaluated; the message says which and why (a step's
    FailureReason)."""


@dataclass
class Scope:
    """What expressions can see during one execution."""

    parameters: dict[str, Any] = field(default_factory=dict)
    execution: dict[str, Any] = field(default_factory=dict)
    # step name -> its properties (a processing step's DescribeProcessingJob), None: not yet
    step_properties: Callable[[str], dict[str, Any] | None] = lambda _step: None
    # (step name, property file name) -> the file's parsed JSON
    property_file: Callable[[str, str], Any] = lambda step, name: _no_file(step, name)
    # an S3 URI -> the object's parsed JSON (Std:JsonGet with S3Uri)
    json_at: Callable[[str], Any] = lambda uri: _no_file(uri, "")
    spent: int = 0  # characters produced so far (MAX_EVALUATED_CHARS)

    def spend(self, characters: int) -> None:
        self.spent += characters
        if self.spent > MAX_EVALUATED_CHARS:
            raise ExpressionError(
                f"the expressions' values come to more than {MAX_EVALUATED_CHARS} characters"
            )


def json_document(data: bytes, where: str) -> Any:
    """A JSON document a container wrote, parsed; ExpressionError says why it cannot be used."""
    try:
        document = json.loads(data.decode("utf-8"))
    except RecursionError:
        document, too_deep = None, True
    except (UnicodeDecodeError, ValueError) as err:
        raise ExpressionError(f"{where} is not JSON: {err}") from None
    else:
        too_deep = nests_deeper_than(document, MAX_DOCUMENT_DEPTH)
    if too_deep:
        raise ExpressionError(
            f"{where} nests JSON arrays or objects more than {MAX_DOCUMENT_DEPTH} levels deep"
        )
    return document


def nests_deeper_than(value: Any, limit: int) -> bool:
    """Whether `value` nests lists and objects more than `limit` deep (walked without
    recursion)."""
    pending = [(value, 1)]
    while pending:
        item, depth = pending.pop()
        if not isinstance(item, (dict, list)):
            continue
        if depth > limit:
            return True
        children = item.values() if isinstance(item, dict) else item
        pending.extend((c, depth + 1) for c in children)
    return False


def _no_file(step: str, name: str) -> Any:
    raise ExpressionError(f"property file {name} of step {step} is not available")


def is_function(value: Any) -> bool:
    return isinstance(value, dict) and len(value) == 1 and next(iter(value)) in _FUNCTIONS


def evaluate(value: Any, scope: Scope) -> Any:
    """`value` with every expression in it replaced by its value."""
    if is_function(value):
        ((name, body),) = value.items()
        if name == "Std:Join":
            return _join(body, scope)
        found = _get(body, scope) if name == "Get" else _json_get(body, scope)
        scope.spend(_size(found))
        return found
    if isinstance(value, dict):
        return {key: evaluate(item, scope) for key, item in value.items()}
    if isinstance(value, list):
        return [evaluate(item, scope) for item in value]
    return value


def as_text(value: Any) -> str:
    """How a value reads inside Std:Join (and an ErrorMessage)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return ""
    if isinstance(value, (dict, list)):
        return json.dumps(value)
    return str(value)


def _get(path: Any, scope: Scope) -> Any:
    if not isinstance(path, str):
        raise ExpressionError(f"Get needs a path string, not {json.dumps(path)}")
    root, _, rest = path.partition(".")
    if root == "Parameters":
        if rest not in scope.parameters:
            raise ExpressionError(f"{path}: no parameter named '{rest}'")
        return scope.parameters[rest]
    if root == "Execution":
        if rest not in scope.execution:
            raise ExpressionError(
                f"{path}: not an execution variable ({', '.join(EXECUTION_VARIABLES)})"
            )
        return scope.execution[rest]
    if root == "Steps":
        step, _, member_path = rest.partition(".")
        properties = scope.step_properties(step)
        if properties is None:
            raise ExpressionError(f"{path}: step '{step}' has no properties (it has not succeeded)")
        return lookup(properties, member_path, path)
    raise ExpressionError(f"{path}: a Get path starts with Parameters, Execution or Steps")


def lookup(value: Any, member_path: str, whole: str) -> Any:
    """`member_path` (`A.B['key'][0].C`) looked up in `value`. In a list, `['key']` finds the
    item whose `…Name` member is `key` (ProcessingOutputConfig.Outputs['train'])."""
    for segment in path_segments(member_path, whole):
        if isinstance(segment, int):
            if not isinstance(value, list) or not -len(value) <= segment < len(value):
                raise ExpressionError(f"{whole}: no item [{segment}]")
            value = value[segment]
        elif isinstance(value, dict) and segment in value:
            value = value[segment]
        elif isinstance(value, list):
            value = _named_item(value, segment, whole)
        else:
            raise ExpressionError(f"{whole}: no property '{segment}'")
    return value


def _named_item(items: list[Any], name: str, whole: str) -> Any:
    for item in items:
        if isinstance(item, dict) and any(
            key.endswith("Name") and item[key] == name for key in item
        ):
            return item
    raise ExpressionError(f"{whole}: no item named '{name}'")


def path_segments(member_path: str, whole: str) -> list[str | int]:
    segments: list[str | int] = []
    position = 0
    while position < len(member_path):
        match = _SEGMENT.match(member_path, position)
        if match is None or (position and match.group(1) and member_path[position] != "."):
            raise ExpressionError(f"{whole}: cannot read the path at '{member_path[position:]}'")
        name, index, quoted, double = match.groups()
        segments.append(int(index) if index is not None else (name or quoted or double or ""))
        position = match.end()
    return segments


def _join(body: Any, scope: Scope) -> str:
    if not isinstance(body, dict) or not isinstance(body.get("Values"), list):
        raise ExpressionError("Std:Join needs On and a list of Values")
    on = as_text(body.get("On", ""))
    parts = [as_text(evaluate(item, scope)) for item in body["Values"]]
    # Counted before it is built: a long On between many values is long too.
    scope.spend(sum(map(len, parts)) + len(on) * max(len(parts) - 1, 0))
    return on.join(parts)


def _size(value: Any) -> int:
    if isinstance(value, str):
        return len(value)
    if isinstance(value, (dict, list)):
        return len(json.dumps(value))
    return 1


def _json_get(body: Any, scope: Scope) -> Any:
    if not isinstance(body, dict) or not isinstance(body.get("Path"), str):
        raise ExpressionError("Std:JsonGet needs a Path and a PropertyFile or S3Uri")
    source = body.get("PropertyFile")
    if source is not None:
        reference = source.get("Get") if isinstance(source, dict) else None
        parts = reference.split(".") if isinstance(reference, str) else []
        if len(parts) != 4 or parts[0] != "Steps" or parts[2] != "PropertyFiles":
            raise ExpressionError(
                f"Std:JsonGet PropertyFile must be Get Steps.STEP.PropertyFiles.NAME, not "
                f"{json.dumps(source)}"
            )
        document = scope.property_file(parts[1], parts[3])
        where = f"property file {parts[3]} of step {parts[1]}"
    else:
        uri = evaluate(body.get("S3Uri"), scope)
        if not isinstance(uri, str):
            raise ExpressionError("Std:JsonGet needs a PropertyFile or an S3Uri")
        document, where = scope.json_at(uri), uri
    return lookup(document, body["Path"], f"{where}, path {body['Path']}")


def step_references(value: Any) -> set[str]:
    """The steps whose properties (or property files) `value` reads: its data dependencies."""
    found: set[str] = set()
    pending = [value]
    while pending:
        item = pending.pop()
        if isinstance(item, dict):
            path = item.get("Get") if len(item) == 1 else None
            if isinstance(path, str) and path.startswith("Steps."):
                found.add(path.split(".")[1].split("[")[0])
            pending.extend(item.values())
        elif isinstance(item, list):
            pending.extend(item)
    return found


def preview(value: Any, scope: Scope) -> Any:
    """`value` with what can be known before a run evaluated (parameters), and everything else
    (other steps' properties, execution variables) shown as `<Steps.Prep.…>` (for `plan`)."""
    if is_function(value):
        try:
            return evaluate(value, scope)
        except ExpressionError:
            pass
        ((name, body),) = value.items()
        if name == "Get":
            return f"<{body}>"
        if name == "Std:Join" and isinstance(body, dict) and isinstance(body.get("Values"), list):
            try:
                return _join({**body, "Values": [preview(v, scope) for v in body["Values"]]}, scope)
            except ExpressionError as err:
                return f"<Std:Join: {err}>"
        return f"<{name} {json.dumps(body)[:200]}>"
    if isinstance(value, dict):
        return {key: preview(item, scope) for key, item in value.items()}
    if isinstance(value, list):
        return [preview(item, scope) for item in value]
    return value
