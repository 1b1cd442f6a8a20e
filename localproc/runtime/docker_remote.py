"""A Docker engine that shares no filesystem with this process (DOCKER_HOST=tcp://…, ssh://…, a
context pointing elsewhere) as an `Engine` (runtime/protocol.py). Everything goes through the
Engine API:

- Staging, config files, empty output folders and Pipe FIFOs are made locally exactly as for the
  local engine (DockerRun does it); then each instance mount becomes a volume of the engine
  (labelled with the run, so that `remove_all` and `gc` find it), filled with one `put_archive`
  of the local folders into a *loader* container that mounts the instance's volumes and is never
  started (so the image needs no tool for it), then removed. The instance mounts the volumes
  where the plan says (config read-only), hiding the image's folders as bind mounts do.
- Pipe inputs: the local FIFO's bytes are streamed into the volume's FIFO (runtime/remote_pipe).
- Outputs: `get_archive` of each output folder and /opt/ml/output once the instance has ended,
  mirrored into the local folders (runtime/archive: the archive is read as hostile). Continuous
  outputs are mirrored every CONTINUOUS_INTERVAL_SECONDS while the instance runs, and the
  Continuous uploader uploads from the local folder as it does for the local engine.

Where this departs from the sketch in runtime/protocol.py: the volumes are made and filled when
the instances are created (one archive per instance, all its mounts at once, which is also when
the Pipe FIFOs exist), not input by input in `place_inputs`; the local staged copy is removed at
cleanup by `discard_inputs`, as for the local engine (kept with --keep-staging).
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING

from localproc.errors import client_error
from localproc.plan import InstancePlan, JobPlan
from localproc.runtime.archive import chunk_reader, folder_archive, mirror_archive
from localproc.runtime.container_options import Mount, docker_mount
from localproc.runtime.docker_run import DockerRun
from localproc.runtime.engine import DockerEngine, EngineError, engine_errors
from localproc.runtime.protocol import HostFolders
from localproc.runtime.remote_pipe import PipePump

if TYPE_CHECKING:
    from docker.models.containers import Container

# How often a running instance's Continuous outputs are brought back (one get_archive each).
CONTINUOUS_INTERVAL_SECONDS = 1.0
JOB_OUTPUT_DIR = "/opt/ml/output"


class DockerArchiveRun(DockerRun):
    """Executes `plan` on an engine reached only through its API."""

    def __init__(self, engine: DockerEngine, plan: JobPlan, folders: HostFolders) -> None:
        super().__init__(engine, plan, folders)
        self._pumps: list[PipePump] = []
        self._mirrors: dict[str, list[_ContinuousMirror]] = {}

    # -- placing: the local folders DockerRun made, moved into volumes -------------------------
    def _mounts(self, instance: InstancePlan) -> list[Mount]:
        container = instance.container
        assert container is not None
        client = self._engine.client
        labels = dict(self._plan.labels)
        names = [f"{container.name}-v{index}" for index in range(len(container.mounts))]
        binds = [self._bind(instance.host, m) for m in container.mounts]
        with engine_errors(f"creating the volumes of {container.name}"):
            for name in names:
                client.volumes.create(name, labels=labels)
        loading = [Mount(n, m.container_path, volume=True)
                   for n, m in zip(names, binds, strict=True)]  # fmt: skip
        pipes = [item.name for item in instance.inputs if item.mode == "Pipe"]
        self._fill(container.image, f"{container.name}-loader", loading, binds, labels, pipes)
        return [Mount(n, m.container_path, m.read_only, volume=True)
                for n, m in zip(names, binds, strict=True)]  # fmt: skip

    def _fill(
        self, image: str, name: str, volumes: list[Mount], binds: list[Mount],
        labels: Mapping[str, str], pipes: list[str],
    ) -> None:  # fmt: skip
        """One archive of every local folder into a never-started container mounting the
        volumes read-write (the config volume is read-only only for the instance). With Pipe
        inputs, the image must have what streams into their FIFOs: looked up in the same
        container, before any instance starts."""
        client = self._engine.client
        with engine_errors(f"copying the inputs and config of {name} to the engine"):
            loader = client.containers.create(
                image, name=name, entrypoint=["localproc-loader-never-started"], command=[],
                mounts=[docker_mount(v) for v in volumes], labels=dict(labels),
                network_disabled=True,
            )  # fmt: skip
            try:
                if pipes and not _has_pipe_tools(loader):
                    raise client_error(
                        f"Pipe input(s) {', '.join(pipes)} on a remote Docker engine are "
                        f"streamed with `sh -c 'exec cat > FIFO'` inside the instance, and image "
                        f"{image} has no /bin/sh or no cat: use File mode, an image with a "
                        "shell, or an engine on this machine"
                    )
                folders = [(Path(b.host_path), b.container_path) for b in binds
                           if Path(b.host_path).is_dir()]  # fmt: skip
                if not client.api.put_archive(loader.id, "/", folder_archive(folders)):
                    raise EngineError(f"Docker engine: the archive for {name} was refused")
            finally:
                with contextlib.suppress(Exception):
                    loader.remove(force=True)

    # -- running -------------------------------------------------------------------------------
    def start_instances(self) -> None:
        super().start_instances()
        client = self._engine.client
        for instance in self._plan.instances:
            container = self._containers[instance.host]
            for item in instance.inputs:
                if item.mode == "Pipe" and item.pipe_path:
                    fifo = self.input_folder(instance.host, item.name) / item.fifo_name
                    pump = PipePump(client, container.id, fifo, item.pipe_path)
                    pump.start()
                    self._pumps.append(pump)
            mirrors = [
                _ContinuousMirror(container, upload.local_path,
                                  self.output_folder(instance.host, upload.output_name))
                for upload in instance.uploads if upload.mode == "Continuous"
            ]  # fmt: skip
            for mirror in mirrors:
                mirror.start()
            self._mirrors[instance.host] = mirrors

    # -- after the run -------------------------------------------------------------------------
    def bring_back(self, host: str) -> None:
        """Every output folder and /opt/ml/output of the ended instance, mirrored locally."""
        for mirror in self._mirrors.pop(host, []):
            mirror.stop()
        container = self._containers.get(host)
        if container is None:
            return  # never created: nothing to bring back
        instance = self._plan.instance(host)
        folders = [(JOB_OUTPUT_DIR, self.job_output_folder(host))] + [
            (u.local_path, self.output_folder(host, u.output_name)) for u in instance.uploads
        ]
        for container_path, local in folders:
            with engine_errors(f"bringing {container_path} of {host} back"):
                _mirror_once(container, container_path, local, final=True)

    def remove_all(self) -> None:
        for mirrors in self._mirrors.values():
            for mirror in mirrors:
                mirror.stop()
        for pump in self._pumps:
            pump.stop(timeout=1.0)
        super().remove_all()


def _has_pipe_tools(loader: Container) -> bool:
    import docker.errors

    def present(path: str) -> bool:
        try:
            loader.get_archive(path)[0].close()
        except docker.errors.NotFound:
            return False
        return True

    return present("/bin/sh") and any(present(p) for p in ("/bin/cat", "/usr/bin/cat"))


def _mirror_once(container: Container, container_path: str, local: Path, final: bool) -> None:
    chunks, _stat = container.get_archive(container_path)
    mirror_archive(chunk_reader(chunks), local, always_write=final)


class _ContinuousMirror:
    """Brings a running instance's Continuous output folder back every interval."""

    def __init__(self, container: Container, container_path: str, local: Path) -> None:
        self._container = container
        self._path = container_path
        self._local = local
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="continuous-mirror", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        while not self._stop.wait(CONTINUOUS_INTERVAL_SECONDS):
            # The instance may have ended or be going: the final pass (bring_back) counts.
            # Any error (the container gone, a connection dropped) is retried at the next tick.
            with contextlib.suppress(Exception):
                _mirror_once(self._container, self._path, self._local, final=False)
