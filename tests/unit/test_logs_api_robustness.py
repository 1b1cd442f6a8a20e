"""The CloudWatch Logs API of serve, without a server: filter patterns too costly to compile are
refused before compiling, and a log file that vanishes while read is no internal failure."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from helpers.hand_records import ended_job


def test_regex_cost_check_refuses_without_compiling(monkeypatch: pytest.MonkeyPatch) -> None:
    from localproc.serve import cloudwatch_logs

    def no_compile(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("compiled a pattern the check should have refused")

    monkeypatch.setattr(cloudwatch_logs.regex, "compile", no_compile)
    for source in ("a{1000000000}", "(a{1000}){1000}", "a{5,}{1001}", "(?:x{0,1001})", "a" * 5000):
        with pytest.raises(cloudwatch_logs.LogsError) as raised:
            cloudwatch_logs._regex_matcher(source, 1.0)
        assert raised.value.code == "InvalidParameterException"


def test_a_log_file_that_vanishes_while_read_is_no_internal_failure(tmp_path: Path) -> None:
    from localproc.records.store import JobStore
    from localproc.serve import cloudwatch_logs

    state = tmp_path / "state"
    job = ended_job(state, "vanishing")
    (job / "logs").mkdir()
    log = job / "logs" / "algo-1.log"
    log.write_text("one\ntwo\n")
    logs = cloudwatch_logs.CloudWatchLogs(JobStore(state), "us-east-1")
    group = {"logGroupName": "/aws/sagemaker/ProcessingJobs"}
    stream = logs.call("DescribeLogStreams", group)["logStreams"][0]["logStreamName"]
    listed = logs._job_streams("vanishing")
    # The job is deleted after its streams were listed, before (or while) they are read.
    logs._job_streams = lambda name: listed  # type: ignore[method-assign]
    log.unlink()
    assert logs.call("FilterLogEvents", group)["events"] == []
    assert logs.call("DescribeLogStreams", group)["logStreams"] == []
    log.mkdir()  # or replaced by what is not a file
    assert logs.call("FilterLogEvents", group)["events"] == []
    with pytest.raises(cloudwatch_logs.LogsError) as raised:
        logs.call("GetLogEvents", {**group, "logStreamName": stream})
    assert raised.value.code == "ResourceNotFoundException"
