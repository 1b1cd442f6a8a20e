"""`localproc serve`: the SageMaker API on localhost, driven by real clients — boto3, the AWS CLI
and the SageMaker Python SDK — with real Docker and a real S3 endpoint. The server runs as users
run it, `python -m localproc serve --port 0 ...` in a subprocess."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from docker_engine import (
    EXAMPLE_IMAGE,
    Localproc,
    job_payload,
    s3_input,
    s3_output,
    unique_name,
    wait_for,
)
from serve_clients import (
    AWSCLI_REQUIREMENTS,
    SAGEMAKER_SDK_REQUIREMENTS,
    ServerProcess,
    end_running_jobs,
    ensure_venv,
    python_of,
    raw_request,
    sagemaker_client,
    start_server,
)

pytestmark = pytest.mark.docker

REGION = "us-east-1"
# First run builds the clients' virtual environments (about 40 s for the AWS CLI, 70 s for the
# SageMaker SDK here); later runs reuse them.
VENV_TEST_TIMEOUT = 1500

QUICK = """
import os, pathlib
pathlib.Path('/opt/ml/processing/output/result.txt').write_text('done: ' + os.environ['GREETING'])
print('wrote result.txt', flush=True)
"""

# Takes a second to exit on SIGTERM, so that the Stopping status can be seen.
SLEEPER = r"""
import pathlib, signal, sys, time
def on_term(signum, frame):
    time.sleep(1)
    pathlib.Path('/opt/ml/processing/output/terminated.txt').write_text('got SIGTERM')
    sys.exit(0)
signal.signal(signal.SIGTERM, on_term)
print('sleeping', flush=True)
time.sleep(300)
"""


# -- fixtures and helpers ------------------------------------------------------------------------
ServerFactory = Callable[..., ServerProcess]


@pytest.fixture
def serve(localproc: Localproc, s3: Any, tmp_path: Path) -> Iterator[ServerFactory]:
    """Start `localproc serve` on a free port with the test's state dir and S3 endpoint. At the
    end every job still running is stopped and every server is stopped; each must exit 0."""
    servers: list[ServerProcess] = []

    def start(*extra: str) -> ServerProcess:
        args = ["--port", "0", "--state-dir", str(localproc.state_dir)]
        args += ["--s3-endpoint-url", s3.endpoint_url, "--stop-grace", "5", *extra]
        server = start_server(args, tmp_path / f"serve-{len(servers)}.log")
        servers.append(server)
        return server

    yield start
    try:
        end_running_jobs(localproc)
    finally:
        codes = [(server.stop(), server.log()) for server in servers]
    for code, log in codes:
        assert code == 0, log
        assert "localproc serve: stopped" in log, log


def status_of(localproc: Localproc, name: str) -> str:
    return str(localproc.record(name)["ProcessingJobStatus"])


def wait_until_done(client: Any, name: str) -> dict[str, Any]:
    waiter = client.get_waiter("processing_job_completed_or_stopped")
    waiter.wait(ProcessingJobName=name, WaiterConfig={"Delay": 1, "MaxAttempts": 180})
    return dict(client.describe_processing_job(ProcessingJobName=name))


def script_job(
    s3: Any, bucket: str, name: str, script: str, greeting: str = "hello"
) -> dict[str, Any]:
    """A job running `script`, shipped as an input under the job's own key (jobs started in the
    background stage their inputs after the create call returns, so keys must not be shared)."""
    s3.client.put_object(Bucket=bucket, Key=f"{name}/code/script.py", Body=script.encode())
    return job_payload(
        name,
        entrypoint=["python3", "-u", "/opt/ml/processing/input/code/script.py"],
        inputs=[
            s3_input(
                "code", f"s3://{bucket}/{name}/code/script.py", "/opt/ml/processing/input/code"
            )
        ],
        outputs=[s3_output("out", f"s3://{bucket}/{name}/out", "/opt/ml/processing/output")],
        environment={"GREETING": greeting},
    )


def output_text(s3: Any, bucket: str, key: str) -> str:
    return s3.client.get_object(Bucket=bucket, Key=key)["Body"].read().decode()


def error_code(call: Callable[[], Any]) -> tuple[str, str]:
    from botocore.exceptions import ClientError

    with pytest.raises(ClientError) as caught:
        call()
    error = caught.value.response["Error"]
    assert caught.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400
    return error["Code"], error["Message"]


def started(localproc: Localproc, name: str) -> Callable[[], bool]:
    """The sleeper has said 'sleeping': its SIGTERM handler is installed."""

    def check() -> bool:
        log = localproc.job_dir(name) / "logs" / "algo-1.log"
        return log.exists() and "sleeping" in log.read_text()

    return check


def served_operations(server: ServerProcess) -> list[str]:
    prefix = "localproc serve: "
    return [
        line[len(prefix) :].split(" ", 1)[0]
        for line in server.log().splitlines()
        if line.startswith(prefix) and line[len(prefix) :].split(" ", 2)[1:2] in (["200"], ["400"])
    ]


# -- boto3 ---------------------------------------------------------------------------------------
def test_boto3_creates_waits_describes_lists_and_deletes(
    serve: ServerFactory, s3: Any, localproc: Localproc
) -> None:
    server = serve()
    assert server.banner == (
        f"localproc serve: listening on {server.url} (requests are not signature-checked)"
    )
    client = sagemaker_client(server.url)
    bucket = s3.make_bucket()
    prefix = unique_name("boto")
    names = [f"{prefix}-a", f"{prefix}-b"]
    before = datetime.now(timezone.utc)

    arns = [
        client.create_processing_job(**script_job(s3, bucket, name, QUICK, greeting=name))[
            "ProcessingJobArn"
        ]
        for name in names
    ]

    assert arns == [f"arn:aws:sagemaker:{REGION}:000000000000:processing-job/{n}" for n in names]
    described = [wait_until_done(client, name) for name in names]
    for name, job in zip(names, described, strict=True):
        assert job["ProcessingJobStatus"] == "Completed", job.get("FailureReason")
        assert job["ProcessingJobName"] == name
        assert job["AppSpecification"]["ImageUri"] == EXAMPLE_IMAGE
        assert output_text(s3, bucket, f"{name}/out/result.txt") == f"done: {name}"
    # Timestamps arrive as epoch seconds and botocore parses them into aware datetimes equal to
    # what the record holds.
    first = described[0]
    record = localproc.record(names[0])
    for field in ("CreationTime", "ProcessingStartTime", "ProcessingEndTime", "LastModifiedTime"):
        assert isinstance(first[field], datetime) and first[field].tzinfo is not None
        recorded = datetime.fromisoformat(record[field])
        assert abs(first[field] - recorded) < timedelta(milliseconds=1), field
    assert before - timedelta(seconds=1) < first["CreationTime"] <= first["ProcessingStartTime"]
    assert first["ProcessingStartTime"] <= first["ProcessingEndTime"]

    # ListProcessingJobs: filters, sort, paging; summaries with parsed timestamps.
    def listed(**query: Any) -> list[str]:
        page = client.list_processing_jobs(NameContains=prefix, **query)
        return [s["ProcessingJobName"] for s in page["ProcessingJobSummaries"]]

    assert listed() == names  # the API's default: CreationTime, Ascending
    assert listed(StatusEquals="Completed", SortBy="Name", SortOrder="Descending") == names[::-1]
    assert listed(StatusEquals="InProgress") == []
    assert listed(CreationTimeAfter=before - timedelta(minutes=1)) == names
    assert listed(CreationTimeBefore=before - timedelta(minutes=1)) == []
    assert listed(CreationTimeAfter=datetime.now(timezone.utc) + timedelta(hours=1)) == []
    summary = client.list_processing_jobs(NameContains=prefix.upper())["ProcessingJobSummaries"][0]
    assert summary["ProcessingJobArn"] == arns[0]
    assert isinstance(summary["CreationTime"], datetime)
    page = client.list_processing_jobs(NameContains=prefix, MaxResults=1)
    assert [s["ProcessingJobName"] for s in page["ProcessingJobSummaries"]] == names[:1]
    rest = client.list_processing_jobs(
        NameContains=prefix, MaxResults=1, NextToken=page["NextToken"]
    )
    assert [s["ProcessingJobName"] for s in rest["ProcessingJobSummaries"]] == names[1:]
    assert "NextToken" not in rest
    # Hand-written requests may give times as ISO 8601 strings.
    status, body = raw_request(
        server.url,
        "SageMaker.ListProcessingJobs",
        json.dumps({"NameContains": prefix, "CreationTimeAfter": "2000-01-01T00:00:00Z"}).encode(),
    )
    assert status == 200
    assert [s["ProcessingJobName"] for s in body["ProcessingJobSummaries"]] == names
    assert isinstance(body["ProcessingJobSummaries"][0]["CreationTime"], float)

    assert (
        client.delete_processing_job(ProcessingJobName=names[0])["ResponseMetadata"][
            "HTTPStatusCode"
        ]
        == 200
    )
    assert error_code(lambda: client.describe_processing_job(ProcessingJobName=names[0]))[0] == (
        "ResourceNotFound"
    )
    assert listed() == names[1:]
    assert not localproc.job_dir(names[0]).exists()


def test_boto3_stops_a_running_job(serve: ServerFactory, s3: Any, localproc: Localproc) -> None:
    client = sagemaker_client(serve().url)
    bucket = s3.make_bucket()
    name = unique_name("stop")
    client.create_processing_job(**script_job(s3, bucket, name, SLEEPER))
    wait_for(started(localproc, name), 60, "the sleeper to start")
    assert client.describe_processing_job(ProcessingJobName=name)["ProcessingJobStatus"] == (
        "InProgress"
    )
    code, message = error_code(lambda: client.delete_processing_job(ProcessingJobName=name))
    assert code == "ResourceInUse" and "InProgress" in message
    assert "localproc" not in message and "StopProcessingJob" in message

    assert (
        client.stop_processing_job(ProcessingJobName=name)["ResponseMetadata"]["HTTPStatusCode"]
        == 200
    )
    assert client.describe_processing_job(ProcessingJobName=name)["ProcessingJobStatus"] == (
        "Stopping"
    )
    described = wait_until_done(client, name)

    assert described["ProcessingJobStatus"] == "Stopped"
    # The service gives no FailureReason for a stop that was asked for.
    assert "FailureReason" not in described or described["FailureReason"].startswith("Stopped")
    assert output_text(s3, bucket, f"{name}/out/terminated.txt") == "got SIGTERM"
    code, message = error_code(lambda: client.stop_processing_job(ProcessingJobName=name))
    assert code == "ValidationException" and "Stopped" in message
    client.delete_processing_job(ProcessingJobName=name)


def test_boto3_gets_each_error_as_the_service_sends_it(
    serve: ServerFactory, s3: Any, localproc: Localproc
) -> None:
    from botocore.exceptions import ClientError

    server = serve()
    client = sagemaker_client(server.url)
    bucket = s3.make_bucket()

    # ValidationException: what botocore lets through (enums, patterns, service rules) ...
    bad = script_job(s3, bucket, unique_name("bad"), QUICK)
    bad["ProcessingInputs"][0]["S3Input"]["S3InputMode"] = "Stream"
    code, message = error_code(lambda: client.create_processing_job(**bad))
    assert code == "ValidationException"
    assert message.startswith("1 validation error detected: Value 'Stream' at ")
    assert "processingInputs.1.member.s3Input.s3InputMode" in message
    # ... and what only a hand-made request can send: unknown members, wrong types.
    status, body = raw_request(
        server.url,
        "SageMaker.CreateProcessingJob",
        json.dumps({**script_job(s3, bucket, unique_name("odd"), QUICK), "Foo": 1}).encode(),
    )
    assert status == 400 and body["__type"] == "ValidationException"
    assert 'Unknown parameter in input: "Foo"' in body["message"]
    code, message = error_code(lambda: client.describe_processing_job(ProcessingJobName="a/../b"))
    assert code == "ValidationException" and "processingJobName" in message

    # ResourceNotFound for every operation on a job that does not exist.
    for call in (
        client.describe_processing_job,
        client.stop_processing_job,
        client.delete_processing_job,
    ):
        assert error_code(lambda c=call: c(ProcessingJobName="no-such-job"))[0] == (
            "ResourceNotFound"
        )

    # ResourceInUse: the name is taken.
    name = unique_name("twice")
    payload = script_job(s3, bucket, name, QUICK)
    client.create_processing_job(**payload)
    code, message = error_code(lambda: client.create_processing_job(**payload))
    assert code == "ResourceInUse" and name in message
    assert message.startswith("Job name must be unique within an AWS account and region")
    assert "--name" not in message and "localproc" not in message  # API answers speak the API
    assert wait_until_done(client, name)["ProcessingJobStatus"] == "Completed"

    # A job the host cannot run (an image that is not here and cannot be pulled) is refused
    # before it is recorded, with localproc's own code.
    missing = script_job(s3, bucket, unique_name("noimage"), QUICK)
    missing["AppSpecification"]["ImageUri"] = "127.0.0.1:9/localproc-test/missing:latest"
    code, message = error_code(lambda: client.create_processing_job(**missing))
    assert code == "CannotRunHere" and "could not be pulled" in message
    assert error_code(
        lambda: client.describe_processing_job(ProcessingJobName=missing["ProcessingJobName"])
    )[0] == ("ResourceNotFound")

    # Operations that are not served get the service's unknown-operation error.
    with pytest.raises(ClientError) as caught:
        client.list_training_jobs()
    assert caught.value.response["Error"]["Code"] == "UnknownOperationException"
    status, body = raw_request(server.url, "SageMaker.CreateTrainingJob", b"{}")
    assert (status, body["__type"]) == (400, "UnknownOperationException")
    status, body = raw_request(server.url, None, b"{}")
    assert (status, body["__type"]) == (400, "UnknownOperationException")
    # Bodies that are not a JSON object.
    for garbage in (b"{not json", b"[1, 2]", b"\xff\xfe", b'{"MaxResults": NaN}'):
        status, body = raw_request(server.url, "SageMaker.ListProcessingJobs", garbage)
        assert (status, body["__type"]) == (400, "SerializationException"), garbage
    # GET / is the console (issue 16); any other GET is not served.
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(server.url + "/opt/ml", timeout=30)
    assert refused.value.code == 400
    assert json.loads(refused.value.read())["__type"] == "UnknownOperationException"

    # A client that promises a body and hangs up gets nothing, and harms nothing.
    host, port = server.url.removeprefix("http://").rsplit(":", 1)
    with socket.create_connection((host, int(port)), timeout=30) as connection:
        connection.sendall(
            b"POST / HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Amz-Target: SageMaker.ListProcessingJobs\r\n"
            b"Content-Length: 100\r\n\r\n{}"
        )
    wait_for(lambda: "request dropped" in server.log(), 10, "the dropped request to be noted")

    # The server is still up and well after all that.
    assert client.list_processing_jobs(NameContains=name)["ProcessingJobSummaries"]
    assert "InternalFailure" not in server.log()


def test_max_concurrent_jobs_answers_resource_limit_exceeded(
    serve: ServerFactory, s3: Any, localproc: Localproc
) -> None:
    client = sagemaker_client(serve("--max-concurrent-jobs", "1").url)
    bucket = s3.make_bucket()
    sleeper, second = unique_name("long"), unique_name("second")
    client.create_processing_job(**script_job(s3, bucket, sleeper, SLEEPER))

    code, message = error_code(
        lambda: client.create_processing_job(**script_job(s3, bucket, second, SLEEPER))
    )

    assert code == "ResourceLimitExceeded"
    assert "is 1" in message and sleeper in message
    assert error_code(lambda: client.describe_processing_job(ProcessingJobName=second))[0] == (
        "ResourceNotFound"
    )
    wait_for(started(localproc, sleeper), 60, "the sleeper to start")
    client.stop_processing_job(ProcessingJobName=sleeper)
    assert wait_until_done(client, sleeper)["ProcessingJobStatus"] == "Stopped"
    # The slot is free again once the job has ended.
    client.create_processing_job(**script_job(s3, bucket, second, QUICK))
    assert wait_until_done(client, second)["ProcessingJobStatus"] == "Completed"


def test_stopping_the_server_leaves_its_jobs_running(
    serve: ServerFactory, s3: Any, localproc: Localproc
) -> None:
    server = serve()
    bucket = s3.make_bucket()
    name = unique_name("outlives")
    sagemaker_client(server.url).create_processing_job(**script_job(s3, bucket, name, SLEEPER))
    wait_for(started(localproc, name), 60, "the sleeper to start")

    assert server.stop() == 0

    assert f"still running in the background: {name}" in server.log()
    time.sleep(1)
    assert status_of(localproc, name) == "InProgress"
    # Another server on the same state dir sees it and can stop it.
    client = sagemaker_client(serve().url)
    assert client.describe_processing_job(ProcessingJobName=name)["ProcessingJobStatus"] == (
        "InProgress"
    )
    client.stop_processing_job(ProcessingJobName=name)
    assert wait_until_done(client, name)["ProcessingJobStatus"] == "Stopped"


def test_serve_refuses_a_port_in_use_and_warns_off_loopback(
    serve: ServerFactory, tmp_path: Path, localproc: Localproc
) -> None:
    server = serve()
    port = server.url.rsplit(":", 1)[1]
    taken = localproc("serve", "--port", port, timeout=30)
    assert taken.exit_code == 4
    assert "CannotRunHere: cannot listen on 127.0.0.1:" in taken.stderr

    open_server = start_server(
        ["--host", "0.0.0.0", "--port", "0", "--state-dir", str(localproc.state_dir)],
        tmp_path / "open.log",
    )
    try:
        assert open_server.url.startswith("http://0.0.0.0:")
        wait_for(lambda: "not a loopback address" in open_server.log(), 10, "the warning")
    finally:
        assert open_server.stop(signum=signal.SIGINT) == 0  # Ctrl-C
    assert "localproc serve: stopped" in open_server.log()


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_serve_stops_cleanly_when_signalled_right_after_the_banner(
    tmp_path: Path, localproc: Localproc, signum: int
) -> None:
    # A script that starts the server, reads the URL and stops it at once must see a clean stop:
    # the signal handlers are in place before the banner is printed.
    for attempt in range(3):
        server = start_server(
            ["--port", "0", "--state-dir", str(localproc.state_dir)], tmp_path / f"{attempt}.log"
        )
        assert server.stop(signum=signum) == 0, server.log()
        assert "localproc serve: stopped" in server.log()


# -- the AWS CLI ---------------------------------------------------------------------------------
@pytest.fixture(scope="session")
def aws_cli() -> Path:
    return ensure_venv("awscli", AWSCLI_REQUIREMENTS) / "bin" / "aws"


@pytest.mark.timeout(VENV_TEST_TIMEOUT)
def test_aws_cli_creates_and_describes_a_job(
    aws_cli: Path, serve: ServerFactory, s3: Any, localproc: Localproc
) -> None:
    server = serve()
    bucket = s3.make_bucket()
    name = unique_name("awscli")
    payload_file = localproc.workdir / "payload.json"
    payload_file.write_text(json.dumps(script_job(s3, bucket, name, QUICK, greeting="aws cli")))

    def aws(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(aws_cli), "sagemaker", *args, "--endpoint-url", server.url, "--region", REGION],
            capture_output=True,
            text=True,
            timeout=120,
        )

    created = aws("create-processing-job", "--cli-input-json", f"file://{payload_file}")
    assert created.returncode == 0, created.stderr
    assert json.loads(created.stdout)["ProcessingJobArn"].endswith(f":processing-job/{name}")
    wait_until_done(sagemaker_client(server.url), name)

    described = aws("describe-processing-job", "--processing-job-name", name)

    assert described.returncode == 0, described.stderr
    job = json.loads(described.stdout)
    assert job["ProcessingJobStatus"] == "Completed"
    assert job["ProcessingJobName"] == name
    # AWS CLI v1 prints timestamps as the service sent them (its cli_timestamp_format `none`).
    assert isinstance(job["CreationTime"], float)
    created_at = datetime.fromtimestamp(job["CreationTime"], timezone.utc)
    assert abs(created_at - datetime.fromisoformat(localproc.record(name)["CreationTime"])) < (
        timedelta(milliseconds=1)
    )
    assert output_text(s3, bucket, f"{name}/out/result.txt") == "done: aws cli"
    listed = aws("list-processing-jobs", "--name-contains", name, "--status-equals", "Completed")
    assert listed.returncode == 0, listed.stderr
    assert [
        s["ProcessingJobName"] for s in json.loads(listed.stdout)["ProcessingJobSummaries"]
    ] == [name]
    unknown = aws("describe-processing-job", "--processing-job-name", "no-such-job")
    assert unknown.returncode != 0
    assert "(ResourceNotFound)" in unknown.stderr


# -- the SageMaker Python SDK --------------------------------------------------------------------
@pytest.fixture(scope="session")
def sagemaker_sdk_python() -> Path:
    return python_of(ensure_venv("sagemaker-sdk", SAGEMAKER_SDK_REQUIREMENTS))


@pytest.mark.timeout(VENV_TEST_TIMEOUT)
def test_sagemaker_sdk_processor_runs_a_job(
    sagemaker_sdk_python: Path, serve: ServerFactory, s3: Any, localproc: Localproc
) -> None:
    server = serve()
    bucket = s3.make_bucket()
    name = unique_name("sdk")
    data = localproc.workdir / "data.csv"
    data.write_text("city,temperature\nOslo,3\nLisbon,17\nCairo,29\n")
    env = {
        **os.environ,
        # S3 (and any other AWS service the SDK might reach for) is the test's S3 server;
        # SageMaker is localproc, even for a client the SDK makes by itself.
        "AWS_ENDPOINT_URL": s3.endpoint_url,
        "AWS_ENDPOINT_URL_S3": s3.endpoint_url,
        "AWS_ENDPOINT_URL_SAGEMAKER": server.url,
        # Anything aimed elsewhere fails at once on a closed local port instead of leaving.
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
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )

    assert done.returncode == 0, done.stdout + done.stderr
    assert json.loads(done.stdout.strip().splitlines()[-1]) == {"ProcessingJobStatus": "Completed"}
    summary = json.loads(output_text(s3, bucket, f"{name}/output/summary.json"))
    assert summary == {"rows": 3, "header": "city,temperature"}
    # The SDK uploaded the local input to the session's bucket itself.
    uploaded = s3.client.list_objects_v2(Bucket=bucket, Prefix=f"{name}/input/data/")
    assert [o["Key"] for o in uploaded["Contents"]] == [f"{name}/input/data/data.csv"]
    record = localproc.record(name)
    assert record["ProcessingJobStatus"] == "Completed"
    assert record["ProcessingResources"]["ClusterConfig"]["InstanceType"] == "ml.t3.medium"
    # Only served operations were called, and none failed.
    operations = served_operations(server)
    assert operations[0] == "CreateProcessingJob"
    assert set(operations) <= {"CreateProcessingJob", "DescribeProcessingJob"}, server.log()
    assert " 400 " not in server.log()
