"""What is particular to an engine that shares no folder with localproc (tests/engine_nodes.py's
node, reached over TCP, or over ssh:// through the system's ssh): network isolation is the
engine's own `internal` network (this machine's firewall is not the engine's), a Docker context
names the engine as well as DOCKER_HOST does, an image without a shell is refused for Pipe inputs
before anything starts, and the backend can be forced either way with LOCALPROC_ENGINE_FILES.
The input and output modes themselves are the `[remote]` variants of the acceptance tests
(test_cluster_and_input_modes, test_lifecycle, test_outputs_delivery, test_outcomes,
test_plan_matches_run)."""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Iterator
from typing import Any

import pytest
from docker_engine import Localproc, job_payload, s3_output, script_input, unique_name
from engine_nodes import EngineNode, node_leftovers, nothing_left

PROBE = r"""
import json, socket, sys
host, port = sys.argv[1], int(sys.argv[2])
config = json.load(open('/opt/ml/config/resourceconfig.json'))
result = {'peers': {p: socket.gethostbyname(p) for p in config['hosts']}}
s = socket.socket(); s.settimeout(3)
try:
    s.connect((host, port)); result['outside'] = 'reached'
except OSError as err:
    result['outside'] = 'blocked: %s' % err
open('/opt/ml/processing/out/%s.json' % config['current_host'], 'w').write(json.dumps(result))
"""


@pytest.fixture
def client_side_service(remote_engine: EngineNode) -> Iterator[tuple[str, int]]:
    """A TCP server on this machine's address on the nodes' bridge: outside the engine's
    machine, as seen from its containers."""
    address = remote_engine.host_address
    server = socket.socket()
    server.bind((address, 0))
    server.listen(16)
    server.settimeout(0.5)
    stop = threading.Event()

    def accept() -> None:
        while not stop.is_set():
            try:
                server.accept()[0].close()
            except OSError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    yield address, server.getsockname()[1]
    stop.set()
    thread.join(timeout=2)
    server.close()


def _probe(
    localproc: Localproc, s3: Any, node: EngineNode, service: tuple[str, int], isolated: bool
) -> dict[str, Any]:
    bucket = s3.make_bucket()
    name = unique_name("remote-iso" if isolated else "remote-open")
    entrypoint, code = script_input(s3, bucket, PROBE)
    payload = job_payload(
        name, entrypoint=entrypoint, arguments=[service[0], str(service[1])], inputs=[code],
        outputs=[s3_output("out", f"s3://{bucket}/out", "/opt/ml/processing/out")],
        instance_count=2,
    )  # fmt: skip
    payload["NetworkConfig"] = {"EnableNetworkIsolation": isolated}
    result = localproc(
        "run", str(localproc.write_payload(payload)), "--s3-endpoint-url", s3.endpoint_url,
        env=node.env,
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert nothing_left(node_leftovers(node, {name}))
    return {
        host: json.loads(
            s3.client.get_object(Bucket=bucket, Key=f"out/{host}.json")["Body"].read()
        )
        for host in ("algo-1", "algo-2")
    }


def test_isolated_instances_on_a_remote_engine_reach_each_other_and_nothing_outside(
    localproc: Localproc, s3: Any, remote_engine: EngineNode, client_side_service: Any
) -> None:
    seen = _probe(localproc, s3, remote_engine, client_side_service, isolated=True)
    for instance in seen.values():
        assert instance["outside"].startswith("blocked"), instance
        assert all(address.count(".") == 3 for address in instance["peers"].values())
    assert seen["algo-1"]["peers"] == seen["algo-2"]["peers"]


def test_without_isolation_a_remote_instance_reaches_outside(
    localproc: Localproc, s3: Any, remote_engine: EngineNode, client_side_service: Any
) -> None:
    seen = _probe(localproc, s3, remote_engine, client_side_service, isolated=False)
    assert seen["algo-1"]["outside"] == "reached"


COPY_CHECK = r"""
import os, pathlib
mounts = open('/proc/self/mountinfo').read()
kind = 'bind' if os.environ['HOST_FOLDER'] in mounts else 'volume'
pathlib.Path('/opt/ml/processing/out/kind.txt').write_text(kind)
print('inputs', sorted(os.listdir('/opt/ml/processing/input/code')), flush=True)
"""


@pytest.mark.parametrize(("files", "expected"), [("copy", "volume"), ("shared", "bind")])
def test_the_engine_files_override_picks_the_backend_on_the_local_engine(
    localproc: Localproc, s3: Any, docker_client: Any, files: str, expected: str
) -> None:
    bucket = s3.make_bucket()
    name = unique_name(f"files-{files}")
    entrypoint, code = script_input(s3, bucket, COPY_CHECK)
    payload = job_payload(
        name, entrypoint=entrypoint, inputs=[code],
        outputs=[s3_output("out", f"s3://{bucket}/out", "/opt/ml/processing/out")],
        environment={"HOST_FOLDER": str(localproc.state_dir)},
    )  # fmt: skip
    result = localproc(
        "run", str(localproc.write_payload(payload)), "--s3-endpoint-url", s3.endpoint_url,
        env={"LOCALPROC_ENGINE_FILES": files},
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "algo-1 | inputs ['script.py']" in result.stdout
    kind = s3.client.get_object(Bucket=bucket, Key="out/kind.txt")["Body"].read().decode()
    assert kind == expected
    volumes = docker_client.volumes.list(filters={"label": f"localproc.job={name}"})
    assert volumes == []


def test_a_bad_engine_files_value_is_refused_naming_it(localproc: Localproc, s3: Any) -> None:
    payload = job_payload(unique_name("files-bad"))
    result = localproc(
        "run", str(localproc.write_payload(payload)), "--s3-endpoint-url", s3.endpoint_url,
        env={"LOCALPROC_ENGINE_FILES": "sometimes"},
    )  # fmt: skip
    assert result.exit_code == 4
    assert "LOCALPROC_ENGINE_FILES='sometimes' is not one of" in result.stderr
    assert "Traceback" not in result.output


@pytest.fixture
def shell_less_image(remote_docker: Any) -> Iterator[str]:
    """An image on the node with one text file and no shell."""
    import io
    import tarfile

    archive = io.BytesIO()
    with tarfile.open(fileobj=archive, mode="w") as tar:
        info = tarfile.TarInfo("README")
        info.size = 5
        tar.addfile(info, io.BytesIO(b"empty"))
    name = f"localproc-test/no-shell:{unique_name('t')}"
    remote_docker.api.import_image_from_data(archive.getvalue(), repository=name)
    yield name
    remote_docker.images.remove(name, force=True)


def test_pipe_input_with_an_image_without_a_shell_fails_before_starting(
    localproc: Localproc, s3: Any, remote_engine: EngineNode, shell_less_image: str
) -> None:
    bucket = s3.make_bucket()
    s3.client.put_object(Bucket=bucket, Key="stream/0", Body=b"data")
    name = unique_name("remote-noshell")
    payload = job_payload(
        name, image=shell_less_image, entrypoint=["/reader"],
        inputs=[{"InputName": "data", "S3Input": {
            "S3Uri": f"s3://{bucket}/stream/", "LocalPath": "/opt/ml/processing/input/data",
            "S3DataType": "S3Prefix", "S3InputMode": "Pipe"}}],
    )  # fmt: skip
    result = localproc(
        "run", str(localproc.write_payload(payload)), "--s3-endpoint-url", s3.endpoint_url,
        env=remote_engine.env,
    )  # fmt: skip
    assert result.exit_code == 1, result.output
    reason = localproc.record(name)["FailureReason"]
    assert reason.startswith("ClientError: Pipe input(s) data on a remote Docker engine"), reason
    assert "no /bin/sh or no cat" in reason
    assert "ProcessingStartTime" not in localproc.record(name)
    assert nothing_left(node_leftovers(remote_engine, {name}))


def test_a_docker_context_naming_the_remote_engine_is_used(
    localproc: Localproc, s3: Any, remote_engine: EngineNode, tmp_path: Any
) -> None:
    """No DOCKER_HOST: the context the Docker CLI's config makes current names the engine."""
    import subprocess

    config = tmp_path / "docker-config"
    config.mkdir()
    create = ["context", "create", "far-node", "--docker", f"host={remote_engine.docker_host}"]
    for command in (create, ["context", "use", "far-node"]):
        done = subprocess.run(["docker", "--config", str(config), *command],
                              capture_output=True, text=True, timeout=60)  # fmt: skip
        assert done.returncode == 0, done.stderr
    bucket = s3.make_bucket()
    name = unique_name("remote-context")
    entrypoint, code = script_input(s3, bucket, "print('ran', flush=True)\n")
    payload = job_payload(name, entrypoint=entrypoint, inputs=[code])
    result = localproc(
        "run", str(localproc.write_payload(payload)), "--s3-endpoint-url", s3.endpoint_url,
        env={"DOCKER_CONFIG": str(config), "DOCKER_HOST": ""},
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "algo-1 | ran" in result.stdout
    assert f"the Docker engine at {remote_engine.docker_host} (context far-node)" in result.stderr
    assert nothing_left(node_leftovers(remote_engine, {name}))


PIPE_AND_FILE = r"""
import json, pathlib
with open('/opt/ml/processing/input/stream/stream_0', 'rb') as pipe:
    streamed = pipe.read().decode()
staged = sorted(p.name for p in pathlib.Path('/opt/ml/processing/input/code').iterdir())
out = {'streamed': streamed, 'staged': staged}
pathlib.Path('/opt/ml/processing/out/seen.json').write_text(json.dumps(out))
print('done', flush=True)
"""


def test_ssh_docker_host_runs_file_and_pipe_inputs_through_the_systems_ssh(
    localproc: Localproc, s3: Any, remote_engine: EngineNode, remote_ssh: Any
) -> None:
    bucket = s3.make_bucket()
    for i in range(3):
        s3.client.put_object(Bucket=bucket, Key=f"stream/{i}", Body=f"part {i}\n".encode())
    name = unique_name("remote-ssh")
    entrypoint, code = script_input(s3, bucket, PIPE_AND_FILE)
    stream = {"InputName": "stream", "S3Input": {
        "S3Uri": f"s3://{bucket}/stream/", "LocalPath": "/opt/ml/processing/input/stream",
        "S3DataType": "S3Prefix", "S3InputMode": "Pipe"}}  # fmt: skip
    payload = job_payload(
        name, entrypoint=entrypoint, inputs=[code, stream],
        outputs=[s3_output("out", f"s3://{bucket}/out", "/opt/ml/processing/out")],
    )  # fmt: skip
    result = localproc(
        "run", str(localproc.write_payload(payload)), "--s3-endpoint-url", s3.endpoint_url,
        env=remote_ssh.env,
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert f"the Docker engine at ssh://root@{remote_engine.address}" in result.stderr
    seen = json.loads(s3.client.get_object(Bucket=bucket, Key="out/seen.json")["Body"].read())
    assert seen == {"streamed": "part 0\npart 1\npart 2\n", "staged": ["script.py"]}
    assert nothing_left(node_leftovers(remote_engine, {name}))
