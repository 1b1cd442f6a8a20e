"""The pure logic of SageMaker Pipelines definitions: parsing, expressions, conditions, the step
graph, parameters, cache keys and expiry, retry decisions, the names the service gives."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from localproc.errors import ValidationException
from localproc.pipeline import policies
from localproc.pipeline.conditions import all_hold, holds
from localproc.pipeline.definition import parse_definition, resolve_parameters
from localproc.pipeline.expressions import ExpressionError, Scope, evaluate, preview
from localproc.pipeline.graph import dependencies, graph, order
from localproc.pipeline.naming import execution_arn, execution_id_of, step_job_name
from localproc.service.pipeline_steps import cached_run

FIXTURE = Path(__file__).parents[2] / "fixtures" / "pipelines" / "evaluate-and-report.json"

PREP_DESCRIPTION = {
    "ProcessingJobName": "pipelines-abc-Prep-x",
    "ProcessingOutputConfig": {
        "Outputs": [
            {"OutputName": "other", "S3Output": {"S3Uri": "s3://b/other"}},
            {"OutputName": "train", "S3Output": {"S3Uri": "s3://b/train"}},
        ]
    },
    "ProcessingInputs": [{"InputName": "code", "S3Input": {"S3Uri": "s3://b/code"}}],
}


def scope(**extra: Any) -> Scope:
    return Scope(
        parameters={"Threshold": 0.7, "Name": "run", "Count": 2, "Flag": True},
        execution={"PipelineExecutionId": "abc123", "PipelineName": "p"},
        step_properties=lambda step: PREP_DESCRIPTION if step == "Prep" else None,
        property_file=lambda step, name: {"metrics": {"accuracy": {"value": 0.8}}, "l": [5, 6]},
        **extra,
    )


def definition(*steps: dict[str, Any], parameters: list[dict[str, Any]] | None = None) -> str:
    return json.dumps(
        {"Version": "2020-12-01", "Parameters": parameters or [], "Steps": list(steps)}
    )


def step(name: str, kind: str = "Processing", **members: Any) -> dict[str, Any]:
    return {"Name": name, "Type": kind, "Arguments": members.pop("Arguments", {}), **members}


# -- expressions ---------------------------------------------------------------------------------
def test_get_reads_parameters_execution_variables_and_step_properties_by_output_name() -> None:
    value = {
        "A": {"Get": "Parameters.Threshold"},
        "B": [{"Get": "Execution.PipelineExecutionId"}],
        "C": {"Get": "Steps.Prep.ProcessingOutputConfig.Outputs['train'].S3Output.S3Uri"},
        "D": {"Get": "Steps.Prep.ProcessingOutputConfig.Outputs[0].S3Output.S3Uri"},
        "E": {"Get": "Steps.Prep.ProcessingInputs['code'].S3Input.S3Uri"},
    }
    assert evaluate(value, scope()) == {
        "A": 0.7, "B": ["abc123"], "C": "s3://b/train", "D": "s3://b/other", "E": "s3://b/code",
    }  # fmt: skip


def test_join_and_json_get_nest_and_print_values_as_the_service_does() -> None:
    joined = {
        "Std:Join": {
            "On": "/",
            "Values": [
                "s3:/", {"Get": "Parameters.Name"}, {"Get": "Parameters.Count"},
                {"Get": "Parameters.Flag"}, {"Get": "Parameters.Threshold"},
            ],
        }
    }  # fmt: skip
    assert evaluate(joined, scope()) == "s3://run/2/true/0.7"
    got = {
        "Std:JsonGet": {
            "PropertyFile": {"Get": "Steps.Eval.PropertyFiles.Evaluation"},
            "Path": "metrics.accuracy.value",
        }
    }
    assert evaluate(got, scope()) == 0.8
    indexed = {
        "Std:JsonGet": {"PropertyFile": {"Get": "Steps.Eval.PropertyFiles.E"}, "Path": "l[1]"}
    }
    assert evaluate(indexed, scope()) == 6


@pytest.mark.parametrize(
    ("expression", "says"),
    [
        ({"Get": "Parameters.Missing"}, "no parameter named 'Missing'"),
        ({"Get": "Steps.Later.ProcessingJobName"}, "has no properties"),
        (
            {"Get": "Steps.Prep.ProcessingOutputConfig.Outputs['nope'].S3Output"},
            "no item named 'nope'",
        ),
        ({"Get": "Steps.Prep.NoSuchMember"}, "no property 'NoSuchMember'"),
        ({"Get": "Elsewhere.X"}, "starts with Parameters, Execution or Steps"),
        ({"Std:JsonGet": {"PropertyFile": "Evaluation", "Path": "a"}}, "must be Get Steps."),
    ],
)
def test_an_expression_that_cannot_be_evaluated_says_why(expression: Any, says: str) -> None:
    with pytest.raises(ExpressionError, match=re.escape(says)):
        evaluate(expression, scope())


def test_preview_resolves_parameters_and_marks_what_only_a_run_knows() -> None:
    value = {
        "Std:Join": {"On": "/", "Values": ["s3://b", {"Get": "Execution.PipelineExecutionId"}]}
    }
    assert preview(value, Scope(parameters={})) == "s3://b/<Execution.PipelineExecutionId>"
    assert preview({"Get": "Parameters.X"}, Scope(parameters={"X": 3})) == 3


# -- conditions ----------------------------------------------------------------------------------
ACCURACY = {
    "Std:JsonGet": {
        "PropertyFile": {"Get": "Steps.Eval.PropertyFiles.Evaluation"},
        "Path": "metrics.accuracy.value",
    }
}


@pytest.mark.parametrize(
    ("kind", "right", "expected"),
    [
        ("GreaterThanOrEqualTo", {"Get": "Parameters.Threshold"}, True),
        ("GreaterThan", 0.8, False),
        ("GreaterThanOrEqualTo", 0.8, True),
        ("LessThan", 0.9, True),
        ("LessThanOrEqualTo", 0.79, False),
        ("Equals", 0.8, True),
        ("Equals", "0.8", True),  # a number given as text compares as a number
    ],
)
def test_comparisons(kind: str, right: Any, expected: bool) -> None:
    assert holds({"Type": kind, "LeftValue": ACCURACY, "RightValue": right}, scope()) is expected


def test_not_or_in_nest_and_a_list_of_conditions_must_all_hold() -> None:
    in_names = {"Type": "In", "QueryValue": {"Get": "Parameters.Name"}, "Values": ["x", "run"]}
    nested = {
        "Type": "Not",
        "Condition": {
            "Type": "Or",
            "Conditions": [
                {"Type": "Equals", "LeftValue": {"Get": "Parameters.Flag"}, "RightValue": False},
                {"Type": "Not", "Condition": in_names},
            ],
        },
    }
    assert holds(in_names, scope()) is True
    assert holds(nested, scope()) is True
    falsy = {"Type": "LessThan", "LeftValue": 1, "RightValue": 0}
    assert all_hold([in_names, nested], scope()) is True
    assert all_hold([in_names, falsy], scope()) is False
    with pytest.raises(ExpressionError, match="unknown condition Type"):
        holds({"Type": "Approximately"}, scope())
    with pytest.raises(ExpressionError, match="cannot compare"):
        holds({"Type": "LessThan", "LeftValue": [1], "RightValue": 1}, scope())


# -- the definition and its graph ----------------------------------------------------------------
def test_the_sdk_fixture_parses_into_its_steps_with_branches_and_waves() -> None:
    parsed = parse_definition(FIXTURE.read_text())
    assert list(parsed.steps) == ["Prep", "Evaluate", "CheckAccuracy", "Report", "TooInaccurate"]
    assert parsed.steps["Report"].branch == ("CheckAccuracy", "If")
    assert parsed.steps["TooInaccurate"].branch == ("CheckAccuracy", "Else")
    assert dependencies(parsed.steps["Evaluate"]) == {"Prep"}  # a data dependency
    assert dependencies(parsed.steps["CheckAccuracy"]) == {"Evaluate"}  # through JsonGet
    assert order(parsed) == [["Prep"], ["Evaluate"], ["CheckAccuracy"], ["Report", "TooInaccurate"]]
    assert parsed.refused_steps() == []


def test_depends_on_counts_and_a_cycle_or_unknown_step_is_refused() -> None:
    parsed = parse_definition(definition(step("A"), step("B", DependsOn=["A"])))
    assert graph(parsed) == {"A": set(), "B": {"A"}}
    cycle = definition(step("A", DependsOn=["B"]), step("B", DependsOn=["A"]))
    with pytest.raises(ValidationException, match="cycle: A -> B -> A|cycle: B -> A -> B"):
        graph(parse_definition(cycle))
    with pytest.raises(ValidationException, match="refers to step 'Ghost', which is not defined"):
        parse_definition(definition(step("A", DependsOn=["Ghost"])))


def test_every_problem_of_a_definition_is_listed() -> None:
    text = json.dumps({"Version": "2019", "Steps": [step("A"), step("A"), step("B", "Teleport")]})
    with pytest.raises(ValidationException) as raised:
        parse_definition(text)
    problems = " | ".join(raised.value.problems)
    assert "Version must be '2020-12-01'" in problems
    assert "step name 'A' is used twice" in problems
    assert 'unknown Type "Teleport"' in problems
    with pytest.raises(ValidationException, match="not valid JSON"):
        parse_definition("{")


def test_a_training_step_is_named_as_one_that_cannot_run_here() -> None:
    parsed = parse_definition(definition(step("Prep"), step("Train", "Training")))
    [reason] = parsed.refused_steps()
    assert "step 'Train' is a Training step" in reason
    assert "localproc runs only Processing, Condition and Fail steps" in reason


def test_parameters_take_overrides_typed_and_refuse_what_does_not_fit() -> None:
    parameters = [
        {"Name": "S", "Type": "String", "DefaultValue": "a"},
        {"Name": "I", "Type": "Integer", "DefaultValue": 1},
        {"Name": "F", "Type": "Float", "DefaultValue": 0.5},
        {"Name": "B", "Type": "Boolean", "DefaultValue": False},
    ]
    parsed = parse_definition(definition(step("A"), parameters=parameters))
    given = [
        {"Name": "I", "Value": "7"},
        {"Name": "B", "Value": "true"},
        {"Name": "F", "Value": "2"},
    ]
    assert resolve_parameters(parsed, given) == {"S": "a", "I": 7, "F": 2.0, "B": True}
    with pytest.raises(ValidationException) as raised:
        resolve_parameters(parsed, [{"Name": "I", "Value": "x"}, {"Name": "Z", "Value": "1"}])
    assert raised.value.problems == [
        "Parameter 'I': 'x' is not a valid Integer value",
        "Parameter 'Z' is not defined by the pipeline",
    ]
    required = parse_definition(definition(step("A"), parameters=[{"Name": "R", "Type": "String"}]))
    with pytest.raises(ValidationException, match="'R' has no default value and none was given"):
        resolve_parameters(required, [])


# -- caching and retries -------------------------------------------------------------------------
def test_the_cache_key_is_the_evaluated_arguments_without_the_job_name() -> None:
    arguments = {"AppSpecification": {"ImageUri": "i"}, "ProcessingJobName": "one"}
    same = {"AppSpecification": {"ImageUri": "i"}, "ProcessingJobName": "two"}
    other = {"AppSpecification": {"ImageUri": "j"}, "ProcessingJobName": "one"}
    key = policies.cache_key("Processing", arguments)
    assert key == policies.cache_key("Processing", same)
    assert key != policies.cache_key("Processing", other)


def test_expire_after_durations() -> None:
    assert policies.duration_seconds("PT1H") == 3600
    assert policies.duration_seconds("P30D") == 30 * 86400
    assert policies.duration_seconds("P1DT2M3S") == 86400 + 123
    assert policies.duration_seconds("P2W") == 14 * 86400
    for bad in ("1h", "P", "PT", "P1DT", ""):
        with pytest.raises(ValidationException, match="ISO 8601 duration"):
            policies.duration_seconds(bad)


def run_entry(key: str, ended: str, job: str = "job-1") -> dict[str, Any]:
    return {
        "StepName": "Prep", "StepStatus": "Succeeded", "LocalCacheKey": key, "EndTime": ended,
        "LocalJobName": job, "Metadata": {"ProcessingJob": {"Arn": f"arn:{job}"}},
    }  # fmt: skip


def test_a_cache_hit_is_the_newest_matching_successful_run_of_the_same_pipeline_in_time() -> None:
    executions = [
        {"PipelineName": "p", "PipelineExecutionArn": "e1",
         "Steps": [run_entry("k", "2026-01-01T10:00:00+00:00", "old")]},
        {"PipelineName": "p", "PipelineExecutionArn": "e2",
         "Steps": [run_entry("k", "2026-01-01T11:00:00+00:00", "new")]},
        {"PipelineName": "other", "PipelineExecutionArn": "e3",
         "Steps": [run_entry("k", "2026-01-01T11:30:00+00:00", "foreign")]},
        {"PipelineName": "p", "PipelineExecutionArn": "e4",
         "Steps": [run_entry("different", "2026-01-01T11:40:00+00:00", "changed")]},
    ]  # fmt: skip
    noon = 1767268800.0  # 2026-01-01T12:00:00Z
    hit = cached_run(executions, "p", "Prep", "k", None, noon)
    assert hit is not None and (hit["JobName"], hit["ExecutionArn"]) == ("new", "e2")
    assert cached_run(executions, "p", "Prep", "k", 1800, noon) is None  # both ended > 30 min ago
    assert cached_run(executions, "p", "Prep", "k", 3601, noon)["JobName"] == "new"  # type: ignore[index]


POLICIES = (
    {
        "ExceptionType": ["Step.SERVICE_FAULT"],
        "IntervalSeconds": 1,
        "BackoffRate": 2.0,
        "MaxAttempts": 2,
    },
    {"ExceptionType": ["SageMaker.JOB_INTERNAL_ERROR"], "IntervalSeconds": 5, "ExpireAfterMin": 1},
)


def test_retry_decisions_follow_the_first_policy_naming_the_failure() -> None:
    assert policies.retry_delay(POLICIES, "Step.SERVICE_FAULT", 0, 0) == 1
    assert policies.retry_delay(POLICIES, "Step.SERVICE_FAULT", 1, 1) == 2
    assert policies.retry_delay(POLICIES, "Step.SERVICE_FAULT", 2, 3) is None  # MaxAttempts
    assert policies.retry_delay(POLICIES, "SageMaker.JOB_INTERNAL_ERROR", 0, 0) == 5
    assert policies.retry_delay(POLICIES, "SageMaker.JOB_INTERNAL_ERROR", 1, 45) == 10
    assert (
        policies.retry_delay(POLICIES, "SageMaker.JOB_INTERNAL_ERROR", 1, 51) is None
    )  # 61 s > 1 min
    assert policies.retry_delay(POLICIES, "SageMaker.RESOURCE_LIMIT", 0, 0) is None
    assert policies.retry_delay(POLICIES, None, 0, 0) is None
    assert (
        policies.failure_type("InternalServerError: the engine went away")
        == policies.JOB_INTERNAL_ERROR
    )
    assert policies.failure_type("AlgorithmError: exit code 1") is None
    assert policies.failure_type("ClientError: no such key") is None


# -- names ---------------------------------------------------------------------------------------
def test_step_jobs_are_named_as_the_service_names_them_and_fit_63_characters() -> None:
    name = step_job_name("a1b2c3d4e5f6", "Prep", "AbCdEfGhIj")
    assert name == "pipelines-a1b2c3d4e5f6-Prep-AbCdEfGhIj"
    long = step_job_name("a1b2c3d4e5f6", "A_very_long_step_name_" * 4)
    assert len(long) <= 63 and re.fullmatch(r"[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}", long)
    assert long.startswith("pipelines-a1b2c3d4e5f6-A-very-long-step-name")
    arn = execution_arn("MyPipe", "a1b2c3d4e5f6", "eu-west-1")
    assert arn == "arn:aws:sagemaker:eu-west-1:000000000000:pipeline/mypipe/execution/a1b2c3d4e5f6"
    assert execution_id_of(arn) == "a1b2c3d4e5f6"
    assert execution_id_of("arn:aws:sagemaker:eu-west-1:000000000000:pipeline/x") is None


def test_hostile_definitions_are_refused_with_reasons_not_tracebacks() -> None:
    deep: Any = "x"
    for _ in range(400):
        deep = {"Type": "Not", "Condition": deep}
    with pytest.raises(ValidationException, match="more than 100 levels deep"):
        parse_definition(definition(step("A", Arguments={"Conditions": [deep]})))
    with pytest.raises(ValidationException, match="more than 100 levels deep"):
        parse_definition("[" * 100000 + "]" * 100000)
    bad_members = step("A", PropertyFiles="x", RetryPolicies=[1], CacheConfig={"ExpireAfter": "1h"})
    with pytest.raises(ValidationException) as raised:
        parse_definition(definition(bad_members))
    problems = " | ".join(raised.value.problems)
    assert "PropertyFiles must be a list of objects" in problems
    assert "RetryPolicies must be a list of objects" in problems
    assert "ExpireAfter must be an ISO 8601 duration" in problems


def test_parameters_and_step_members_of_the_wrong_shape_are_refused_up_front() -> None:
    parameters = [
        {"Name": "E", "Type": "String", "DefaultValue": "a", "EnumValues": 5},
        {"Name": "I", "Type": "Integer", "DefaultValue": "abc"},
        {"Name": "S", "Type": "String", "DefaultValue": {"a": 1}},
        {"Name": "F", "Type": "Float", "DefaultValue": True},
        {"Name": "B", "Type": "Boolean", "DefaultValue": "yes"},
        {"Name": "N", "Type": "String", "DefaultValue": "c", "EnumValues": ["a", "b"]},
    ]
    policy = {"ExceptionType": "Step.SERVICE_FAULT", "MaxAttempts": "abc", "IntervalSeconds": -1}
    steps = [
        step("C", "Condition", Arguments={"Conditions": {"Type": "Equals"}, "IfSteps": "A"}),
        step("P", RetryPolicies=[policy], PropertyFiles=[{"PropertyFileName": "R"}]),
    ]
    with pytest.raises(ValidationException) as raised:
        parse_definition(definition(*steps, parameters=parameters))
    problems = " | ".join(raised.value.problems)
    assert "Parameters[0] (E): EnumValues must be a list" in problems
    assert 'Parameters[1] (I): DefaultValue must be an Integer, not "abc"' in problems
    assert "Parameters[2] (S): DefaultValue must be a String" in problems
    assert "Parameters[3] (F): DefaultValue must be a Float, not true" in problems
    assert "Parameters[4] (B): DefaultValue must be a Boolean" in problems
    assert 'Parameters[5] (N): DefaultValue "c" is not one of its EnumValues' in problems
    assert "step 'C': Conditions must be a list" in problems
    assert "step 'C': IfSteps must be a list of steps" in problems
    assert "step 'P': RetryPolicies[0]: ExceptionType must be a list of names" in problems
    assert "step 'P': RetryPolicies[0]: MaxAttempts must be a number of at least 0" in problems
    assert "step 'P': RetryPolicies[0]: IntervalSeconds must be a number of at least 0" in problems
    assert "step 'P': PropertyFiles[0] needs PropertyFileName, OutputName and FilePath" in problems
    fine = [
        {"Name": "F", "Type": "Float", "DefaultValue": 1},
        {"Name": "N", "Type": "String", "DefaultValue": "a", "EnumValues": ["a", "b"]},
    ]
    parse_definition(definition(step("A"), parameters=fine))


@pytest.mark.parametrize("token", ["9" * 5000, "\u00b2", "-1", "x"])
def test_a_next_token_this_server_did_not_give_is_a_validation_error(token: str) -> None:
    from localproc.service.pipelines import page

    with pytest.raises(ValidationException, match="NextToken is not a token this server gave"):
        page([1, 2, 3], {"NextToken": token}, "Items")
    assert page([1, 2, 3], {"NextToken": "2", "MaxResults": 1}, "Items") == {"Items": [3]}


def test_expressions_that_would_build_huge_values_are_refused_before_they_are_built() -> None:
    # A 1 MB definition can reference a 500 KB default thousands of times: gigabytes in serve.
    big = "x" * 100_000
    refs = [{"Get": "Parameters.Big"}] * 1000  # 100 MB once joined or serialized
    bombs = [
        {"Std:Join": {"On": "", "Values": refs}},
        {"ContainerArguments": refs},
        {"Std:Join": {"On": big, "Values": ["a"] * 1000}},
    ]
    for bomb in bombs:
        with pytest.raises(ExpressionError, match="more than 4194304 characters"):
            evaluate({"A": bomb}, Scope(parameters={"Big": big}))
    shown = preview({"A": bombs[0]}, Scope(parameters={"Big": big}))
    assert shown["A"] == "<Std:Join: the expressions' values come to more than 4194304 characters>"
    fine = {"Std:Join": {"On": ",", "Values": refs[:10]}}
    assert len(evaluate(fine, Scope(parameters={"Big": big}))) == 10 * 100_000 + 9


def test_a_definition_with_more_steps_than_localproc_runs_is_refused() -> None:
    # Every step's change rewrites the execution record: 8,000 steps (1 MB) would take hours.
    many = [step(f"C{i}", "Condition", Arguments={"Conditions": []}) for i in range(1001)]
    with pytest.raises(ValidationException, match="1001 steps; localproc runs at most 1000"):
        parse_definition(definition(*many))
    assert len(parse_definition(definition(*many[:1000])).steps) == 1000


@pytest.mark.parametrize(
    "kind, text",
    [("Float", "nan"), ("Float", "inf"), ("Float", "1e999"), ("Integer", "1_0"), ("Integer", " 7")],
)
def test_parameter_values_python_reads_but_the_service_does_not_are_refused(
    kind: str, text: str
) -> None:
    parsed = parse_definition(
        definition(step("A"), parameters=[{"Name": "X", "Type": kind, "DefaultValue": 1}])
    )
    with pytest.raises(ValidationException, match=f"'{text}' is not a valid {kind} value"):
        resolve_parameters(parsed, [{"Name": "X", "Value": text}])


def test_a_definition_with_nan_or_infinity_is_not_json() -> None:
    for constant in ("NaN", "Infinity", "-Infinity"):
        text = definition(step("A")).replace(
            '"Parameters": []', f'"Parameters": [], "X": {constant}'
        )
        with pytest.raises(ValidationException, match="PipelineDefinition is not valid JSON"):
            parse_definition(text)
