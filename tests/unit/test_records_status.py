"""JobStatus: the service's statuses and transitions, as data (no Docker, no network)."""

from __future__ import annotations

import itertools
import json

import pytest

from localproc.records.status import (
    ENDED,
    RUNNING,
    STATUSES,
    TRANSITIONS,
    IllegalTransition,
    JobStatus,
    check_transition,
)

# The service's transitions, written out pair by pair. Failed is reachable from Stopping too: a
# runner that dies while stopping is reconciled as Failed.
LEGAL = {
    ("InProgress", "Completed"),
    ("InProgress", "Failed"),
    ("InProgress", "Stopping"),
    ("Stopping", "Stopped"),
    ("Stopping", "Failed"),
}
ALL_PAIRS = list(itertools.product(list(JobStatus), repeat=2))


def test_the_values_are_the_services_in_its_order() -> None:
    assert [status.value for status in JobStatus] == [
        "InProgress",
        "Completed",
        "Failed",
        "Stopping",
        "Stopped",
    ]


def test_a_status_is_its_string() -> None:
    assert JobStatus.FAILED == "Failed"
    assert JobStatus("Stopping") is JobStatus.STOPPING
    assert f"is in status {JobStatus.COMPLETED}" == "is in status Completed"
    assert str(JobStatus.IN_PROGRESS) == "InProgress"
    assert f"{JobStatus.STOPPED:>8}" == " Stopped"
    assert (
        json.dumps({"ProcessingJobStatus": JobStatus.FAILED}) == '{"ProcessingJobStatus": "Failed"}'
    )
    assert {JobStatus.FAILED: 1}["Failed"] == 1


@pytest.mark.parametrize(("current", "new"), ALL_PAIRS, ids=lambda s: s.value)
def test_every_pair_is_legal_or_illegal_as_the_service_says(
    current: JobStatus, new: JobStatus
) -> None:
    legal = (current.value, new.value) in LEGAL
    assert current.can_become(new) is legal
    assert current.can_become(new.value) is legal  # a plain string as well
    if legal or current == new:
        check_transition("job", current.value, new.value)  # no error: the same one is no change
    else:
        with pytest.raises(IllegalTransition) as refused:
            check_transition("job", current.value, new.value)
        assert str(refused.value) == f"illegal job status change {current} -> {new} for job"


def test_no_status_becomes_itself_and_nothing_becomes_a_non_status() -> None:
    for status in JobStatus:
        assert not status.can_become(status)
        assert not status.can_become("Bogus")


def test_no_status_to_check_is_no_change() -> None:
    check_transition("job", None, "Completed")  # a record without a status yet
    check_transition("job", "Completed", None)  # a change that does not touch the status


def test_ended_and_running() -> None:
    assert {s for s in JobStatus if s.ended} == {
        JobStatus.COMPLETED,
        JobStatus.FAILED,
        JobStatus.STOPPED,
    }
    assert {s for s in JobStatus if s.running} == {JobStatus.IN_PROGRESS, JobStatus.STOPPING}
    for status in JobStatus:
        assert status.ended != status.running


def test_the_old_names_are_the_same_sets_of_strings() -> None:
    assert frozenset({"InProgress", "Completed", "Failed", "Stopping", "Stopped"}) == STATUSES
    assert frozenset({"Completed", "Failed", "Stopped"}) == ENDED
    assert frozenset({"InProgress", "Stopping"}) == RUNNING
    assert {
        "InProgress": frozenset({"Completed", "Failed", "Stopping"}),
        "Stopping": frozenset({"Stopped", "Failed"}),
    } == TRANSITIONS
    assert all(type(value) is str for value in STATUSES | ENDED | RUNNING)
    from localproc.records import store

    assert (store.STATUSES, store.ENDED, store.RUNNING) == (STATUSES, ENDED, RUNNING)
    assert store.TRANSITIONS == TRANSITIONS
    assert store.IllegalTransition is IllegalTransition
