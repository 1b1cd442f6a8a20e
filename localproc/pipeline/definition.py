"""A pipeline definition parsed into its parameters and steps, with every problem that makes it
unusable reported at once, in the service's words (ValidationException)."""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass, field
from typing import Any

from localproc.errors import ValidationException
from localproc.pipeline.expressions import nests_deeper_than, step_references

VERSION = "2020-12-01"
PARAMETER_TYPES = ("String", "Integer", "Float", "Boolean")
# The step types this host runs; every other type the service knows is refused (runnable_here).
RUNNABLE_TYPES = ("Processing", "Condition", "Fail")
KNOWN_TYPES = RUNNABLE_TYPES + (
    "Training", "Transform", "Tuning", "Model", "CreateModel", "RegisterModel", "Lambda",
    "Callback", "EMR", "QualityCheck", "ClarifyCheck", "AutoML", "EMRServerless", "Notebook",
)  # fmt: skip
# Deeper than any definition the SDK writes (nested conditions included); expressions are
# evaluated recursively, so a hostile definition must not reach Python's recursion limit.
MAX_DEPTH = 100
# Every change of a step rewrites the execution record, so an execution costs the square of its
# step count: 1000 (more than any pipeline people write) take about a minute, the 8000 a 1 MB
# definition can hold would take hours of a server's time.
MAX_STEPS = 1000
STEP_NAME = re.compile(r"[A-Za-z0-9\-_]{1,64}")


@dataclass(frozen=True)
class Parameter:
    name: str
    type: str
    default: Any = None  # None: no default, a value must be given at the start
    enum: tuple[Any, ...] | None = None


@dataclass(frozen=True)
class Step:
    name: str
    type: str
    arguments: dict[str, Any]
    depends_on: tuple[str, ...] = ()
    property_files: tuple[dict[str, Any], ...] = ()
    cache_config: dict[str, Any] | None = None
    retry_policies: tuple[dict[str, Any], ...] = ()
    display_name: str | None = None
    description: str | None = None
    # For a step inside a Condition step's IfSteps/ElseSteps: (condition step, "If" or "Else").
    branch: tuple[str, str] | None = None

    @property
    def runnable_here(self) -> bool:
        return self.type in RUNNABLE_TYPES


@dataclass(frozen=True)
class Definition:
    parameters: tuple[Parameter, ...]
    steps: dict[str, Step] = field(default_factory=dict)  # in definition order
    raw: dict[str, Any] = field(default_factory=dict)

    def parameter(self, name: str) -> Parameter | None:
        return next((p for p in self.parameters if p.name == name), None)

    def refused_steps(self) -> list[str]:
        """Why each step that cannot run here cannot (empty: every step can)."""
        return [
            f"step '{s.name}' is a {s.type} step; {cannot_run_reason(s.type)}"
            for s in self.steps.values()
            if not s.runnable_here
        ]


def cannot_run_reason(step_type: str) -> str:
    return (
        f"localproc runs only Processing, Condition and Fail steps, and a {step_type} step "
        "needs the SageMaker service (it is not a processing job)"
    )


def parse_definition(text: str) -> Definition:
    """The definition JSON (as CreatePipeline's PipelineDefinition carries it)."""
    try:
        raw = json.loads(text, parse_constant=_not_json)
    except RecursionError:
        raw = None  # nested past the parser's own limit: refused below as too deep
    except ValueError as err:
        raise ValidationException.single(f"PipelineDefinition is not valid JSON: {err}") from None
    if raw is None or nests_deeper_than(raw, MAX_DEPTH):
        raise ValidationException.single(
            f"PipelineDefinition nests JSON arrays or objects more than {MAX_DEPTH} levels deep."
        )
    if not isinstance(raw, dict):
        raise ValidationException.single("PipelineDefinition must be a JSON object.")
    problems: list[str] = []
    if raw.get("Version") != VERSION:
        problems.append(
            f"PipelineDefinition Version must be '{VERSION}', not {json.dumps(raw.get('Version'))}"
        )
    parameters = _parameters(raw.get("Parameters", []), problems)
    steps: dict[str, Step] = {}
    if not isinstance(raw.get("Steps"), list) or not raw["Steps"]:
        problems.append("PipelineDefinition must have a non-empty list of Steps")
    else:
        _collect_steps(raw["Steps"], None, steps, problems)
    if len(steps) > MAX_STEPS:
        problems.append(f"it has {len(steps)} steps; localproc runs at most {MAX_STEPS}")
    problems.extend(_dangling_dependencies(steps))
    if problems:
        raise ValidationException([f"Invalid pipeline definition: {p}" for p in problems])
    return Definition(tuple(parameters), steps, raw)


def _not_json(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON value")


def _parameters(items: Any, problems: list[str]) -> list[Parameter]:
    if not isinstance(items, list):
        problems.append("Parameters must be a list")
        return []
    parameters: list[Parameter] = []
    for index, item in enumerate(items):
        where = f"Parameters[{index}]"
        if not isinstance(item, dict) or not isinstance(item.get("Name"), str):
            problems.append(f"{where} must be an object with a Name")
            continue
        kind = item.get("Type", "String")
        if kind not in PARAMETER_TYPES:
            problems.append(f"{where} ({item['Name']}): Type must be one of {PARAMETER_TYPES}")
            continue
        if any(p.name == item["Name"] for p in parameters):
            problems.append(f"{where}: parameter name '{item['Name']}' is used twice")
        where = f"{where} ({item['Name']})"
        default, enum = item.get("DefaultValue"), item.get("EnumValues")
        if enum is not None and not isinstance(enum, list):
            problems.append(f"{where}: EnumValues must be a list")
            enum = None
        if default is not None and not _is_of_type(kind, default):
            problems.append(
                f"{where}: DefaultValue must be a{_an(kind)} {kind}, not {_shown(default)}"
            )
        elif default is not None and enum and default not in enum:
            problems.append(f"{where}: DefaultValue {_shown(default)} is not one of its EnumValues")
        parameters.append(Parameter(item["Name"], kind, default, tuple(enum) if enum else None))
    return parameters


def _is_of_type(kind: str, value: Any) -> bool:
    """Whether a DefaultValue is of its parameter's type, as the SDK writes them (a Float's may
    be a whole number)."""
    if isinstance(value, bool):
        return kind == "Boolean"
    if kind == "Integer":
        return isinstance(value, int)
    if kind == "Float":
        return isinstance(value, (int, float))
    return kind == "String" and isinstance(value, str)


def _an(kind: str) -> str:
    return "n" if kind[0] in "AEIOU" else ""


def _shown(value: Any) -> str:
    text = json.dumps(value)
    return text if len(text) <= 80 else text[:77] + "..."


def _collect_steps(
    items: Any, branch: tuple[str, str] | None, steps: dict[str, Step], problems: list[str]
) -> None:
    for index, item in enumerate(items if isinstance(items, list) else []):
        if not isinstance(item, dict) or not isinstance(item.get("Name"), str):
            problems.append(f"Steps[{index}] must be an object with a Name")
            continue
        name, kind = item["Name"], item.get("Type")
        if not STEP_NAME.fullmatch(name):
            problems.append(f"step name '{name}' must match [A-Za-z0-9\\-_]{{1,64}}")
        if name in steps:
            problems.append(f"step name '{name}' is used twice")
        if kind not in KNOWN_TYPES:
            problems.append(f"step '{name}' has an unknown Type {json.dumps(kind)}")
        arguments = item.get("Arguments", {})
        if not isinstance(arguments, dict):
            problems.append(f"step '{name}': Arguments must be an object")
            arguments = {}
        depends = item.get("DependsOn", [])
        if not isinstance(depends, list) or not all(isinstance(d, str) for d in depends):
            problems.append(f"step '{name}': DependsOn must be a list of step names")
            depends = []
        _check_step_members(name, item, problems)
        steps[name] = Step(
            name, str(kind), arguments, tuple(depends),
            tuple(item.get("PropertyFiles") or ()), item.get("CacheConfig"),
            tuple(item.get("RetryPolicies") or ()), item.get("DisplayName"),
            item.get("Description"), branch,
        )  # fmt: skip
        if kind == "Condition":
            if not isinstance(arguments.get("Conditions", []), list):
                problems.append(f"step '{name}': Conditions must be a list")
            for side in ("If", "Else"):
                branch_steps = arguments.get(f"{side}Steps", [])
                if not isinstance(branch_steps, list):
                    problems.append(f"step '{name}': {side}Steps must be a list of steps")
                _collect_steps(branch_steps, (name, side), steps, problems)


def _check_step_members(name: str, item: dict[str, Any], problems: list[str]) -> None:
    for member in ("PropertyFiles", "RetryPolicies"):
        value = item.get(member)
        if value is not None and not (
            isinstance(value, list) and all(isinstance(v, dict) for v in value)
        ):
            problems.append(f"step '{name}': {member} must be a list of objects")
    for index, policy in enumerate(_objects(item.get("RetryPolicies"))):
        problems.extend(
            f"step '{name}': RetryPolicies[{index}]: {p}" for p in _retry_policy_problems(policy)
        )
    for index, file in enumerate(_objects(item.get("PropertyFiles"))):
        members = ("PropertyFileName", "OutputName", "FilePath")
        if not all(isinstance(file.get(m), str) and file[m] for m in members):
            problems.append(
                f"step '{name}': PropertyFiles[{index}] needs PropertyFileName, OutputName and "
                "FilePath"
            )
    cache = item.get("CacheConfig")
    if cache is not None and not isinstance(cache, dict):
        problems.append(f"step '{name}': CacheConfig must be an object")
    elif cache and cache.get("ExpireAfter") is not None:
        from localproc.pipeline.policies import duration_seconds

        try:
            duration_seconds(cache["ExpireAfter"])
        except ValidationException as err:
            problems.append(f"step '{name}': {err.message}")


def _objects(value: Any) -> list[dict[str, Any]]:
    return [v for v in value if isinstance(v, dict)] if isinstance(value, list) else []


def _retry_policy_problems(policy: dict[str, Any]) -> list[str]:
    """What in one retry policy the executor could not apply (policies.retry_delay)."""
    problems = []
    types = policy.get("ExceptionType")
    if not isinstance(types, list) or not all(isinstance(t, str) for t in types):
        problems.append("ExceptionType must be a list of names")
    for member in ("IntervalSeconds", "BackoffRate", "MaxAttempts", "ExpireAfterMin"):
        value = policy.get(member)
        if value is None:
            continue
        if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
            problems.append(f"{member} must be a number of at least 0, not {_shown(value)}")
    return problems


def _dangling_dependencies(steps: dict[str, Step]) -> list[str]:
    problems = []
    for step in steps.values():
        arguments = {k: v for k, v in step.arguments.items() if k not in ("IfSteps", "ElseSteps")}
        for other in sorted(set(step.depends_on) | step_references(arguments)):
            if other not in steps:
                problems.append(
                    f"step '{step.name}' refers to step '{other}', which is not defined"
                )
    return problems


def resolve_parameters(definition: Definition, given: list[dict[str, Any]]) -> dict[str, Any]:
    """Every parameter's value for one execution: StartPipelineExecution's PipelineParameters
    (strings, as the API carries them) over the defaults, typed as each parameter is declared.
    ValidationException lists unknown names, values of the wrong type and missing values."""
    problems: list[str] = []
    values: dict[str, Any] = {p.name: p.default for p in definition.parameters}
    for item in given:
        name, text = item.get("Name"), item.get("Value")
        parameter = definition.parameter(str(name))
        if parameter is None:
            problems.append(f"Parameter '{name}' is not defined by the pipeline")
            continue
        try:
            values[parameter.name] = typed_value(parameter.type, str(text))
        except ValueError:
            problems.append(f"Parameter '{name}': '{text}' is not a valid {parameter.type} value")
    for parameter in definition.parameters:
        value = values[parameter.name]
        if value is None:
            problems.append(f"Parameter '{parameter.name}' has no default value and none was given")
        elif parameter.enum is not None and value not in parameter.enum:
            problems.append(f"Parameter '{parameter.name}' must be one of {list(parameter.enum)}")
    if problems:
        raise ValidationException(problems)
    return values


# What a number parameter's text may be: Python's int() and float() also take `1_000`, spaces,
# `nan` and `inf`, none of which is a number in JSON (and NaN would not survive the record).
_INTEGER = re.compile(r"[+-]?[0-9]+")
_FLOAT = re.compile(r"[+-]?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][+-]?[0-9]+)?")


def typed_value(kind: str, text: str) -> Any:
    if kind == "Integer":
        if not _INTEGER.fullmatch(text):
            raise ValueError(text)
        return int(text)
    if kind == "Float":
        if not _FLOAT.fullmatch(text) or not math.isfinite(float(text)):  # 1e999 is inf
            raise ValueError(text)
        return float(text)
    if kind == "Boolean":
        if text.lower() not in ("true", "false"):
            raise ValueError(text)
        return text.lower() == "true"
    return text
