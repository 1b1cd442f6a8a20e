"""ListProcessingJobs's request members become one ListQuery, for both front doors."""

from __future__ import annotations

from datetime import datetime, timezone

from localproc.records.listing import ListQuery
from localproc.service.jobs import list_query


def test_an_empty_request_is_the_apis_default_listing() -> None:
    assert list_query({}) == ListQuery(sort_by="CreationTime", sort_order="Ascending")


def test_the_cli_asks_for_the_newest_first_when_no_order_is_given() -> None:
    assert list_query({}, sort_order="Descending").sort_order == "Descending"
    assert list_query({"SortOrder": "Ascending"}, sort_order="Descending").sort_order == (
        "Ascending"
    )


def test_every_member_reaches_its_field() -> None:
    moment = datetime(2026, 11, 29, 10, tzinfo=timezone.utc)
    query = list_query(
        {
            "CreationTimeAfter": moment,
            "CreationTimeBefore": moment,
            "LastModifiedTimeAfter": moment,
            "LastModifiedTimeBefore": moment,
            "NameContains": "abc",
            "StatusEquals": "Completed",
            "SortBy": "Name",
            "SortOrder": "Descending",
            "MaxResults": 7,
            "NextToken": "token",
        }
    )
    assert query == ListQuery(
        creation_time_after=moment, creation_time_before=moment,
        last_modified_time_after=moment, last_modified_time_before=moment,
        name_contains="abc", status_equals="Completed", sort_by="Name",
        sort_order="Descending", max_results=7, next_token="token",
    )  # fmt: skip


def test_an_empty_next_token_starts_from_the_beginning() -> None:
    assert list_query({"NextToken": ""}).next_token is None
