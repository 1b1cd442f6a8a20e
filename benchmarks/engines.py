"""Engines (issue 14): the same jobs on this machine's Docker engine (bind mounts), on a remote
engine reached over TCP that shares no folder with localproc (the archive backend) and on a
3-node Docker Swarm (`--cluster swarm`), each set against the local engine measured in the same
run, interleaved with it.

    python benchmarks/run.py --only engines [--quick]

Cases: a trivial job (10 × 1 KiB inputs, one output file), a 4-instance job sharding 4 objects
(4 × 8 MiB; --quick 4 × 1 MiB) over its instances, each instance writing its shard's byte count,
and the latency of a Continuous output (from the container's log line saying a file was closed to
the object being in S3). The remote engine is a second dockerd on this machine in network and
mount namespaces of its own (tests/engine_nodes.py), so its cost is the archive path's, not a
network's: over a real network add the transfer time of the inputs and outputs.

Further engines add one entry to ENGINES: a function that, given an ExitStack for its teardown,
starts what it needs and returns the environment that points localproc at it.
"""

from __future__ import annotations

import contextlib
import sys
import time
from collections.abc import Callable

from benchmarks.common import (
    BUCKET,
    IMAGE,
    REPO,
    Line,
    MiB,
    Result,
    Row,
    Section,
    Settings,
    aws_env,
    job_payload,
    localproc_argv,
    log,
    make_big_file,
    make_small_files,
    median,
    ratio_text,
    run,
    seconds_text,
    state_dir,
    write_json,
)

INPUT_PATH = "/opt/ml/processing/input/data"
OUTPUT_PATH = "/opt/ml/processing/output"
TRIVIAL = f"cat {INPUT_PATH}/* | wc -c > {OUTPUT_PATH}/bytes.txt"
CONTINUOUS = f"echo done > {OUTPUT_PATH}/early.txt && echo closed && sleep 6 && echo end"

EngineStarter = Callable[[contextlib.ExitStack], dict[str, str]]


def _local(_: contextlib.ExitStack) -> dict[str, str]:
    return {}


def _remote_tcp(stack: contextlib.ExitStack) -> dict[str, str]:
    sys.path.insert(0, str(REPO / "tests"))
    import engine_nodes  # the test harness: a dockerd in its own network and mount namespaces

    prefix, bridge = engine_nodes.session_names("bench")
    subnet = engine_nodes.free_subnet()
    nodes = stack.enter_context(
        engine_nodes.engine_nodes(1, prefix, bridge, subnet, images=(IMAGE,))
    )
    return nodes[0].env


def _swarm(stack: contextlib.ExitStack) -> dict[str, str]:
    sys.path.insert(0, str(REPO / "tests"))
    import engine_nodes
    import swarm_cluster  # the tests' swarm: three such nodes, init and join

    prefix, bridge = engine_nodes.session_names("swarm")
    subnet = engine_nodes.free_subnet()
    nodes = stack.enter_context(
        engine_nodes.engine_nodes(3, prefix, bridge, subnet, images=(IMAGE,))
    )
    swarm_cluster.form_swarm(nodes)
    return {**nodes[0].env, "LOCALPROC_CLUSTER": "swarm"}


# label → starter; "local" first: it is every ratio's baseline.
ENGINES: dict[str, EngineStarter] = {
    "local": _local, "remote TCP": _remote_tcp, "3-node swarm": _swarm,
}  # fmt: skip


def run_engines(settings: Settings) -> Section:
    section = Section("engines", "Engines: local, remote over TCP, 3-node swarm")
    assert settings.moto is not None
    moto = settings.moto
    trivial = make_small_files(settings.workdir / "engines-trivial", 10, 1024)
    moto.upload_dir(trivial, "engines/trivial/")
    shard_bytes = settings.scaled(8 * MiB, 1 * MiB)
    shards = settings.workdir / "engines-shards"
    shards.mkdir(parents=True, exist_ok=True)
    for index in range(4):
        make_big_file(shards / f"shard-{index}.bin", shard_bytes)
    moto.upload_dir(shards, "engines/shards/")

    cases: dict[str, Callable[[str, dict[str, str]], tuple[Result, float | None]]] = {
        "trivial job": lambda name, env: (_job(settings, name, env, _trivial(name)), None),
        f"4 instances, sharded 4 × {shard_bytes // MiB} MiB": lambda name, env: (
            _job(settings, name, env, _sharded(name)), None),
        "Continuous output latency": lambda name, env: _continuous(settings, name, env),
    }  # fmt: skip
    seconds: dict[tuple[str, str], list[float]] = {}
    latency: dict[str, list[float]] = {}
    failures: dict[tuple[str, str], str] = {}
    with contextlib.ExitStack() as stack:
        environments = {}
        for label, starter in ENGINES.items():
            began = time.monotonic()
            environments[label] = starter(stack)
            log(f"engine {label} ready in {time.monotonic() - began:.1f} s")
        count = 0
        for repeat in range(settings.repeats + 1):  # the first round warms up, unmeasured
            for case, do in cases.items():
                for label, env in environments.items():
                    count += 1
                    result, lag = do(f"{settings.prefix}-eng-{count}", env)
                    if not result.ok:
                        failures[(case, label)] = result.failure()
                    elif repeat > 0:
                        seconds.setdefault((case, label), []).append(result.seconds)
                        if lag is not None:
                            latency.setdefault(label, []).append(lag)
    _report(section, cases, seconds, latency, failures)
    return section


def _report(section: Section, cases: dict, seconds: dict, latency: dict, failures: dict) -> None:
    for case in cases:
        base = median(seconds.get((case, "local"), []))
        for label in ENGINES:
            values = seconds.get((case, label), [])
            value = median(values)
            row = Row("engines", f"{case}, {label}", seconds_text(value), "local engine",
                      seconds_text(base), ratio_text(value, base), str(len(values)))  # fmt: skip
            section.rows.append(row)
            if (case, label) in failures:
                section.notes.append(f"{case} on {label} failed: {failures[(case, label)]}")
    for label in ENGINES:
        values = latency.get(label, [])
        section.rows.append(Row("engines", f"Continuous file → S3, {label}",
                                seconds_text(median(values)), runs=str(len(values))))  # fmt: skip
    section.notes += [
        "Wall time of `localproc run` (the CLI as users start it), start to exit, with its "
        "staging, containers, outputs and cleanup; medians over the repeats, the first round "
        "of every case and engine unmeasured (warm-up), engines interleaved.",
        "Remote TCP: a second dockerd on this machine in its own network and mount namespaces "
        "(tests/engine_nodes.py), reached at tcp://ADDRESS:2375 over a Linux bridge: the archive "
        "backend's own cost (volumes, put_archive, get_archive, the Pipe and Continuous "
        "copies), with no real network in between.",
        "3-node swarm: three such dockerd nodes formed into a Docker Swarm (tests/"
        "swarm_cluster.py), `--cluster swarm` with DOCKER_HOST at the manager: the node "
        "inventory and reservations, the job's overlay network, placement, then the archive "
        "backend on each instance's node. A 1-instance job needs no overlay.",
        "Continuous latency: from the arrival of the container's `closed` log line (the file "
        "was closed just before) to the object being listed in S3, polled every 50 ms; the "
        "remote engine brings Continuous folders back every second, then the same uploader "
        "runs.",
    ]


def _trivial(name: str) -> dict:
    return job_payload(
        name, ["sh", "-c", TRIVIAL], [("data", f"s3://{BUCKET}/engines/trivial/", INPUT_PATH)],
        [("result", f"s3://{BUCKET}/engines/out/{name}", OUTPUT_PATH)],
    )  # fmt: skip


def _sharded(name: str) -> dict:
    payload = job_payload(
        name, ["sh", "-c", TRIVIAL], [("data", f"s3://{BUCKET}/engines/shards/", INPUT_PATH)],
        [("result", f"s3://{BUCKET}/engines/out/{name}", OUTPUT_PATH)], instance_count=4,
    )  # fmt: skip
    payload["ProcessingInputs"][0]["S3Input"]["S3DataDistributionType"] = "ShardedByS3Key"
    return payload


def _job(settings: Settings, name: str, env: dict[str, str], payload: dict,
         on_line: Callable | None = None) -> Result:  # fmt: skip
    assert settings.moto is not None
    path = write_json(settings.workdir / "payloads" / f"{name}.json", payload)
    with state_dir(settings, name) as state:
        return run(
            [*localproc_argv(), "run", str(path), "--name", name, "--state-dir", str(state),
             "--s3-endpoint-url", settings.moto.endpoint, "--stop-grace", "1"],
            env=aws_env(**env), timeout=300, on_line=on_line,
        )  # fmt: skip


def _continuous(settings: Settings, name: str, env: dict[str, str]) -> tuple[Result, float | None]:
    import threading

    assert settings.moto is not None
    moto = settings.moto
    payload = job_payload(
        name, ["sh", "-c", CONTINUOUS], [("data", f"s3://{BUCKET}/engines/trivial/", INPUT_PATH)],
        [("live", f"s3://{BUCKET}/engines/live/{name}", OUTPUT_PATH)], upload_mode="Continuous",
    )  # fmt: skip
    closed: list[float] = []
    arrived: list[float] = []

    def watch() -> None:
        while not closed:
            time.sleep(0.01)
        deadline = time.time() + 30
        while time.time() < deadline:
            if moto.keys(f"engines/live/{name}/"):
                arrived.append(time.time())
                return
            time.sleep(0.05)

    def on_line(line: Line) -> None:
        if not closed and line.text.endswith("closed"):
            closed.append(line.at)

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    result = _job(settings, name, env, payload, on_line=on_line)
    if not closed:
        closed.append(time.time())  # releases the watcher
    watcher.join(timeout=35)
    return result, (arrived[0] - closed[0]) if arrived and closed else None
