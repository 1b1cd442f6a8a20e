"""The seam to the container engine: what executing a JobPlan asks of an engine.

`execution/` drives a run through this interface only; it never learns where an input tree, a
pipe, the config files or an output folder live inside the engine. The local Docker engine
(`runtime.docker_run.DockerRun`) is the first implementation: everything is a host folder
bind-mounted into the containers, so placing and bringing back cost nothing.

An engine with no shared filesystem (a remote DOCKER_HOST, a Swarm node) fits the same methods,
with volumes and archives; `runtime.docker_remote.DockerArchiveRun` does it for a remote Docker
engine (where it departs from this sketch, its docstring says so):

- `create_network`: the same network call on the remote engine (an overlay network for Swarm).
- `input_folder`: a local scratch folder that staging fills; `place_inputs` then creates a
  volume per instance and input and copies the folder into it as a tar archive
  (`put_archive` through a short-lived helper container that mounts the volume), and removes
  the scratch copy. The instance mounts the volume at the input's LocalPath.
- `pipe`: a local FIFO that the feeder writes into, plus a thread that copies its reading end
  into the container's FIFO through the engine (an attached `exec` of `cat > FIFO` in the
  instance, or an attach to a small helper container sharing the volume).
- `place_config`: the plan's config files as a tar archive into a config volume.
- `output_folder` / `job_output_folder`: local folders; the instances write into volumes, and
  `bring_back` fetches each volume as an archive (`get_archive`) into those folders once the
  instance has ended (and, for Continuous outputs, periodically while it runs).
- `create_instances`, `start_instances`, `wait`, `stop`, `kill`, `follow_log`, `stats`: the
  same calls on the remote engine.
- `remove_all`: containers, networks and the run's volumes, by the run's label;
  `discard_inputs`: the local scratch copies, if any are left.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol, runtime_checkable


class EngineError(Exception):
    """The container engine refused or failed an operation on a started job."""


@dataclass(frozen=True)
class InstanceExit:
    exit_code: int  # -1 when the engine could not tell
    oom_killed: bool


@dataclass(frozen=True)
class UsageSample:
    """One stats sample: the memory high-water mark so far and the CPU time used so far, and
    the memory in use now (for the console's charts; None when the engine does not say)."""

    peak_memory_bytes: int | None
    cpu_seconds: float | None
    memory_bytes: int | None = None


class LogSinkLike(Protocol):
    def write(self, host: str, data: bytes | memoryview) -> None: ...
    def note(self, host: str, text: str) -> None: ...
    def end(self, host: str) -> None: ...


class LogFollower(Protocol):
    """An instance's log being copied into the sink while the instance runs."""

    def exited(self) -> None:
        """The instance's container has ended: read whatever the live stream missed."""

    def finish(self) -> None:
        """Return once every byte of the instance's log is in the sink (after `exited`)."""


class HostFolders(Protocol):
    """Where a run's local folders are (the job's folder: records.layout.JobFolder is one,
    passed in by execution/, so that runtime/ needs no record store)."""

    @property
    def staging(self) -> Path:
        """The staged inputs (`staging/algo-i/<InputName>/`)."""

    def config(self, host: str) -> Path:
        """The instance's config files."""

    def output(self, host: str) -> Path:
        """The instance's /opt/ml/output."""

    def outputs(self, host: str, output_name: str) -> Path:
        """An output's LocalPath of the instance."""


class Engine(Protocol):
    """Executes one JobPlan (given when the engine object is made). Methods that name a `host`
    act on that instance (algo-i); every method may raise EngineError."""

    def create_network(self) -> None:
        """The job's own network, when the plan asks for one; every instance resolves every
        other by its hostname for the whole job."""

    def input_folder(self, host: str, input_name: str) -> Path:
        """A local folder that staging fills with the instance's input tree."""

    def place_inputs(self, host: str) -> None:
        """Make the instance's staged input trees appear at their LocalPaths."""

    def pipe(self, host: str, input_name: str) -> Path:
        """A local FIFO whose bytes the instance reads from its Pipe input's FIFO."""

    def place_config(self, host: str) -> None:
        """Put the plan's config files where the instance sees them (/opt/ml/config)."""

    def output_folder(self, host: str, output_name: str) -> Path:
        """The local folder that holds (after `bring_back`) what the instance wrote there."""

    def job_output_folder(self, host: str) -> Path:
        """The local folder that holds (after `bring_back`) the instance's /opt/ml/output."""

    def create_instances(self, secrets: Mapping[str, str]) -> None:
        """Create every instance's container, with `secrets` (never planned) added to its
        environment."""

    def start_instances(self) -> None: ...

    def wait(self, host: str) -> InstanceExit:
        """Block until the instance's container has ended."""

    def stop(self, host: str, grace_seconds: float) -> None:
        """SIGTERM, SIGKILL after the grace period; returns once it has ended or is gone."""

    def kill(self, host: str) -> None: ...

    def follow_log(self, host: str, sink: LogSinkLike) -> LogFollower:
        """Start copying the instance's log into `sink` (from its start)."""

    def stats(self, host: str) -> Iterator[UsageSample]:
        """Samples until the instance has ended (about one a second, the first at once)."""

    def bring_back(self, host: str) -> None:
        """Make the instance's output folders and /opt/ml/output readable locally."""

    def remove_all(self) -> None:
        """Remove every engine object of the run, whatever its state."""

    def discard_inputs(self) -> None:
        """Remove the staged input trees (unless the user keeps them)."""


@runtime_checkable
class GangPlacement(Protocol):
    """An engine that places a job's instances over several machines (`--cluster swarm`): it
    is asked first, before anything of the run exists, and places all instances at once."""

    def place_instances(self, notify: Callable[[str], None], cancelled: Callable[[], bool]) -> bool:
        """Wait until every instance fits at once (saying so through `notify`), then place
        them; False when `cancelled` first (nothing was made)."""
