"""Hostile text for the printing tests (unit and integration): control characters a payload, a
record or a container's output may hold."""

from __future__ import annotations

ESC = "\x1b"
HOSTILE = "\x1b[2J\x1b]52;c;ZXZpbA==\x07red\rover\x9b\u202eevil\x00"
