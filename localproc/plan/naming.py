"""Names, labels and hardening every engine object of a run gets: decided when the plan is made,
so the plan names the containers and the network `run` creates."""

from __future__ import annotations

import secrets

JOB_LABEL = "localproc.job"
RUNNER_LABEL = "localproc.execution.runner"  # pid/start-time/host of the process that runs the job
RUN_LABEL = "localproc.run"  # one run's id: its objects are removed by this label only

DEFAULT_NETWORK = "bridge"  # Docker's own: no network to create or remove

# Hardening (README, "Container hardening"): Docker's default set minus what no processing job
# needs. Kept: CHOWN, DAC_OVERRIDE, FOWNER, FSETID, KILL, SETGID, SETUID.
DROPPED_CAPABILITIES = (
    "MKNOD", "NET_RAW", "SYS_CHROOT", "AUDIT_WRITE", "SETPCAP", "SETFCAP", "NET_BIND_SERVICE",
)  # fmt: skip
# No privilege gained through setuid/setgid files or file capabilities; the engine's default
# seccomp profile applies (nothing turns it off).
SECURITY_OPTIONS = ("no-new-privileges",)
MIN_PIDS = 4096
PIDS_PER_VCPU = 256

CONFIG_DIR = "/opt/ml/config"
JOB_OUTPUT_DIR = "/opt/ml/output"


def pids_limit(vcpus: int) -> int:
    """Processes and threads one container may have: a fork bomb stops there, while a JVM or a
    thread pool per core (Spark, Dask, PyTorch data loaders) stays far below it."""
    return max(MIN_PIDS, PIDS_PER_VCPU * vcpus)


def new_run_id() -> str:
    """A run's own id (12 hex digits): in the names and labels of every engine object it makes,
    so no other run, whatever its state dir or job name, can collide with or remove them."""
    return secrets.token_hex(6)


def container_name(job_name: str, run_id: str, host: str) -> str:
    return f"localproc-{job_name}-{run_id}-{host}"


def network_name(job_name: str, run_id: str) -> str:
    return f"localproc-{job_name}-{run_id}"


def job_network(job_name: str, instance_count: int, isolated: bool, run_id: str = "") -> str:
    """The network a job's containers join. Instances need a network of the job's own to find
    each other, and isolation needs one to shut; a lone instance with outbound access does fine
    on Docker's default bridge, which saves creating and removing a network (about 0.3 s)."""
    if instance_count == 1 and not isolated:
        return DEFAULT_NETWORK
    return network_name(job_name, run_id)
