"""`--cluster swarm` on a real 3-node Docker Swarm built on this machine (tests/swarm_cluster.py):
instances placed over the nodes find each other by name, get their own shards, stream Pipe
inputs, upload continuously, stop together, honour MaxRuntime and `stop`, wait for room for all
of them at once, and a node without the image ends the run before anything starts. Nothing of a
job is left on any node afterwards."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from typing import Any

import pytest
from docker_engine import (
    EXAMPLE_IMAGE,
    Localproc,
    job_payload,
    s3_input,
    s3_output,
    script_input,
    unique_name,
    wait_for,
)
from swarm_cluster import SwarmTestCluster, swarm_cluster  # noqa: F401 (the fixture)

HOSTS = ["algo-1", "algo-2", "algo-3"]
SETTLE_SECONDS = 20.0

PEERS = r"""
import json, pathlib, socket, threading, time
config = json.load(open('/opt/ml/config/resourceconfig.json'))
me, hosts = config['current_host'], config['hosts']
root = pathlib.Path('/opt/ml/processing/input/data')
files = sorted(str(p.relative_to(root)) for p in root.rglob('*') if p.is_file())
server = socket.socket(); server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
server.bind(('0.0.0.0', 7000)); server.listen(8)
accepted = []
def serve():
    while True:
        conn, _ = server.accept(); accepted.append(conn.recv(64).decode()); conn.close()
threading.Thread(target=serve, daemon=True).start()
connected = {}
for peer in hosts:
    deadline = time.time() + 60
    while peer != me:
        try:
            with socket.create_connection((peer, 7000), timeout=2) as s:
                s.sendall(me.encode())
            connected[peer] = socket.gethostbyname(peer); break
        except OSError as err:
            if time.time() > deadline:
                connected[peer] = 'failed: %s' % err; break
            time.sleep(0.2)
deadline = time.time() + 60
while len(accepted) < len(hosts) - 1 and time.time() < deadline:
    time.sleep(0.1)
later = {}
if me != 'algo-1':  # algo-1 ends now; the others look for it once it has gone
    time.sleep(6)
    for peer in hosts:
        try:
            later[peer] = socket.gethostbyname(peer)
        except OSError as err:
            later[peer] = 'unresolved: %s' % err
report = {'config': config, 'files': files, 'connected': connected,
          'accepted': sorted(accepted), 'later': later}
print('REPORT ' + json.dumps(report), flush=True)
pathlib.Path('/opt/ml/processing/out/%s.json' % me).write_text(json.dumps(report))
"""

SLEEPER = r"""
import json, pathlib, signal, sys, time
me = json.load(open('/opt/ml/config/resourceconfig.json'))['current_host']
def on_term(signum, frame):
    pathlib.Path('/opt/ml/processing/out/%s-terminated.txt' % me).write_text('got SIGTERM')
    sys.exit(0)
signal.signal(signal.SIGTERM, on_term)
print('sleeping', flush=True)
if me == 'algo-2' and len(sys.argv) > 1 and sys.argv[1] == 'fail':
    time.sleep(2)
    sys.exit(3)
time.sleep(300)
"""


@pytest.fixture(autouse=True)
def _nothing_left_on_any_node(swarm_cluster: SwarmTestCluster) -> Iterator[None]:  # noqa: F811
    yield
    deadline = time.monotonic() + SETTLE_SECONDS
    while (left := swarm_cluster.leftovers()) and time.monotonic() < deadline:
        time.sleep(0.25)
    assert not left, f"left on the swarm's nodes: {left}"


def swarm_run(
    localproc: Localproc, swarm: SwarmTestCluster, payload: dict[str, Any], s3: Any, *args: str
) -> Any:
    return localproc(
        "run", str(localproc.write_payload(payload)), "--s3-endpoint-url", s3.endpoint_url,
        "--stop-grace", "2", *args, env=swarm.env, timeout=300,
    )  # fmt: skip


def spawn_swarm_run(
    localproc: Localproc, swarm: SwarmTestCluster, payload: dict[str, Any], s3: Any
) -> subprocess.Popen[str]:
    env = {**os.environ, "LOCALPROC_HOME": str(localproc.state_dir), **swarm.env}
    return subprocess.Popen(
        [sys.executable, "-m", "localproc", "run", str(localproc.write_payload(payload)),
         "--s3-endpoint-url", s3.endpoint_url, "--stop-grace", "2"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, cwd=localproc.workdir,
    )  # fmt: skip


def placement(stderr: str) -> dict[str, str]:
    """algo-i → node, from the run's 'placed on the swarm: algo-1 on NODE, …' line."""
    line = next(x for x in stderr.splitlines() if "placed on the swarm: " in x)
    return dict(re.findall(r"(algo-\d+) on (\S+?)(?:,|$)", line.split("placed on the swarm: ")[1]))


def containers_started_on_nodes(swarm: SwarmTestCluster, job: str, since: float) -> dict[str, str]:
    """algo-i → the node whose engine started its container, from each node's own event log."""
    found = {}
    for node in swarm.nodes:
        events = node.docker(
            "events", "--since", str(int(since) - 1), "--until", str(int(time.time()) + 1),
            "--filter", "type=container", "--filter", "event=start",
            "--filter", f"label=localproc.job={job}", "--format", "{{json .Actor.Attributes}}",
        ).stdout  # fmt: skip
        for line in events.splitlines():
            container = json.loads(line)["name"]  # localproc-JOB-RUNID-algo-i
            found["-".join(container.split("-")[-2:])] = node.address
    return found


def reports_from_s3(s3: Any, bucket: str, name: str) -> dict[str, Any]:
    reports = {}
    for host in HOSTS:
        body = s3.client.get_object(Bucket=bucket, Key=f"out/{name}/{host}.json")["Body"].read()
        reports[host] = json.loads(body)
    return reports


def test_three_instances_on_three_nodes_resolve_each_other_for_the_whole_job(
    localproc: Localproc,
    s3: Any,
    swarm_cluster: SwarmTestCluster,  # noqa: F811
) -> None:
    bucket = s3.make_bucket()
    for i in range(6):
        s3.client.put_object(Bucket=bucket, Key=f"data/part-{i}.txt", Body=f"part {i}".encode())
    name = unique_name("swarm-peers")
    entrypoint, code = script_input(s3, bucket, PEERS)
    data = s3_input("data", f"s3://{bucket}/data/", "/opt/ml/processing/input/data",
                    S3DataDistributionType="ShardedByS3Key")  # fmt: skip
    payload = job_payload(
        name, entrypoint=entrypoint, inputs=[data, code], instance_count=3,
        outputs=[s3_output("out", f"s3://{bucket}/out/{name}", "/opt/ml/processing/out")],
    )  # fmt: skip
    began = time.time()

    result = swarm_run(localproc, swarm_cluster, payload, s3)

    assert result.exit_code == 0, result.output
    # One instance per node, as the run says and as the nodes' own engines saw it.
    placed = placement(result.stderr)
    assert sorted(placed) == HOSTS and len(set(placed.values())) == 3, result.stderr
    started_on = containers_started_on_nodes(swarm_cluster, name, began)
    assert sorted(started_on) == HOSTS and len(set(started_on.values())) == 3, started_on
    reports = reports_from_s3(s3, bucket, name)
    shards = []
    for host, report in reports.items():
        peers = [h for h in HOSTS if h != host]
        assert report["config"]["current_host"] == host and report["config"]["hosts"] == HOSTS
        assert sorted(report["connected"]) == peers, report  # across nodes, by name
        assert all(a.count(".") == 3 for a in report["connected"].values()), report
        assert report["accepted"] == peers, report
        if host != "algo-1":  # looked for algo-1 after its container had exited
            assert report["later"]["algo-1"] == report["connected"]["algo-1"], report
        # ShardedByS3Key: each instance (so each node) got its own two objects
        assert len(report["files"]) == 2, report
        shards += report["files"]
    assert sorted(shards) == [f"part-{i}.txt" for i in range(6)]
    # logs per instance, describe, list: as on one host
    assert "REPORT" in localproc("logs", name, "--instance", "algo-3").stdout
    described = json.loads(localproc("describe", name, "--json").stdout)
    assert described["ProcessingJobStatus"] == "Completed"
    assert name in localproc("list", "--name-contains", name).stdout


def test_pipe_input_streams_to_an_instance_on_another_node(
    localproc: Localproc,
    s3: Any,
    swarm_cluster: SwarmTestCluster,  # noqa: F811
) -> None:
    bucket = s3.make_bucket()
    body = b"".join(b"line %d\n" % i for i in range(20000))
    s3.client.put_object(Bucket=bucket, Key="pipe/data.txt", Body=body)
    name = unique_name("swarm-pipe")
    script = (
        "import hashlib, json, pathlib\n"
        "me = json.load(open('/opt/ml/config/resourceconfig.json'))['current_host']\n"
        "data = open('/opt/ml/processing/input/data/data_0', 'rb').read()\n"
        "pathlib.Path('/opt/ml/processing/out/%s.txt' % me).write_text("
        "hashlib.sha256(data).hexdigest())\n"
    )
    entrypoint, code = script_input(s3, bucket, script)
    data = s3_input("data", f"s3://{bucket}/pipe/", "/opt/ml/processing/input/data",
                    S3InputMode="Pipe")  # fmt: skip
    payload = job_payload(
        name, entrypoint=entrypoint, inputs=[data, code], instance_count=2,
        outputs=[s3_output("out", f"s3://{bucket}/out/{name}", "/opt/ml/processing/out")],
    )  # fmt: skip

    result = swarm_run(localproc, swarm_cluster, payload, s3)

    assert result.exit_code == 0, result.output
    import hashlib

    for host in ("algo-1", "algo-2"):
        got = s3.client.get_object(Bucket=bucket, Key=f"out/{name}/{host}.txt")["Body"].read()
        assert got.decode() == hashlib.sha256(body).hexdigest()


def test_continuous_output_is_uploaded_while_the_instance_runs(
    localproc: Localproc,
    s3: Any,
    swarm_cluster: SwarmTestCluster,  # noqa: F811
) -> None:
    bucket = s3.make_bucket()
    name = unique_name("swarm-cont")
    payload = job_payload(
        name, instance_count=2,
        entrypoint=["sh", "-c", "echo early > /opt/ml/processing/out/$(hostname).txt; sleep 25"],
        outputs=[s3_output("out", f"s3://{bucket}/out/{name}", "/opt/ml/processing/out",
                           mode="Continuous")],
    )  # fmt: skip
    process = spawn_swarm_run(localproc, swarm_cluster, payload, s3)
    try:

        def uploaded() -> bool:
            listing = s3.client.list_objects_v2(Bucket=bucket, Prefix=f"out/{name}/")
            return len(listing.get("Contents", [])) == 2

        wait_for(uploaded, 60, "both instances' early files in S3")
        assert process.poll() is None, "the job had already ended: nothing shows Continuous"
        assert process.wait(timeout=120) == 0, process.stderr.read() if process.stderr else ""
    finally:
        process.kill()
        process.communicate()


def test_a_failing_instance_stops_the_others_on_their_nodes(
    localproc: Localproc,
    s3: Any,
    swarm_cluster: SwarmTestCluster,  # noqa: F811
) -> None:
    bucket = s3.make_bucket()
    name = unique_name("swarm-fail")
    entrypoint, code = script_input(s3, bucket, SLEEPER)
    payload = job_payload(
        name, entrypoint=[*entrypoint, "fail"], inputs=[code], instance_count=3,
        outputs=[s3_output("out", f"s3://{bucket}/out/{name}", "/opt/ml/processing/out")],
    )  # fmt: skip

    result = swarm_run(localproc, swarm_cluster, payload, s3)

    assert result.exit_code == 1, result.output
    record = localproc.record(name)
    assert record["ProcessingJobStatus"] == "Failed"
    assert "algo-2" in record["FailureReason"], record["FailureReason"]
    listing = s3.client.list_objects_v2(Bucket=bucket, Prefix=f"out/{name}/")
    keys = sorted(o["Key"].rsplit("/", 1)[1] for o in listing.get("Contents", []))
    assert keys == ["algo-1-terminated.txt", "algo-3-terminated.txt"]


def test_max_runtime_stops_every_instance(
    localproc: Localproc,
    s3: Any,
    swarm_cluster: SwarmTestCluster,  # noqa: F811
) -> None:
    bucket = s3.make_bucket()
    name = unique_name("swarm-deadline")
    entrypoint, code = script_input(s3, bucket, SLEEPER)
    payload = job_payload(
        name, entrypoint=entrypoint, inputs=[code], instance_count=3,
        outputs=[s3_output("out", f"s3://{bucket}/out/{name}", "/opt/ml/processing/out")],
    )  # fmt: skip
    payload["StoppingCondition"] = {"MaxRuntimeInSeconds": 5}

    result = swarm_run(localproc, swarm_cluster, payload, s3)

    assert result.exit_code == 3, result.output
    record = localproc.record(name)
    assert record["ProcessingJobStatus"] == "Stopped"
    assert "MaxRuntimeInSeconds (5 s)" in record["FailureReason"]
    listing = s3.client.list_objects_v2(Bucket=bucket, Prefix=f"out/{name}/")
    assert len(listing.get("Contents", [])) == 3  # every instance got SIGTERM and wrote


def test_stop_ends_a_job_spread_over_the_nodes(
    localproc: Localproc,
    s3: Any,
    swarm_cluster: SwarmTestCluster,  # noqa: F811
) -> None:
    bucket = s3.make_bucket()
    name = unique_name("swarm-stop")
    entrypoint, code = script_input(s3, bucket, SLEEPER)
    payload = job_payload(name, entrypoint=entrypoint, inputs=[code], instance_count=3,
        outputs=[s3_output("out", f"s3://{bucket}/out/{name}", "/opt/ml/processing/out")],
    )  # fmt: skip
    process = spawn_swarm_run(localproc, swarm_cluster, payload, s3)
    try:

        def all_sleeping() -> bool:
            logs = [localproc.job_dir(name) / "logs" / f"{h}.log" for h in HOSTS]
            return all(p.exists() and "sleeping" in p.read_text() for p in logs)

        wait_for(all_sleeping, 90, "every instance to start")
        assert localproc("stop", name).exit_code == 0
        assert process.wait(timeout=90) == 3
    finally:
        process.kill()
        process.communicate()
    assert localproc.record(name)["ProcessingJobStatus"] == "Stopped"


def test_a_job_waits_until_the_cluster_can_place_all_its_instances(
    localproc: Localproc,
    s3: Any,
    swarm_cluster: SwarmTestCluster,  # noqa: F811
) -> None:
    # Each node has 2 CPUs: three ml.t3.medium (2 vCPUs each) fill the cluster.
    bucket = s3.make_bucket()
    big, small, dropped = (unique_name(s) for s in ("swarm-fill", "swarm-wait", "swarm-drop"))
    entrypoint, code = script_input(s3, bucket, SLEEPER)
    filler = job_payload(big, entrypoint=entrypoint, inputs=[code], instance_count=3)
    waiter = job_payload(small, entrypoint=["echo", "placed at last"], instance_count=2)
    given_up = job_payload(dropped, entrypoint=["echo", "never"], instance_count=1)
    first = spawn_swarm_run(localproc, swarm_cluster, filler, s3)
    second = third = None
    try:

        def filling() -> bool:
            logs = [localproc.job_dir(big) / "logs" / f"{h}.log" for h in HOSTS]
            return all(p.exists() and "sleeping" in p.read_text() for p in logs)

        wait_for(filling, 90, "the first job to fill the cluster")
        second = spawn_swarm_run(localproc, swarm_cluster, waiter, s3)
        third = spawn_swarm_run(localproc, swarm_cluster, given_up, s3)
        time.sleep(8)
        assert second.poll() is None and third.poll() is None, "the jobs did not wait"
        assert not (localproc.job_dir(small) / "logs" / "algo-1.log").exists()
        # A stop while waiting ends the job Stopped, with nothing made for it anywhere.
        assert localproc("stop", dropped).exit_code == 0
        _out, third_stderr = third.communicate(timeout=60)
        assert third.returncode == 3, third_stderr
        assert localproc.record(dropped)["ProcessingJobStatus"] == "Stopped"
        assert not (localproc.job_dir(dropped) / "logs" / "algo-1.log").exists()
        assert localproc("stop", big).exit_code == 0
        assert first.wait(timeout=90) == 3
        _out, stderr = second.communicate(timeout=90)
        assert second.returncode == 0, stderr
        waiting = [x for x in stderr.splitlines() if "waiting for the cluster" in x]
        assert len(waiting) == 1, stderr
        assert "place all 2 instances" in waiting[0] and "room for 0 now" in waiting[0]
    finally:
        for process in (first, second, third):
            if process is not None:
                process.kill()
                process.communicate()


def test_a_node_without_the_image_ends_the_run_with_exit_4_before_anything_starts(
    localproc: Localproc,
    s3: Any,
    swarm_cluster: SwarmTestCluster,  # noqa: F811
) -> None:
    # Known to two nodes only, from a registry no node reaches (a refused local port).
    image = f"127.0.0.1:9/localproc-test/partial:{unique_name('img')}"
    lacking = swarm_cluster.nodes[2]
    for node in swarm_cluster.nodes[:2]:
        node.docker("tag", EXAMPLE_IMAGE, image)
    name = unique_name("swarm-noimage")
    began = time.time()
    try:
        result = swarm_run(localproc, swarm_cluster, job_payload(name, image=image), s3)
    finally:
        for node in swarm_cluster.nodes[:2]:
            node.docker("rmi", image)

    assert result.exit_code == 4, result.output
    assert lacking.docker_host in result.stderr, result.stderr
    assert f"docker save {image} | docker -H NODE load" in result.stderr
    for node in swarm_cluster.nodes[:2]:
        assert node.docker_host not in result.stderr.split("First node's error")[0]
    assert not (localproc.state_dir / "jobs" / name).exists()
    assert containers_started_on_nodes(swarm_cluster, name, began) == {}


def test_gc_removes_a_killed_runners_instances_from_every_node(
    localproc: Localproc,
    s3: Any,
    swarm_cluster: SwarmTestCluster,  # noqa: F811
) -> None:
    bucket = s3.make_bucket()
    name = unique_name("swarm-killed")
    entrypoint, code = script_input(s3, bucket, SLEEPER)
    payload = job_payload(name, entrypoint=entrypoint, inputs=[code], instance_count=3)
    process = spawn_swarm_run(localproc, swarm_cluster, payload, s3)
    try:

        def all_sleeping() -> bool:
            logs = [localproc.job_dir(name) / "logs" / f"{h}.log" for h in HOSTS]
            return all(p.exists() and "sleeping" in p.read_text() for p in logs)

        wait_for(all_sleeping, 90, "every instance to start")
    finally:
        process.kill()  # SIGKILL: the runner leaves its instances running on the nodes
        process.communicate()
    running = swarm_cluster.leftovers()
    assert len(running) == 3, running  # one instance (and its volumes) on each node

    cleaned = localproc("gc", env=swarm_cluster.env)

    assert cleaned.exit_code == 0, cleaned.output
    assert swarm_cluster.leftovers() == {}
    record = localproc.record(name)
    assert record["ProcessingJobStatus"] == "Failed"
    assert "runner exited unexpectedly" in record["FailureReason"]
