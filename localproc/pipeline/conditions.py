"""The conditions of a Condition step, every type the SageMaker Python SDK emits: Equals,
GreaterThan, GreaterThanOrEqualTo, LessThan, LessThanOrEqualTo, In, Not and Or (nested
freely). A step's Conditions list holds when all of them hold."""

from __future__ import annotations

import json
import operator
from collections.abc import Callable
from typing import Any

from localproc.pipeline.expressions import ExpressionError, Scope, evaluate

_COMPARISONS: dict[str, Callable[[Any, Any], bool]] = {
    "Equals": operator.eq,
    "GreaterThan": operator.gt,
    "GreaterThanOrEqualTo": operator.ge,
    "LessThan": operator.lt,
    "LessThanOrEqualTo": operator.le,
}


def all_hold(conditions: Any, scope: Scope) -> bool:
    if not isinstance(conditions, list):
        raise ExpressionError("Conditions must be a list")
    return all(holds(condition, scope) for condition in conditions)


def holds(condition: Any, scope: Scope) -> bool:
    if not isinstance(condition, dict):
        raise ExpressionError(f"a condition must be an object, not {json.dumps(condition)}")
    kind = condition.get("Type")
    if kind in _COMPARISONS:
        left = evaluate(condition.get("LeftValue"), scope)
        right = evaluate(condition.get("RightValue"), scope)
        return _compare(kind, left, right)
    if kind == "In":
        query = evaluate(condition.get("QueryValue"), scope)
        values = evaluate(condition.get("Values"), scope)
        if not isinstance(values, list):
            raise ExpressionError("an In condition needs a list of Values")
        return any(_compare("Equals", query, value) for value in values)
    if kind == "Not":
        return not holds(condition.get("Condition"), scope)
    if kind == "Or":
        inner = condition.get("Conditions")
        if not isinstance(inner, list):
            raise ExpressionError("an Or condition needs a list of Conditions")
        return any(holds(item, scope) for item in inner)
    raise ExpressionError(f"unknown condition Type {json.dumps(kind)}")


def _compare(kind: str, left: Any, right: Any) -> bool:
    left, right = _comparable(left, right)
    try:
        return _COMPARISONS[kind](left, right)
    except TypeError:
        raise ExpressionError(
            f"{kind} cannot compare {json.dumps(left)} with {json.dumps(right)}"
        ) from None


def _comparable(left: Any, right: Any) -> tuple[Any, Any]:
    """A number read from a property file compares with a number parameter; a number given as
    text (a String parameter, a JSON string) compares as a number with a number."""
    if _is_number(left) and isinstance(right, str):
        return left, _number(right, right)
    if isinstance(left, str) and _is_number(right):
        return _number(left, left), right
    return left, right


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _number(text: str, fallback: Any) -> Any:
    try:
        return float(text)
    except ValueError:
        return fallback
