"""The baselines' own environments: the AWS CLI and the SageMaker Python SDK each live in a virtual
environment of their own under the benchmark cache (never in localproc's: the `awscli` package
pins botocore, and the SDK pins boto3), made on first use and reused while the requirement is
unchanged. SDK local mode also needs Docker Compose.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

from benchmarks.common import CACHE_DIR, log

# The newest 2.x release (`pip index versions sagemaker`); 3.x is a rewrite whose local mode is
# not the `sagemaker.local.LocalSession` + `Processor` API that people use today.
SAGEMAKER_REQUIREMENT = "sagemaker==2.257.7"
# The AWS CLI v1 from PyPI (v2 is not published there).
AWSCLI_REQUIREMENT = "awscli"

INSTALL_TIMEOUT = 1200.0


class EnvironmentUnavailable(RuntimeError):
    """A baseline cannot be installed here; the message says what failed."""


def ensure_venv(name: str, requirement: str) -> Path:
    """CACHE_DIR/NAME with `requirement` installed; returns the venv's bin folder."""
    venv = CACHE_DIR / name
    marker = venv / ".localproc-bench-requirement"
    bin_dir = venv / "bin"
    if marker.is_file() and marker.read_text().strip() == requirement:
        return bin_dir
    log(f"creating {venv} with {requirement} (once; reused by later runs)")
    shutil.rmtree(venv, ignore_errors=True)
    venv.parent.mkdir(parents=True, exist_ok=True)
    steps = [
        [sys.executable, "-m", "venv", str(venv)],
        [str(bin_dir / "python"), "-m", "pip", "install", "--quiet", requirement],
    ]
    for argv in steps:
        try:
            done = subprocess.run(argv, capture_output=True, text=True, timeout=INSTALL_TIMEOUT)
        except subprocess.TimeoutExpired as exc:
            raise EnvironmentUnavailable(f"{' '.join(argv)} timed out") from exc
        if done.returncode != 0:
            raise EnvironmentUnavailable(
                f"{' '.join(argv)} failed ({done.returncode}): {done.stderr.strip()[-800:]}"
            )
    marker.write_text(requirement + "\n")
    return bin_dir


def awscli() -> Path:
    return ensure_venv("venv-awscli", AWSCLI_REQUIREMENT) / "aws"


def sagemaker_python() -> Path:
    return ensure_venv("venv-sagemaker", SAGEMAKER_REQUIREMENT) / "python"


def compose_available() -> str | None:
    """How SDK local mode will run Compose (it tries `docker compose` v2, then `docker-compose`),
    or None."""
    done = subprocess.run(
        ["docker", "compose", "version"], capture_output=True, text=True, timeout=60
    )
    if done.returncode == 0 and "v2" in done.stdout:
        return f"docker compose ({done.stdout.strip()})"
    path = shutil.which("docker-compose")
    if path:
        version = subprocess.run(
            [path, "version", "--short"], capture_output=True, text=True, timeout=60
        )
        return f"{path} {version.stdout.strip()}"
    return None


def ensure_compose() -> str:
    """Docker Compose for SDK local mode. Where none is installed and this is Debian as root,
    Debian's `docker-compose` package (Compose 1.29, its own Python) is installed: PyPI's
    `docker-compose` 1.x cannot share the SDK's venv (it needs PyYAML < 6, the SDK PyYAML 6)."""
    found = compose_available()
    if found:
        return found
    if os.geteuid() != 0 or not shutil.which("apt-get"):
        raise EnvironmentUnavailable(
            "SDK local mode needs `docker compose` (v2) or `docker-compose`; neither is installed "
            "and this is not Debian as root, so the benchmark cannot install it"
        )
    log("installing Debian's docker-compose package for SDK local mode")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    install = ["apt-get", "install", "-y", "-qq", "docker-compose"]
    done = subprocess.run(install, capture_output=True, text=True, env=env, timeout=900)
    if done.returncode != 0:
        subprocess.run(["apt-get", "update", "-qq"], capture_output=True, env=env, timeout=900)
        done = subprocess.run(install, capture_output=True, text=True, env=env, timeout=900)
    found = compose_available()
    if not found:
        raise EnvironmentUnavailable(
            f"`apt-get install docker-compose` failed: {done.stderr.strip()[-600:]}"
        )
    return found
