"""`localproc serve` against hostile or broken clients: bodies that break JSON parsers, hundreds of
connections that never send a request, and keep-alive between requests. The server runs as users
run it, `python -m localproc serve --port 0 ...` in a subprocess; no Docker is needed."""

from __future__ import annotations

import http.client
import json
import socket
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psutil
import pytest
from serve_clients import ServerProcess, start_server

QUICKSTART = Path(__file__).parents[1] / "fixtures" / "jobs" / "quickstart.json"
HALF_OPEN_CONNECTIONS = 300
# Threads a server may use whatever the number of connections: its worker pool, the accept
# loop and what the interpreter starts.
MAX_SERVER_THREADS = 32


@pytest.fixture
def server(tmp_path: Path) -> Iterator[ServerProcess]:
    running = start_server(
        ["--port", "0", "--state-dir", str(tmp_path / "state")], tmp_path / "serve.log"
    )
    yield running
    assert running.stop() == 0, running.log()
    assert "localproc serve: stopped" in running.log()


def address(server: ServerProcess) -> tuple[str, int]:
    host, port = server.url.removeprefix("http://").rsplit(":", 1)
    return host, int(port)


def post(
    connection: http.client.HTTPConnection, target: str, body: bytes
) -> tuple[int, dict[str, Any]]:
    connection.request(
        "POST",
        "/",
        body=body,
        headers={"Content-Type": "application/x-amz-json-1.1", "X-Amz-Target": target},
    )
    response = connection.getresponse()
    return response.status, json.loads(response.read())


def list_jobs(server: ServerProcess, timeout: float = 30) -> tuple[int, dict[str, Any]]:
    connection = http.client.HTTPConnection(*address(server), timeout=timeout)
    try:
        return post(connection, "SageMaker.ListProcessingJobs", b"{}")
    finally:
        connection.close()


# -- item 13: bodies that break the JSON parser ---------------------------------------------------
@pytest.mark.parametrize(
    "body",
    [
        b'{"NameContains": ' + b"[" * 5000 + b"]" * 5000 + b"}",
        b'{"NameContains": ' + b'{"a": ' * 2000 + b"1" + b"}" * 2000 + b"}",
        b'{"MaxResults": ' + b"7" * 5000 + b"}",
        b'{"MaxResults": ' + b"1" * 4301 + b"}",
    ],
    ids=["arrays-5000-deep", "objects-2000-deep", "int-5000-digits", "int-4301-digits"],
)
def test_bodies_that_break_json_parsers_are_serialization_exceptions(
    server: ServerProcess, body: bytes
) -> None:
    connection = http.client.HTTPConnection(*address(server), timeout=30)
    try:
        status, answer = post(connection, "SageMaker.ListProcessingJobs", body)
    finally:
        connection.close()

    assert (status, answer["__type"]) == (400, "SerializationException"), answer
    assert "Traceback" not in answer["message"] and len(answer["message"]) < 300
    assert list_jobs(server)[0] == 200
    assert "InternalFailure" not in server.log()
    assert "Traceback" not in server.log()


def test_an_unexpected_failure_answers_without_internals(tmp_path: Path) -> None:
    # A bug anywhere below the HTTP boundary (here: the background start raising something no
    # code expects) must reach the client as a short InternalFailure naming no internals, with
    # the detail in the server's log. The fault is injected into the real server class.
    import io
    import threading

    from localproc.jobs import RunSettings
    from localproc.server import ProcessingApi, make_server

    def broken_start(request: dict[str, Any], settings: RunSettings) -> str:
        raise RuntimeError("secret internals at /private/path")

    log = io.StringIO()
    api = ProcessingApi(RunSettings(state_dir=tmp_path / "state"), start=broken_start)
    http_server = make_server("127.0.0.1", 0, api, log)
    thread = threading.Thread(target=http_server.serve_forever, kwargs={"poll_interval": 0.1})
    thread.start()
    try:
        payload = json.loads(QUICKSTART.read_text())
        connection = http.client.HTTPConnection("127.0.0.1", http_server.server_address[1])
        status, answer = post(
            connection, "SageMaker.CreateProcessingJob", json.dumps(payload).encode()
        )
        connection.close()
    finally:
        http_server.shutdown()
        http_server.server_close()
        thread.join(10)

    assert (status, answer["__type"]) == (500, "InternalFailure")
    assert "secret" not in answer["message"] and "/private" not in answer["message"]
    assert "RuntimeError" not in answer["message"]
    assert "secret internals" in log.getvalue()  # the operator sees what happened


# -- item 20: API answers speak the API ----------------------------------------------------------
def test_resource_in_use_speaks_the_api_not_the_cli(server: ServerProcess, tmp_path: Path) -> None:
    payload = json.loads(QUICKSTART.read_text())
    name = payload["ProcessingJobName"] = "taken-name"
    job = tmp_path / "state" / "jobs" / name
    job.mkdir(parents=True)
    arn = f"arn:aws:sagemaker:us-east-1:000000000000:processing-job/{name}"
    (job / "record.json").write_text(
        json.dumps(
            {
                "ProcessingJobName": name,
                "ProcessingJobArn": arn,
                "ProcessingJobStatus": "Completed",
                "CreationTime": "2026-01-01T00:00:00+00:00",
            }
        )
    )

    connection = http.client.HTTPConnection(*address(server), timeout=60)
    try:
        status, answer = post(
            connection, "SageMaker.CreateProcessingJob", json.dumps(payload).encode()
        )
    finally:
        connection.close()

    assert (status, answer["__type"]) == (400, "ResourceInUse"), answer
    assert answer["message"] == (
        "Job name must be unique within an AWS account and region, and a job with this name "
        f"already exists ({arn})"
    )


# -- item 16: connections are bounded ------------------------------------------------------------
def test_half_open_connections_neither_pile_up_threads_nor_block_requests(
    server: ServerProcess,
) -> None:
    process = psutil.Process(server.process.pid)
    idle_threads = process.num_threads()
    sockets = []
    try:
        for index in range(HALF_OPEN_CONNECTIONS):
            connection = socket.create_connection(address(server), timeout=10)
            if index % 2:  # half of them start a request line and never finish it
                connection.sendall(b"POST / HTTP/1.1\r\nHost: x\r\n")
            sockets.append(connection)
        time.sleep(1)
        busiest = process.num_threads()
        started = time.monotonic()
        status, _ = list_jobs(server)
        answered_after = time.monotonic() - started
        busiest = max(busiest, process.num_threads())
    finally:
        for connection in sockets:
            connection.close()

    assert status == 200
    assert answered_after < 5, f"a request waited {answered_after:.1f} s behind idle connections"
    assert busiest <= MAX_SERVER_THREADS, (idle_threads, busiest)


def test_a_connection_that_sends_nothing_is_closed_within_seconds(server: ServerProcess) -> None:
    for greeting in (b"", b"POST / HTTP/1.1\r\nHost: x\r\n"):
        with socket.create_connection(address(server), timeout=30) as connection:
            connection.sendall(greeting)
            started = time.monotonic()
            try:
                leftover = connection.recv(65536)  # b"" once the server closes it
            except ConnectionResetError:
                leftover = b""
            waited = time.monotonic() - started
        assert waited < 15, f"an idle connection stayed open {waited:.1f} s"
        assert leftover in (b"",) or leftover.startswith(b"HTTP/1.1 408"), leftover


def test_keep_alive_serves_several_requests_on_one_connection(server: ServerProcess) -> None:
    connection = http.client.HTTPConnection(*address(server), timeout=30)
    try:
        assert post(connection, "SageMaker.ListProcessingJobs", b"{}")[0] == 200
        first_socket = connection.sock
        time.sleep(2)  # a client's pause between calls (boto3 reuses its connections)
        assert post(connection, "SageMaker.ListProcessingJobs", b"{}")[0] == 200
        status, answer = post(connection, "SageMaker.ListProcessingJobs", b"{not json")
        assert (status, answer["__type"]) == (400, "SerializationException")
        assert post(connection, "SageMaker.ListProcessingJobs", b"{}")[0] == 200
        assert connection.sock is first_socket  # no reconnect happened
    finally:
        connection.close()


def test_pipelined_requests_are_each_answered(server: ServerProcess) -> None:
    request = (
        b"POST / HTTP/1.1\r\nHost: x\r\nX-Amz-Target: SageMaker.ListProcessingJobs\r\n"
        b"Content-Type: application/x-amz-json-1.1\r\nContent-Length: 2\r\n\r\n{}"
    )
    with socket.create_connection(address(server), timeout=30) as connection:
        connection.sendall(request * 3)
        received = b""
        deadline = time.monotonic() + 20
        while received.count(b"HTTP/1.1 200") < 3 and time.monotonic() < deadline:
            chunk = connection.recv(65536)
            if not chunk:
                break
            received += chunk
    assert received.count(b"HTTP/1.1 200") == 3, received
