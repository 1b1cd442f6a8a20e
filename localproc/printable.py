"""Text made safe to print on a terminal: what a payload or a container wrote, shown as data.

A job's name, its FailureReason, a container's log line or an error message naming a payload value
may hold escape sequences (`\\x1b[2J` clears the screen, `\\x1b]52;…` writes the clipboard, `\\r`
overwrites the line), bidirectional overrides that reorder what is shown, or lone surrogates that
no terminal encoding can carry. `printable` shows each such character as a visible escape instead
(`\\x1b`, `\\r`, `\\u202e`, `\\ud800`), so localproc never sends a control sequence it did not
write itself. Everything else, including non-ASCII letters and tabs, is kept. Saved logs and
`--json` output are not passed through here: the logs keep the container's bytes, and JSON escapes
controls itself.
"""

from __future__ import annotations

import re

# C0 controls but tab and newline, DEL, C1 controls, the line and paragraph separators, the
# bidirectional embeddings, overrides and isolates, and UTF-16 surrogates (only lone ones can be
# in a Python string).
_UNSAFE_CLASS = (
    "\\x00-\\x08\\x0b-\\x1f\\x7f-\\x9f\\u2028\\u2029\\u202a-\\u202e\\u2066-\\u2069\\ud800-\\udfff"
)
_UNSAFE = re.compile(f"[{_UNSAFE_CLASS}]")
_UNSAFE_OR_NEWLINE = re.compile(f"[{_UNSAFE_CLASS}\\n]")
_NAMED = {"\n": "\\n", "\r": "\\r"}


def printable(text: str, *, newlines: bool = True) -> str:
    """`text` with every control character but tab (and newline, unless `newlines` is False)
    replaced by a visible escape: `\\x1b`, `\\r`, `\\n`, `\\u202e`, `\\ud800`. Text without any
    is returned as is."""
    pattern = _UNSAFE if newlines else _UNSAFE_OR_NEWLINE
    if pattern.search(text) is None:
        return text
    return pattern.sub(_escape, text)


def printable_line(text: str) -> str:
    """`printable` for one cell or line of output: newlines are escaped too, so a value cannot
    start a line of its own (a forged table row or log line)."""
    return printable(text, newlines=False)


def _escape(match: re.Match[str]) -> str:
    char = match.group()
    named = _NAMED.get(char)
    if named is not None:
        return named
    code = ord(char)
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"
