"""The pipeline executor's scheduling with a fake job backend (no engine): parallel steps bounded,
no new step after a failure, stop, retries as the policies say, cache hits, Fail messages, and
an execution whose owner died put right when read."""

from __future__ import annotations

import json
import threading
from pathlib import Path
from typing import Any

import pytest

from localproc.errors import ValidationException
from localproc.service.pipeline_executions import PipelineExecutions
from localproc.service.pipeline_executor import JobBackend
from localproc.service.pipelines import PipelineCatalog

# Long enough (at 0.01 s a look) that parallel steps' jobs overlap even on a loaded host.
LOOKS_TO_END = 15


class FakeJobs:
    """Jobs that complete on their LOOKS_TO_END-th look, unless `outcomes` says otherwise."""

    def __init__(self, outcomes: dict[str, list[str]] | None = None, hold: set[str] | None = None):
        self.outcomes = outcomes or {}  # step name -> statuses of its successive attempts
        self.hold = hold or set()  # steps whose jobs run until stopped
        self.started: list[dict[str, Any]] = []
        self.looks: dict[str, int] = {}
        self.stopped: list[str] = []
        self.ended: set[str] = set()
        self.running = 0
        self.most_running = 0
        self.lock = threading.Lock()

    def step_of(self, name: str) -> str:
        return name.split("-")[2]

    def start(self, request: dict[str, Any]) -> str:
        with self.lock:
            self.started.append(request)
            self.running += 1
            self.most_running = max(self.most_running, self.running)
        return f"arn:job/{request['ProcessingJobName']}"

    def describe(self, name: str) -> dict[str, Any]:
        step = self.step_of(name)
        with self.lock:
            self.looks[name] = self.looks.get(name, 0) + 1
            if step in self.hold and name not in self.stopped:
                status = "InProgress"
            elif name in self.stopped:
                status = "Stopped"
            elif self.looks[name] < LOOKS_TO_END:
                status = "InProgress"
            else:
                attempts = [r for r in self.started if self.step_of(r["ProcessingJobName"]) == step]
                plan = self.outcomes.get(step, [])
                index = [r["ProcessingJobName"] for r in attempts].index(name)
                status = plan[index] if index < len(plan) else "Completed"
            if status != "InProgress" and name not in self.ended:
                self.ended.add(name)
                self.running -= 1
        reason = "InternalServerError: lost" if status == "Failed" else None
        return {
            "ProcessingJobName": name,
            "ProcessingJobStatus": status,
            "FailureReason": reason,
            "ProcessingOutputConfig": {
                "Outputs": [{"OutputName": "out", "S3Output": {"S3Uri": f"s3://b/{step}"}}]
            },
        }

    def stop(self, name: str) -> None:
        with self.lock:
            self.stopped.append(name)

    def backend(self) -> JobBackend:
        reports = {"s3://b/Eval/report.json": json.dumps({"score": 0.9}).encode()}
        return JobBackend(self.start, self.describe, self.stop, lambda uri, limit: reports[uri])


def processing(name: str, **members: Any) -> dict[str, Any]:
    arguments = members.pop("Arguments", {})
    return {"Name": name, "Type": "Processing", "Arguments": {"Tag": name, **arguments}, **members}


def service(tmp_path: Path, jobs: FakeJobs, max_jobs: int = 4) -> PipelineExecutions:
    catalog = PipelineCatalog(tmp_path, "us-east-1", lambda uri, limit: b"")
    return PipelineExecutions(catalog, jobs.backend(), max_jobs, poll_seconds=0.01)


def create(svc: PipelineExecutions, steps: list[dict[str, Any]], **extra: Any) -> None:
    text = json.dumps(
        {"Version": "2020-12-01", "Parameters": extra.pop("parameters", []), "Steps": steps}
    )
    svc.catalog.create(
        {
            "PipelineName": "p",
            "PipelineDefinition": text,
            "RoleArn": "r",
            "ClientRequestToken": "t",
            **extra,
        }
    )


def run(svc: PipelineExecutions, token: str = "s1", **extra: Any) -> dict[str, Any]:
    arn = svc.start({"PipelineName": "p", "ClientRequestToken": token, **extra}, background=False)
    described = svc.describe(arn)
    steps = svc.steps({**arn, "SortOrder": "Ascending"})["PipelineExecutionSteps"]
    return {"arn": arn["PipelineExecutionArn"], "status": described["PipelineExecutionStatus"],
            "steps": {s["StepName"]: s for s in steps}}  # fmt: skip


def test_independent_steps_run_in_parallel_up_to_the_limit_and_dependents_wait(
    tmp_path: Path,
) -> None:
    jobs = FakeJobs()
    svc = service(tmp_path, jobs, max_jobs=2)
    create(
        svc, [processing(f"S{i}") for i in range(4)] + [processing("Last", DependsOn=["S0", "S3"])]
    )
    result = run(svc)
    assert result["status"] == "Succeeded"
    assert jobs.most_running == 2
    assert [r["Tag"] for r in jobs.started][-1] == "Last"
    assert all(s["StepStatus"] == "Succeeded" for s in result["steps"].values())
    assert result["steps"]["S0"]["Metadata"]["ProcessingJob"]["Arn"].startswith(
        "arn:job/pipelines-"
    )


def test_a_failed_step_fails_the_execution_and_nothing_after_it_starts(tmp_path: Path) -> None:
    jobs = FakeJobs(outcomes={"A": ["Failed"]})
    svc = service(tmp_path, jobs)
    create(svc, [processing("A"), processing("B", DependsOn=["A"])])
    result = run(svc)
    assert result["status"] == "Failed"
    assert result["steps"]["A"]["FailureReason"] == "InternalServerError: lost"
    assert "B" not in result["steps"]


def test_a_retry_policy_retries_an_internal_error_with_a_new_job(tmp_path: Path) -> None:
    jobs = FakeJobs(outcomes={"A": ["Failed", "Completed"]})
    svc = service(tmp_path, jobs)
    policy = {
        "ExceptionType": ["SageMaker.JOB_INTERNAL_ERROR"],
        "IntervalSeconds": 0.01,
        "MaxAttempts": 2,
    }
    create(svc, [processing("A", RetryPolicies=[policy])])
    result = run(svc)
    assert result["status"] == "Succeeded"
    assert result["steps"]["A"]["AttemptCount"] == 2
    names = [r["ProcessingJobName"] for r in jobs.started]
    assert len(set(names)) == 2


def test_the_second_execution_reuses_the_cached_step_and_its_properties(tmp_path: Path) -> None:
    jobs = FakeJobs()
    svc = service(tmp_path, jobs)
    source = {"Get": "Steps.A.ProcessingOutputConfig.Outputs['out'].S3Output.S3Uri"}
    create(svc, [
        processing("A", CacheConfig={"Enabled": True, "ExpireAfter": "PT1H"}),
        processing("B", Arguments={"Input": source}),
    ])  # fmt: skip
    first = run(svc, "one")
    second = run(svc, "two")
    assert second["status"] == "Succeeded"
    assert second["steps"]["A"]["CacheHitResult"] == {"SourcePipelineExecutionArn": first["arn"]}
    assert second["steps"]["A"]["Metadata"] == first["steps"]["A"]["Metadata"]
    assert [r["Tag"] for r in jobs.started] == ["A", "B", "B"]
    assert jobs.started[-1]["Input"] == "s3://b/A"


def test_condition_on_a_property_file_chooses_the_fail_branch_with_its_message(
    tmp_path: Path,
) -> None:
    jobs = FakeJobs()
    svc = service(tmp_path, jobs)
    score = {
        "Std:JsonGet": {"PropertyFile": {"Get": "Steps.Eval.PropertyFiles.Report"}, "Path": "score"}
    }
    fail = {
        "Name": "TooLow",
        "Type": "Fail",
        "Arguments": {
            "ErrorMessage": {
                "Std:Join": {"On": " ", "Values": ["score below", {"Get": "Parameters.Min"}]}
            }
        },
    }
    check = {"Name": "Check", "Type": "Condition", "Arguments": {
        "Conditions": [{"Type": "GreaterThanOrEqualTo", "LeftValue": score,
                        "RightValue": {"Get": "Parameters.Min"}}],
        "IfSteps": [processing("Ship")], "ElseSteps": [fail]}}  # fmt: skip
    report = {"PropertyFileName": "Report", "OutputName": "out", "FilePath": "report.json"}
    evaluate = processing("Eval", PropertyFiles=[report])
    create(
        svc, [evaluate, check], parameters=[{"Name": "Min", "Type": "Float", "DefaultValue": 0.5}]
    )
    passed = run(svc, "a")
    assert passed["status"] == "Succeeded"
    assert passed["steps"]["Check"]["Metadata"] == {"Condition": {"Outcome": "True"}}
    assert "Ship" in passed["steps"] and "TooLow" not in passed["steps"]
    failed = run(svc, "b", PipelineParameters=[{"Name": "Min", "Value": "0.95"}])
    assert failed["status"] == "Failed"
    assert failed["steps"]["TooLow"]["Metadata"] == {"Fail": {"ErrorMessage": "score below 0.95"}}
    assert failed["steps"]["TooLow"]["FailureReason"] == "score below 0.95"


def test_a_stop_request_stops_the_running_job_and_the_execution_ends_stopped(
    tmp_path: Path,
) -> None:
    jobs = FakeJobs(hold={"Slow"})
    svc = service(tmp_path, jobs)
    create(svc, [processing("Slow"), processing("After", DependsOn=["Slow"])])
    arn = svc.start({"PipelineName": "p", "ClientRequestToken": "x"})
    while not jobs.started:
        threading.Event().wait(0.01)
    assert svc.describe(arn)["PipelineExecutionStatus"] == "Executing"
    svc.stop(arn)
    svc.join(timeout=10)
    assert svc.describe(arn)["PipelineExecutionStatus"] == "Stopped"
    [entry] = svc.steps(arn)["PipelineExecutionSteps"]
    assert entry["StepStatus"] == "Stopped"
    assert len(jobs.stopped) == 1
    with pytest.raises(ValidationException, match="only an Executing execution can be stopped"):
        svc.stop(arn)


def test_the_same_client_request_token_starts_one_execution(tmp_path: Path) -> None:
    svc = service(tmp_path, FakeJobs())
    create(svc, [processing("A")])
    first = svc.start({"PipelineName": "p", "ClientRequestToken": "same"}, background=False)
    again = svc.start({"PipelineName": "p", "ClientRequestToken": "same"}, background=False)
    assert first == again
    assert len(svc.store.execution_ids()) == 1


def test_an_execution_whose_owner_died_is_failed_when_read_and_can_be_retried(
    tmp_path: Path,
) -> None:
    jobs = FakeJobs()
    svc = service(tmp_path, jobs)
    create(svc, [processing("A"), processing("B", DependsOn=["A"])])
    arn = svc.start({"PipelineName": "p", "ClientRequestToken": "x"}, background=False)
    execution_id = arn["PipelineExecutionArn"].rsplit("/", 1)[-1]
    record = svc.store.load_execution(execution_id)
    assert record is not None
    # As a server killed during B would have left it: B running, the owner a process long gone.
    record["Steps"][1].update(StepStatus="Executing", EndTime=None)
    record.update(
        PipelineExecutionStatus="Executing", Owner={"RunnerPid": 999999, "RunnerStartTime": 1.0}
    )
    svc.store.save_execution(record)
    described = svc.describe(arn)
    assert described["PipelineExecutionStatus"] == "Failed"
    assert "ended while it ran" in described["FailureReason"]
    assert jobs.stopped == [record["Steps"][1]["LocalJobName"]]
    svc.retry({**arn, "ClientRequestToken": "r"}, background=False)
    steps = {s["StepName"]: s for s in svc.steps(arn)["PipelineExecutionSteps"]}
    assert svc.describe(arn)["PipelineExecutionStatus"] == "Succeeded"
    assert steps["A"]["EndTime"] == record["Steps"][0]["EndTime"]  # kept, not run again


def test_delete_pipeline_removes_its_executions_and_refuses_while_one_runs(tmp_path: Path) -> None:
    jobs = FakeJobs(hold={"Slow"})
    svc = service(tmp_path, jobs)
    create(svc, [processing("Slow")])
    arn = svc.start({"PipelineName": "p", "ClientRequestToken": "x"})
    with pytest.raises(ValidationException, match="still running"):
        svc.delete_pipeline({"PipelineName": "p", "ClientRequestToken": "d"})
    svc.stop(arn)
    svc.join(timeout=10)
    assert svc.delete_pipeline({"PipelineName": "p", "ClientRequestToken": "d"}) == {
        "PipelineArn": "arn:aws:sagemaker:us-east-1:000000000000:pipeline/p"
    }
    assert svc.store.execution_ids() == []
    assert svc.store.pipeline_names() == []


class FlakyStarts(FakeJobs):
    """The first starts are refused with `errors`, in order; later ones succeed."""

    def __init__(self, errors: list[Exception]) -> None:
        super().__init__()
        self.errors = errors
        self.refused = 0

    def start(self, request: dict[str, Any]) -> str:
        if self.errors:
            self.refused += 1
            raise self.errors.pop(0)
        return super().start(request)


def test_a_step_waits_for_a_job_slot_when_no_policy_retries_resource_limits(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from localproc.errors import ResourceLimitExceeded
    from localproc.service import pipeline_steps

    monkeypatch.setattr(pipeline_steps, "SLOT_WAIT_SECONDS", 0.01)
    jobs = FlakyStarts([ResourceLimitExceeded("full"), ResourceLimitExceeded("full")])
    svc = service(tmp_path, jobs)
    create(svc, [processing("A")])
    result = run(svc)
    assert result["status"] == "Succeeded"
    assert jobs.refused == 2
    assert result["steps"]["A"]["AttemptCount"] == 1  # waiting is not an attempt


def test_a_job_that_cannot_start_here_is_a_service_fault_for_the_retry_policy(
    tmp_path: Path,
) -> None:
    from localproc.errors import CannotRunHere

    policy = {"ExceptionType": ["Step.SERVICE_FAULT"], "IntervalSeconds": 0.01, "MaxAttempts": 1}
    jobs = FlakyStarts([CannotRunHere("no engine"), CannotRunHere("no engine")])
    svc = service(tmp_path, jobs)
    create(svc, [processing("A", RetryPolicies=[policy])])
    result = run(svc)
    assert result["status"] == "Failed"  # one retry, refused again
    assert result["steps"]["A"]["AttemptCount"] == 2
    assert result["steps"]["A"]["FailureReason"] == "CannotRunHere: no engine"
    jobs = FlakyStarts([CannotRunHere("no engine")])
    svc = service(tmp_path / "again", jobs)
    create(svc, [processing("A", RetryPolicies=[policy])])
    assert run(svc)["status"] == "Succeeded"


class HostileReports(FakeJobs):
    """Jobs whose containers wrote `content` where the step's property file is read."""

    def __init__(self, content: bytes) -> None:
        super().__init__()
        self.content = content

    def backend(self) -> JobBackend:
        return JobBackend(self.start, self.describe, self.stop, lambda uri, limit: self.content)


@pytest.mark.parametrize(
    "content, says",
    [
        # Deep enough to parse, too deep to be saved in (and read back from) the record.
        (b"[" * 900 + b"]" * 900, "nests JSON arrays or objects more than 100 levels deep"),
        (b"[" * 100_000 + b"]" * 100_000, "nests JSON arrays or objects more than 100 levels"),
        (b"\xff\xfe not text", "is not JSON"),
    ],
    ids=["parses-but-too-deep", "too-deep-to-parse", "not-text"],
)
def test_a_hostile_property_file_fails_its_step_and_the_execution_ends(
    tmp_path: Path, content: bytes, says: str
) -> None:
    jobs = HostileReports(content)
    svc = service(tmp_path, jobs)
    report = {"PropertyFileName": "Report", "OutputName": "out", "FilePath": "report.json"}
    steps = [processing("Eval", PropertyFiles=[report]), processing("Next", DependsOn=["Eval"])]
    create(svc, steps)
    result = run(svc)
    assert result["status"] == "Failed"
    assert says in result["steps"]["Eval"]["FailureReason"]
    assert "Next" not in result["steps"]


def test_json_get_of_an_s3_object_that_is_missing_or_not_json_fails_in_words(
    tmp_path: Path,
) -> None:
    from localproc.errors import ResourceNotFound

    def read(uri: str, limit: int) -> bytes:
        if uri.endswith("missing.json"):
            raise ResourceNotFound(f"there is no object {uri}")
        return b"[" * 900 + b"]" * 900

    jobs = FakeJobs()
    svc = service(tmp_path, jobs)
    svc.jobs.read_object = read
    for name, key in (("Missing", "missing.json"), ("Deep", "deep.json")):
        uri = {"Std:JsonGet": {"S3Uri": f"s3://b/{key}", "Path": "x"}}
        create_args = [{"Name": name, "Type": "Condition", "Arguments": {
            "Conditions": [{"Type": "Equals", "LeftValue": uri, "RightValue": 1}]}}]  # fmt: skip
        svc.catalog.store.delete_pipeline("p")
        create(svc, create_args)
        result = run(svc, token=name)
        reason = result["steps"][name]["FailureReason"]
        assert result["status"] == "Failed"
        assert "InternalServerError" not in reason, reason
        assert "s3://b/" + key in reason


def test_records_damaged_on_disk_read_as_absent_and_never_crash_a_call(tmp_path: Path) -> None:
    from localproc.errors import ResourceNotFound

    svc = service(tmp_path, FakeJobs())
    create(svc, [processing("A")])
    arn = run(svc)["arn"]
    # Valid JSON without the members every reader needs, and a truncated file.
    (tmp_path / "pipelines" / "q.json").write_text('{"PipelineName": "q"}')
    (tmp_path / "pipelines" / "r.json").write_text('{"PipelineName": "r", "Versions": []}')
    (tmp_path / "pipeline-executions" / "abc.json").write_text('{"PipelineName": "p"}')
    (tmp_path / "pipeline-executions" / "def.json").write_text('{"ExecutionId": "de')
    names = [s["PipelineName"] for s in svc.catalog.list({})["PipelineSummaries"]]
    assert names == ["p"]
    listed = svc.list({"PipelineName": "p"})["PipelineExecutionSummaries"]
    assert [e["PipelineExecutionArn"] for e in listed] == [arn]
    for call in (svc.catalog.describe, svc.catalog.versions, svc.list):
        with pytest.raises(ResourceNotFound):
            call({"PipelineName": "q"})
    with pytest.raises(ResourceNotFound):
        svc.start({"PipelineName": "r", "ClientRequestToken": "t"})
    broken = "arn:aws:sagemaker:us-east-1:000000000000:pipeline/p/execution/abc"
    with pytest.raises(ResourceNotFound):
        svc.describe({"PipelineExecutionArn": broken})
    # A new pipeline under a damaged one's name replaces it.
    svc.catalog.create({"PipelineName": "q", "PipelineDefinition": svc.definition(
        {"PipelineExecutionArn": arn})["PipelineDefinition"], "RoleArn": "r"})  # fmt: skip
    assert svc.catalog.describe({"PipelineName": "q"})["PipelineName"] == "q"


def test_a_pipeline_is_found_by_its_lowercased_arn_and_deleting_it_forgets_its_executions(
    tmp_path: Path,
) -> None:
    svc = service(tmp_path, FakeJobs())
    text = json.dumps({"Version": "2020-12-01", "Steps": [processing("A")]})
    svc.catalog.create({"PipelineName": "MyPipe", "PipelineDefinition": text, "RoleArn": "r"})
    arn = "arn:aws:sagemaker:us-east-1:000000000000:pipeline/mypipe"
    assert svc.catalog.describe({"PipelineName": arn})["PipelineName"] == "MyPipe"
    svc.start({"PipelineName": arn, "ClientRequestToken": "t"}, background=False)
    assert len(svc.list({"PipelineName": arn})["PipelineExecutionSummaries"]) == 1
    svc.delete_pipeline({"PipelineName": arn, "ClientRequestToken": "d"})
    assert svc.store.execution_ids() == []
    # A new pipeline of that name starts with no executions, and its token is its own.
    svc.catalog.create({"PipelineName": "MyPipe", "PipelineDefinition": text, "RoleArn": "r"})
    assert svc.list({"PipelineName": "MyPipe"})["PipelineExecutionSummaries"] == []


def test_an_execution_call_without_its_arn_is_a_validation_error(tmp_path: Path) -> None:
    svc = service(tmp_path, FakeJobs())
    with pytest.raises(ValidationException, match="at 'pipelineExecutionArn'.*must not be null"):
        svc.steps({"MaxResults": 5})


def test_a_step_asked_to_stop_before_its_job_starts_starts_no_job(tmp_path: Path) -> None:
    from localproc.pipeline.definition import Step
    from localproc.pipeline.expressions import Scope
    from localproc.service.pipeline_steps import StepFailed, StepServices, run_processing_step

    jobs = FakeJobs()
    stop = threading.Event()
    stop.set()  # StopPipelineExecution came while the step's thread was being started
    services = StepServices(
        jobs.start, jobs.describe, jobs.stop, lambda uri, limit: b"", lambda *a: None, stop, 0.01
    )
    entry: dict[str, Any] = {}

    class Entry:
        def update(self, **members: Any) -> None:
            entry.update(members)

        def get(self, member: str) -> Any:
            return entry.get(member)

    with pytest.raises(StepFailed) as raised:
        run_processing_step(Step("A", "Processing", {"Tag": "A"}), Entry(), Scope(), services, "e1")
    assert raised.value.status == "Stopped"
    assert jobs.started == []


def test_executions_beyond_the_running_limit_are_refused_before_anything_is_recorded(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from localproc.errors import ResourceLimitExceeded
    from localproc.service import pipeline_executions

    monkeypatch.setattr(pipeline_executions, "MAX_RUNNING_EXECUTIONS", 2)
    jobs = FakeJobs(hold={"Slow"})
    svc = service(tmp_path, jobs)
    create(svc, [processing("Slow")])
    arns = [svc.start({"PipelineName": "p", "ClientRequestToken": t}) for t in ("a", "b")]
    with pytest.raises(ResourceLimitExceeded, match="2 pipeline executions are running"):
        svc.start({"PipelineName": "p", "ClientRequestToken": "c"})
    assert len(svc.store.execution_ids()) == 2
    for arn in arns:
        svc.stop(arn)
    svc.join(timeout=10)
    assert svc.start({"PipelineName": "p", "ClientRequestToken": "d"})["PipelineExecutionArn"]
    svc.stop(svc.list({"PipelineName": "p", "SortOrder": "Descending"})[
        "PipelineExecutionSummaries"][0])  # fmt: skip
    svc.join(timeout=10)


def test_pipeline_names_differing_only_in_case_name_one_pipeline_as_its_arn_does(
    tmp_path: Path,
) -> None:
    svc = service(tmp_path, FakeJobs())
    text = json.dumps({"Version": "2020-12-01", "Steps": [processing("A")]})
    svc.catalog.create({"PipelineName": "MyPipe", "PipelineDefinition": text, "RoleArn": "r"})
    with pytest.raises(ValidationException, match="already exists"):
        svc.catalog.create(
            {
                "PipelineName": "mypipe",
                "PipelineDefinition": text,
                "RoleArn": "r",
                "ClientRequestToken": "x",
            }
        )
    assert svc.catalog.describe({"PipelineName": "MYPIPE"})["PipelineName"] == "MyPipe"
    assert svc.catalog.update({"PipelineName": "mypipe", "PipelineDescription": "d"})[
        "PipelineVersionId"] == 2  # fmt: skip
    assert svc.store.pipeline_names() == ["MyPipe"]


def test_the_same_client_request_token_at_once_from_many_threads_starts_one_execution(
    tmp_path: Path,
) -> None:
    jobs = FakeJobs(hold={"Slow"})
    svc = service(tmp_path, jobs)
    create(svc, [processing("Slow")])
    arns: list[str] = []
    go = threading.Barrier(8)

    def start() -> None:
        go.wait()
        body = {"PipelineName": "p", "ClientRequestToken": "same"}
        arns.append(svc.start(body)["PipelineExecutionArn"])

    threads = [threading.Thread(target=start) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(arns) == 8 and len(set(arns)) == 1
    assert len(svc.store.execution_ids()) == 1
    svc.stop({"PipelineExecutionArn": arns[0]})
    svc.join(timeout=10)
    assert len(jobs.started) <= 1  # none if the stop came before its job started
