"""The console (`GET /` on `localproc serve`), in a real browser: Debian's chromium, headless,
driven by Playwright (scripts/setup-browser.sh installs both; Playwright's own browser download is
never used). Jobs are created through `serve` with boto3, as API clients do, against a real S3
endpoint and the real Docker engine. Screenshots of each page land in the test's tmp_path."""

from __future__ import annotations

import contextlib
import json
import os
import socket
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from docker_engine import Localproc, job_payload, s3_input, s3_output, unique_name, wait_for
from serve_clients import ServerProcess, end_running_jobs, sagemaker_client, start_server

pytestmark = pytest.mark.docker

CHROMIUM = "/usr/bin/chromium"
REGION = "us-east-1"

# Three instances; algo-2 fails after a few seconds, the others then get SIGTERM. Each writes an
# output file and holds some memory, so the charts have something to draw.
THREE_INSTANCES = r"""
import json, pathlib, signal, sys, time
host = json.load(open('/opt/ml/config/resourceconfig.json'))['current_host']
out = pathlib.Path('/opt/ml/processing/output')
(out / f'{host}.txt').write_bytes(f'written by {host}\n'.encode() * 100)
ballast = b'x' * (48 * 2**20)
def on_term(signum, frame):
    print(f'{host} got SIGTERM', flush=True)
    sys.exit(0)
signal.signal(signal.SIGTERM, on_term)
print(f'{host} started', flush=True)
for tick in range(120):
    time.sleep(1)
    print(f'{host} tick {tick}', flush=True)
    if host == 'algo-2' and tick == 6:
        print('algo-2 fails on purpose', flush=True)
        sys.exit(3)
"""

SLEEPER = r"""
import time
print('sleeping', flush=True)
time.sleep(300)
"""

# A hostile container: its outputs hold links to a host file, to the job's own record, and to /.
PLANTS_LINKS = r"""
import os, sys
out = '/opt/ml/processing/output'
open(os.path.join(out, 'honest.txt'), 'w').write('honest')
os.symlink(sys.argv[1], os.path.join(out, 'leak.txt'))
os.symlink('../../../record.json', os.path.join(out, 'record-link.json'))
os.symlink('/', os.path.join(out, 'root'))
"""


def require_browser() -> Any:
    if not os.path.exists(CHROMIUM):
        pytest.fail(f"{CHROMIUM} is missing: run scripts/setup-browser.sh")
    from playwright.sync_api import sync_playwright

    return sync_playwright


@pytest.fixture
def server(localproc: Localproc, s3: Any, tmp_path: Path) -> Iterator[ServerProcess]:
    args = ["--port", "0", "--state-dir", str(localproc.state_dir)]
    args += ["--s3-endpoint-url", s3.endpoint_url, "--stop-grace", "5"]
    process = start_server(args, tmp_path / "serve.log")
    try:
        yield process
    finally:
        try:
            end_running_jobs(localproc)
        finally:
            code = process.stop()
        assert code == 0, process.log()


@pytest.fixture
def browser() -> Iterator[Any]:
    sync_playwright = require_browser()
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=CHROMIUM, headless=True)
        try:
            yield launched
        finally:
            launched.close()


def script_job(
    s3: Any, bucket: str, name: str, script: str, count: int = 1, arguments: list[str] | None = None
) -> dict[str, Any]:
    s3.client.put_object(Bucket=bucket, Key=f"{name}/code/script.py", Body=script.encode())
    return job_payload(
        name,
        entrypoint=["python3", "-u", "/opt/ml/processing/input/code/script.py"],
        arguments=arguments,
        inputs=[
            s3_input(
                "code", f"s3://{bucket}/{name}/code/script.py", "/opt/ml/processing/input/code"
            )
        ],
        outputs=[s3_output("out", f"s3://{bucket}/{name}/out", "/opt/ml/processing/output")],
        instance_count=count,
    )


def raw_http(url: str, request: bytes) -> bytes:
    host, port = url.removeprefix("http://").rsplit(":", 1)
    with socket.create_connection((host, int(port)), timeout=30) as connection:
        connection.sendall(request)
        answer = b""
        while chunk := connection.recv(65536):
            answer += chunk
    return answer


def post(url: str, headers: dict[str, str] | None = None) -> tuple[int, dict[str, Any]]:
    request = urllib.request.Request(url, data=b"", headers=headers or {}, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as err:
        return err.code, json.loads(err.read())


def test_the_console_follows_a_failing_three_instance_job_and_stops_a_running_one(
    server: ServerProcess, browser: Any, s3: Any, localproc: Localproc, tmp_path: Path
) -> None:
    client = sagemaker_client(server.url)
    bucket = s3.make_bucket()
    name = unique_name("console-three")
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    page.goto(f"{server.url}/")
    page.wait_for_selector("#jobs-empty:not([hidden])")

    # The job appears on the open jobs page and changes status there, without a reload.
    client.create_processing_job(**script_job(s3, bucket, name, THREE_INSTANCES, count=3))
    row = page.locator(f'#jobs tr[data-job="{name}"]')
    row.locator(".status-InProgress").wait_for(timeout=60_000)
    row.locator(".status-Failed").wait_for(timeout=120_000)
    assert "3 × ml.t3.medium" in row.inner_text()
    assert "algo-2" in row.locator("td.reason").inner_text()
    page.screenshot(path=str(tmp_path / "console-jobs.png"), full_page=True)

    # The job's page: three instances on the timeline, algo-2 marked as the first to fail.
    page.locator(f'#jobs tr[data-job="{name}"] a').click()
    page.wait_for_selector("#timeline g.instance-row")
    rows = page.locator("#timeline g.instance-row")
    assert rows.count() == 3
    assert [rows.nth(i).get_attribute("data-host") for i in range(3)] == [
        "algo-1", "algo-2", "algo-3",
    ]  # fmt: skip
    failed_first = page.locator("#timeline g.failed-first")
    assert failed_first.count() == 1 and failed_first.get_attribute("data-host") == "algo-2"
    assert failed_first.get_attribute("data-outcome") == "Failed"
    assert "failed first" in (failed_first.text_content() or "")
    # Each instance's log, and the merged one.
    for host, last in (("algo-1", "got SIGTERM"), ("algo-2", "fails on purpose"),
                       ("algo-3", "got SIGTERM")):  # fmt: skip
        page.wait_for_function(
            "([host, last]) => document.getElementById(`log-${host}`).textContent"
            ".includes(`${host} ${last}`)",
            arg=[host, last],
            timeout=30_000,
        )
        assert f"{host} tick 3" in (page.locator(f"#log-{host}").text_content() or "")
    merged = page.locator("#log-merged").text_content()
    assert "algo-1 | algo-1 started" in merged and "algo-3 | algo-3 tick 0" in merged
    # Memory charts against the instance type's limit (ml.t3.medium: 4 GiB), with a series.
    for host in ("algo-1", "algo-2", "algo-3"):
        chart = page.locator(f'.usage-instance[data-host="{host}"] svg.memory')
        assert chart.locator("line.limit").count() == 1
        assert "limit 4.0 GiB" in (chart.text_content() or "")
        assert chart.locator("polyline.series").count() == 1
    assert "smallest type that holds it: ml.t3" in page.locator("#usage").inner_text()
    # The output files, downloadable: the bytes are those of the local copy.
    link = page.locator('a.download[data-host="algo-2"][data-path="algo-2.txt"]')
    with page.expect_download() as caught:
        link.click()
    downloaded = Path(caught.value.path()).read_bytes()
    assert downloaded == b"written by algo-2\n" * 100
    local = localproc.job_dir(name) / "algo-2" / "outputs" / "out" / "algo-2.txt"
    assert downloaded == local.read_bytes()
    assert f"s3://{bucket}/{name}/out" in page.locator("#outputs").inner_text()
    assert page.locator("#stop-button").is_disabled()
    page.screenshot(path=str(tmp_path / "console-job.png"), full_page=True)

    # Stop on a running job's page ends it Stopped; refused first without the token, or with a
    # foreign Host (DNS rebinding).
    sleeper = unique_name("console-stop")
    client.create_processing_job(**script_job(s3, bucket, sleeper, SLEEPER))
    page.goto(f"{server.url}/#/job/{sleeper}")
    page.wait_for_function(
        "() => document.getElementById('log-algo-1')?.textContent.includes('sleeping')",
        timeout=60_000,
    )
    stop_url = f"{server.url}/console/api/jobs/{sleeper}/stop"
    status, answer = post(stop_url)
    assert (status, answer["__type"]) == (403, "AccessDeniedException")
    status, answer = post(stop_url, {"X-Localproc-Console-Token": "guessed"})
    assert status == 403
    in_page = page.evaluate(
        "url => fetch(url, {method: 'POST'}).then(r => r.status)",
        f"/console/api/jobs/{sleeper}/stop",
    )
    assert in_page == 403
    token = page.locator('meta[name="console-token"]').get_attribute("content")
    port = server.url.rsplit(":", 1)[1]
    foreign = raw_http(
        server.url,
        (
            f"POST /console/api/jobs/{sleeper}/stop HTTP/1.1\r\nHost: rebound.example:{port}\r\n"
            f"X-Localproc-Console-Token: {token}\r\nContent-Length: 0\r\n"
            "Connection: close\r\n\r\n"
        ).encode(),
    )
    assert foreign.startswith(b"HTTP/1.1 400") and b"ForeignHost" in foreign
    page_for_rebinding = raw_http(
        server.url,
        f"GET / HTTP/1.1\r\nHost: rebound.example:{port}\r\nConnection: close\r\n\r\n".encode(),
    )
    assert (
        page_for_rebinding.startswith(b"HTTP/1.1 400") and token.encode() not in page_for_rebinding
    )
    assert localproc.record(sleeper)["ProcessingJobStatus"] == "InProgress"

    # Delete follows the CLI's rule: not while the job runs (its button is disabled, too).
    assert page.locator("#delete-button").is_disabled()
    status, answer = post(
        f"{server.url}/console/api/jobs/{sleeper}/delete", {"X-Localproc-Console-Token": token}
    )
    assert (status, answer["__type"]) == (409, "ResourceInUse")

    page.locator("#stop-button").click()
    page.locator("#job-status .status-Stopped").wait_for(timeout=60_000)
    assert localproc.record(sleeper)["ProcessingJobStatus"] == "Stopped"
    page.screenshot(path=str(tmp_path / "console-stopped.png"), full_page=True)

    # Once ended it can be deleted from its page (after the confirmation), and it is gone.
    page.once("dialog", lambda dialog: dialog.accept())
    page.locator("#delete-button").click()
    page.wait_for_url(f"{server.url}/#/", timeout=30_000)
    page.locator(f'#jobs tr[data-job="{sleeper}"]').wait_for(state="detached", timeout=30_000)
    assert not (localproc.state_dir / "jobs" / sleeper).exists()
    assert "InternalFailure" not in server.log()


# A hostile container: file names that are markup and not UTF-8 (which fails the job: S3 keys
# are UTF-8), an HTML page that would read the console's token, and log lines that are markup.
WRITES_TRAPS = r"""
import os
out = b'/opt/ml/processing/output'
open(os.path.join(out, b'page.html'), 'w').write(
    '<script>parent.document.title = document.title = "pwned " + '
    'document.cookie</script><h1>rendered</h1>')
open(os.path.join(out, b'<img src=x onerror="document.title=1">.txt'), 'w').write('markup')
open(os.path.join(out, b'bad\xff\xfe.txt'), 'w').write('not utf-8')
print('<img src=x onerror="document.title=2"> in the log', flush=True)
print('log ends', flush=True)
"""


def test_a_hostile_containers_outputs_and_logs_neither_break_nor_script_the_page(
    server: ServerProcess, browser: Any, s3: Any, localproc: Localproc, tmp_path: Path
) -> None:
    bucket = s3.make_bucket()
    name = unique_name("console-traps")
    sagemaker_client(server.url).create_processing_job(**script_job(s3, bucket, name, WRITES_TRAPS))
    ended = ("Completed", "Failed", "Stopped")
    wait_for(lambda: localproc.record(name)["ProcessingJobStatus"] in ended, 120, "the job")
    # S3 takes no key that is not UTF-8: the upload fails the job, the local copy stays.
    record = localproc.record(name)
    assert record["ProcessingJobStatus"] == "Failed", record.get("FailureReason")
    assert "not valid UTF-8" in record["FailureReason"]
    page = browser.new_page()
    dialogs: list[str] = []
    page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
    page.goto(f"{server.url}/#/job/{name}")
    # The page draws on past the name that is not UTF-8: its outputs, then its logs.
    page.wait_for_function(
        "() => document.getElementById('log-algo-1') && "
        "document.getElementById('log-algo-1').textContent.includes('log ends')",
        timeout=30_000,
    )
    outputs = page.locator("#outputs").inner_text()
    assert "bad\ufffd\ufffd.txt (its name is not UTF-8: not served)" in outputs
    assert '<img src=x onerror="document.title=1">.txt' in outputs
    assert page.locator("#outputs img").count() == 0 and page.locator("#logs img").count() == 0
    # The HTML file is a download, never a page in the console's origin.
    link = page.locator('a.download[data-path="page.html"]')
    url = f"{server.url}{link.get_attribute('href')}"
    viewer = browser.new_page()
    # chromium aborts the navigation, as it downloads: goto raises, which is expected here.
    with viewer.expect_download() as download, contextlib.suppress(Exception):
        viewer.goto(url)
    assert "rendered" not in viewer.content()
    assert download.value.suggested_filename == "page.html"
    assert "pwned" not in page.title() and "pwned" not in viewer.title() and not dialogs
    assert page.title() == "localproc console"


def test_a_link_a_container_planted_in_its_outputs_cannot_be_downloaded(
    server: ServerProcess, s3: Any, localproc: Localproc, tmp_path: Path
) -> None:
    secret = tmp_path / "host-secret.txt"
    secret.write_text("the host's secret")
    client = sagemaker_client(server.url)
    bucket = s3.make_bucket()
    name = unique_name("console-links")
    client.create_processing_job(
        **script_job(s3, bucket, name, PLANTS_LINKS, arguments=[str(secret)])
    )
    wait_for(lambda: localproc.record(name)["ProcessingJobStatus"] == "Completed", 120, "the job")
    outputs = localproc.job_dir(name) / "algo-1" / "outputs" / "out"
    assert (outputs / "leak.txt").is_symlink()  # the container did plant it

    files = f"{server.url}/console/api/jobs/{name}/files/algo-1/out"
    with urllib.request.urlopen(f"{files}/honest.txt", timeout=30) as response:
        assert response.read() == b"honest"
    for path in ("leak.txt", "record-link.json", "root/etc/passwd", "root" + str(secret)):
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(f"{files}/{path}", timeout=30)
        body = refused.value.read()
        assert refused.value.code == 404, path
        assert b"the host's secret" not in body and b"root:" not in body
    for path in ("..%2F..%2F..%2Frecord.json", "%2E%2E/%2E%2E/record.json"):
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(f"{files}/{path}", timeout=30)
        assert refused.value.code in (400, 404), path

    with urllib.request.urlopen(f"{server.url}/console/api/jobs/{name}", timeout=30) as response:
        listed = json.loads(response.read())["Outputs"][0]["Files"]
    kinds = {item["Path"]: item["Kind"] for item in listed}
    assert kinds == {
        "honest.txt": "file", "leak.txt": "link", "record-link.json": "link", "root": "link",
    }  # fmt: skip


def test_console_prints_its_url_where_there_is_no_display_and_serves_the_page(
    tmp_path: Path,
) -> None:
    import signal
    import subprocess
    import sys

    env = {k: v for k, v in os.environ.items() if k not in ("DISPLAY", "WAYLAND_DISPLAY")}
    process = subprocess.Popen(
        [sys.executable, "-m", "localproc", "console", "--port", "0",
         "--state-dir", str(tmp_path / "state")],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
    )  # fmt: skip
    try:
        assert process.stdout is not None
        banner = process.stdout.readline()
        assert " on http://127.0.0.1:" in banner, banner
        url = banner.split(" on ", 1)[1].split()[0]
        assert process.stdout.readline().strip() == f"localproc console: open {url}/ in a browser"
        with urllib.request.urlopen(f"{url}/", timeout=30) as response:
            page = response.read()
        assert b"<title>localproc console</title>" in page
        assert response.headers["Content-Security-Policy"].startswith("default-src 'none'")
    finally:
        process.send_signal(signal.SIGTERM)
        _, stderr = process.communicate(timeout=30)
    assert process.returncode == 0, stderr


def test_the_api_on_loopback_refuses_a_foreign_host_so_a_rebinding_page_cannot_create_jobs(
    server: ServerProcess, localproc: Localproc
) -> None:
    def api(host: bytes, operation: bytes, body: bytes) -> bytes:
        return raw_http(
            server.url,
            b"POST / HTTP/1.1\r\nHost: %s\r\nX-Amz-Target: SageMaker.%s\r\n"
            b"Content-Type: application/x-amz-json-1.1\r\nContent-Length: %d\r\n"
            b"Connection: close\r\n\r\n%s" % (host, operation, len(body), body),
        )

    listing = json.dumps({"MaxResults": 1}).encode()
    assert api(b"localhost:9000", b"ListProcessingJobs", listing).startswith(b"HTTP/1.1 200")
    refused = api(b"rebound.example:8080", b"ListProcessingJobs", listing)
    assert refused.startswith(b"HTTP/1.1 400") and b'"__type": "ForeignHost"' in refused
    create = json.dumps(job_payload(unique_name("console-rebound"))).encode()
    refused = api(b"rebound.example", b"CreateProcessingJob", create)
    assert refused.startswith(b"HTTP/1.1 400") and b'"__type": "ForeignHost"' in refused
    jobs = localproc.state_dir / "jobs"
    assert not jobs.is_dir() or not [p for p in jobs.iterdir() if not p.name.startswith(".")]


def test_a_request_naming_two_hosts_is_refused_whichever_comes_first(
    server: ServerProcess,
) -> None:
    """RFC 9112 §3.2: a request with more than one Host is answered 400. Taking the first would
    let whatever sits between the browser and the server (a proxy that appends its own) decide
    which name is checked."""
    listing = json.dumps({"MaxResults": 1}).encode()
    for first, second in ((b"127.0.0.1", b"rebound.example"), (b"rebound.example", b"127.0.0.1")):
        hosts = b"Host: %s\r\nHost: %s\r\n" % (first, second)
        page = raw_http(server.url, b"GET / HTTP/1.1\r\n%sConnection: close\r\n\r\n" % hosts)
        assert page.startswith(b"HTTP/1.1 400") and b"ForeignHost" in page, page[:200]
        api = raw_http(
            server.url,
            b"POST / HTTP/1.1\r\n%sX-Amz-Target: SageMaker.ListProcessingJobs\r\n"
            b"Content-Length: %d\r\nConnection: close\r\n\r\n%s" % (hosts, len(listing), listing),
        )
        assert api.startswith(b"HTTP/1.1 400") and b"ForeignHost" in api, api[:200]


def test_a_long_log_is_followed_from_its_end_with_the_gap_said(
    server: ServerProcess, browser: Any, s3: Any, localproc: Localproc, tmp_path: Path
) -> None:
    """A container that prints far more than one answer of log (here 100,000 lines): the page
    shows its end at once, says how much it did not show and where to get it, rather than walk
    the log from its first line 256 KiB a poll."""
    bucket = s3.make_bucket()
    name = unique_name("console-longlog")
    script = "import sys\nsys.stdout.write(''.join(f'line {i:07d}\\n' for i in range(100000)))\n"
    sagemaker_client(server.url).create_processing_job(**script_job(s3, bucket, name, script))
    wait_for(lambda: localproc.record(name)["ProcessingJobStatus"] == "Completed", 120)
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    page.goto(f"{server.url}/#/job/{name}")
    page.wait_for_function(
        "() => document.getElementById('log-algo-1') && "
        "document.getElementById('log-algo-1').textContent.includes('line 0099999')",
        timeout=30_000,
    )
    shown = page.locator("#log-algo-1").text_content() or ""
    assert "line 0000000" not in shown
    assert f"of output not shown here: localproc logs {name} --instance algo-1 has it" in shown
    assert "algo-1 | [" in (page.locator("#log-merged").text_content() or "")
    page.screenshot(path=str(tmp_path / "console-long-log.png"), full_page=True)
