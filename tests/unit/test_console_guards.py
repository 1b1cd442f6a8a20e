"""The console's two guards (serve/console.py): a Host that does not name the server is refused
(DNS rebinding), and stop/delete need the token the page got (CSRF). Requests go straight to the
routes; the served endpoint is driven in a real browser by tests/integration/test_console.py."""

from __future__ import annotations

import http.client
import io
import json
import os
import socket
import threading
from pathlib import Path
from typing import Any

import pytest

from localproc.records.store import JobStore
from localproc.records.telemetry import read_usage_series
from localproc.serve import http_budgets
from localproc.serve.console import (
    DOWNLOAD_BYTES_PER_SECOND,
    Answer,
    Console,
    attachment,
    sole_host,
    write_answer,
)
from localproc.service import console as views

PORT = 8765


@pytest.fixture
def console(tmp_path: Path) -> Console:
    return Console(JobStore(tmp_path), "127.0.0.1")


@pytest.mark.parametrize(
    "host",
    [f"127.0.0.1:{PORT}", f"localhost:{PORT}", f"LOCALHOST:{PORT}", f"[::1]:{PORT}",
     f"10.1.2.3:{PORT}", "127.0.0.1", "localhost:9000"],
)  # fmt: skip
def test_hosts_naming_the_server_by_address_pass_whatever_the_port(
    console: Console, host: str
) -> None:
    assert console.host_allowed(host)


@pytest.mark.parametrize(
    "host",
    [None, "", "evil.example", f"evil.example:{PORT}", f"127.0.0.1.nip.io:{PORT}",
     f"localhost.evil.example:{PORT}", "127.0.0.1:port", "2130706433:8765",
     f"user@127.0.0.1:{PORT}"],
)  # fmt: skip
def test_other_hosts_are_refused(console: Console, host: str | None) -> None:
    assert not console.host_allowed(host)


def test_a_name_given_to_host_passes(tmp_path: Path) -> None:
    named = Console(JobStore(tmp_path), "devbox")
    assert named.host_allowed(f"devbox:{PORT}")
    assert not named.host_allowed(f"otherbox:{PORT}")


def test_a_foreign_host_gets_nothing_not_even_the_page(console: Console) -> None:
    for path in ("/", "/console/api/jobs", "/console/static/console.js"):
        answer = console.get(path, "rebound.example:8765")
        assert answer.status == 400
        assert json.loads(answer.body)["__type"] == "ForeignHost"
        assert console.token.encode() not in answer.body


def test_the_page_carries_the_token_and_a_strict_policy(console: Console) -> None:
    answer = console.get("/", f"127.0.0.1:{PORT}")
    assert answer.status == 200 and answer.content_type.startswith("text/html")
    assert f'content="{console.token}"'.encode() in answer.body
    policy = answer.headers["Content-Security-Policy"]
    assert "script-src 'self'" in policy and "frame-ancestors 'none'" in policy
    assert answer.headers["X-Frame-Options"] == "DENY"


def test_stop_and_delete_need_the_token(console: Console) -> None:
    host = f"127.0.0.1:{PORT}"
    for action in ("stop", "delete"):
        path = f"/console/api/jobs/some-job/{action}"
        for token in (None, "", "wrong", console.token[:-1]):
            answer = console.post(path, host, token)
            assert answer.status == 403, (action, token)
            assert json.loads(answer.body)["__type"] == "AccessDeniedException"
        # With the token the request reaches the job store: no such job.
        assert console.post(path, host, console.token).status == 404
    assert console.post("/console/api/jobs/some-job/stop", "evil:8765", console.token).status == 400


def test_bad_queries_are_answered_as_errors_not_crashes(console: Console) -> None:
    host = f"127.0.0.1:{PORT}"
    assert console.get("/console/api/jobs?status=Bogus", host).status == 400
    assert console.get("/console/api/jobs?after=tomorrow", host).status == 400
    assert console.get("/console/api/jobs/..%2Fx", host).status == 400
    assert console.get("/console/api/jobs/missing", host).status == 404
    assert console.get("/console/static/../../record.json", host).status == 404
    listing = console.get("/console/api/jobs?name=x&after=0", host)
    assert listing.status == 200 and json.loads(listing.body)["Jobs"] == []


def test_a_file_name_cannot_forge_a_header() -> None:
    header = attachment('evil"\r\nSet-Cookie: a=b.txt')
    assert "\r" not in header and "\n" not in header
    assert header.startswith('attachment; filename="evil___Set-Cookie__a_b.txt"; ')
    assert header.endswith("filename*=UTF-8''evil%22%0D%0ASet-Cookie%3A%20a%3Db.txt")


@pytest.fixture
def recorded(console: Console) -> str:
    """A recorded job with algo-1's log and a plan whose input lists 100,000 objects."""
    name = "review-job"
    store = console.store
    store.claim(name, "arn")
    store.create(
        name,
        {
            "ProcessingJobName": name,
            "ProcessingJobArn": f"arn:aws:sagemaker:us-east-1:000000000000:processing-job/{name}",
            "ProcessingJobStatus": "Completed",
            "CreationTime": "2026-12-01T10:00:00.000+00:00",
            "ProcessingResources": {
                "ClusterConfig": {"InstanceCount": 1, "InstanceType": "ml.m5.large",
                                  "VolumeSizeInGB": 1}
            },
        },
    )  # fmt: skip
    folder = store.folder(name)
    folder.log("algo-1").parent.mkdir(parents=True, exist_ok=True)
    folder.log("algo-1").write_text("one\ntwo\n")
    objects = [{"S3Uri": f"s3://b/k/{i:06d}", "Path": f"k/{i:06d}"} for i in range(100_000)]
    folder.plan.parent.mkdir(parents=True, exist_ok=True)
    folder.plan.write_text(
        json.dumps({"InstancePlans": [{"Host": "algo-1", "Inputs": [
            {"InputName": "in", "ObjectCount": len(objects), "Objects": objects}]}]})
    )  # fmt: skip
    return name


def test_an_offset_past_any_file_is_an_error_not_a_crash(console: Console, recorded: str) -> None:
    host = f"127.0.0.1:{PORT}"
    for offset in ("99999999999999999999999", "-1", "1e3"):
        answer = console.get(f"/console/api/jobs/{recorded}/logs/algo-1?offset={offset}", host)
        assert answer.status == 400, offset
    answer = console.get(f"/console/api/jobs/{recorded}/logs/algo-1?offset=4", host)
    assert json.loads(answer.body)["Text"] == "two\n"


def test_the_job_page_polled_while_a_job_runs_stays_small_whatever_its_inputs(
    console: Console, recorded: str
) -> None:
    """The page asks for the job every 1.5 s: a plan that names every object of a large input
    would be megabytes each time. Each input's objects are cut to a few, with their count."""
    answer = console.get(f"/console/api/jobs/{recorded}", f"127.0.0.1:{PORT}")
    assert answer.status == 200
    assert len(answer.body) < 100_000, len(answer.body)
    shown = json.loads(answer.body)["Plan"]["InstancePlans"][0]["Inputs"][0]
    assert shown["ObjectCount"] == 100_000 and 0 < len(shown["Objects"]) <= 50


def test_every_answer_but_the_page_is_sandboxed(console: Console, recorded: str) -> None:
    """Whatever a browser makes of an answer that is not the page (an output file a container
    wrote as HTML, a log, an error), it runs no script in the console's origin, which could
    read the token."""
    host = f"127.0.0.1:{PORT}"
    for path in (
        "/console/api/jobs",
        f"/console/api/jobs/{recorded}/logs/algo-1",
        "/console/api/jobs/missing",
        "/console/nothing",
        "/console/static/console.js",
    ):
        answer = console.get(path, host)
        policy = answer.headers.get("Content-Security-Policy", "")
        assert "sandbox" in policy and "default-src 'none'" in policy, path
        assert answer.headers["X-Content-Type-Options"] == "nosniff"
    assert "sandbox" not in console.get("/", host).headers["Content-Security-Policy"]


@pytest.mark.parametrize(
    "plan",
    ['{"InstancePlans": [1, {"Host": "algo-1", "Inputs": [1, {"Objects": [1, null]}]}]}',
     '{"InstancePlans": {"a": 1}}', '{"InstancePlans": [{"Inputs": {"x": 1}}]}', "[1]"],
)  # fmt: skip
def test_a_damaged_plan_does_not_break_the_job_page(
    console: Console, recorded: str, plan: str
) -> None:
    console.store.folder(recorded).plan.write_text(plan)
    answer = console.get(f"/console/api/jobs/{recorded}", f"127.0.0.1:{PORT}")
    assert answer.status == 200, answer.body


def test_only_a_sole_host_header_counts() -> None:
    def headers(text: str) -> Any:
        return http.client.parse_headers(io.BytesIO(text.encode() + b"\r\n"))

    assert sole_host(headers("Host: 127.0.0.1:80\r\n")) == "127.0.0.1:80"
    assert sole_host(headers("Accept: */*\r\n")) is None
    assert sole_host(headers("Host: 127.0.0.1\r\nHost: rebound.example\r\n")) is None


class _Handler:
    """What write_answer uses of a BaseHTTPRequestHandler: the head is not looked at here."""

    def __init__(self, wfile: Any) -> None:
        self.wfile, self.close_connection = wfile, False

    def send_response(self, status: int) -> None:
        pass

    def send_header(self, key: str, value: str) -> None:
        pass

    def end_headers(self) -> None:
        pass


def test_a_large_download_gets_time_in_proportion_to_its_size(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An answer must be taken within WRITE_SECONDS, which would cut any output file larger than
    what the client can take in that time (30 s). A file streamed out gets more time, in
    proportion to its length. Here the fixed allowance is nothing at all, so the file goes out
    only on the time its length earns."""
    monkeypatch.setattr(http_budgets, "WRITE_SECONDS", 0.0)
    data = os.urandom(DOWNLOAD_BYTES_PER_SECOND)  # one second's worth
    (tmp_path / "big.bin").write_bytes(data)
    ours, theirs = socket.socketpair()
    received = bytearray()

    def client() -> None:
        while chunk := theirs.recv(65536):
            received.extend(chunk)

    reader = threading.Thread(target=client)
    reader.start()
    try:
        with open(tmp_path / "big.bin", "rb") as stream:
            answer = Answer(200, "application/octet-stream", stream=stream, length=len(data))
            write_answer(_Handler(http_budgets._ProgressWriter(ours)), answer)
    finally:
        ours.close()
        reader.join(10)
        theirs.close()
    assert bytes(received) == data


class _SlowReads:
    """A clock that a read of the usage series moves on by one second, and a count of reads."""

    def __init__(self) -> None:
        self.now, self.reads = 1000.0, 0

    def clock(self) -> float:
        return self.now

    def read(self, folder: Any, host: str) -> list[dict[str, Any]]:
        self.reads += 1
        self.now += 1.0
        return read_usage_series(folder, host)


def test_a_long_usage_series_is_not_read_again_on_every_poll(
    console: Console, recorded: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A series file grows to 32 MB (days at one sample a second), which takes seconds to read
    and bring down to chart points; the page asks every 1.5 s. Unchanged, it is read once; while
    it grows, it is read again at most once per ten times what a read costs."""
    slow = _SlowReads()
    monkeypatch.setattr(views, "read_usage_series", slow.read)
    charts = views.ChartCache(clock=slow.clock)
    folder = console.store.folder(recorded)
    series = folder.usage_series("algo-1")
    series.write_text('{"T": 1000, "MemoryBytes": 5}\n')
    first = charts.points(folder, "algo-1")
    assert charts.points(folder, "algo-1") == first and slow.reads == 1  # unchanged
    with series.open("a") as growing:
        growing.write('{"T": 1001, "MemoryBytes": 9}\n')
    slow.now += 5  # 5 s after a read that cost 1 s: the last points still do
    assert charts.points(folder, "algo-1") == first and slow.reads == 1
    slow.now += 6
    assert [p["MemoryBytes"] for p in charts.points(folder, "algo-1")] == [5, 9]
    assert slow.reads == 2


def test_a_log_far_longer_than_one_answer_is_followed_from_its_end(
    console: Console, recorded: str
) -> None:
    """A million-line log would take the page hundreds of polls from byte 0, and hold it all.
    Behind by more than one answer, the reader is brought to the last answer's worth, from a
    line's start, and told how much it skipped; close behind, it gets the next piece."""
    log = console.store.folder(recorded).log("algo-1")
    lines = [f"line {i:07d}\n".encode() for i in range(100_000)]
    log.write_bytes(b"".join(lines))
    size = log.stat().st_size
    host = f"127.0.0.1:{PORT}"
    piece = json.loads(console.get(f"/console/api/jobs/{recorded}/logs/algo-1?offset=0", host).body)
    assert piece["Text"].endswith("line 0099999\n") and piece["Text"].startswith("line ")
    assert len(piece["Text"]) <= views.LOG_CHUNK_BYTES
    assert piece["Skipped"] == size - len(piece["Text"]) and piece["Offset"] == size
    assert piece["Ended"]
    near = size - 3 * len(lines[0])
    piece = json.loads(
        console.get(f"/console/api/jobs/{recorded}/logs/algo-1?offset={near}", host).body
    )
    assert piece["Skipped"] == 0 and piece["Text"] == "line 0099997\nline 0099998\nline 0099999\n"
