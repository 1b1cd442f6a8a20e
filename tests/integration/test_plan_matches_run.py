"""`plan --json` is what `run` does: for a two-instance job with every input mode (File
replicated, File sharded, a manifest, Pipe, Pipe with Gzip), each running container, as the
engine reports it, and the config files it sees match the plan's values (with the run's own
id and runner label in place of the ones the `plan` invocation made up). On this machine's engine
and on a remote one reached over TCP (tests/engine_nodes.py), where the mounts are volumes."""

from __future__ import annotations

import gzip
import io
import json
import tarfile
import threading
from typing import Any

from docker_engine import (
    EXAMPLE_IMAGE,
    EngineUnderTest,
    Localproc,
    docker_and_remote,
    job_payload,
    s3_input,
    s3_output,
    script_input,
    unique_name,
    wait_for,
)

RUN_LABEL = "localproc.run"
RUNNER_LABEL = "localproc.execution.runner"

SCRIPT = r"""
import os, pathlib, time
for name in ('pipe', 'gz'):
    with open('/opt/ml/processing/%s/%s_0' % (name, name), 'rb') as fifo:
        size = len(fifo.read())
    print(name, size, flush=True)
release = pathlib.Path('/opt/ml/processing/out/release')
deadline = time.time() + 120
while not release.exists() and time.time() < deadline:
    time.sleep(0.1)
release.unlink(missing_ok=True)
host = os.environ.get('HOSTNAME', 'x')
pathlib.Path('/opt/ml/processing/out/%s.txt' % host).write_text(host)
"""


def _payload(s3: Any, bucket: str, name: str) -> dict[str, Any]:
    for key in ["rep/a.txt", "rep/b.txt", *[f"shard/{i}.txt" for i in range(4)], "pool/m1.csv"]:
        s3.client.put_object(Bucket=bucket, Key=key, Body=key.encode())
    s3.client.put_object(Bucket=bucket, Key="pool/m2.csv", Body=b"m2")
    for i in range(2):
        s3.client.put_object(Bucket=bucket, Key=f"pipe/{i}", Body=b"p" * 100)
        s3.client.put_object(Bucket=bucket, Key=f"gz/{i}", Body=gzip.compress(b"g" * 100))
    manifest = [{"prefix": f"s3://{bucket}/pool/"}, "m1.csv", "m2.csv"]
    s3.client.put_object(Bucket=bucket, Key="lists/m.json", Body=json.dumps(manifest).encode())
    entrypoint, code = script_input(s3, bucket, SCRIPT)
    base = "/opt/ml/processing"
    inputs = [
        s3_input("rep", f"s3://{bucket}/rep/", f"{base}/rep"),
        s3_input(
            "shard",
            f"s3://{bucket}/shard/",
            f"{base}/shard",
            S3DataDistributionType="ShardedByS3Key",
        ),  # fmt: skip
        s3_input("man", f"s3://{bucket}/lists/m.json", f"{base}/man", S3DataType="ManifestFile"),
        s3_input("pipe", f"s3://{bucket}/pipe/", f"{base}/pipe", S3InputMode="Pipe"),
        s3_input(
            "gz", f"s3://{bucket}/gz/", f"{base}/gz", S3InputMode="Pipe", S3CompressionType="Gzip"
        ),
        code,
    ]
    outputs = [
        s3_output("out", f"s3://{bucket}/out/{name}", f"{base}/out"),
        s3_output("cont", f"s3://{bucket}/cont/{name}", f"{base}/cont", mode="Continuous"),
    ]
    return job_payload(
        name, entrypoint=entrypoint, inputs=inputs, outputs=outputs, instance_count=2,
        environment={"MY_SETTING": "on"},
    )  # fmt: skip


def _substituted(plan: dict[str, Any], run_id: str, runner: str) -> dict[str, Any]:
    text = json.dumps(plan)
    text = text.replace(plan["RunId"], run_id)
    text = text.replace(json.dumps(plan["Labels"][RUNNER_LABEL]), json.dumps(runner))
    return json.loads(text)


def _env(entries: list[str] | None) -> dict[str, str]:
    return dict(entry.split("=", 1) for entry in entries or [])


def _check_container(container: Any, planned: dict[str, Any], image_env: dict[str, str]) -> None:
    attrs = container.attrs
    config, host = attrs["Config"], attrs["HostConfig"]
    assert attrs["Name"].lstrip("/") == planned["ContainerName"]
    assert config["Hostname"] == planned["Hostname"]
    assert config["Image"] == planned["Image"]
    assert config["Entrypoint"] == planned["Entrypoint"]
    assert (config["Cmd"] or []) == planned["Cmd"]
    assert _env(config["Env"]) == {**image_env, **planned["ContainerEnvironment"]}
    mounts = {(m["Destination"], m["RW"]) for m in attrs["Mounts"]}
    assert mounts == {(m["ContainerPath"], not m["ReadOnly"]) for m in planned["Mounts"]}
    ours = {k: v for k, v in (config["Labels"] or {}).items() if k.startswith("localproc.")}
    assert ours == planned["Labels"]
    assert host["NetworkMode"] == planned["NetworkName"]
    assert set(attrs["NetworkSettings"]["Networks"]) == {planned["NetworkName"]}
    assert host["Memory"] == planned["MemoryLimitBytes"]
    assert host["NanoCpus"] == int(planned["CpuLimit"] * 1e9)
    assert host["PidsLimit"] == planned["PidsLimit"]
    assert sorted(host["CapDrop"]) == sorted(planned["CapDrop"])
    assert host["SecurityOpt"] == planned["SecurityOpt"]
    for name, text in planned["ConfigFiles"].items():
        seen = container.exec_run(["cat", f"/opt/ml/config/{name}"]).output.decode()
        assert seen == text, name
    for item in planned["Inputs"]:
        if item["Mode"] == "Pipe":
            assert container.exec_run(["test", "-p", item["Pipe"]]).exit_code == 0
            continue
        found = container.exec_run(["find", item["LocalPath"], "-type", "f", "-printf", "%P\n"])
        assert sorted(found.output.decode().split()) == sorted(o["Path"] for o in item["Objects"])


def _release(container: Any) -> None:
    """The file the script waits for, put through the engine (no shared folder needed)."""
    archive = io.BytesIO()
    with tarfile.open(fileobj=archive, mode="w") as tar:
        tar.addfile(tarfile.TarInfo("release"), io.BytesIO(b""))
    container.put_archive("/opt/ml/processing/out", archive.getvalue())


@docker_and_remote
def test_plan_json_is_what_run_does(
    localproc: Localproc, s3: Any, engine: EngineUnderTest
) -> None:
    docker_client = engine.client
    bucket = s3.make_bucket()
    name = unique_name("plan-is-run")
    payload = localproc.write_payload(_payload(s3, bucket, name))
    endpoint = ("--s3-endpoint-url", s3.endpoint_url)
    planned = localproc("plan", str(payload), "--json", *endpoint)
    assert planned.exit_code == 0, planned.output
    plan = json.loads(planned.stdout)
    assert plan["NetworkName"] != "bridge" and plan["OwnNetwork"] is True

    results: list[Any] = []
    run_args = ("run", str(payload), *endpoint, "--stop-grace", "2")
    runner = threading.Thread(target=lambda: results.append(localproc(*run_args)))
    runner.start()
    try:

        def running() -> list[Any]:
            selector = {"label": f"localproc.job={name}", "status": "running"}
            return docker_client.containers.list(filters=selector)

        wait_for(lambda: len(running()) == 2 or not runner.is_alive(), 120, "both containers")
        containers = {c.attrs["Config"]["Hostname"]: c for c in running()}
        assert sorted(containers) == ["algo-1", "algo-2"], results
        labels = containers["algo-1"].attrs["Config"]["Labels"]
        plan = _substituted(plan, labels[RUN_LABEL], labels[RUNNER_LABEL])
        image_env = _env(docker_client.images.get(EXAMPLE_IMAGE).attrs["Config"]["Env"])
        assert [i["Host"] for i in plan["InstancePlans"]] == ["algo-1", "algo-2"]
        for planned_instance in plan["InstancePlans"]:
            container = containers[planned_instance["Host"]]
            container.reload()
            _check_container(container, planned_instance, image_env)
            assert planned_instance["ContainerEnvironment"] == plan["Environment"]
        # The network the plan names is the one the run made.
        assert docker_client.networks.get(plan["NetworkName"]).attrs["Labels"][RUN_LABEL]
    finally:
        for container in running():
            _release(container)
        runner.join(timeout=180)
    result = results[0]
    assert result.exit_code == 0, result.output
    # What was uploaded where: each instance's file of each EndOfJob output under its S3Uri.
    for planned_instance in plan["InstancePlans"]:
        uploads = {u["OutputName"]: u for u in planned_instance["Uploads"]}
        assert {u: uploads[u]["S3UploadMode"] for u in uploads} == {
            "out": "EndOfJob",
            "cont": "Continuous",
        }
        out_uri = uploads["out"]["S3Uri"]
        assert out_uri == f"s3://{bucket}/out/{name}"
        key = f"out/{name}/{planned_instance['Host']}.txt"
        body = s3.client.get_object(Bucket=bucket, Key=key)["Body"].read()
        assert body == planned_instance["Host"].encode()
