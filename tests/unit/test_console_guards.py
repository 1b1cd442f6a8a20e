"""The console's two guards (serve/console.py): a Host that does not name the server is refused
(DNS rebinding), and stop/delete need the token the page got (CSRF). Requests go straight to the
routes; the served endpoint is driven in a real browser by tests/integration/test_console.py."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from localproc.records.store import JobStore
from localproc.serve.console import Console, attachment

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
