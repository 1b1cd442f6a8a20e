"""The times of a record: UTC, written as ISO 8601 with milliseconds
(`2026-12-01T10:00:00.000+00:00`)."""

from __future__ import annotations

from datetime import datetime, timezone


def now() -> datetime:
    return datetime.now(timezone.utc)


def timestamp(moment: datetime) -> str:
    return moment.isoformat(timespec="milliseconds")


def parse_timestamp(text: str) -> datetime:
    return datetime.fromisoformat(text)
