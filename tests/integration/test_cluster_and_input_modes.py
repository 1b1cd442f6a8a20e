"""Many instances and every input mode, on real Docker and a real S3 endpoint: instances that
find each other by name, ShardedByS3Key, FullyReplicated downloading each object once, manifests,
Pipe mode with and without Gzip, and an instance failing while another runs. Marked tests run on
Podman too (`both_engines`, `all_engines`) and on a remote engine that shares no folder with the
CLI (`docker_and_remote`, `all_engines`: tests/engine_nodes.py, the archive backend)."""

from __future__ import annotations

import gzip
import json
import logging
import re
from typing import Any

import pytest
from docker_engine import (
    EngineUnderTest,
    Localproc,
    all_engines,
    docker_and_remote,
    job_payload,
    job_resources,
    s3_input,
    s3_output,
    script_input,
    unique_name,
)

REPORT = r"""
import json, os, pathlib, socket, threading, time
config = json.load(open('/opt/ml/config/resourceconfig.json'))
me, hosts = config['current_host'], config['hosts']
root = pathlib.Path('/opt/ml/processing/input/data')
files = {str(p.relative_to(root)): p.read_text() for p in root.rglob('*') if p.is_file()}
accepted = []
server = socket.socket(); server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
server.bind(('0.0.0.0', 7000)); server.listen(8)
def serve():
    while True:
        conn, _ = server.accept(); accepted.append(conn.recv(64).decode()); conn.close()
threading.Thread(target=serve, daemon=True).start()
connected = {}
for peer in hosts:
    if peer == me:
        continue
    deadline = time.time() + 60
    while True:
        try:
            with socket.create_connection((peer, 7000), timeout=2) as s:
                s.sendall(me.encode())
            connected[peer] = socket.gethostbyname(peer); break
        except OSError as err:
            if time.time() > deadline:
                connected[peer] = 'failed: %s' % err; break
            time.sleep(0.2)
deadline = time.time() + 60
while len(accepted) < len(hosts) - 1 and time.time() < deadline:
    time.sleep(0.1)
print('files', sorted(files), flush=True)
out = {'config': config, 'files': files, 'connected': connected, 'accepted': sorted(accepted)}
pathlib.Path('/opt/ml/processing/out/%s.json' % me).write_text(json.dumps(out))
"""


def run_cluster(
    localproc: Localproc,
    s3: Any,
    bucket: str,
    count: int,
    data_input: dict[str, Any],
    script: str = REPORT,
    expect: int = 0,
) -> tuple[str, Any, dict[str, Any]]:
    name = unique_name("cluster")
    entrypoint, code = script_input(s3, bucket, script)
    payload = job_payload(
        name, entrypoint=entrypoint, inputs=[data_input, code], instance_count=count,
        outputs=[s3_output("out", f"s3://{bucket}/out/{name}", "/opt/ml/processing/out")],
    )  # fmt: skip
    result = localproc(
        "run", str(localproc.write_payload(payload)), "--s3-endpoint-url", s3.endpoint_url,
        "--stop-grace", "2",
    )  # fmt: skip
    assert result.exit_code == expect, result.output
    reports = {}
    for i in range(1, count + 1):
        key = f"out/{name}/algo-{i}.json"
        try:
            body = s3.client.get_object(Bucket=bucket, Key=key)["Body"].read()
        except s3.client.exceptions.NoSuchKey:
            continue
        reports[f"algo-{i}"] = json.loads(body)
    return name, result, reports


def put_objects(s3: Any, bucket: str, keys: list[str]) -> None:
    for key in keys:
        s3.client.put_object(Bucket=bucket, Key=key, Body=key.encode())


def data(uri: str, **extra: str) -> dict[str, Any]:
    return s3_input("data", uri, "/opt/ml/processing/input/data", **extra)


@all_engines
def test_three_instances_find_each_other_and_get_their_own_config(
    localproc: Localproc, s3: Any
) -> None:
    bucket = s3.make_bucket()
    put_objects(s3, bucket, ["shared/a.txt", "shared/b.txt"])

    name, result, reports = run_cluster(localproc, s3, bucket, 3, data(f"s3://{bucket}/shared/"))

    hosts = ["algo-1", "algo-2", "algo-3"]
    assert sorted(reports) == hosts
    for host, report in reports.items():
        assert report["config"] == {
            "current_host": host,
            "hosts": hosts,
            "current_instance_type": "ml.t3.medium",
            "network_interface_name": "eth0",
        }
        peers = [h for h in hosts if h != host]
        assert sorted(report["connected"]) == peers
        assert all(address.count(".") == 3 for address in report["connected"].values()), report
        assert report["accepted"] == peers
        # FullyReplicated: every instance sees every object, in a folder of its own.
        assert report["files"] == {"a.txt": "shared/a.txt", "b.txt": "shared/b.txt"}
    # Logs stream together, prefixed per instance, and are saved per instance.
    for host in hosts:
        assert f"{host} | files ['a.txt', 'b.txt']" in result.stdout
        log = (localproc.job_dir(name) / "logs" / f"{host}.log").read_text()
        assert log == "files ['a.txt', 'b.txt']\n"


@docker_and_remote
def test_fully_replicated_objects_are_downloaded_once_per_job(
    localproc: Localproc, s3: Any, caplog: pytest.LogCaptureFixture
) -> None:
    bucket = s3.make_bucket()
    keys = [f"replicated/{i}.txt" for i in range(4)]
    put_objects(s3, bucket, keys)
    caplog.set_level(logging.INFO, logger="werkzeug")  # moto's server logs every request

    _, _, reports = run_cluster(localproc, s3, bucket, 3, data(f"s3://{bucket}/replicated/"))

    assert all(len(r["files"]) == 4 for r in reports.values())
    gets = [
        record.getMessage()
        for record in caplog.records
        if re.search(rf'"GET /{bucket}/replicated/\d\.txt ', record.getMessage())
    ]
    assert len(gets) == 4, gets  # one GET per object, not one per object and instance


@all_engines
def test_sharded_by_s3_key_splits_objects_disjointly_and_deterministically(
    localproc: Localproc, s3: Any, caplog: pytest.LogCaptureFixture
) -> None:
    bucket = s3.make_bucket()
    keys = [f"shards/part-{i:02d}.csv" for i in range(10)]
    put_objects(s3, bucket, keys)
    sharded = data(f"s3://{bucket}/shards/", S3DataDistributionType="ShardedByS3Key")
    caplog.set_level(logging.INFO, logger="werkzeug")  # moto's server logs every request

    _, _, first = run_cluster(localproc, s3, bucket, 3, sharded)
    gets = [
        record.getMessage()
        for record in caplog.records
        if re.search(rf'"GET /{bucket}/shards/part-\d+\.csv ', record.getMessage())
    ]
    assert len(gets) == len(keys), gets  # each instance fetched its own shard, nothing more
    _, _, second = run_cluster(localproc, s3, bucket, 3, sharded)

    shards = {host: sorted(report["files"]) for host, report in first.items()}
    assert sorted(len(files) for files in shards.values()) == [3, 3, 4]
    union = [f for files in shards.values() for f in files]
    assert sorted(union) == sorted(k.removeprefix("shards/") for k in keys)  # disjoint, complete
    assert shards == {host: sorted(report["files"]) for host, report in second.items()}
    # The documented rule: instance i (0-based) gets objects i, i+3, i+6, ... of the listing.
    assert shards["algo-1"] == ["part-00.csv", "part-03.csv", "part-06.csv", "part-09.csv"]


@docker_and_remote
def test_sharded_manifest_entries_are_split_in_manifest_order(
    localproc: Localproc, s3: Any
) -> None:
    bucket = s3.make_bucket()
    put_objects(s3, bucket, [f"pool/e{i}.csv" for i in range(5)])
    # Listed out of key order: sharding follows the manifest, not the bucket's listing.
    entries = ["e4.csv", "e0.csv", "e3.csv", "e1.csv", "e2.csv"]
    manifest = [{"prefix": f"s3://{bucket}/pool/"}, *entries]
    s3.client.put_object(Bucket=bucket, Key="lists/m.json", Body=json.dumps(manifest).encode())
    listed = data(
        f"s3://{bucket}/lists/m.json", S3DataType="ManifestFile",
        S3DataDistributionType="ShardedByS3Key",
    )  # fmt: skip

    _, _, reports = run_cluster(localproc, s3, bucket, 2, listed)

    # Round robin over the entries in the manifest's order: 1st, 3rd, 5th; 2nd, 4th.
    assert sorted(reports["algo-1"]["files"]) == sorted(entries[0::2])
    assert sorted(reports["algo-2"]["files"]) == sorted(entries[1::2])


def test_more_instances_than_objects_leaves_an_empty_local_path(
    localproc: Localproc, s3: Any
) -> None:
    bucket = s3.make_bucket()
    put_objects(s3, bucket, ["two/x.csv", "two/y.csv"])
    sharded = data(f"s3://{bucket}/two/", S3DataDistributionType="ShardedByS3Key")

    _, _, reports = run_cluster(localproc, s3, bucket, 3, sharded)

    assert [sorted(reports[h]["files"]) for h in ("algo-1", "algo-2", "algo-3")] == [
        ["x.csv"],
        ["y.csv"],
        [],
    ]


@docker_and_remote
def test_manifest_lists_the_objects_to_stage(localproc: Localproc, s3: Any) -> None:
    bucket = s3.make_bucket()
    put_objects(s3, bucket, ["pool/2024/a.csv", "pool/2024/b.csv", "pool/unlisted.csv"])
    manifest = [{"prefix": f"s3://{bucket}/pool/"}, "2024/a.csv", "2024/b.csv"]
    s3.client.put_object(Bucket=bucket, Key="manifests/m.json", Body=json.dumps(manifest).encode())
    listed = data(f"s3://{bucket}/manifests/m.json", S3DataType="ManifestFile")

    _, _, reports = run_cluster(localproc, s3, bucket, 1, listed)

    assert reports["algo-1"]["files"] == {
        "2024/a.csv": "pool/2024/a.csv",
        "2024/b.csv": "pool/2024/b.csv",
    }


@pytest.mark.parametrize(
    ("manifest", "expected"),
    [
        (b"not json", "is malformed"),
        (
            b'[{"prefix": "s3://BUCKET/pool/"}, "2024/a.csv", "2024/missing.csv"]',
            "lists 1 missing object(s): s3://BUCKET/pool/2024/missing.csv",
        ),
    ],
    ids=["malformed", "missing-entry"],
)
def test_bad_manifests_fail_the_job_with_client_error(
    localproc: Localproc, s3: Any, manifest: bytes, expected: str
) -> None:
    bucket = s3.make_bucket()
    put_objects(s3, bucket, ["pool/2024/a.csv"])
    s3.client.put_object(
        Bucket=bucket, Key="manifests/m.json", Body=manifest.replace(b"BUCKET", bucket.encode())
    )
    listed = data(f"s3://{bucket}/manifests/m.json", S3DataType="ManifestFile")

    name, _, reports = run_cluster(localproc, s3, bucket, 1, listed, expect=1)

    reason = localproc.record(name)["FailureReason"]
    assert reason.startswith(
        f"ClientError: Manifest s3://{bucket}/manifests/m.json of input 'data'"
    )
    assert expected.replace("BUCKET", bucket) in reason
    assert reports == {}  # no container ran


PIPE_READER = r"""
import json, os, pathlib
me = json.load(open('/opt/ml/config/resourceconfig.json'))['current_host']
fifo = '/opt/ml/processing/input/data/data_0'
kind = 'fifo' if pathlib.Path(fifo).is_fifo() else 'not a fifo'
with open(fifo, 'rb') as pipe:
    content = pipe.read().decode()
pathlib.Path('/opt/ml/processing/out/%s.json' % me).write_text(
    json.dumps({'kind': kind, 'content': content, 'files': os.listdir(os.path.dirname(fifo))}))
"""


@pytest.mark.parametrize("compressed", [False, True], ids=["plain", "gzip"])
@all_engines
def test_pipe_mode_streams_objects_in_order_into_a_fifo(
    localproc: Localproc, s3: Any, compressed: bool
) -> None:
    bucket = s3.make_bucket()
    for i in range(4):
        body = f"record {i}\n".encode()
        s3.client.put_object(
            Bucket=bucket, Key=f"stream/{i}.txt", Body=gzip.compress(body) if compressed else body
        )
    extra = {"S3InputMode": "Pipe", "S3DataDistributionType": "ShardedByS3Key"}
    if compressed:
        extra["S3CompressionType"] = "Gzip"

    _, _, reports = run_cluster(
        localproc, s3, bucket, 2, data(f"s3://{bucket}/stream/", **extra), script=PIPE_READER
    )

    assert reports["algo-1"]["kind"] == "fifo"
    assert reports["algo-1"]["files"] == ["data_0"]  # streamed, not staged
    assert reports["algo-1"]["content"] == "record 0\nrecord 2\n"
    assert reports["algo-2"]["content"] == "record 1\nrecord 3\n"


PIPE_SIPPER = r"""
import json, pathlib
me = json.load(open('/opt/ml/config/resourceconfig.json'))['current_host']
with open('/opt/ml/processing/input/data/data_0', 'rb') as pipe:
    head = pipe.read(16)  # then closes the pipe with megabytes still to come
pathlib.Path('/opt/ml/processing/out/%s.json' % me).write_text(json.dumps({'head': head.decode()}))
"""


@docker_and_remote
def test_a_container_that_closes_its_pipe_early_completes(localproc: Localproc, s3: Any) -> None:
    bucket = s3.make_bucket()
    s3.client.put_object(Bucket=bucket, Key="big/0.txt", Body=b"0123456789abcdef" * 2**18)
    s3.client.put_object(Bucket=bucket, Key="big/1.txt", Body=b"never read" * 2**16)

    name, _, reports = run_cluster(
        localproc, s3, bucket, 1, data(f"s3://{bucket}/big/", S3InputMode="Pipe"),
        script=PIPE_SIPPER,
    )  # fmt: skip

    assert reports["algo-1"]["head"] == "0123456789abcdef"
    assert localproc.record(name)["ProcessingJobStatus"] == "Completed"


# algo-2 fails only once algo-1 is ready for SIGTERM (it listens on a port once its handler is
# in), so that a slow start of algo-1 on a loaded host cannot make it miss the signal.
FAIL_ONE = r"""
import json, pathlib, signal, socket, sys, time
me = json.load(open('/opt/ml/config/resourceconfig.json'))['current_host']
out = pathlib.Path('/opt/ml/processing/out')
if me == 'algo-2':
    for _ in range(600):
        try:
            socket.create_connection(('algo-1', 5000), timeout=1).close()
            break
        except OSError:
            time.sleep(0.1)
    sys.exit(7)
def on_term(signum, frame):
    (out / ('%s-terminated.txt' % me)).write_text('stopped by the job')
    sys.exit(0)
signal.signal(signal.SIGTERM, on_term)
ready = socket.socket()
ready.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
ready.bind(('0.0.0.0', 5000))
ready.listen(8)
time.sleep(120)
"""


@all_engines
def test_an_instance_failing_stops_the_others(
    localproc: Localproc, s3: Any, engine: EngineUnderTest
) -> None:
    bucket = s3.make_bucket()
    put_objects(s3, bucket, ["d/x.txt"])

    name, result, _ = run_cluster(
        localproc, s3, bucket, 2, data(f"s3://{bucket}/d/"), script=FAIL_ONE, expect=1
    )

    reason = localproc.record(name)["FailureReason"]
    assert reason.startswith("AlgorithmError: algo-2 exited with code 7"), reason
    keys = [o["Key"] for o in s3.client.list_objects_v2(Bucket=bucket, Prefix="out/")["Contents"]]
    assert keys == [f"out/{name}/algo-1-terminated.txt"]  # algo-1 got SIGTERM, wrote, uploaded
    assert job_resources(engine.client, localproc.names) == ([], [])


def test_same_output_path_from_two_instances_warns_and_the_last_wins(
    localproc: Localproc, s3: Any
) -> None:
    bucket = s3.make_bucket()
    put_objects(s3, bucket, ["d/x.txt"])
    same = (
        "import json, pathlib\n"
        "me = json.load(open('/opt/ml/config/resourceconfig.json'))['current_host']\n"
        "pathlib.Path('/opt/ml/processing/out/summary.txt').write_text(me)\n"
    )

    name, result, _ = run_cluster(localproc, s3, bucket, 2, data(f"s3://{bucket}/d/"), script=same)

    body = s3.client.get_object(Bucket=bucket, Key=f"out/{name}/summary.txt")["Body"].read()
    assert body == b"algo-2"
    assert f"s3://{bucket}/out/{name}/summary.txt written by algo-1 and algo-2" in result.stderr
