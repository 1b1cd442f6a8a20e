"""tests/integration: the real Docker engine, a real S3 endpoint, the CLI and `serve` run as users
run them. Nothing may be left behind: the `localproc` fixture checks the jobs it ran (by
`--name` or payload), and here every test is checked once more after all its
fixtures ended, for every job recorded anywhere below its tmp_path (jobs started through
`serve` or by a test's own state dir included): no container or network of those jobs may
remain, on the engine the test used (Docker, or Podman for a test run with `both_engines`).
Tests that record jobs by hand are checked the same way."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from docker_engine import job_resources

# Containers of a job that just ended are removed by its runner; a runner that outlives the
# command it served (a detached run, a stopped `serve`) may need a moment for that.
SETTLE_SECONDS = 15.0


def recorded_job_names(root: Path) -> set[str]:
    """Names of the jobs recorded in any state dir below `root`."""
    return {record.parent.name for record in root.glob("**/jobs/*/record.json")}


@pytest.fixture(scope="session")
def _engine_for_the_leftover_check() -> Iterator[list[Any]]:
    """The engine client, made only when a test that did not ask for the engine recorded jobs."""
    made: list[Any] = []
    yield made
    for client in made:
        client.close()


@pytest.fixture(autouse=True)
def _nothing_left_behind(
    request: pytest.FixtureRequest, tmp_path: Path, _engine_for_the_leftover_check: list[Any]
) -> Iterator[None]:
    # The engine the test ran its jobs on (Docker or Podman), else Docker when it asked for it.
    if "engine" in request.fixturenames:
        docker_client = request.getfixturevalue("engine").client
    elif "docker_client" in request.fixturenames:
        docker_client = request.getfixturevalue("docker_client")
    else:
        docker_client = None
    yield
    names = recorded_job_names(tmp_path)
    if not names:
        return
    if docker_client is None:
        if not _engine_for_the_leftover_check:
            import docker

            _engine_for_the_leftover_check.append(docker.from_env(version="auto"))
        docker_client = _engine_for_the_leftover_check[0]
    deadline = time.monotonic() + SETTLE_SECONDS
    while True:
        containers, networks = job_resources(docker_client, names)
        if not containers and not networks:
            return
        if time.monotonic() > deadline:
            break
        time.sleep(0.25)
    pytest.fail(f"left behind by {request.node.nodeid}: {containers} {networks}")
