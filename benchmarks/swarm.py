"""A trivial job and a 4-instance sharded job on the local engine and on a 3-node Docker Swarm
(`--cluster swarm`), runs interleaved so that the host's load hits both alike; the overhead of
the swarm against the local engine.

    python benchmarks/swarm.py [--repeats 5]

The swarm is the tests' (tests/swarm_cluster.py): three dockerd nodes on this machine, each in
its own network and mount namespace, reached over TCP; so the figures are localproc's own costs
on a cluster (node inventory, reservations, the overlay network, per-node engine calls, moving
files through the Engine API), not a network's. Needs root (the nodes). S3 is a moto server on
127.0.0.1.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

if __package__ in (None, ""):  # run as a script: make `benchmarks` importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.common import (  # noqa: E402
    BUCKET,
    IMAGE,
    REPO,
    MotoServer,
    Result,
    Settings,
    job_payload,
    localproc_run,
    log,
    make_small_files,
    median,
    state_dir,
    write_json,
)

INPUT_PATH = "/opt/ml/processing/input/data"
OUTPUT_PATH = "/opt/ml/processing/output"
COMMAND = f"cat {INPUT_PATH}/* | wc -c > {OUTPUT_PATH}/bytes.txt"
# Names and a subnet of its own: the remote-engine benchmark and the tests make nodes too.
BRIDGE, SUBNET, PREFIX = "lpbr-swb", "10.152.0.0/24", "lpswb"


def jobs(settings: Settings) -> dict[str, tuple[int, str]]:
    """label → (instances, input prefix): the trivial job (10 × 1 KB, one instance) and the
    sharded one (16 × 64 KB over 4 instances, ShardedByS3Key)."""
    assert settings.moto is not None
    trivial = make_small_files(settings.workdir / "trivial", 10, 1024)
    sharded = make_small_files(settings.workdir / "sharded", 16, 64 * 1024)
    settings.moto.upload_dir(trivial, "swarm/trivial/")
    settings.moto.upload_dir(sharded, "swarm/sharded/")
    return {"trivial job": (1, "swarm/trivial/"), "4-instance sharded job": (4, "swarm/sharded/")}


def one_run(
    settings: Settings, label: str, instances: int, prefix: str, swarm_env: dict[str, str] | None
) -> Result:
    name = f"{settings.prefix}-{'swarm' if swarm_env else 'local'}-{time.monotonic_ns() % 10**9}"
    payload = job_payload(
        name, ["sh", "-c", COMMAND], [("data", f"s3://{BUCKET}/{prefix}", INPUT_PATH)],
        [("result", f"s3://{BUCKET}/swarm/out/{name}", OUTPUT_PATH)], instance_count=instances,
    )  # fmt: skip
    if instances > 1:
        payload["ProcessingInputs"][0]["S3Input"]["S3DataDistributionType"] = "ShardedByS3Key"
    path = write_json(settings.workdir / "payloads" / f"{name}.json", payload)
    extra = ("--cluster", "swarm") if swarm_env else ()
    with state_dir(settings, name) as state:
        import os

        saved = dict(os.environ)
        os.environ.update(swarm_env or {})
        try:
            result = localproc_run(settings, path, state, name, *extra, timeout=300)
        finally:
            os.environ.clear()
            os.environ.update(saved)
    if not result.ok:
        raise RuntimeError(f"{label} ({'swarm' if swarm_env else 'local'}): {result.failure()}")
    return result


def measure(settings: Settings, swarm_env: dict[str, str]) -> list[tuple[str, float, float]]:
    """(job, local median seconds, swarm median seconds)."""
    rows = []
    for label, (instances, prefix) in jobs(settings).items():
        local, swarm = [], []
        one_run(settings, label, instances, prefix, None)  # warm-up: caches, first overlay
        one_run(settings, label, instances, prefix, swarm_env)
        for index in range(settings.repeats):
            log(f"{label}: repeat {index + 1} of {settings.repeats}")
            local.append(one_run(settings, label, instances, prefix, None).seconds)
            swarm.append(one_run(settings, label, instances, prefix, swarm_env).seconds)
        rows.append((label, median(local) or 0.0, median(swarm) or 0.0))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    sys.path.insert(0, str(REPO / "tests"))
    from engine_nodes import engine_nodes
    from swarm_cluster import form_swarm

    with tempfile.TemporaryDirectory(prefix="localproc-bench-swarm-", dir="/var/tmp") as work:
        settings = Settings(
            quick=False, repeats=args.repeats, workdir=Path(work), run_id=str(int(time.time()))
        )
        settings.moto = MotoServer(Path(work))
        settings.moto.start()
        try:
            settings.moto.ensure_bucket(BUCKET)
            log("starting a 3-node swarm")
            with engine_nodes(3, PREFIX, BRIDGE, SUBNET, images=(IMAGE,)) as nodes:
                form_swarm(nodes)
                env = {"DOCKER_HOST": nodes[0].docker_host}
                rows = measure(settings, env)
        finally:
            settings.moto.stop()
    print(f"\n{'job':<26} {'local engine':>13} {'3-node swarm':>13} {'overhead':>18}")
    for label, local, swarm in rows:
        overhead = f"{swarm - local:+.2f}s ({swarm / local:.2f}×)"
        print(f"{label:<26} {local:>12.2f}s {swarm:>12.2f}s {overhead:>18}")


if __name__ == "__main__":
    main()
