"""JobRecord: typed records that read and write exactly what the dict records do (no Docker, no
network). Old records load; describe() is what describe_shape + the null-stripping gave; a typed
change writes the same bytes as the same dict change; and, against the store as it was before
the typed records (commit a8ebd15), records written by either load in the other."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from datetime import datetime, timezone
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from localproc.errors import DamagedRecord
from localproc.liveness import RunnerIdentity, process_identity
from localproc.payload.echo import service_echo
from localproc.records import store as store_module
from localproc.records.listing import ListQuery, list_page
from localproc.records.record import (
    PRIVATE_KEY,
    Bookkeeping,
    InstanceUsage,
    JobRecord,
    describe_shape,
    without_nulls,
)
from localproc.records.status import JobStatus
from localproc.records.store import JobStore

REPO = Path(__file__).resolve().parents[2]
BEFORE_TYPED_RECORDS = "a8ebd15"

# Records as the existing tests write them (tests/test_records.py, test_damaged_records.py,
# test_lifecycle.py), copied here so that this file does not depend on where those move.
RECORD_OF = {
    "ProcessingJobName": "job",
    "ProcessingJobArn": "arn:aws:sagemaker:us-east-1:000000000000:processing-job/job",
    "ProcessingJobStatus": "InProgress",
    "CreationTime": "2026-12-01T10:00:00.000+00:00",
}
GOOD = {
    "ProcessingJobName": "healthy",
    "ProcessingJobArn": "arn:aws:sagemaker:us-east-1:000000000000:processing-job/healthy",
    "ProcessingJobStatus": "Completed",
    "CreationTime": "2026-11-30T10:00:00.000+00:00",
    "LastModifiedTime": "2026-11-30T10:01:00.000+00:00",
    "ProcessingEndTime": "2026-11-30T10:01:00.000+00:00",
    "AppSpecification": {"ImageUri": "example"},
    "ProcessingResources": {
        "ClusterConfig": {"InstanceCount": 1, "InstanceType": "ml.t3.medium", "VolumeSizeInGB": 5}
    },
    "RoleArn": "arn:aws:iam::123456789012:role/R",
}
LISTED = {
    "ProcessingJobName": "job-01",
    "ProcessingJobArn": "arn:aws:sagemaker:us-east-1:0:processing-job/job-01",
    "ProcessingJobStatus": "Failed",
    "CreationTime": "2026-11-11T10:00:00.000+00:00",
    "LastModifiedTime": "2026-11-11T11:00:00.000+00:00",
}
DAMAGES = {
    "truncated": json.dumps(GOOD)[:40],
    "a-list": "[]",
    "garbage": "\x00\xff not json at all",
    "partial-object": json.dumps({"ProcessingJobName": "partial-object"}),
    "wrong-types": json.dumps({**GOOD, "ProcessingJobStatus": 7, "CreationTime": ["x"]}),
    "empty": "",
    "runner-without-start": json.dumps(
        {**GOOD, "ProcessingJobStatus": "InProgress", "Localproc": {"RunnerPid": 999999}}
    ),
    "negative-pid": json.dumps(
        {
            **GOOD,
            "ProcessingJobStatus": "InProgress",
            "Localproc": {"RunnerPid": -5, "RunnerStartTime": 1.0},
        }
    ),  # fmt: skip
    "app-a-list": json.dumps({**GOOD, "AppSpecification": [1, 2]}),
    "outputs-a-string": json.dumps({**GOOD, "ProcessingOutputConfig": {"Outputs": "x"}}),
    "inputs-odd": json.dumps({**GOOD, "ProcessingInputs": [1, None, {"InputName": 5}]}),
    "reason-a-number": json.dumps({**GOOD, "FailureReason": 123, "ExitMessage": ["x"]}),
    "count-a-string": json.dumps(
        {**GOOD, "ProcessingResources": {"ClusterConfig": {"InstanceCount": "2"}}}
    ),
    "bad-time": json.dumps({**GOOD, "ProcessingEndTime": "yesterday"}),
}
IDENTITY = {"RunnerPid": 4242, "RunnerStartTime": 1764590400.25, "RunnerHost": "laptop"}


def _request() -> dict[str, Any]:
    return json.loads((REPO / "fixtures" / "jobs" / "quickstart.json").read_text())


def run_record() -> dict[str, Any]:
    """A record as a run writes it (a8ebd15's prepare._initial_record and Runner's updates),
    with nulls for the absent optional members and usage in the bookkeeping."""
    created = "2026-12-01T10:00:00.000+00:00"
    request = _request()
    name = request["ProcessingJobName"]
    return {
        **service_echo(request),
        "ProcessingJobArn": f"arn:aws:sagemaker:us-east-1:000000000000:processing-job/{name}",
        "ProcessingJobStatus": "Completed",
        "CreationTime": created,
        "LastModifiedTime": "2026-12-01T10:00:09.000+00:00",
        PRIVATE_KEY: {
            **IDENTITY,
            "KeepStaging": False,
            "InstanceUsage": {"algo-1": {"PeakMemoryBytes": 52428800, "CpuSeconds": 0.5}},
            "UsageLines": ["algo-1: peak memory 50 MiB, CPU 0.5 s; smallest ml.t3 ..."],
        },
        "ProcessingStartTime": "2026-12-01T10:00:02.000+00:00",
        "ProcessingEndTime": "2026-12-01T10:00:09.000+00:00",
        "ExitMessage": "done\n",
    }


def reconciled_record() -> dict[str, Any]:
    """A dead runner's record after reconciling: FailureReason before ProcessingEndTime."""
    record = {
        k: v for k, v in run_record().items() if k not in ("ProcessingEndTime", "ExitMessage")
    }
    record[PRIVATE_KEY] = dict(IDENTITY)
    return {
        **record,
        "ProcessingJobStatus": "Failed",
        "FailureReason": "InternalServerError: the runner exited unexpectedly",
        "ProcessingEndTime": "2026-12-01T10:00:09.000+00:00",
    }


RECORDS = {
    "record_of": RECORD_OF,
    "good": GOOD,
    "listed": LISTED,
    "run": run_record(),
    "reconciled": reconciled_record(),
    "damaged-test-bookkeeping": {**GOOD, "Localproc": {"RunnerPid": 1, "RunnerStartTime": 2}},
}


def old_without_nulls(value: Any) -> Any:
    """service/jobs.py's _without_nulls as of a8ebd15."""
    if isinstance(value, dict):
        return {k: old_without_nulls(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [old_without_nulls(v) for v in value]
    return value


def old_describe_shape(record: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in record.items() if key != "Localproc"}


@pytest.mark.parametrize("name", sorted(RECORDS))
def test_a_record_round_trips_to_the_same_json(name: str) -> None:
    record = RECORDS[name]
    typed = JobRecord.from_dict(record)
    assert json.dumps(typed.to_dict(), indent=2) == json.dumps(record, indent=2)
    assert JobRecord.from_dict(typed.to_dict()) == typed


@pytest.mark.parametrize("name", sorted(RECORDS))
def test_describe_is_describe_shape_without_nulls(name: str) -> None:
    record = RECORDS[name]
    expected = old_without_nulls(old_describe_shape(record))
    described = JobRecord.from_dict(record).describe()
    assert json.dumps(described) == json.dumps(expected)  # the same members in the same order
    assert json.dumps(without_nulls(describe_shape(record))) == json.dumps(expected)
    assert json.dumps(describe_shape(record)) == json.dumps(old_describe_shape(record))
    assert "Localproc" not in described


def test_the_typed_views() -> None:
    typed = JobRecord.from_dict(run_record())
    assert typed.name == "quickstart"
    assert typed.arn.endswith(":processing-job/quickstart")
    assert typed.status is JobStatus.COMPLETED
    assert typed.creation_time == datetime(2026, 12, 1, 10, tzinfo=timezone.utc)
    assert typed.start_time == datetime(2026, 12, 1, 10, 0, 2, tzinfo=timezone.utc)
    assert typed.end_time == datetime(2026, 12, 1, 10, 0, 9, tzinfo=timezone.utc)
    assert typed.last_modified_time == typed.end_time
    assert (typed.failure_reason, typed.exit_message) == (None, "done\n")
    assert typed.instance_count == 1
    assert typed.runner == RunnerIdentity(4242, 1764590400.25, "laptop")
    assert typed.keep_staging is False
    assert typed.instance_usage == {"algo-1": InstanceUsage(52428800, 0.5)}
    assert typed.usage_lines == ["algo-1: peak memory 50 MiB, CPU 0.5 s; smallest ml.t3 ..."]
    bare = JobRecord.from_dict(RECORD_OF)
    assert bare.bookkeeping is None and bare.runner is None and not bare.runner_alive()
    assert (bare.start_time, bare.end_time, bare.instance_count) == (None, None, None)
    assert bare.last_modified_time == bare.creation_time
    assert (bare.usage_lines, bare.instance_usage, bare.keep_staging) == ([], {}, False)


def test_bookkeeping_it_does_not_read_is_kept() -> None:
    odd = {"RunnerPid": 7, "Future": {"x": 1}, "InstanceUsage": {"algo-1": "?"}, "KeepStaging": 1}
    kept = Bookkeeping.from_record(odd)
    assert kept is not None and kept.runner is None and kept.instance_usage is None
    assert kept.to_record() == odd


def test_a_new_record_is_what_a_run_wrote_first() -> None:
    request = _request()
    arn = "arn:aws:sagemaker:us-east-1:000000000000:processing-job/quickstart"
    created = datetime(2026, 12, 1, 10, tzinfo=timezone.utc)
    identity = RunnerIdentity(**{"pid": 4242, "start_time": 1764590400.25, "host": "laptop"})
    old = {  # a8ebd15's prepare._initial_record
        **service_echo(request),
        "ProcessingJobArn": arn,
        "ProcessingJobStatus": "InProgress",
        "CreationTime": "2026-12-01T10:00:00.000+00:00",
        "LastModifiedTime": "2026-12-01T10:00:00.000+00:00",
        PRIVATE_KEY: {**IDENTITY, "KeepStaging": True},
    }
    new = JobRecord.new(service_echo(request), arn, identity, keep_staging=True, created=created)
    assert json.dumps(new.to_dict(), indent=2) == json.dumps(old, indent=2)


def test_this_process_is_alive_and_labelled_as_before() -> None:
    me = RunnerIdentity.current()
    assert me.alive()
    assert me.to_record() == {**process_identity(), "RunnerStartTime": me.start_time}
    info = me.to_record()
    assert me.label() == f"{info['RunnerPid']}/{info['RunnerStartTime']}/{info['RunnerHost']}"
    assert RunnerIdentity.from_label(me.label()) == me
    assert RunnerIdentity.from_label("x/y/z") is None
    assert not RunnerIdentity(me.pid, me.start_time - 100, me.host).alive()  # a reused PID
    assert RunnerIdentity(me.pid, 1.0, "another-host").alive()  # cannot be checked: alive
    typed = JobRecord.from_dict({**RECORD_OF, PRIVATE_KEY: info})
    assert typed.runner_alive()


@pytest.fixture
def fixed_now(monkeypatch: pytest.MonkeyPatch) -> datetime:
    moment = datetime(2026, 12, 1, 12, tzinfo=timezone.utc)
    monkeypatch.setattr(store_module, "now", lambda: moment)
    return moment


def _store_with(tmp_path: Path, where: str, record: dict[str, Any]) -> JobStore:
    store = JobStore(tmp_path / where)
    store.claim(record["ProcessingJobName"], "arn")
    store.create(record["ProcessingJobName"], record)
    return store


def test_typed_changes_write_what_the_dict_changes_write(
    tmp_path: Path, fixed_now: datetime
) -> None:
    start = {k: v for k, v in run_record().items() if not k.startswith("Processing") or k in (
        "ProcessingJobName", "ProcessingJobArn", "ProcessingInputs", "ProcessingOutputConfig",
        "ProcessingResources")}  # fmt: skip
    start.update(
        ProcessingJobStatus="InProgress", **{PRIVATE_KEY: {**IDENTITY, "KeepStaging": False}}
    )
    name = start["ProcessingJobName"]
    by_dict, typed = _store_with(tmp_path, "dict", start), _store_with(tmp_path, "typed", start)
    moment = datetime(2026, 12, 1, 10, 0, 2, tzinfo=timezone.utc)
    by_dict.update(name, {"ProcessingStartTime": "2026-12-01T10:00:02.000+00:00"})
    typed.update_record(name, start_time=moment)
    usage = {"algo-1": {"PeakMemoryBytes": 5, "CpuSeconds": None}}
    private = {**start[PRIVATE_KEY], "InstanceUsage": usage, "UsageLines": ["a"]}
    by_dict.update(name, {PRIVATE_KEY: private})
    typed.update_record(name, instance_usage={"algo-1": InstanceUsage(5)}, usage_lines=["a"])
    by_dict.request_stop(name)
    assert typed.request_stop_record(name).status is JobStatus.STOPPING
    end = {"ProcessingJobStatus": "Stopped", "ProcessingEndTime": "2026-12-01T10:00:09.000+00:00",
           "FailureReason": None, "ExitMessage": "bye"}  # fmt: skip
    by_dict.update(name, end)
    ended = typed.update_record(
        name,
        status=JobStatus.STOPPED,
        end_time=datetime(2026, 12, 1, 10, 0, 9, tzinfo=timezone.utc),
        failure_reason=None,
        exit_message="bye",
    )
    files = ("record.json", ".record-spare")
    assert [(by_dict.job_dir(name) / f).read_bytes() for f in files] == [
        (typed.job_dir(name) / f).read_bytes() for f in files
    ]
    assert ended == typed.load_record(name) == JobRecord.from_dict(by_dict.load(name))
    assert ended.last_modified_time == fixed_now
    with pytest.raises(store_module.IllegalTransition):
        typed.update_record(name, status=JobStatus.IN_PROGRESS)
    with pytest.raises(TypeError, match="not a change of a job record: colour"):
        typed.update_record(name, colour="red")


def test_with_changes_is_update_without_the_store() -> None:
    typed = JobRecord.from_dict({**RECORD_OF, "FailureReason": "x"})
    changed = typed.with_changes(status=JobStatus.FAILED, failure_reason=None, usage_lines=["u"])
    assert changed.status is JobStatus.FAILED
    assert "FailureReason" not in changed.members
    assert changed.to_dict()[PRIVATE_KEY] == {"UsageLines": ["u"]}
    assert typed.status is JobStatus.IN_PROGRESS  # the original is unchanged


def test_a_created_typed_record_loads(tmp_path: Path) -> None:
    store = JobStore(tmp_path)
    store.claim("quickstart", "arn")
    record = JobRecord.from_dict(run_record())
    store.create_record("quickstart", record)
    assert store.load_record("quickstart") == record
    assert store.load("quickstart") == run_record()


def test_listing_takes_typed_records() -> None:
    query = ListQuery(sort_by="Name")
    dicts = [run_record(), GOOD, LISTED]
    assert list_page([JobRecord.from_dict(r) for r in dicts], query) == list_page(dicts, query)


@pytest.mark.parametrize("damage", sorted(DAMAGES))
def test_a_damaged_record_is_told_apart(tmp_path: Path, damage: str) -> None:
    folder = tmp_path / "jobs" / damage
    folder.mkdir(parents=True)
    (folder / "record.json").write_text(DAMAGES[damage], errors="surrogateescape")
    with pytest.raises(DamagedRecord):
        JobStore(tmp_path).load(damage)


# -- against the store as it was before the typed records -----------------------------------------
@pytest.fixture(scope="module")
def old_store() -> ModuleType:
    try:
        source = subprocess.run(
            ["git", "-C", str(REPO), "show", f"{BEFORE_TYPED_RECORDS}:localproc/records/store.py"],
            capture_output=True, text=True, check=True,
        ).stdout  # fmt: skip
    except (OSError, subprocess.CalledProcessError):
        pytest.skip(f"no git history with {BEFORE_TYPED_RECORDS} here")
    spec = importlib.util.spec_from_loader("localproc_store_before_typed_records", loader=None)
    assert spec is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    exec(compile(source, "store.py@a8ebd15", "exec"), module.__dict__)
    return module


@pytest.mark.parametrize("damage", sorted(DAMAGES))
def test_damaged_records_are_told_apart_in_the_same_words(
    tmp_path: Path, old_store: ModuleType, damage: str
) -> None:
    messages = []
    for store in (JobStore(tmp_path), old_store.JobStore(tmp_path)):
        folder = tmp_path / "jobs" / damage
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "record.json").write_text(DAMAGES[damage], errors="surrogateescape")
        with pytest.raises(DamagedRecord) as damaged:
            store.load(damage)
        messages.append(str(damaged.value))
    assert messages[0] == messages[1]


def test_records_written_by_either_store_load_in_the_other(
    tmp_path: Path, old_store: ModuleType
) -> None:
    new, old = JobStore(tmp_path / "new"), old_store.JobStore(tmp_path / "old")
    for name, record in [("quickstart", run_record()), ("job", RECORD_OF)]:
        new.claim(name, "arn")
        new.create_record(name, JobRecord.from_dict(record))
        new.update_record(name, exit_message="typed")
        old.claim(name, "arn")
        old.create(name, record)
        old.update(name, {"ExitMessage": "typed"})
        assert old_store.JobStore(tmp_path / "new").load(name) == new.load(name)
        assert JobStore(tmp_path / "old").load_record(name).exit_message == "typed"
        assert new.load(name) | {"LastModifiedTime": 0} == old.load(name) | {"LastModifiedTime": 0}
