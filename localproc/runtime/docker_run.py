"""The local Docker engine as an `Engine` (runtime/protocol.py): one run's containers, with every
input tree, pipe, config folder and output folder a host folder in the job's folder,
bind-mounted into the containers. Placing inputs and bringing outputs back cost nothing here."""

from __future__ import annotations

import contextlib
import math
import os
import stat
from collections.abc import Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING

from localproc.files import remove_tree
from localproc.plan import InstancePlan, JobPlan, MountPlan
from localproc.runtime import podman
from localproc.runtime.docker_logs import DockerLogFollower
from localproc.runtime.engine import DockerEngine, Mount, engine_errors
from localproc.runtime.protocol import (
    HostFolders,
    InstanceExit,
    LogFollower,
    LogSinkLike,
    UsageSample,
)

if TYPE_CHECKING:
    from docker.models.containers import Container


class DockerRun:
    """Executes `plan` on a local Docker engine; `folders` are the job's folders (its config,
    output and outputs per instance, and staging/, which holds algo-i/<InputName>)."""

    def __init__(self, engine: DockerEngine, plan: JobPlan, folders: HostFolders) -> None:
        self._engine = engine
        self._plan = plan
        self._folders = folders
        self._peers: dict[str, str] = {}  # algo-i → fixed address on the job's own network
        self._containers: dict[str, Container] = {}

    # -- placing -------------------------------------------------------------------------------
    def create_network(self) -> None:
        plan = self._plan
        if plan.network.own:  # first: the containers need their addresses
            self._peers = self._engine.create_network(
                plan.network.name, plan.run_id, plan.labels, list(plan.hosts),
                plan.network.isolated,
            )  # fmt: skip

    def join_network(self, peers: Mapping[str, str]) -> None:
        """The job's network was made elsewhere (a Swarm overlay, by the manager): join it
        with these fixed addresses (algo-i → address) instead of making one."""
        self._peers = dict(peers)

    def input_folder(self, host: str, input_name: str) -> Path:
        return self._folders.staging / host / input_name

    def place_inputs(self, host: str) -> None:
        """Nothing to do: the staged folders are bind-mounted."""

    def pipe(self, host: str, input_name: str) -> Path:
        item = next(i for i in self._plan.instance(host).inputs if i.name == input_name)
        folder = _writable(self.input_folder(host, input_name))
        fifo = folder / item.fifo_name
        make_fifo(fifo)
        return fifo

    def place_config(self, host: str) -> None:
        """The config files, and the empty output folders (writable by any user)."""
        instance = self._plan.instance(host)
        config_dir = self._folders.config(host)
        config_dir.mkdir(parents=True, exist_ok=True)
        for name, text in instance.config_files.items():
            (config_dir / name).write_text(text, encoding="utf-8")
        _writable(self.job_output_folder(host))
        for upload in instance.uploads:
            _writable(self.output_folder(host, upload.output_name))

    def output_folder(self, host: str, output_name: str) -> Path:
        return self._folders.outputs(host, output_name)

    def job_output_folder(self, host: str) -> Path:
        return self._folders.output(host)

    # -- containers ----------------------------------------------------------------------------
    def create_instances(self, secrets: Mapping[str, str]) -> None:
        """Every container concurrently; the engine's error if one cannot be made (the caller
        removes what was made)."""
        instances = self._plan.instances

        def create(instance: InstancePlan) -> Container:
            assert instance.container is not None
            mounts = self._mounts(instance)
            return self._engine.create_container(instance.container, mounts, secrets, self._peers)

        with ThreadPoolExecutor(max_workers=max(1, len(instances))) as pool:
            created = list(pool.map(create, instances))
        self._containers = {i.host: c for i, c in zip(instances, created, strict=True)}

    def _mounts(self, instance: InstancePlan) -> list[Mount]:
        assert instance.container is not None
        return [self._bind(instance.host, m) for m in instance.container.mounts]

    def _bind(self, host: str, mount: MountPlan) -> Mount:
        folders = {
            "config": lambda: self._folders.config(host),
            "job-output": lambda: self.job_output_folder(host),
            "input": lambda: self.input_folder(host, str(mount.name)),
            "pipe": lambda: self.input_folder(host, str(mount.name)),
            "output": lambda: self.output_folder(host, str(mount.name)),
        }
        folder = folders[mount.holds]()
        return Mount(str(folder), mount.container_path, read_only=mount.read_only)

    def start_instances(self) -> None:
        containers = list(self._containers.values())
        with (
            engine_errors("starting containers"),
            ThreadPoolExecutor(max_workers=max(1, len(containers))) as pool,
        ):
            list(pool.map(lambda c: c.start(), containers))

    def wait(self, host: str) -> InstanceExit:
        import docker.errors

        container = self._containers[host]
        try:
            exit_code = int(container.wait()["StatusCode"])
            container.reload()
            return InstanceExit(exit_code, bool(container.attrs.get("State", {}).get("OOMKilled")))
        except docker.errors.DockerException:
            return InstanceExit(-1, False)

    def stop(self, host: str, grace_seconds: float) -> None:
        import docker.errors

        # An error here means the container is already gone: nothing left to stop.
        with contextlib.suppress(docker.errors.DockerException):
            # The engine counts the grace period in whole seconds: never less than asked.
            self._containers[host].stop(timeout=math.ceil(grace_seconds))

    def kill(self, host: str) -> None:
        import docker.errors

        with contextlib.suppress(docker.errors.DockerException):
            self._containers[host].kill()

    def follow_log(self, host: str, sink: LogSinkLike) -> LogFollower:
        return DockerLogFollower(host, self._containers[host], sink)

    def stats(self, host: str) -> Iterator[UsageSample]:
        """The engine's stats stream; the cgroup's own high-water mark where it reports one."""
        import docker.errors

        if self._engine.is_podman:
            yield from podman.stats(self._engine.client, self._containers[host].id)
            return
        try:
            for sample in self._containers[host].stats(stream=True, decode=True):
                memory = sample.get("memory_stats") or {}
                peak = memory.get("max_usage") or memory.get("usage")
                total = (sample.get("cpu_stats") or {}).get("cpu_usage", {}).get("total_usage")
                current = memory.get("usage")
                yield UsageSample(
                    int(peak) if peak else None,
                    total / 1e9 if total else None,
                    int(current) if current else None,
                )
        except docker.errors.DockerException:
            return  # the container is gone: the samples taken so far stand

    # -- after the run -------------------------------------------------------------------------
    def bring_back(self, host: str) -> None:
        """Nothing to do: the output folders are bind-mounted."""

    def remove_all(self) -> None:
        self._engine.remove_run_resources(self._plan.run_id)

    def discard_inputs(self) -> None:
        remove_tree(self._folders.staging)


def _writable(path: Path) -> Path:
    # Containers may run as any user; the folders they write into must let them.
    path.mkdir(parents=True, exist_ok=True)
    os.chmod(path, 0o777)
    return path


def make_fifo(path: Path) -> None:
    """Create the named pipe at `path` (parents too), readable and writable by everyone.

    Containers may run as any user, so the mode is set to 0o666 explicitly: mkfifo's mode is
    reduced by the umask. An existing FIFO is reused; any other existing file is an error.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        os.mkfifo(path, 0o666)
    except FileExistsError:
        if not stat.S_ISFIFO(os.lstat(path).st_mode):
            raise
    os.chmod(path, 0o666)
