"""Run it like the service would: network isolation, instance-sized CPU and memory limits seen
from inside the container, out-of-memory reported as such, VolumeSizeInGB enforced up front."""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from docker_engine import (
    Localproc,
    both_engines,
    job_payload,
    resources_created_since,
    s3_input,
    s3_output,
    script_input,
    unique_name,
)

GIB = 2**30

PROBE = r"""
import json, os, socket, sys
host, port = sys.argv[1], int(sys.argv[2])
peers = json.load(open('/opt/ml/config/resourceconfig.json'))['hosts']
result = {'peers': {}}
for peer in peers:
    try:
        result['peers'][peer] = socket.gethostbyname(peer)
    except OSError as err:
        result['peers'][peer] = 'unresolved: %s' % err
s = socket.socket(); s.settimeout(3)
try:
    s.connect((host, port)); result['host_service'] = 'reached'
except OSError as err:
    result['host_service'] = 'blocked: %s' % err
me = json.load(open('/opt/ml/config/resourceconfig.json'))['current_host']
open('/opt/ml/processing/out/%s.json' % me, 'w').write(json.dumps(result))
"""


def bridge_gateway(network: dict[str, Any]) -> str:
    """The host's address on a bridge network. Some engines (Debian's docker.io after a
    restart) leave `Gateway` out of the default bridge's IPAM config; the bridge then has the
    subnet's first address, as Docker assigns it."""
    import ipaddress

    config = network["IPAM"]["Config"][0]
    return config.get("Gateway") or str(ipaddress.ip_network(config["Subnet"])[1])


@pytest.fixture
def host_service(docker_client: Any) -> Iterator[tuple[str, int]]:
    """A TCP server on the host, listening on the Docker bridge's gateway address."""
    gateway = bridge_gateway(docker_client.networks.get("bridge").attrs)
    server = socket.socket()
    server.bind((gateway, 0))
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
    yield gateway, server.getsockname()[1]
    stop.set()
    thread.join(timeout=2)
    server.close()


def probe_job(
    localproc: Localproc, s3: Any, host: tuple[str, int], isolated: bool, count: int
) -> dict[str, Any]:
    bucket = s3.make_bucket()
    name = unique_name("iso" if isolated else "open")
    entrypoint, code = script_input(s3, bucket, PROBE)
    payload = job_payload(
        name,
        entrypoint=entrypoint,
        arguments=[host[0], str(host[1])],
        inputs=[code],
        outputs=[s3_output("out", f"s3://{bucket}/out", "/opt/ml/processing/out")],
        instance_count=count,
    )
    payload["NetworkConfig"] = {"EnableNetworkIsolation": isolated}
    result = localproc(
        "run", str(localproc.write_payload(payload)), "--s3-endpoint-url", s3.endpoint_url
    )
    assert result.exit_code == 0, result.output
    seen = {}
    for i in range(1, count + 1):
        body = s3.client.get_object(Bucket=bucket, Key=f"out/algo-{i}.json")["Body"].read()
        seen[f"algo-{i}"] = json.loads(body)
    return seen


@both_engines
def test_isolated_instances_reach_each_other_but_not_the_host(
    localproc: Localproc, s3: Any, host_service: tuple[str, int]
) -> None:
    seen = probe_job(localproc, s3, host_service, isolated=True, count=2)
    for instance in seen.values():
        assert instance["host_service"].startswith("blocked"), instance
        assert all(address.count(".") == 3 for address in instance["peers"].values()), instance
    assert seen["algo-1"]["peers"] == seen["algo-2"]["peers"]


@both_engines
def test_without_isolation_the_host_service_is_reachable(
    localproc: Localproc, s3: Any, host_service: tuple[str, int]
) -> None:
    seen = probe_job(localproc, s3, host_service, isolated=False, count=1)
    assert seen["algo-1"]["host_service"] == "reached"


RESOLVE = r"""
import socket, sys
try:
    print('RESOLVED', socket.gethostbyname(sys.argv[1]), flush=True)
except OSError as err:
    print('UNRESOLVED', err, flush=True)
"""
OUTSIDE_NAME = "deb.debian.org"  # a name this host resolves through DNS (it installs packages)


@both_engines
def test_an_isolated_job_resolves_no_outside_name(localproc: Localproc, s3: Any) -> None:
    """No DNS way out of an isolated network: Docker's resolver does not forward for internal
    networks, and on Podman the job's network has no DNS server (Podman's would forward)."""
    try:
        socket.getaddrinfo(OUTSIDE_NAME, 443)
    except OSError:
        pytest.skip(f"this host does not resolve {OUTSIDE_NAME}")
    bucket = s3.make_bucket()
    entrypoint, code = script_input(s3, bucket, RESOLVE)
    seen = {}
    for isolated in (False, True):
        name = unique_name("dns-iso" if isolated else "dns-open")
        payload = job_payload(name, entrypoint=entrypoint, arguments=[OUTSIDE_NAME], inputs=[code])
        payload["NetworkConfig"] = {"EnableNetworkIsolation": isolated}
        result = localproc(
            "run", str(localproc.write_payload(payload)), "--s3-endpoint-url", s3.endpoint_url
        )
        assert result.exit_code == 0, result.output
        seen[isolated] = (localproc.job_dir(name) / "logs" / "algo-1.log").read_text()
    assert seen[False].startswith("RESOLVED "), seen  # the name resolves from a container...
    assert seen[True].startswith("UNRESOLVED "), seen  # ...but not from an isolated one


LIMITS = r"""
import json, os
def read(path):
    try:
        return open(path).read().strip()
    except OSError:
        return None
limits = {
    'v1_quota': read('/sys/fs/cgroup/cpu/cpu.cfs_quota_us'),
    'v1_period': read('/sys/fs/cgroup/cpu/cpu.cfs_period_us'),
    'v1_memory': read('/sys/fs/cgroup/memory/memory.limit_in_bytes'),
    'v2_cpu': read('/sys/fs/cgroup/cpu.max'),
    'v2_memory': read('/sys/fs/cgroup/memory.max'),
}
print(json.dumps(limits), flush=True)
import time; time.sleep(2)  # long enough for the engine's usage samples
"""


def cgroup_limits(stdout: str) -> tuple[float, int]:
    line = next(line for line in stdout.splitlines() if line.startswith("algo-1 | {"))
    seen = json.loads(line.split(" | ", 1)[1])
    if seen["v2_cpu"]:
        quota, period = seen["v2_cpu"].split()
        return int(quota) / int(period), int(seen["v2_memory"])
    return int(seen["v1_quota"]) / int(seen["v1_period"]), int(seen["v1_memory"])


def test_cpu_and_memory_limits_match_the_instance_type(localproc: Localproc, s3: Any) -> None:
    bucket = s3.make_bucket()
    name = unique_name("limits")
    entrypoint, code = script_input(s3, bucket, LIMITS)
    payload = job_payload(name, entrypoint=entrypoint, inputs=[code])  # ml.t3.medium: 2 vCPU, 4 GiB

    result = localproc(
        "run", str(localproc.write_payload(payload)), "--s3-endpoint-url", s3.endpoint_url
    )

    assert result.exit_code == 0, result.output
    assert cgroup_limits(result.stdout) == (2.0, 4 * GIB)
    # The run reports each instance's peak memory and the smallest type that holds it.
    assert "algo-1: peak memory" in result.stderr
    assert "smallest ml.t3 that holds it: ml.t3.medium" in result.stderr
    # ... and `describe` gives the same advice later.
    advice = next(line for line in result.stderr.splitlines() if "algo-1: peak memory" in line)
    described = localproc("describe", name)
    assert described.exit_code == 0
    usage = next(line for line in described.stdout.splitlines() if line.startswith("Usage "))
    assert usage.split(None, 1)[1] == advice.removeprefix("localproc: ")


def test_limits_are_scaled_to_the_host_and_can_be_turned_off(localproc: Localproc, s3: Any) -> None:
    import psutil

    bucket = s3.make_bucket()
    entrypoint, code = script_input(s3, bucket, LIMITS)
    big = job_payload(unique_name("scaled"), entrypoint=entrypoint, inputs=[code])
    big["ProcessingResources"]["ClusterConfig"]["InstanceType"] = "ml.m5.24xlarge"  # 96 vCPUs

    scaled = localproc(
        "run", str(localproc.write_payload(big)), "--s3-endpoint-url", s3.endpoint_url
    )

    assert scaled.exit_code == 0, scaled.output
    cpus = psutil.cpu_count()
    factor = min(1.0, cpus / 96, psutil.virtual_memory().total * 0.9 / (384 * GIB))
    seen_cpus, seen_memory = cgroup_limits(scaled.stdout)
    assert seen_cpus == pytest.approx(round(96 * factor, 2), abs=0.01)
    assert seen_memory == pytest.approx(384 * GIB * factor, rel=0.01)
    assert "cannot hold 1 × ml.m5.24xlarge" in scaled.stderr

    unlimited = job_payload(unique_name("unlimited"), entrypoint=entrypoint, inputs=[code])
    free = localproc(
        "run",
        str(localproc.write_payload(unlimited)),
        "--s3-endpoint-url",
        s3.endpoint_url,
        "--no-resource-limits",
    )
    assert free.exit_code == 0, free.output
    assert cgroup_limits(free.stdout)[1] > 64 * GIB  # no memory limit: the cgroup's maximum


HOLD = r"""
import time
block = bytearray(256 * 1024 * 1024)
for i in range(0, len(block), 4096):
    block[i] = 1  # touch every page so it is really used
time.sleep(4)  # several of the engine's samples (about one a second) see it
"""


@both_engines
def test_peak_memory_and_cpu_time_are_measured(localproc: Localproc, s3: Any) -> None:
    """Podman's compat stats stream samples every five seconds and has no high-water mark; the
    figures must still be there, and right, on both engines."""
    bucket = s3.make_bucket()
    name = unique_name("usage")
    entrypoint, code = script_input(s3, bucket, HOLD)
    payload = job_payload(name, entrypoint=entrypoint, inputs=[code])

    result = localproc(
        "run", str(localproc.write_payload(payload)), "--s3-endpoint-url", s3.endpoint_url
    )

    assert result.exit_code == 0, result.output
    usage = localproc.record(name)["Localproc"]["InstanceUsage"]["algo-1"]
    assert 256 * 2**20 <= usage["PeakMemoryBytes"] < 512 * 2**20, usage
    assert usage["CpuSeconds"] > 0, usage


HOG = r"""
import sys
hoard = []
while True:
    block = bytearray(64 * 1024 * 1024)
    for i in range(0, len(block), 4096):
        block[i] = 1  # touch every page so it is really used
    hoard.append(block)
    print('holding', len(hoard) * 64, 'MiB', flush=True)
"""


def test_memory_hog_is_reported_as_out_of_memory(localproc: Localproc, s3: Any) -> None:
    bucket = s3.make_bucket()
    name = unique_name("hog")
    entrypoint, code = script_input(s3, bucket, HOG)
    payload = job_payload(name, entrypoint=entrypoint, inputs=[code])

    result = localproc(
        "run", str(localproc.write_payload(payload)), "--s3-endpoint-url", s3.endpoint_url
    )

    assert result.exit_code == 1, result.output
    reason = localproc.record(name)["FailureReason"]
    assert reason.startswith("AlgorithmError: algo-1 ran out of memory")
    assert "memory limit of 4096 MiB (ml.t3.medium)" in reason


def test_inputs_larger_than_the_volume_fail_before_any_container(
    localproc: Localproc, docker_client: Any, tmp_path: Path
) -> None:
    root = tmp_path / "s3"
    data = root / "bucket" / "data"
    data.mkdir(parents=True)
    with (data / "big.bin").open("wb") as sparse:  # 2 GiB that take no disk space
        sparse.truncate(2 * GIB)
    name = unique_name("volume")
    payload = job_payload(
        name,
        entrypoint=["true"],
        inputs=[s3_input("data", "s3://bucket/data/", "/opt/ml/processing/data")],
    )
    payload["ProcessingResources"]["ClusterConfig"]["VolumeSizeInGB"] = 1
    since = time.time()

    result = localproc("run", str(localproc.write_payload(payload)), "--s3-root", str(root))

    assert result.exit_code == 1
    reason = localproc.record(name)["FailureReason"]
    assert reason == (
        "ClientError: The inputs of algo-1 (2.00 GiB) do not fit its VolumeSizeInGB of 1 GB "
        "(1.00 GiB)."
    )
    assert resources_created_since(docker_client, since, localproc.names) == []
    assert not (localproc.job_dir(name) / "staging").exists()


GATEWAY_PROBE = r"""
import json, socket, sys, time
port = int(sys.argv[1])
me = socket.gethostbyname(socket.gethostname())
gateway = me.rsplit('.', 1)[0] + '.1'  # the job network's bridge on the host
outcome, deadline = 'never tried', time.time() + 8
while time.time() < deadline:
    s = socket.socket(); s.settimeout(1)
    try:
        s.connect((gateway, port)); outcome = 'reached'; break
    except OSError as err:
        outcome = 'blocked: %s' % err; time.sleep(0.2)
    finally:
        s.close()
report = {'gateway': gateway, 'outcome': outcome}
open('/opt/ml/processing/out/probe.json', 'w').write(json.dumps(report))
"""


def test_isolated_containers_cannot_reach_the_host_through_their_own_bridge(
    localproc: Localproc, s3: Any, docker_client: Any
) -> None:
    """The one host address an isolated container has a route to is its own network's bridge;
    a host service listening there is shut off by the firewall rule (not merely unrouted)."""
    import os
    import subprocess
    import sys

    from localproc.runtime import firewall

    if not firewall.can_isolate_host():
        pytest.skip("needs root and iptables")
    with socket.socket() as probe_port:
        probe_port.bind(("127.0.0.1", 0))
        port = probe_port.getsockname()[1]
    bucket = s3.make_bucket()
    name = unique_name("gateway")
    entrypoint, code = script_input(s3, bucket, GATEWAY_PROBE)
    payload = job_payload(
        name, entrypoint=entrypoint, arguments=[str(port)], inputs=[code],
        outputs=[s3_output("out", f"s3://{bucket}/out", "/opt/ml/processing/out")],
    )  # fmt: skip
    payload["NetworkConfig"] = {"EnableNetworkIsolation": True}
    env = {**os.environ, "LOCALPROC_HOME": str(localproc.state_dir)}
    run = subprocess.Popen(
        [sys.executable, "-m", "localproc", "run", str(localproc.write_payload(payload)),
         "--s3-endpoint-url", s3.endpoint_url],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
    )  # fmt: skip
    server = socket.socket()
    try:
        networks: list[Any] = []
        deadline = time.monotonic() + 60
        while not networks and time.monotonic() < deadline and run.poll() is None:
            networks = docker_client.networks.list(names=[f"localproc-{name}"])
            time.sleep(0.05)
        assert networks, "the job's network never appeared"
        gateway = bridge_gateway(networks[0].attrs)
        # Only on the job's bridge, never on other interfaces. The engine may still be making
        # the network (a first one picks the subnet, the second has fixed addresses): the
        # address exists once the bridge does.
        deadline = time.monotonic() + 60
        while True:
            try:
                server.bind((gateway, port))
                break
            except OSError:
                if time.monotonic() > deadline or run.poll() is not None:
                    raise
                time.sleep(0.05)
        server.listen(4)
        _out, err = run.communicate(timeout=120)
    finally:
        run.kill()
        server.close()
    assert run.returncode == 0, err
    seen = json.loads(s3.client.get_object(Bucket=bucket, Key="out/probe.json")["Body"].read())
    assert seen["gateway"] == gateway
    assert seen["outcome"].startswith("blocked"), seen
