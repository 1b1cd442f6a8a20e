"""Which engine localproc uses when DOCKER_HOST is not set: Docker's default socket, else Podman's
rootless socket, else its rootful one. To take Docker away without stopping it, the CLI runs in a
mount namespace of its own where /dev/null is bind-mounted over Docker's socket (and, for the
last case, over Podman's): nothing outside that process sees the change."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from docker_engine import Localproc, job_payload, unique_name

DOCKER_SOCKET = "/var/run/docker.sock"
PODMAN_SOCKET = "/run/podman/podman.sock"

pytestmark = pytest.mark.skipif(
    os.geteuid() != 0 or shutil.which("unshare") is None,
    reason="hiding an engine's socket in a mount namespace needs root and unshare",
)


def run_hiding(localproc: Localproc, hidden: list[str], tmp_path: Path, *args: str) -> str:
    """`localproc ARGS` with DOCKER_HOST unset, the `hidden` sockets unreachable and no
    rootless Podman socket; returns stdout + stderr, with the exit code on the last line."""
    env = {k: v for k, v in localproc.env.items() if k != "DOCKER_HOST"}
    env["XDG_RUNTIME_DIR"] = str(tmp_path / "runtime")  # no rootless socket there
    hide = "".join(f"mount --bind /dev/null {socket} && " for socket in hidden)
    command = " ".join(["exec", sys.executable, "-m", "localproc", *args])
    done = subprocess.run(
        ["unshare", "--mount", "--propagation", "private", "sh", "-c", hide + command],
        capture_output=True, text=True, env=env, cwd=localproc.workdir, timeout=240,
    )  # fmt: skip
    return f"{done.stdout}{done.stderr}\nexit {done.returncode}"


def hosts_job(localproc: Localproc) -> tuple[str, Path]:
    name = unique_name("which-engine")
    payload = job_payload(name, entrypoint=["cat", "/etc/hosts"])
    return name, localproc.write_payload(payload)


# The job runs on Podman: the fixtures check that nothing of it is left there.
@pytest.mark.parametrize("engine", ["podman"], indirect=True)
def test_without_docker_host_podman_is_used_when_docker_does_not_answer(
    localproc: Localproc, tmp_path: Path
) -> None:
    name, payload = hosts_job(localproc)

    output = run_hiding(localproc, [DOCKER_SOCKET], tmp_path, "run", str(payload))

    assert output.endswith("exit 0"), output
    log = (localproc.job_dir(name) / "logs" / "algo-1.log").read_text()
    assert "host.containers.internal" in log  # the entry Podman writes into /etc/hosts, Docker not


def test_docker_is_used_first_when_it_answers(localproc: Localproc, tmp_path: Path) -> None:
    name, payload = hosts_job(localproc)

    output = run_hiding(localproc, [], tmp_path, "run", str(payload))

    assert output.endswith("exit 0"), output
    log = (localproc.job_dir(name) / "logs" / "algo-1.log").read_text()
    assert "host.containers.internal" not in log


def test_no_engine_answering_is_exit_4_naming_both(localproc: Localproc, tmp_path: Path) -> None:
    _name, payload = hosts_job(localproc)
    hidden = [DOCKER_SOCKET] + ([PODMAN_SOCKET] if os.path.exists(PODMAN_SOCKET) else [])

    output = run_hiding(localproc, hidden, tmp_path, "run", str(payload))

    assert output.endswith("exit 4"), output
    assert "No Docker engine answers" in output and "nor Podman's API service" in output
    assert "scripts/setup-podman.sh" in output
    assert "Traceback" not in output
