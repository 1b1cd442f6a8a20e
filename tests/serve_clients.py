"""Test helpers for `localproc serve`: the server as a subprocess, and the real clients (the AWS
CLI, the SageMaker Python SDK) installed in virtual environments of their own.

The clients pin their own botocore, which would replace the one localproc reads its service model
from; so they never go into the environment that runs the tests. Each lives in
`~/.cache/localproc-test-venvs/NAME` (or `$LOCALPROC_TEST_VENVS/NAME`), is built once and reused
while its requirements and the base Python are unchanged. A lock file keeps parallel sessions from
building the same one at once; a build that was interrupted is redone, since the marker that says
a venv is complete is written last.
"""

from __future__ import annotations

import fcntl
import os
import select
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from docker_engine import Localproc, wait_for

# Pinned so that CI runs what was tested; raise them deliberately.
AWSCLI_REQUIREMENTS = ("awscli==1.46.3",)
SAGEMAKER_SDK_REQUIREMENTS = ("sagemaker==2.257.7",)
SAGEMAKER_SDK_V3_REQUIREMENTS = ("sagemaker==3.27.0",)

MARKER = "localproc-venv-complete.txt"
PIP_TIMEOUT_SECONDS = 1200


def venv_root() -> Path:
    configured = os.environ.get("LOCALPROC_TEST_VENVS")
    return Path(configured) if configured else Path.home() / ".cache" / "localproc-test-venvs"


def ensure_venv(name: str, requirements: tuple[str, ...]) -> Path:
    """The venv NAME with exactly `requirements` installed; built now unless already complete."""
    root = venv_root()
    root.mkdir(parents=True, exist_ok=True)
    target = root / name
    wanted = "\n".join([*requirements, f"python {sys.base_prefix} {sys.version.split()[0]}"])
    with (root / f"{name}.lock").open("a") as lock:
        fcntl.flock(lock.fileno(), fcntl.LOCK_EX)
        marker = target / MARKER
        if marker.is_file() and marker.read_text() == wanted and python_of(target).exists():
            return target
        # Scripts in a venv name its absolute path, so it is built where it will stay.
        shutil.rmtree(target, ignore_errors=True)
        started = time.monotonic()
        subprocess.run([sys.executable, "-m", "venv", str(target)], check=True)
        subprocess.run(
            [str(python_of(target)), "-m", "pip", "install", "--quiet", *requirements],
            check=True,
            timeout=PIP_TIMEOUT_SECONDS,
        )
        marker.write_text(wanted)
        seconds = time.monotonic() - started
        print(f"built venv {target} ({', '.join(requirements)}) in {seconds:.0f} s", flush=True)
        return target


def python_of(venv: Path) -> Path:
    return venv / "bin" / "python"


@dataclass
class ServerProcess:
    """`localproc serve` running in a subprocess; `url` is what it said it listens on."""

    process: subprocess.Popen[str]
    url: str
    stderr_path: Path
    banner: str
    _stderr: IO[str] | None = field(default=None, repr=False)

    def stop(self, timeout: float = 20, signum: int = signal.SIGTERM) -> int:
        if self.process.poll() is None:
            self.process.send_signal(signum)
            try:
                self.process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        if self.process.stdout is not None:
            self.process.stdout.close()
        if self._stderr is not None:
            self._stderr.close()
        return self.process.returncode

    def log(self) -> str:
        return self.stderr_path.read_text(errors="replace")


def start_server(
    args: list[str], stderr_path: Path, env: dict[str, str] | None = None, timeout: float = 30
) -> ServerProcess:
    """Start `python -m localproc serve ARGS` and read the URL from its first stdout line."""
    stderr = stderr_path.open("w")
    process = subprocess.Popen(
        [sys.executable, "-m", "localproc", "serve", *args],
        stdout=subprocess.PIPE,
        stderr=stderr,
        text=True,
        env={**os.environ, **(env or {})},
    )
    assert process.stdout is not None
    banner = ""
    # Wait for the first line without blocking past the timeout if the server hangs silently.
    ready, _, _ = select.select([process.stdout], [], [], timeout)
    if ready:
        banner = process.stdout.readline()
    if " on http://" not in banner:
        process.kill()
        process.wait()
        stderr.close()
        raise AssertionError(
            f"server did not start: first line {banner!r}; stderr: {stderr_path.read_text()}"
        )
    url = banner.split(" on ", 1)[1].split()[0]
    return ServerProcess(process, url, stderr_path, banner.strip(), stderr)


def raw_request(
    url: str, target: str | None, body: bytes, timeout: float = 60
) -> tuple[int, dict[str, Any]]:
    """POST one AWS JSON 1.1 request as bytes (no SDK in between): (HTTP status, JSON body)."""
    import json
    import urllib.error
    import urllib.request

    headers = {"Content-Type": "application/x-amz-json-1.1"}
    if target is not None:
        headers["X-Amz-Target"] = target
    request = urllib.request.Request(url + "/", data=body, headers=headers, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as err:
        return err.code, json.loads(err.read())


def end_running_jobs(localproc: Localproc) -> None:
    """Stop every job of the test's state dir that is still running and wait until each has
    ended (a test that started jobs through `serve` must not leave them running)."""
    jobs = localproc.state_dir / "jobs"
    names = [p.parent.name for p in jobs.glob("*/record.json")] if jobs.is_dir() else []
    for name in names:
        if localproc.record(name)["ProcessingJobStatus"] == "InProgress":
            localproc("stop", name)
    for name in names:
        wait_for(
            lambda n=name: (
                localproc.record(n)["ProcessingJobStatus"] not in ("InProgress", "Stopping")
            ),
            60,
        )


def sagemaker_client(url: str, region: str = "us-east-1") -> Any:
    """boto3's SageMaker client for a `serve` at `url`: dummy credentials, no retries (a test
    sees the first answer)."""
    import boto3
    from botocore.config import Config

    return boto3.client(
        "sagemaker",
        endpoint_url=url,
        region_name=region,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
        config=Config(retries={"total_max_attempts": 1, "mode": "standard"}),
    )
