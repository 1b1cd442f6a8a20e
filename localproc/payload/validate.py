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

This module runs the passes in order; model_checks.py holds passes 1 and 2, service_rules.py
pass 3, java_regex.py the translation of the model's Java patterns.
"""

from __future__ import annotations

import typing
from collections.abc import Callable, Iterable
from typing import Any

from localproc.errors import ParameterValidationError, ValidationException
from localproc.payload.java_regex import compile_java_pattern, python_pattern

# The passes live in their own modules (model_checks: passes 1 and 2 and the text rule;
# service_rules: pass 3; java_regex: the model's patterns); the names other modules and the
# tests import from here stay importable from here.
from localproc.payload.load import to_create_request
from localproc.payload.model_checks import (
    _client_side_problems,
    _constraint_problems,
    _encodable,
    _text_problems,
    render,
    violation,
)
from localproc.payload.service_model import create_request_shape
from localproc.payload.service_rules import LOCAL_PATH_PREFIX, _service_rule_problems

if typing.TYPE_CHECKING:
    from botocore.model import StructureShape

__all__ = [
    "LOCAL_PATH_PREFIX",
    "compile_java_pattern",
    "python_pattern",
    "render",
    "validate_create_request",
    "validate_operation_input",
    "violation",
]

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


def prepare_request(payload: dict[str, Any], name: str | None = None) -> dict[str, Any]:
    """Payload (Create request or Describe response) → validated CreateProcessingJob request,
    renamed to `name` if given."""
    request = to_create_request(payload)
    if name is not None:
        request["ProcessingJobName"] = name
    validate_create_request(request)
    return request
