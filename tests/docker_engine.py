"""Pytest plugin: the real container engines (Docker, and Podman's Docker-compatible API), the
test images, and the CLI run as users run it.

Every test that runs the CLI runs it against the `engine` fixture: Docker unless the test is
parametrized with `both_engines` (then once per engine, ids `[docker]` and `[podman]`), with
`docker_and_remote` (`[docker]`, `[remote]`: a second Docker engine reached over TCP only, which
shares no folder with the CLI, tests/engine_nodes.py) or with `all_engines` (the three). The CLI
finds Podman and the remote engine the way a user points it there, through DOCKER_HOST."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

EXAMPLE_IMAGE = os.environ.get("LOCALPROC_EXAMPLE_IMAGE", "localproc/example-python:bookworm")
ENTRYPOINT_IMAGE = "localproc-test/entrypoint:latest"
JOB_LABEL = "localproc.job"
REPO_ROOT = Path(__file__).resolve().parent.parent
# Podman's rootful API socket, as scripts/setup-podman.sh starts it.
PODMAN_HOST = os.environ.get("LOCALPROC_TEST_PODMAN_HOST", "unix:///run/podman/podman.sock")
ENGINES = ("docker", "podman")


@pytest.fixture(scope="session")
def docker_client() -> Any:
    import docker

    try:
        client = docker.from_env(version="auto")
        client.ping()
    except docker.errors.DockerException as err:
        pytest.fail(f"no Docker engine answers ({err}); run scripts/setup.sh first")
    try:
        client.images.get(EXAMPLE_IMAGE)
    except docker.errors.ImageNotFound:
        pytest.fail(f"image {EXAMPLE_IMAGE} missing; run scripts/build-example-image.sh")
    return client


@pytest.fixture(scope="session")
def podman_client() -> Any:
    """A Docker SDK client of Podman's Docker-compatible API (the same client localproc uses)."""
    import docker

    try:
        client = docker.DockerClient(base_url=PODMAN_HOST, version="auto")
        client.ping()
    except docker.errors.DockerException as err:
        pytest.fail(f"no Podman API answers at {PODMAN_HOST} ({err}); run scripts/setup-podman.sh")
    try:
        client.images.get(EXAMPLE_IMAGE)
    except docker.errors.ImageNotFound:
        pytest.fail(f"image {EXAMPLE_IMAGE} missing in Podman; run scripts/setup-podman.sh")
    return client


@dataclass(frozen=True)
class EngineUnderTest:
    """The engine a test runs its jobs on: its name, an SDK client of it, and the environment
    that points the CLI at it."""

    name: str
    client: Any
    env: dict[str, str]


@pytest.fixture
def engine(request: pytest.FixtureRequest) -> EngineUnderTest:
    """Docker, or the engine the test is parametrized with (`both_engines`)."""
    name = getattr(request, "param", "docker")
    if name == "remote":  # tests/engine_nodes.py: one node for the session
        node = request.getfixturevalue("remote_engine")
        return EngineUnderTest(name, request.getfixturevalue("remote_docker"), node.env)
    if name == "podman":
        return EngineUnderTest(name, request.getfixturevalue("podman_client"),
                               {"DOCKER_HOST": PODMAN_HOST})  # fmt: skip
    return EngineUnderTest(name, request.getfixturevalue("docker_client"), {})


# A test marked with this runs once on Docker and once on Podman.
both_engines = pytest.mark.parametrize("engine", ENGINES, indirect=True)
# ... once on Docker and once on the remote engine (the archive backend).
docker_and_remote = pytest.mark.parametrize("engine", ("docker", "remote"), indirect=True)
# ... on each of the three.
all_engines = pytest.mark.parametrize("engine", (*ENGINES, "remote"), indirect=True)


@pytest.fixture(scope="session")
def entrypoint_image(docker_client: Any) -> str:
    """An image with its own ENTRYPOINT and CMD, to check how a job's entrypoint/arguments mix."""
    import io

    dockerfile = (
        f'FROM {EXAMPLE_IMAGE}\nENTRYPOINT ["echo", "image-entrypoint"]\nCMD ["image-cmd"]\n'
    )
    docker_client.images.build(
        fileobj=io.BytesIO(dockerfile.encode()), tag=ENTRYPOINT_IMAGE, rm=True
    )
    return ENTRYPOINT_IMAGE


def job_volumes(client: Any, names: set[str]) -> list[str]:
    """Volumes of the named jobs (the archive backend's; an engine sharing our folders has
    none)."""
    return [v.name for v in client.volumes.list(filters={"label": JOB_LABEL})
            if (v.attrs.get("Labels") or {}).get(JOB_LABEL) in names]  # fmt: skip


def job_resources(docker_client: Any, names: set[str] | None = None) -> tuple[list[str], list[str]]:
    """Containers and networks of localproc jobs (of the named jobs only, when `names` is
    given, so that other runs on the same engine do not disturb a test)."""
    selector = {"label": JOB_LABEL}
    containers = docker_client.containers.list(all=True, filters=selector, sparse=True)
    networks = docker_client.networks.list(filters=selector)

    def wanted(item: Any) -> bool:
        return names is None or (item.attrs.get("Labels") or {}).get(JOB_LABEL) in names

    return (
        [c.attrs["Names"][0].lstrip("/") for c in containers if wanted(c)],
        [n.name for n in networks if wanted(n)],
    )


@dataclass
class CliResult:
    exit_code: int
    stdout: str
    stderr: str

    @property
    def output(self) -> str:
        return self.stdout + self.stderr


class Localproc:
    """Runs the installed `localproc` command in a subprocess, as a user would."""

    def __init__(
        self, state_dir: Path, workdir: Path, engine_env: dict[str, str] | None = None
    ) -> None:
        self.state_dir = state_dir
        self.workdir = workdir
        self.engine_env = engine_env or {}  # points the CLI at the test's engine
        self.names: set[str] = set()  # job names this test used

    @property
    def env(self) -> dict[str, str]:
        """The environment the CLI runs with (for tests that start it themselves)."""
        return {**os.environ, **self.engine_env, "LOCALPROC_HOME": str(self.state_dir)}

    def __call__(
        self,
        *args: str,
        stdin: str | None = None,
        env: dict[str, str] | None = None,
        timeout: float = 240,
    ) -> CliResult:
        if "--name" in args:
            self.names.add(args[args.index("--name") + 1])
        command = [sys.executable, "-m", "localproc", *args]
        full_env = {**self.env, **(env or {})}
        done = subprocess.run(
            command,
            input=stdin,
            capture_output=True,
            text=True,
            env=full_env,
            cwd=self.workdir,
            timeout=timeout,
        )
        return CliResult(done.returncode, done.stdout, done.stderr)

    def write_payload(self, payload: dict[str, Any]) -> Path:
        self.names.add(payload["ProcessingJobName"])
        path = self.workdir / f"{payload['ProcessingJobName']}.json"
        path.write_text(json.dumps(payload, indent=2))
        return path

    def record(self, name: str) -> dict[str, Any]:
        return json.loads((self.state_dir / "jobs" / name / "record.json").read_text())

    def job_dir(self, name: str) -> Path:
        return self.state_dir / "jobs" / name


@pytest.fixture
def localproc(tmp_path: Path, engine: EngineUnderTest) -> Iterator[Localproc]:
    """The CLI with a fresh state dir, pointed at the test's engine; after the test, no job
    container or network may remain on that engine."""
    work = tmp_path / "work"
    work.mkdir()
    cli = Localproc(tmp_path / "state", work, engine.env)
    yield cli
    containers, networks = job_resources(engine.client, cli.names)
    volumes = job_volumes(engine.client, cli.names) if engine.name == "remote" else []
    assert not containers and not networks and not volumes, (
        f"left behind on {engine.name}: {containers} {networks} {volumes}"
    )


def unique_name(stem: str) -> str:
    return f"{stem}-{uuid.uuid4().hex[:8]}"


def s3_input(name: str, uri: str, local_path: str, **extra: str) -> dict[str, Any]:
    return {
        "InputName": name,
        "S3Input": {
            "S3Uri": uri,
            "LocalPath": local_path,
            "S3DataType": "S3Prefix",
            "S3InputMode": "File",
            **extra,
        },
    }


def s3_output(name: str, uri: str, local_path: str, mode: str = "EndOfJob") -> dict[str, Any]:
    return {
        "OutputName": name,
        "S3Output": {"S3Uri": uri, "LocalPath": local_path, "S3UploadMode": mode},
    }


def job_payload(
    name: str,
    image: str = EXAMPLE_IMAGE,
    entrypoint: list[str] | None = None,
    arguments: list[str] | None = None,
    inputs: list[dict[str, Any]] | None = None,
    outputs: list[dict[str, Any]] | None = None,
    environment: dict[str, str] | None = None,
    instance_count: int = 1,
) -> dict[str, Any]:
    app: dict[str, Any] = {"ImageUri": image}
    if entrypoint is not None:
        app["ContainerEntrypoint"] = entrypoint
    if arguments is not None:
        app["ContainerArguments"] = arguments
    payload: dict[str, Any] = {
        "ProcessingJobName": name,
        "RoleArn": "arn:aws:iam::123456789012:role/LocalprocTestRole",
        "AppSpecification": app,
        "ProcessingResources": {
            "ClusterConfig": {
                "InstanceCount": instance_count,
                "InstanceType": "ml.t3.medium",
                "VolumeSizeInGB": 5,
            }
        },
        "StoppingCondition": {"MaxRuntimeInSeconds": 300},
    }
    if inputs:
        payload["ProcessingInputs"] = inputs
    if outputs:
        payload["ProcessingOutputConfig"] = {"Outputs": outputs}
    if environment:
        payload["Environment"] = environment
    return payload


def resources_created_since(
    docker_client: Any, since: float, names: set[str] | None = None
) -> list[str]:
    """Names of job containers and networks the engine created since `since` (epoch seconds),
    from the engine's own event log: proof that a rejected run created nothing, even briefly.
    With `names`, only those of the named jobs (other runs may share the engine)."""
    import time

    until = time.time() + 0.5
    created = []
    for event in docker_client.events(since=since, until=until, decode=True):
        attributes = event.get("Actor", {}).get("Attributes", {})
        job = attributes.get(JOB_LABEL) or attributes.get("name", "").removeprefix("localproc-")
        if names is not None and not any(job == n or job.startswith(f"{n}-") for n in names):
            continue
        if event.get("Action") == "create" and (
            JOB_LABEL in attributes or attributes.get("name", "").startswith("localproc-")
        ):
            created.append(f"{event.get('Type')}:{attributes.get('name')}")
    return created


def script_input(s3: Any, bucket: str, script: str) -> tuple[list[str], dict[str, Any]]:
    """Put a Python script in S3 and return (ContainerEntrypoint, the input that stages it):
    the service caps each entrypoint element at 256 characters, so scripts travel as inputs."""
    s3.client.put_object(Bucket=bucket, Key="test-code/script.py", Body=script.encode())
    code = s3_input("script", f"s3://{bucket}/test-code/script.py", "/opt/ml/processing/input/code")
    return ["python3", "-u", "/opt/ml/processing/input/code/script.py"], code


def wait_for(condition: Callable[[], bool], seconds: float, what: str = "a condition") -> None:
    """Poll `condition` every 0.1 s; fail the test after `seconds`."""
    import time

    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.1)
    raise AssertionError(f"timed out after {seconds} s waiting for {what}")
