"""What running on Podman costs against Docker, on this machine, interleaved:

    scripts/setup-podman.sh                       # Podman's rootful API service
    python benchmarks/podman_overhead.py [--repeats 10]

Each repeat runs, once per engine, the quickstart (1 instance) and the same payload with 4
instances and its sales input `ShardedByS3Key` (a network of the job's own), each with a fresh
state dir and a fresh copy of fixtures/s3, the engine chosen the way a user chooses it: Docker by
default, Podman with DOCKER_HOST=unix:///run/podman/podman.sock. Interleaving makes a change of
the host's load hit both engines alike; the median wall times and Podman's extra are printed.
The README's *Podman* section quotes a run of it.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
PODMAN_HOST = "unix:///run/podman/podman.sock"
ENGINES = {"docker": {}, "podman": {"DOCKER_HOST": PODMAN_HOST}}


def payloads(folder: Path) -> dict[str, Path]:
    """The quickstart, and its 4-instance sharded variant."""
    quickstart = REPO / "fixtures" / "jobs" / "quickstart.json"
    sharded = json.loads(quickstart.read_text())
    sharded["ProcessingResources"]["ClusterConfig"]["InstanceCount"] = 4
    for item in sharded["ProcessingInputs"]:
        if item["InputName"] == "sales":
            item["S3Input"]["S3DataDistributionType"] = "ShardedByS3Key"
    (folder / "sharded4.json").write_text(json.dumps(sharded))
    return {"quickstart (1 instance)": quickstart, "4 instances, sharded": folder / "sharded4.json"}


def one_run(payload: Path, engine_env: dict[str, str], name: str) -> float:
    """Wall seconds of one `localproc run`, from a fresh state dir and S3 folder."""
    with tempfile.TemporaryDirectory() as scratch:
        s3_root = Path(scratch) / "s3"
        shutil.copytree(REPO / "fixtures" / "s3", s3_root)
        env = {k: v for k, v in os.environ.items() if k not in ("DOCKER_HOST", "LOCALPROC_HOME")}
        env.update(engine_env, LOCALPROC_HOME=str(Path(scratch) / "state"))
        argv = [
            sys.executable, "-m", "localproc", "run", str(payload),
            "--s3-root", str(s3_root), "--name", name,
        ]  # fmt: skip
        started = time.perf_counter()
        subprocess.run(argv, env=env, cwd=scratch, check=True, capture_output=True)
        return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=10)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        jobs = payloads(Path(folder))
        walls: dict[tuple[str, str], list[float]] = {}
        for repeat in range(args.repeats + 1):  # the first round warms up, not counted
            for job, payload in jobs.items():
                for engine, engine_env in ENGINES.items():
                    wall = one_run(payload, engine_env, f"bench-{engine}-{repeat}")
                    if repeat:
                        walls.setdefault((job, engine), []).append(wall)
    print(f"median wall time of `localproc run`, {args.repeats} interleaved runs each")
    print(f"{'job':<26}{'Docker':>9}{'Podman':>9}{'extra':>9}")
    for job in jobs:
        docker = statistics.median(walls[(job, "docker")])
        podman = statistics.median(walls[(job, "podman")])
        print(f"{job:<26}{docker:>8.2f}s{podman:>8.2f}s{podman - docker:>+8.2f}s")


if __name__ == "__main__":
    main()
