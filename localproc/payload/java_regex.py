"""Java regular expressions in Python: the SageMaker model's `pattern` constraints are written
for java.util.regex, and the service matches them with it, so a pattern is translated to the
`regex` module's spelling of the same meaning before it is used (pass 2 of validate.py; the
CloudWatch Logs model's patterns go the same way)."""

from __future__ import annotations

import functools
import re
import typing

if typing.TYPE_CHECKING:
    from regex import Pattern


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
