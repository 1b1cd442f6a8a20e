"""tests/integration: the real Docker engine, a real S3 endpoint, the CLI and `serve` as users
run them. The fixtures of docker_engine.py and s3_endpoint.py are offered here only (a unit test
cannot ask for them).

Nothing may be left behind: the `localproc` fixture checks the jobs it ran (by `--name` or
payload) as soon as the test ends, and `_nothing_left_behind` checks every test once more after
all its fixtures ended, for every job recorded in any state dir below its tmp_path (jobs run
through `serve`, by a detached runner or in a test's own state dir included)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from docker_engine import docker_client, entrypoint_image, job_resources, localproc  # noqa: F401
from s3_endpoint import aws_test_env, own_s3, s3, s3_server  # noqa: F401

# A runner that outlives the command that started it (a detached run, a stopped `serve`)
# removes its job's containers a moment after the test's last command returned.
SETTLE_SECONDS = 15.0


def recorded_job_names(root: Path) -> set[str]:
    """Names of the jobs recorded in any state dir below `root`."""
    return {record.parent.name for record in root.glob("**/jobs/*/record.json")}


@pytest.fixture(scope="session")
def _leftover_engine() -> Iterator[list[Any]]:
    """An engine client for the check, made only if a test that did not ask for the engine
    recorded jobs."""
    made: list[Any] = []
    yield made
    for client in made:
        client.close()


@pytest.fixture(autouse=True)
def _nothing_left_behind(
    request: pytest.FixtureRequest, tmp_path: Path, _leftover_engine: list[Any]
) -> Iterator[None]:
    yield
    names = recorded_job_names(tmp_path)
    if not names:
        return
    if "docker_client" in request.fixturenames:
        engine = request.getfixturevalue("docker_client")
    else:
        if not _leftover_engine:
            import docker

            _leftover_engine.append(docker.from_env(version="auto"))
        engine = _leftover_engine[0]
    deadline = time.monotonic() + SETTLE_SECONDS
    while True:
        containers, networks = job_resources(engine, names)
        if not containers and not networks:
            return
        if time.monotonic() > deadline:
            break
        time.sleep(0.25)
    pytest.fail(f"left behind by {request.node.nodeid}: {containers} {networks}")
