"""ListProcessingJobs semantics over job records: filters, sort, and paging with NextToken.
Pure: records in (dicts as JobStore.load gives them, or JobRecord), a page out."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from localproc.errors import ValidationException
from localproc.records.record import JobRecord
from localproc.records.status import JobStatus
from localproc.records.times import parse_timestamp

SUMMARY_FIELDS = (
    "ProcessingJobName",
    "ProcessingJobArn",
    "CreationTime",
    "ProcessingEndTime",
    "LastModifiedTime",
    "ProcessingJobStatus",
    "FailureReason",
    "ExitMessage",
)
SORT_FIELDS = {
    "Name": "ProcessingJobName",
    "CreationTime": "CreationTime",
    "Status": "ProcessingJobStatus",
}
STATUSES = tuple(status.value for status in JobStatus)  # in the service's order


@dataclass(frozen=True)
class ListQuery:
    creation_time_after: datetime | None = None
    creation_time_before: datetime | None = None
    last_modified_time_after: datetime | None = None
    last_modified_time_before: datetime | None = None
    name_contains: str | None = None
    status_equals: str | None = None
    sort_by: str = "CreationTime"
    sort_order: str = "Descending"
    max_results: int | None = None
    next_token: str | None = None

    def check(self) -> None:
        problems = []
        if self.sort_by not in SORT_FIELDS:
            problems.append(_enum_problem(self.sort_by, "sortBy", list(SORT_FIELDS)))
        if self.sort_order not in ("Ascending", "Descending"):
            problems.append(
                _enum_problem(self.sort_order, "sortOrder", ["Ascending", "Descending"])
            )
        if self.status_equals is not None and self.status_equals not in STATUSES:
            problems.append(_enum_problem(self.status_equals, "statusEquals", list(STATUSES)))
        if self.max_results is not None and not 1 <= self.max_results <= 100:
            bound = (
                "greater than or equal to 1"
                if self.max_results < 1
                else "less than or equal to 100"
            )
            problems.append(
                f"Value '{self.max_results}' at 'maxResults' failed to satisfy constraint: "
                f"Member must have value {bound}"
            )
        if problems:
            raise ValidationException(problems)


def _enum_problem(value: str, field: str, allowed: list[str]) -> str:
    return (
        f"Value '{value}' at '{field}' failed to satisfy constraint: "
        f"Member must satisfy enum value set: [{', '.join(allowed)}]"
    )


def summary(record: dict[str, Any] | JobRecord) -> dict[str, Any]:
    members = record.members if isinstance(record, JobRecord) else record
    return {key: members[key] for key in SUMMARY_FIELDS if members.get(key) is not None}


def list_page(records: Iterable[dict[str, Any] | JobRecord], query: ListQuery) -> dict[str, Any]:
    """`{"ProcessingJobSummaries": [...], "NextToken": "..."}` (NextToken only when more remain)."""
    query.check()
    members = (r.to_dict() if isinstance(r, JobRecord) else r for r in records)
    chosen = [r for r in members if _matches(r, query)]
    field = SORT_FIELDS[query.sort_by]
    chosen.sort(
        key=lambda r: (r.get(field) or "", r["ProcessingJobName"]),
        reverse=query.sort_order == "Descending",
    )
    start = _decode_token(query.next_token) if query.next_token else 0
    limit = query.max_results or 100
    page = chosen[start : start + limit]
    result: dict[str, Any] = {"ProcessingJobSummaries": [summary(r) for r in page]}
    if start + limit < len(chosen):
        result["NextToken"] = _encode_token(start + limit)
    return result


def _matches(record: dict[str, Any], query: ListQuery) -> bool:
    if query.status_equals and record.get("ProcessingJobStatus") != query.status_equals:
        return False
    if (
        query.name_contains
        and query.name_contains.lower() not in record["ProcessingJobName"].lower()
    ):
        return False
    created = parse_timestamp(record["CreationTime"])
    modified = parse_timestamp(record.get("LastModifiedTime") or record["CreationTime"])
    return (
        (query.creation_time_after is None or created > query.creation_time_after)
        and (query.creation_time_before is None or created < query.creation_time_before)
        and (query.last_modified_time_after is None or modified > query.last_modified_time_after)
        and (query.last_modified_time_before is None or modified < query.last_modified_time_before)
    )


def _encode_token(offset: int) -> str:
    return base64.urlsafe_b64encode(json.dumps({"offset": offset}).encode()).decode()


def _decode_token(token: str) -> int:
    try:
        offset = json.loads(base64.urlsafe_b64decode(token.encode()))["offset"]
        if isinstance(offset, int) and offset >= 0:
            return offset
    except (ValueError, KeyError, TypeError):
        pass
    raise ValidationException.single(f"Invalid pagination token: '{token}'.")
