"""Docker engines on this machine that share nothing with the client but a network: "nodes".

Each node is a `dockerd` of its own in a network namespace of its own (a veth pair whose host end
sits on a Linux bridge this module creates) and in a mount namespace of its own in which the
folders a client uses (/tmp, /root, /home, /work, the host engine's /var/lib/docker) are empty
tmpfs mounts: a bind mount of a client path fails on a node, so a test that passes against a node
proves that nothing relies on a shared filesystem. Clients reach a node only over TCP,
`tcp://ADDRESS:2375` (no TLS: the bridge is private to this machine).

    with node_network("lpbr-x", "10.231.0.0/24") as network:
        nodes = [start_node(network, i, f"lpx{i}") for i in range(3)]   # stopped on exit
        load_image(nodes[0], EXAMPLE_IMAGE)

`engine_nodes(count, ...)` does both in one context manager. Everything made is removed on exit,
also when the body (or a node's start) fails: dockerd by its PID, its data and exec roots, the
network namespace and veth, the bridge and its FORWARD rule. Needs root, iproute2, iptables and
util-linux's nsenter/unshare (scripts/engine-node-tools.sh installs them).

Pytest fixtures: `remote_engine` (session: one node with the example image loaded) and
`remote_docker` (a docker SDK client of it).

Recipe notes (from issue 14): `nsenter --net=/run/netns/NODE`, not `ip netns exec`, which
remounts /sys so that dockerd fails with "Devices cgroup isn't mounted"; the host's FORWARD chain
drops traffic between veths on one bridge until it is accepted explicitly (node ↔ node only; the
host ↔ node traffic is the host's own INPUT/OUTPUT).
"""

from __future__ import annotations

import contextlib
import ipaddress
import os
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

NODE_PORT = 2375
NODES_ROOT = Path("/var/lib/localproc-engine-nodes")  # data roots: not under a hidden folder
# The folders a client's files live in, each an empty tmpfs inside a node; and /etc/docker, so a
# node reads no daemon.json of the host's and makes its own engine key (its own engine ID).
HIDDEN_FOLDERS = ("/tmp", "/root", "/home", "/work", "/var/lib/docker", "/etc/docker")
START_SECONDS = 60.0
STOP_SECONDS = 20.0

# Where free_subnet looks for a /24 that no route of this machine overlaps: 10.X.0.0/24.
SUBNET_CANDIDATES = range(231, 255)


def session_names(stem: str) -> tuple[str, str]:
    """A node-name prefix and a bridge name of this process's own (at most 8 and 12 characters):
    test sessions and benchmarks running at the same time on one machine (several worktrees)
    must never take each other's nodes or bridges."""
    suffix = f"{os.getpid() % 100000}"
    return f"{stem[:3]}{suffix}", f"lpbr{stem[:3]}{suffix}"


def free_subnet() -> str:
    """A private /24 that no route here overlaps (another session's nodes, Docker's networks)."""
    routes = []
    for line in _run("ip", "-4", "-o", "route", "show").stdout.splitlines():
        with contextlib.suppress(ValueError, IndexError):
            if line.split()[0] != "default":
                routes.append(ipaddress.ip_network(line.split()[0], strict=False))
    for second in SUBNET_CANDIDATES:
        candidate = ipaddress.ip_network(f"10.{second}.0.0/24")
        if not any(candidate.overlaps(route) for route in routes):
            return str(candidate)
    raise NodeError(f"no free 10.X.0.0/24 for engine nodes (X in {SUBNET_CANDIDATES})")


class NodeError(RuntimeError):
    """A node or its network could not be made."""


def _run(*command: str, check: bool = True, timeout: float = 60) -> subprocess.CompletedProcess:
    done = subprocess.run(command, capture_output=True, text=True, timeout=timeout)
    if check and done.returncode != 0:
        raise NodeError(f"{' '.join(command)} failed: {done.stderr.strip() or done.stdout}")
    return done


@dataclass
class NodeNetwork:
    """A Linux bridge with a private subnet: the host holds the first address, node i the
    (i + 2)-th."""

    bridge: str
    subnet: ipaddress.IPv4Network
    forward_rule: tuple[str, ...] = ()

    @property
    def host_address(self) -> str:
        return str(self.subnet.network_address + 1)

    def node_address(self, index: int) -> str:
        return str(self.subnet.network_address + 2 + index)


@dataclass
class EngineNode:
    name: str  # also its network namespace's name
    index: int
    address: str
    root: Path  # data root and logs
    exec_root: Path
    host_address: str = ""  # this machine's address on the node's bridge
    process: subprocess.Popen | None = None
    helpers: list[subprocess.Popen] = field(default_factory=list)  # e.g. its sshd
    log_path: Path = field(init=False)

    def __post_init__(self) -> None:
        self.log_path = self.root / "dockerd.log"

    @property
    def docker_host(self) -> str:
        return f"tcp://{self.address}:{NODE_PORT}"

    @property
    def env(self) -> dict[str, str]:
        """The environment of a client that talks to this node (docker CLI, localproc)."""
        return {"DOCKER_HOST": self.docker_host}

    def client(self) -> Any:
        import docker

        return docker.DockerClient(base_url=self.docker_host, version="auto", timeout=120)

    def docker(self, *args: str, timeout: float = 120) -> subprocess.CompletedProcess:
        """The docker CLI against this node."""
        return _run("docker", "-H", self.docker_host, *args, timeout=timeout)


# -- the bridge -------------------------------------------------------------------------------
def create_network(bridge: str, subnet: str) -> NodeNetwork:
    """The bridge (up, with the host's address) and the FORWARD rule that lets nodes talk to each
    other. A bridge of that name left by a crashed run is removed first."""
    if len(bridge) > 15:
        raise NodeError(f"bridge name {bridge!r} is longer than 15 characters")
    network = NodeNetwork(bridge, ipaddress.ip_network(subnet))
    _run("ip", "link", "del", bridge, check=False)
    _refuse_overlap(network.subnet)
    _run("ip", "link", "add", bridge, "type", "bridge")
    try:
        prefix = network.subnet.prefixlen
        _run("ip", "addr", "add", f"{network.host_address}/{prefix}", "dev", bridge)
        _run("ip", "link", "set", bridge, "up")
        rule = ("FORWARD", "-i", bridge, "-o", bridge, "-j", "ACCEPT")
        _run("iptables", "-I", *rule)
        network.forward_rule = rule
    except BaseException:
        remove_network(network)
        raise
    return network


def _refuse_overlap(subnet: ipaddress.IPv4Network) -> None:
    """Another bridge with an overlapping subnet (another test run's nodes) would take the
    traffic meant for these nodes: a node's address would answer from someone else's dockerd,
    whose containers teardown would then remove. Refused instead."""
    for line in _run("ip", "-4", "-o", "route", "show").stdout.splitlines():
        fields = line.split()
        if not fields or fields[0] == "default":
            continue
        with contextlib.suppress(ValueError):
            if ipaddress.ip_network(fields[0], strict=False).overlaps(subnet):
                device = fields[fields.index("dev") + 1] if "dev" in fields else "?"
                raise NodeError(f"subnet {subnet} overlaps {fields[0]} on {device}: choose another")


def remove_network(network: NodeNetwork) -> None:
    if network.forward_rule:
        _run("iptables", "-D", *network.forward_rule, check=False)
        network.forward_rule = ()
    _run("ip", "link", "del", network.bridge, check=False)


@contextlib.contextmanager
def node_network(bridge: str, subnet: str) -> Iterator[NodeNetwork]:
    network = create_network(bridge, subnet)
    try:
        yield network
    finally:
        remove_network(network)


# -- nodes ------------------------------------------------------------------------------------
def start_node(network: NodeNetwork, index: int, name: str) -> EngineNode:
    """A dockerd in network namespace `name`, answering on tcp://ADDRESS:2375 once this returns.
    On failure nothing of it is left (its log is in the error)."""
    if len(name) > 12:  # "v-" + name is the host end of the veth: 15 characters at most
        raise NodeError(f"node name {name!r} is longer than 12 characters")
    node = EngineNode(
        name=name,
        index=index,
        address=network.node_address(index),
        root=NODES_ROOT / name,
        exec_root=Path("/run") / f"lpn-{name}",
        host_address=network.host_address,
    )
    _remove_node_files(node)  # a crashed earlier run's
    _run("ip", "netns", "del", name, check=False)
    try:
        _plumb(network, node)
        _launch(node)
        _wait_until_up(node)
    except BaseException as err:
        log = node.log_path.read_text(errors="replace")[-3000:] if node.log_path.exists() else ""
        stop_node(node)
        if isinstance(err, NodeError):
            raise NodeError(f"{err}\n--- dockerd log of {name} ---\n{log}") from err
        raise
    return node


def _plumb(network: NodeNetwork, node: EngineNode) -> None:
    outside, inside = f"v-{node.name}", f"i-{node.name}"
    netns = ("ip", "-n", node.name)
    _run("ip", "netns", "add", node.name)
    _run("ip", "link", "add", outside, "type", "veth", "peer", "name", inside)
    _run("ip", "link", "set", outside, "master", network.bridge, "up")
    _run("ip", "link", "set", inside, "netns", node.name)
    _run(*netns, "link", "set", inside, "name", "eth0")
    _run(*netns, "addr", "add", f"{node.address}/{network.subnet.prefixlen}", "dev", "eth0")
    _run(*netns, "link", "set", "eth0", "up")
    _run(*netns, "link", "set", "lo", "up")
    _run(*netns, "route", "add", "default", "via", network.host_address)


def _launch(node: EngineNode) -> None:
    node.root.mkdir(parents=True, exist_ok=True)
    node.exec_root.mkdir(parents=True, exist_ok=True)
    # Distinct container subnets per node: their own bridge (--bip) and the pool their networks
    # come from, apart from the host engine's (172.17/16 and up) and from the nodes' bridge.
    dockerd = [
        "dockerd",
        f"--data-root={node.root / 'data'}",
        f"--exec-root={node.exec_root}",
        f"--pidfile={node.exec_root / 'docker.pid'}",
        f"--host=unix://{node.exec_root / 'docker.sock'}",
        f"--host=tcp://{node.address}:{NODE_PORT}",
        f"--bip=10.{200 + node.index}.0.1/24",
        f"--default-address-pool=base=10.{200 + node.index}.128.0/17,size=24",
        "--userland-proxy=false",
        "--tls=false",
    ]
    hide = " && ".join(f"mount -t tmpfs -o mode=1777 lpnode-hidden {f}" for f in HIDDEN_FOLDERS
                       if os.path.isdir(f) or f == "/etc/docker")  # fmt: skip
    script = f'mkdir -p /etc/docker && {hide} && exec "$@"'
    command = [
        "nsenter", f"--net=/run/netns/{node.name}",
        "unshare", "--mount", "--propagation", "private",
        "sh", "-c", script, "engine-node", *dockerd,
    ]  # fmt: skip
    with node.log_path.open("wb") as log:
        # Its own session: the node's processes get no terminal signals, and the whole group can
        # be killed by its id if dockerd does not stop.
        node.process = subprocess.Popen(
            command, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
            start_new_session=True, cwd="/",
        )  # fmt: skip


def _wait_until_up(node: EngineNode) -> None:
    assert node.process is not None
    deadline = time.monotonic() + START_SECONDS
    while time.monotonic() < deadline:
        if node.process.poll() is not None:
            raise NodeError(f"dockerd of node {node.name} exited ({node.process.returncode})")
        with (
            contextlib.suppress(OSError),
            socket.create_connection((node.address, NODE_PORT), timeout=1) as conn,
        ):
            conn.sendall(b"GET /_ping HTTP/1.0\r\n\r\n")
            if b"OK" in conn.recv(4096):
                return
        time.sleep(0.3)
    raise NodeError(f"dockerd of node {node.name} did not answer within {START_SECONDS} s")


def stop_node(node: EngineNode) -> None:
    """Remove the node's containers, stop its dockerd (by PID; its process group after the grace
    period), and remove its namespace, veth and folders. Safe to call twice."""
    for helper in node.helpers:
        helper.terminate()
        with contextlib.suppress(subprocess.TimeoutExpired):
            helper.wait(timeout=STOP_SECONDS)
        if helper.poll() is None:
            helper.kill()
    node.helpers.clear()
    process = node.process
    if process is not None and process.poll() is None:
        with contextlib.suppress(NodeError, subprocess.TimeoutExpired):
            ids = node.docker("ps", "-aq", timeout=30).stdout.split()
            if ids:
                node.docker("rm", "-f", *ids, timeout=60)
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=STOP_SECONDS)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=STOP_SECONDS)
    if process is not None:
        # containerd and shims that dockerd started are in its process group (its own session)
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(process.pid, signal.SIGKILL)
    node.process = None
    _run("ip", "netns", "del", node.name, check=False)  # its veth goes with it
    _run("ip", "link", "del", f"v-{node.name}", check=False)
    _remove_node_files(node)


def _remove_node_files(node: EngineNode) -> None:
    # The node's mounts lived in its own mount namespace, gone with its processes; anything still
    # mounted under the root (a crash mid-start) is unmounted first.
    for root in (node.root, node.exec_root):
        if not root.exists():
            continue
        mounted = [
            line.split()[1] for line in Path("/proc/self/mounts").read_text().splitlines()
            if line.split()[1].startswith(f"{root}/")
        ]  # fmt: skip
        for target in sorted(mounted, reverse=True):
            _run("umount", "-l", target, check=False)
        shutil.rmtree(root, ignore_errors=True)


@dataclass
class SshAccess:
    """An sshd on a node (in its network and mount namespaces), answering for root with a key of
    its own; `env` points a client at the node over ssh:// (PATH holds an `ssh` that uses the
    key and trusts the node's host key)."""

    docker_host: str
    env: dict[str, str]
    process: subprocess.Popen


def start_sshd(node: EngineNode, client_bin: Path) -> SshAccess:
    """`docker system dial-stdio` over ssh reaches the node's engine: the sessions get
    DOCKER_HOST set to the node's socket. Stopped by `stop_sshd` (stop_node does it too)."""
    assert node.process is not None
    folder = node.root / "ssh"
    folder.mkdir(parents=True, exist_ok=True)
    Path("/run/sshd").mkdir(exist_ok=True)  # sshd's privilege separation folder
    for key in ("id", "host"):
        (folder / key).unlink(missing_ok=True)
        _run("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(folder / key))
    shutil.copy(folder / "id.pub", folder / "authorized_keys")
    (folder / "sshd_config").write_text(
        f"ListenAddress {node.address}\nPort 22\nHostKey {folder / 'host'}\n"
        f"AuthorizedKeysFile {folder / 'authorized_keys'}\nPermitRootLogin prohibit-password\n"
        "PasswordAuthentication no\nUsePAM no\nStrictModes no\n"
        f"PidFile {folder / 'sshd.pid'}\n"
        f"SetEnv DOCKER_HOST=unix://{node.exec_root / 'docker.sock'}\n"
    )
    log = (folder / "sshd.log").open("wb")
    process = subprocess.Popen(
        ["nsenter", f"--target={node.process.pid}", "--mount", "--net",
         "/usr/sbin/sshd", "-D", "-e", "-f", str(folder / "sshd_config")],
        stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
    )  # fmt: skip
    log.close()
    node.helpers.append(process)
    client_bin.mkdir(parents=True, exist_ok=True)
    wrapper = client_bin / "ssh"
    wrapper.write_text(
        f"#!/bin/sh\nexec {shutil.which('ssh')} -i {folder / 'id'} -o StrictHostKeyChecking=no "
        '-o UserKnownHostsFile=/dev/null -o LogLevel=ERROR "$@"\n'
    )
    wrapper.chmod(0o755)
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError), socket.create_connection((node.address, 22), 1):
            break
        time.sleep(0.2)
    env = {"DOCKER_HOST": f"ssh://root@{node.address}",
           "PATH": f"{client_bin}:{os.environ.get('PATH', '')}"}  # fmt: skip
    return SshAccess(env["DOCKER_HOST"], env, process)


def load_image(node: EngineNode, image: str, source_host: str | None = None) -> None:
    """`docker save IMAGE | docker -H NODE load`, from the engine at `source_host` (default: this
    machine's engine)."""
    if _has(node, image):
        return
    source = ["docker"] + (["-H", source_host] if source_host else [])
    save = subprocess.Popen([*source, "save", image], stdout=subprocess.PIPE)
    try:
        load = subprocess.run(
            ["docker", "-H", node.docker_host, "load", "-q"],
            stdin=save.stdout, capture_output=True, text=True, timeout=300,
        )  # fmt: skip
    finally:
        assert save.stdout is not None
        save.stdout.close()
        save.wait(timeout=60)
    if save.returncode != 0 or load.returncode != 0:
        raise NodeError(f"loading {image} into node {node.name} failed: {load.stderr.strip()}")


def _has(node: EngineNode, image: str) -> bool:
    return _run("docker", "-H", node.docker_host, "image", "inspect", image,
                check=False, timeout=30).returncode == 0  # fmt: skip


@contextlib.contextmanager
def engine_nodes(
    count: int, prefix: str, bridge: str, subnet: str, images: tuple[str, ...] = ()
) -> Iterator[list[EngineNode]]:
    """`count` nodes named PREFIX0 … on one new bridge, each with `images` loaded; all removed on
    exit, whatever happened."""
    with node_network(bridge, subnet) as network:
        nodes: list[EngineNode] = []
        try:
            for index in range(count):
                nodes.append(start_node(network, index, f"{prefix}{index}"))
            for node in nodes:
                for image in images:
                    load_image(node, image)
            yield nodes
        finally:
            for node in reversed(nodes):
                stop_node(node)


def node_leftovers(
    node: EngineNode, names: Iterable[str] | None = None, label: str = "localproc.job"
) -> dict[str, list[str]]:
    """The node's containers, networks and volumes that carry `label` (of the jobs `names` only,
    when given): what finished jobs must not leave behind. Empty lists when nothing is left."""
    selectors = [{"label": label}] if names is None else [{"label": f"{label}={n}"} for n in names]
    client = node.client()
    found: dict[str, list[str]] = {"containers": [], "networks": [], "volumes": []}
    try:
        for selector in selectors:
            found["containers"] += [
                c.name for c in client.containers.list(all=True, filters=selector)
            ]
            found["networks"] += [n.name for n in client.networks.list(filters=selector)]
            found["volumes"] += [v.name for v in client.volumes.list(filters=selector)]
    finally:
        client.close()
    return found


def nothing_left(found: dict[str, list[str]]) -> bool:
    return not any(found.values())


def nodes_unavailable() -> str | None:
    """Why nodes cannot be made here (None when they can)."""
    if os.geteuid() != 0:
        return "engine nodes need root"
    missing = [t for t in ("ip", "iptables", "nsenter", "unshare", "dockerd", "docker")
               if shutil.which(t) is None]  # fmt: skip
    if missing:
        return f"engine nodes need {', '.join(missing)} (scripts/engine-node-tools.sh)"
    return None


# -- pytest fixtures --------------------------------------------------------------------------
@pytest.fixture(scope="session")
def remote_engine(docker_client: Any) -> Iterator[EngineNode]:
    """One node for the whole session, reached over TCP only, with the example image loaded."""
    from docker_engine import EXAMPLE_IMAGE

    reason = nodes_unavailable()
    if reason:
        pytest.fail(reason)
    prefix, bridge = session_names("remote")
    with engine_nodes(1, prefix, bridge, free_subnet(), images=(EXAMPLE_IMAGE,)) as nodes:
        yield nodes[0]


@pytest.fixture(scope="session")
def remote_ssh(remote_engine: EngineNode, tmp_path_factory: pytest.TempPathFactory) -> SshAccess:
    """The session node over ssh:// as well (an sshd in its namespaces, stopped with it)."""
    if shutil.which("sshd") is None and not Path("/usr/sbin/sshd").exists():
        pytest.fail("the ssh:// tests need openssh-server (scripts/engine-node-tools.sh)")
    return start_sshd(remote_engine, tmp_path_factory.mktemp("ssh-bin"))


@pytest.fixture(scope="session")
def remote_docker(remote_engine: EngineNode) -> Iterator[Any]:
    client = remote_engine.client()
    yield client
    client.close()
