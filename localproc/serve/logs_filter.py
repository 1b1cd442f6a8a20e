"""FilterLogEvents' filterPattern: CloudWatch's patterns for unstructured events (terms,
"quoted phrases", ?any, -not) and `%regex%`, whose cost is bounded twice: what compiling it may
cost is checked before the engine sees it, and matching has a time budget per request."""

from __future__ import annotations

import re
import time
from collections.abc import Callable

import regex

from localproc.serve.logs_protocol import LogsError, _invalid

# Seconds of `%regex%` matching one FilterLogEvents request may spend in all: a pattern that
# backtracks exponentially is refused rather than run for minutes. The `regex` engine releases
# the GIL while it matches, so other requests are answered meanwhile.
REGEX_BUDGET_SECONDS = 1.5
# What compiling may cost, checked before the engine sees the pattern (compiling a{1000000000}
# alone allocates ~24 GB): a repeat count ({n}, {n,}, {n,m}) of at most MAX_REGEX_REPEAT, and at
# most MAX_REGEX_SIZE atoms once nested repeats are multiplied out; at most MAX_REGEX_CHARS
# characters (the model's bound on filterPattern).
MAX_REGEX_REPEAT = 1000
MAX_REGEX_SIZE = 10_000
MAX_REGEX_CHARS = 1024
_REPEAT = re.compile(r"\{(\d*)(?:(,)(\d*))?\}")


def _pattern(text: str) -> Callable[[str], bool]:
    """CloudWatch's filter pattern for unstructured events: terms that must all appear
    (case-sensitive), "quoted phrases", `?term` of which one must appear, `-term` that must
    not; `%regex%`. JSON (`{...}`) and space-delimited (`[...]`) patterns are not served."""
    text = text.strip()
    if not text:
        return lambda message: True
    if text[0] in "{[":
        raise _invalid(
            "filterPattern: JSON ({ ... }) and space-delimited ([ ... ]) patterns are not "
            'supported by localproc serve; use terms, "quoted phrases", ?any, -not or %regex%.'
        )
    if len(text) > 1 and text[0] == text[-1] == "%":
        return _regex_matcher(text[1:-1], REGEX_BUDGET_SECONDS)
    required, anyof, excluded = [], [], []
    for quoted, bare in re.findall(r'([?-]?"[^"]*")|(\S+)', text):
        term = quoted or bare
        kind = term[0] if term[0] in "?-" and len(term) > 1 else ""
        term = term[len(kind) :]
        if len(term) >= 2 and term[0] == term[-1] == '"':
            term = term[1:-1]
        {"": required, "?": anyof, "-": excluded}[kind].append(term)

    def matches(message: str) -> bool:
        return (
            all(t in message for t in required)
            and (not anyof or any(t in message for t in anyof))
            and not any(t in message for t in excluded)
        )

    return matches


def _regex_matcher(source: str, budget: float) -> Callable[[str], bool]:
    """`search` of the expression `source`, for one request: once the matching has taken
    `budget` seconds in all, the request is refused as InvalidParameterException. What the
    pattern would cost to compile is checked first, without compiling it."""
    _check_regex_cost(source)
    try:
        expression = regex.compile(source)
    except (regex.error, ValueError, OverflowError, MemoryError, RecursionError) as err:
        raise _invalid(f"filterPattern: invalid regular expression: {err}") from None
    remaining = budget

    def matches(message: str) -> bool:
        nonlocal remaining
        started = time.monotonic()
        try:
            if remaining <= 0:
                raise TimeoutError
            return expression.search(message, timeout=remaining) is not None
        except TimeoutError:
            raise _invalid(
                "filterPattern: the regular expression is too complex to evaluate (it took more "
                f"than {budget:g} s of matching); simplify it, or narrow the search with "
                "startTime, endTime or the log streams."
            ) from None
        finally:
            remaining -= time.monotonic() - started

    return matches


def _check_regex_cost(source: str) -> None:
    """Refuse, as InvalidParameterException, a pattern whose compiled form could be large: too
    long, a repeat count over MAX_REGEX_REPEAT, or over MAX_REGEX_SIZE atoms with nested repeats
    multiplied out. Conservative (an escape, a class or a group's syntax counts as atoms)."""

    def too_costly(why: str) -> LogsError:
        return _invalid(f"filterPattern: the regular expression is too costly to compile ({why}).")

    if len(source) > MAX_REGEX_CHARS:
        raise too_costly(f"more than {MAX_REGEX_CHARS} characters")
    stack = [[0, 0]]  # per open group: [its size so far, the size of its last atom]

    def atom(size: int) -> None:
        top = stack[-1]
        top[0] += size
        top[1] = size
        if top[0] > MAX_REGEX_SIZE:
            raise too_costly(f"more than {MAX_REGEX_SIZE} elements once repeats are expanded")

    position, length = 0, len(source)
    while position < length:
        char = source[position]
        if char == "\\":
            position = _after_escape(source, position)
            atom(1)
        elif char == "[":  # a class: one atom, its braces are no repeats
            position = _after_class(source, position)
            atom(1)
        elif char == "(":
            stack.append([0, 0])
            position += 1
        elif char == ")":
            position += 1
            if len(stack) > 1:
                atom(max(stack.pop()[0], 1))
        elif char in "*+?|":  # repeats that add no copies; alternatives add up
            position += 1
        elif (
            char == "{"
            and (found := _REPEAT.match(source, position))
            and (found.group(1) or found.group(3))
        ):
            counts = [int(g) for g in (found.group(1), found.group(3)) if g]
            count = max(counts)
            if count > MAX_REGEX_REPEAT:
                raise too_costly(f"a repeat count over {MAX_REGEX_REPEAT}")
            top = stack[-1]
            top[0] += top[1] * (count - 1) if count else 0
            top[1] *= max(count, 1)
            if top[0] > MAX_REGEX_SIZE:
                raise too_costly(f"more than {MAX_REGEX_SIZE} elements once repeats are expanded")
            position = found.end()
        else:
            position += 1
            atom(1)


def _after_escape(source: str, position: int) -> int:
    """Where the escape at `position` ends; `\\p{L}`, `\\x{41}` and the like take their braces along
    (they are no repeat)."""
    position += 2
    named = source[position - 1 : position] in ("p", "P", "N", "x", "u", "U", "g", "X")
    if named and source[position : position + 1] == "{":
        close = source.find("}", position)
        position = close + 1 if close >= 0 else position
    return position


def _after_class(source: str, position: int) -> int:
    """Where the character class opened at `position` ends (a leading `]` or `^]` is a member)."""
    length = len(source)
    position += 1
    if source[position : position + 1] == "^":
        position += 1
    if source[position : position + 1] == "]":
        position += 1
    while position < length and source[position] != "]":
        position += 2 if source[position] == "\\" else 1
    return position + 1
