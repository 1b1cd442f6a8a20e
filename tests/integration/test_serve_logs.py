"""`localproc serve` answers the CloudWatch Logs calls clients make for processing jobs
(`Logs_20140328.DescribeLogStreams`, `GetLogEvents`, `FilterLogEvents` on the log group
`/aws/sagemaker/ProcessingJobs`), so that one `AWS_ENDPOINT_URL` makes the SageMaker SDK's
default `Processor.run()` (wait=True, logs=True) print the job's logs, and the AWS CLI's `logs`
commands read them. Real clients, real Docker, a real S3 endpoint."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
import test_serve
from docker_engine import EXAMPLE_IMAGE, Localproc, unique_name
from serve_clients import (
    AWSCLI_REQUIREMENTS,
    SAGEMAKER_SDK_V3_REQUIREMENTS,
    ensure_venv,
    python_of,
    raw_request,
)
from test_serve import (
    REGION,
    VENV_TEST_TIMEOUT,
    ServerFactory,
    sagemaker_client,
    script_job,
    wait_until_done,
)

serve = test_serve.serve  # the fixture: a `localproc serve` on the test's state dir and S3
sagemaker_sdk_python = test_serve.sagemaker_sdk_python  # the fixture: the SDK v2's venv

pytestmark = pytest.mark.docker

GROUP = "/aws/sagemaker/ProcessingJobs"
LINES = 30

# Each instance prints LINES numbered lines naming its host, one of them a match for the filter
# tests, then a last line without a newline.
CHATTY = r"""
import json, sys
host = json.load(open('/opt/ml/config/resourceconfig.json'))['current_host']
for i in range(1, LINES + 1):
    print(f'{host} line {i}' + (' needle' if i == 7 else ''), flush=True)
sys.stdout.write(f'{host} the end')
""".replace("LINES", str(LINES))


def logs_client(url: str) -> Any:
    import boto3
    from botocore.config import Config

    return boto3.client(
        "logs",
        endpoint_url=url,
        region_name=REGION,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
        config=Config(retries={"total_max_attempts": 1, "mode": "standard"}),
    )


def logs_error(call: Any) -> tuple[str, str]:
    from botocore.exceptions import ClientError

    with pytest.raises(ClientError) as caught:
        call()
    assert caught.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400
    error = caught.value.response["Error"]
    return error["Code"], error["Message"]


def two_instance_job(s3: Any, name: str) -> dict[str, Any]:
    bucket = s3.make_bucket()
    payload = script_job(s3, bucket, name, CHATTY)
    payload["ProcessingResources"]["ClusterConfig"]["InstanceCount"] = 2
    return payload


def expected_messages(host: str) -> list[str]:
    return [f"{host} line {i}" + (" needle" if i == 7 else "") for i in range(1, LINES + 1)] + [
        f"{host} the end"
    ]


# -- boto3 ---------------------------------------------------------------------------------------
def test_boto3_reads_a_jobs_logs_as_cloudwatch_serves_them(
    serve: ServerFactory, s3: Any, localproc: Localproc
) -> None:
    server = serve()
    client = logs_client(server.url)
    name = unique_name("logs")
    sagemaker_client(server.url).create_processing_job(**two_instance_job(s3, name))
    described = wait_until_done(sagemaker_client(server.url), name)
    assert described["ProcessingJobStatus"] == "Completed", described.get("FailureReason")
    epoch = int(described["ProcessingStartTime"].timestamp())
    streams = [f"{name}/algo-1-{epoch}", f"{name}/algo-2-{epoch}"]

    # DescribeLogStreams: the job's streams, named as the service names them.
    found = client.describe_log_streams(
        logGroupName=GROUP, logStreamNamePrefix=f"{name}/", orderBy="LogStreamName"
    )
    assert [s["logStreamName"] for s in found["logStreams"]] == streams
    assert "nextToken" not in found
    first = found["logStreams"][0]
    assert first["arn"].endswith(f":log-group:{GROUP}:log-stream:{streams[0]}")
    assert first["firstEventTimestamp"] <= first["lastEventTimestamp"]
    assert first["creationTime"] == int(described["ProcessingStartTime"].timestamp() * 1000)
    descending = client.describe_log_streams(
        logGroupName=GROUP, logStreamNamePrefix=f"{name}/", descending=True
    )
    assert [s["logStreamName"] for s in descending["logStreams"]] == streams[::-1]
    page = client.describe_log_streams(logGroupName=GROUP, logStreamNamePrefix=name, limit=1)
    assert [s["logStreamName"] for s in page["logStreams"]] == streams[:1]
    rest = client.describe_log_streams(
        logGroupName=GROUP, logStreamNamePrefix=name, limit=1, nextToken=page["nextToken"]
    )
    assert [s["logStreamName"] for s in rest["logStreams"]] == streams[1:]
    assert "nextToken" not in rest
    by_time = client.describe_log_streams(logGroupName=GROUP, orderBy="LastEventTime")
    assert set(streams) <= {s["logStreamName"] for s in by_time["logStreams"]}
    assert (
        client.describe_log_streams(logGroupName=GROUP, logStreamNamePrefix="nobody/")["logStreams"]
        == []
    )

    # GetLogEvents from the head, in pages, the way the SDK reads: the forward token moves on
    # while there are events and comes back unchanged once there are none.
    events, token, calls = [], None, 0
    while True:
        kwargs = {"nextToken": token} if token else {}
        answer = client.get_log_events(
            logGroupName=GROUP, logStreamName=streams[1], startFromHead=True, limit=8, **kwargs
        )
        calls += 1
        events += answer["events"]
        if not answer["events"]:
            assert answer["nextForwardToken"] == token
            break
        assert answer["nextForwardToken"] != token
        token = answer["nextForwardToken"]
    assert [e["message"] for e in events] == expected_messages("algo-2")
    assert calls == 5  # 31 events, 8 a page, one empty answer
    stamps = [e["timestamp"] for e in events]
    assert stamps == sorted(stamps)
    started = int(described["ProcessingStartTime"].timestamp() * 1000)
    ended = int(described["ProcessingEndTime"].timestamp() * 1000)
    assert started <= stamps[0] and stamps[-1] <= ended
    assert all(e["ingestionTime"] >= e["timestamp"] for e in events)
    # Read again: the same events with the same timestamps (the SDK's positions rely on it).
    again = client.get_log_events(logGroupName=GROUP, logStreamName=streams[1], startFromHead=True)
    assert [(e["timestamp"], e["message"]) for e in again["events"]] == [
        (e["timestamp"], e["message"]) for e in events
    ]
    # Without startFromHead: the newest events; the backward token pages towards the head.
    tail = client.get_log_events(logGroupName=GROUP, logStreamName=streams[0], limit=5)
    assert [e["message"] for e in tail["events"]] == expected_messages("algo-1")[-5:]
    before = client.get_log_events(
        logGroupName=GROUP, logStreamName=streams[0], limit=5, nextToken=tail["nextBackwardToken"]
    )
    assert [e["message"] for e in before["events"]] == expected_messages("algo-1")[-10:-5]
    # startTime/endTime bound the events (milliseconds, endTime exclusive).
    window = client.get_log_events(
        logGroupName=GROUP,
        logStreamName=streams[1],
        startFromHead=True,
        startTime=stamps[0],
        endTime=stamps[-1] + 1,
    )
    assert len(window["events"]) == LINES + 1
    late = client.get_log_events(
        logGroupName=GROUP, logStreamName=streams[1], startTime=stamps[-1] + 1
    )
    assert late["events"] == []

    # FilterLogEvents: all streams interleaved by time, by prefix or names, a plain-text pattern.
    def filtered(**kwargs: Any) -> list[dict[str, Any]]:
        found: list[dict[str, Any]] = []
        paginator = client.get_paginator("filter_log_events")
        for page in paginator.paginate(logGroupName=GROUP, **kwargs):
            found += page["events"]
        return found

    everything = filtered(logStreamNamePrefix=f"{name}/")
    assert sorted(e["message"] for e in everything) == sorted(
        expected_messages("algo-1") + expected_messages("algo-2")
    )
    assert [e["timestamp"] for e in everything] == sorted(e["timestamp"] for e in everything)
    assert {e["logStreamName"] for e in everything} == set(streams)
    assert len({e["eventId"] for e in everything}) == len(everything)
    needles = filtered(logStreamNames=streams, filterPattern="needle")
    assert sorted(e["message"] for e in needles) == ["algo-1 line 7 needle", "algo-2 line 7 needle"]
    quoted = filtered(logStreamNames=streams[:1], filterPattern='"line 7 needle"')
    assert [e["message"] for e in quoted] == ["algo-1 line 7 needle"]
    paged = client.filter_log_events(logGroupName=GROUP, logStreamNames=streams, limit=10)
    assert len(paged["events"]) == 10 and "nextToken" in paged
    # After the last event of every stream (each stream's lines are stamped on their own).
    last = max(e["timestamp"] for e in everything)
    assert filtered(logStreamNames=streams, startTime=last + 1) == []
    assert filtered(logStreamNames=streams, endTime=0) == []

    # Errors in CloudWatch Logs' own codes and words.
    code, message = logs_error(
        lambda: client.describe_log_streams(logGroupName="/aws/sagemaker/TrainingJobs")
    )
    assert (code, message) == (
        "ResourceNotFoundException",
        "The specified log group does not exist.",
    )
    code, message = logs_error(
        lambda: client.get_log_events(logGroupName=GROUP, logStreamName=f"{name}/algo-9-{epoch}")
    )
    assert (code, message) == (
        "ResourceNotFoundException",
        "The specified log stream does not exist.",
    )
    code, message = logs_error(
        lambda: client.filter_log_events(
            logGroupName=GROUP, logStreamNames=streams, logStreamNamePrefix=name
        )
    )
    assert code == "InvalidParameterException"
    assert "logStreamNames" in message and "logStreamNamePrefix" in message
    code, message = logs_error(
        lambda: client.describe_log_streams(
            logGroupName=GROUP, logStreamNamePrefix=name, orderBy="LastEventTime"
        )
    )
    assert code == "InvalidParameterException" and "orderBy" in message
    code, message = logs_error(lambda: client.describe_log_streams(logGroupName=GROUP, limit=51))
    assert code == "InvalidParameterException"
    assert "Value '51' at 'limit' failed to satisfy constraint" in message
    code, message = logs_error(
        lambda: client.get_log_events(
            logGroupName=GROUP, logStreamName=streams[0], nextToken="f/not-a-token"
        )
    )
    assert code == "InvalidParameterException" and "nextToken" in message
    status, body = raw_logs_request(server.url, "DescribeLogStreams", b'{"logGroupName": 5}')
    assert (status, body["__type"]) == (400, "InvalidParameterException"), body
    assert "logGroupName" in body["message"]
    status, body = raw_logs_request(server.url, "PutLogEvents", b"{}")
    assert (status, body["__type"]) == (400, "UnknownOperationException")
    assert "InternalFailure" not in server.log()


def raw_logs_request(url: str, operation: str, body: bytes) -> tuple[int, dict[str, Any]]:
    return raw_request(url, f"Logs_20140328.{operation}", body)


def test_logs_of_a_running_job_arrive_as_they_are_written(
    serve: ServerFactory, s3: Any, localproc: Localproc
) -> None:
    # The SDK's loop, as it tails a job that is still running: positions by (timestamp, skip),
    # a forward token that repeats when nothing new has come.
    slow = (
        "import time\nfor i in range(6):\n    print(f'tick {i}', flush=True)\n    time.sleep(1)\n"
    )
    server = serve()
    client = logs_client(server.url)
    name = unique_name("tail")
    sagemaker_client(server.url).create_processing_job(
        **script_job(s3, s3.make_bucket(), name, slow)
    )
    seen: list[tuple[int, str]] = []
    token = None
    stream = None
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and len(seen) < 6:
        if stream is None:
            found = client.describe_log_streams(logGroupName=GROUP, logStreamNamePrefix=f"{name}/")
            streams = [s["logStreamName"] for s in found["logStreams"]]
            stream = streams[0] if streams else None
        if stream is not None:
            kwargs = {"nextToken": token} if token else {}
            answer = client.get_log_events(
                logGroupName=GROUP, logStreamName=stream, startFromHead=True, **kwargs
            )
            seen += [(e["timestamp"], e["message"]) for e in answer["events"]]
            token = answer["nextForwardToken"]
        time.sleep(0.3)
    assert [m for _, m in seen] == [f"tick {i}" for i in range(6)]
    stamps = [t for t, _ in seen]
    assert stamps == sorted(stamps)
    # Lines written a second apart get timestamps about a second apart.
    assert stamps[-1] - stamps[0] >= 3000, stamps
    wait_until_done(sagemaker_client(server.url), name)
    assert (
        client.get_log_events(
            logGroupName=GROUP, logStreamName=stream, startFromHead=True, nextToken=token
        )["events"]
        == []
    )


# -- the AWS CLI ---------------------------------------------------------------------------------
@pytest.fixture(scope="session")
def aws_cli() -> Path:
    return ensure_venv("awscli", AWSCLI_REQUIREMENTS) / "bin" / "aws"


def aws_cli_v2() -> str | None:
    """AWS CLI v2 (`aws logs tail` exists only there) is not on PyPI: the test uses the one
    named by LOCALPROC_TEST_AWSCLI_V2, or an `aws` on PATH that is v2."""
    candidate = os.environ.get("LOCALPROC_TEST_AWSCLI_V2") or shutil.which("aws")
    if not candidate:
        return None
    version = subprocess.run([candidate, "--version"], capture_output=True, text=True)
    return candidate if version.stdout.startswith("aws-cli/2.") else None


@pytest.mark.timeout(VENV_TEST_TIMEOUT)
def test_aws_cli_reads_and_tails_a_jobs_logs(
    aws_cli: Path, serve: ServerFactory, s3: Any, localproc: Localproc
) -> None:
    server = serve()
    name = unique_name("clilogs")
    sagemaker_client(server.url).create_processing_job(**two_instance_job(s3, name))
    described = wait_until_done(sagemaker_client(server.url), name)
    epoch = int(described["ProcessingStartTime"].timestamp())
    env = {
        **os.environ,
        "AWS_ENDPOINT_URL": server.url,
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": REGION,
    }

    def aws(binary: str | Path, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(binary), "logs", *args], capture_output=True, text=True, env=env, timeout=120
        )

    streams = aws(aws_cli, "describe-log-streams", "--log-group-name", GROUP,
                  "--log-stream-name-prefix", f"{name}/")  # fmt: skip
    assert streams.returncode == 0, streams.stderr
    assert [s["logStreamName"] for s in json.loads(streams.stdout)["logStreams"]] == [
        f"{name}/algo-1-{epoch}",
        f"{name}/algo-2-{epoch}",
    ]
    events = aws(aws_cli, "get-log-events", "--log-group-name", GROUP, "--log-stream-name",
                 f"{name}/algo-1-{epoch}", "--start-from-head")  # fmt: skip
    assert events.returncode == 0, events.stderr
    assert [e["message"] for e in json.loads(events.stdout)["events"]] == expected_messages(
        "algo-1"
    )
    # filter-log-events paginates by itself (botocore's paginator over nextToken).
    filtered = aws(aws_cli, "filter-log-events", "--log-group-name", GROUP,
                   "--log-stream-name-prefix", name, "--page-size", "7")  # fmt: skip
    assert filtered.returncode == 0, filtered.stderr
    assert len(json.loads(filtered.stdout)["events"]) == 2 * (LINES + 1)
    missing = aws(aws_cli, "get-log-events", "--log-group-name", GROUP, "--log-stream-name",
                  f"{name}/algo-3-{epoch}")  # fmt: skip
    assert missing.returncode != 0 and "(ResourceNotFoundException)" in missing.stderr

    # `aws logs tail` (AWS CLI v2): FilterLogEvents with interleaved=True from ten minutes ago.
    v2 = aws_cli_v2()
    if v2 is not None:
        tailed = aws(v2, "tail", GROUP, "--log-stream-name-prefix", name, "--format", "short")
        assert tailed.returncode == 0, tailed.stderr
        lines = tailed.stdout.splitlines()
        assert len(lines) == 2 * (LINES + 1), tailed.stdout
        assert any(line.endswith("algo-2 line 7 needle") for line in lines)
    else:
        import boto3

        client = boto3.client("logs", endpoint_url=server.url, region_name=REGION)
        since = int((datetime.now(timezone.utc) - timedelta(minutes=10)).timestamp() * 1000)
        pages = client.get_paginator("filter_log_events").paginate(
            logGroupName=GROUP, interleaved=True, startTime=since, logStreamNamePrefix=name
        )
        assert sum(len(page["events"]) for page in pages) == 2 * (LINES + 1)


# -- the SageMaker Python SDK, default arguments ---------------------------------------------------
@pytest.mark.timeout(VENV_TEST_TIMEOUT)
def test_sagemaker_sdk_default_run_prints_the_jobs_logs(
    sagemaker_sdk_python: Path, serve: ServerFactory, s3: Any, localproc: Localproc
) -> None:
    server = serve()
    bucket = s3.make_bucket()
    name = unique_name("sdklogs")
    data = localproc.workdir / "data.csv"
    data.write_text("city,temperature\nOslo,3\nLisbon,17\nCairo,29\n")
    env = {
        **os.environ,
        # One endpoint for everything but S3, as a user points the SDK at localproc.
        "AWS_ENDPOINT_URL": server.url,
        "AWS_ENDPOINT_URL_S3": s3.endpoint_url,
        "HTTPS_PROXY": "http://127.0.0.1:9",
        "HTTP_PROXY": "http://127.0.0.1:9",
        "NO_PROXY": "127.0.0.1,localhost",
        "SAGEMAKER_SUPPRESS_V2_WARNING": "1",
    }
    script = Path(__file__).with_name("serve_sdk_job.py")

    done = subprocess.run(
        [
            str(sagemaker_sdk_python),
            str(script),
            server.url,
            bucket,
            name,
            EXAMPLE_IMAGE,
            str(data),
            "--default-run",
        ],  # fmt: skip
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
    )

    assert done.returncode == 0, done.stdout + done.stderr
    assert json.loads(done.stdout.strip().splitlines()[-1]) == {"ProcessingJobStatus": "Completed"}
    # The job's own output, as the SDK printed it from the log stream.
    assert "summarised 3 rows" in done.stdout.splitlines(), done.stdout
    operations = {
        line.split()[2]
        for line in server.log().splitlines()
        if line.startswith("localproc serve: ") and len(line.split()) > 3
    }
    assert {"DescribeLogStreams", "GetLogEvents"} <= operations, server.log()
    assert " 500 " not in server.log()


@pytest.fixture(scope="session")
def sagemaker_sdk_v3_python() -> Path:
    return python_of(ensure_venv("sagemaker-sdk-v3", SAGEMAKER_SDK_V3_REQUIREMENTS))


@pytest.mark.timeout(VENV_TEST_TIMEOUT)
def test_sagemaker_sdk_v3_default_run_prints_the_jobs_logs(
    sagemaker_sdk_v3_python: Path, serve: ServerFactory, s3: Any, localproc: Localproc
) -> None:
    server = serve()
    bucket = s3.make_bucket()
    name = unique_name("sdkv3")
    env = {
        **os.environ,
        "AWS_ENDPOINT_URL": server.url,
        "AWS_ENDPOINT_URL_S3": s3.endpoint_url,
        "HTTPS_PROXY": "http://127.0.0.1:9",
        "HTTP_PROXY": "http://127.0.0.1:9",
        "NO_PROXY": "127.0.0.1,localhost",
    }
    script = Path(__file__).with_name("serve_sdk_v3_job.py")

    done = subprocess.run(
        [str(sagemaker_sdk_v3_python), str(script), bucket, name, EXAMPLE_IMAGE],
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
    )

    assert done.returncode == 0, done.stdout + done.stderr
    assert json.loads(done.stdout.strip().splitlines()[-1]) == {"ProcessingJobStatus": "Completed"}
    assert "hello from the v3 job" in done.stdout.splitlines(), done.stdout
    assert " 500 " not in server.log()
