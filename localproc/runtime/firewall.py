"""Network isolation's last wall. A Docker `--internal` network stops traffic to the outside
world, but a container can still reach services of the host itself through the bridge's
gateway address (the host's INPUT chain accepts it). So for an isolated job, when localproc can
(root and iptables), it drops everything arriving at the host from that job's bridge. Rules carry
a comment naming the run (its run id), so they can be found and removed even after a crash,
and never another run's."""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess

COMMENT_PREFIX = "localproc.run="
TOOLS = ("iptables", "ip6tables")


def bridge_name(run_id: str) -> str:
    """A stable Linux interface name for the run's bridge (at most 15 characters)."""
    return "lp" + hashlib.sha1(run_id.encode()).hexdigest()[:12]


def can_isolate_host() -> bool:
    return os.geteuid() == 0 and shutil.which("iptables") is not None


def block_host_access(run_id: str) -> None:
    for tool in _available_tools():
        _run(tool, "-I", "INPUT", "1", *_rule(run_id))


def remove_host_block(run_id: str) -> None:
    """Remove every rule of this run (there may be more than one after a crash and a retry)."""
    if os.geteuid() != 0:
        return
    for tool in _available_tools():
        while _run(tool, "-D", "INPUT", *_rule(run_id), check=False) == 0:
            pass


def _rule(run_id: str) -> list[str]:
    return [
        "-i", bridge_name(run_id),
        "-m", "comment", "--comment", COMMENT_PREFIX + run_id,
        "-j", "DROP",
    ]  # fmt: skip


def _available_tools() -> list[str]:
    return [tool for tool in TOOLS if shutil.which(tool)]


def _run(*command: str, check: bool = True) -> int:
    done = subprocess.run(command, capture_output=True, text=True)
    if check and done.returncode != 0:
        raise OSError(f"{' '.join(command)} failed: {done.stderr.strip()}")
    return done.returncode
