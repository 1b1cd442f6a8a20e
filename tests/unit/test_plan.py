"""Pure planning: command resolution, key → path mapping, sharding, conflicts. No Docker, no S3."""

from __future__ import annotations

import pytest

from localproc.errors import JobFailure
from localproc.payload.job import job_from_request
from localproc.plan import (
    HostCapacity,
    ImageConfig,
    InputListing,
    StagedObject,
    build_plan,
    relative_input_path,
    resolve_command,
    resource_limits,
    shard,
)
from localproc.storage import ObjectInfo

IMAGE = ImageConfig("img", entrypoint=("ep", "--flag"), cmd=("default-cmd",))
GIB = 2**30
HOST = HostCapacity(cpus=64, memory_bytes=512 * GIB, free_disk_bytes=100 * GIB)


@pytest.mark.parametrize(
    ("entrypoint", "arguments", "argv"),
    [
        (None, None, ("ep", "--flag", "default-cmd")),
        (["run"], None, ("run",)),
        (None, ["a", "b"], ("ep", "--flag", "a", "b")),
        (["run"], ["a"], ("run", "a")),
    ],
)
def test_resolve_command(entrypoint, arguments, argv) -> None:  # type: ignore[no-untyped-def]
    assert resolve_command(IMAGE, entrypoint, arguments).argv == argv


def test_arguments_alone_with_an_image_without_entrypoint_become_the_command() -> None:
    image = ImageConfig("img", entrypoint=None, cmd=("python3",))
    command = resolve_command(image, None, ["python3", "x.py"])
    assert command.entrypoint == () and command.command == ("python3", "x.py")


@pytest.mark.parametrize(
    ("prefix", "key", "relative"),
    [
        ("data/", "data/a/b.csv", "a/b.csv"),
        ("data", "data/a/b.csv", "a/b.csv"),
        ("data/file.csv", "data/file.csv", "file.csv"),
        ("data/in", "data/input/a.csv", "input/a.csv"),
        ("", "top.csv", "top.csv"),
        ("d", "data.csv", "data.csv"),
    ],
)
def test_relative_input_path(prefix: str, key: str, relative: str) -> None:
    assert relative_input_path(prefix, key) == relative


def objects(*keys: str) -> InputListing:
    return InputListing([ObjectInfo("b", key, 1, "e") for key in keys])


def request(**overrides: object) -> dict:
    base = {
        "ProcessingJobName": "plan-job",
        "RoleArn": "arn:aws:iam::123456789012:role/R",
        "AppSpecification": {"ImageUri": "img"},
        "ProcessingResources": {
            "ClusterConfig": {
                "InstanceCount": 3,
                "InstanceType": "ml.m5.xlarge",
                "VolumeSizeInGB": 5,
            }
        },
        "ProcessingInputs": [
            {
                "InputName": "data",
                "S3Input": {
                    "S3Uri": "s3://b/p/",
                    "LocalPath": "/opt/ml/processing/data",
                    "S3DataType": "S3Prefix",
                    "S3DataDistributionType": "ShardedByS3Key",
                },
            }
        ],
    }
    base.update(overrides)
    return base


def test_plan_shards_in_listing_order_and_skips_folder_markers() -> None:
    listing = objects(*[f"p/{i:02d}" for i in range(10)], "p/folder/")
    plan = build_plan(job_from_request(request()), {"data": listing}, IMAGE, "us-east-1", HOST)

    shards = [[o.relative_path for o in inst.inputs[0].objects] for inst in plan.instances]
    assert [len(s) for s in shards] == [4, 3, 3]
    assert sorted(sum(shards, [])) == [f"{i:02d}" for i in range(10)]
    assert [inst.host for inst in plan.instances] == ["algo-1", "algo-2", "algo-3"]
    assert plan.instances[1].resource_config["current_host"] == "algo-2"
    assert plan.environment == {"AWS_REGION": "us-east-1"}
    assert plan.processing_job_config["ProcessingJobArn"].endswith(":processing-job/plan-job")


def test_shard_sizes_differ_by_at_most_one() -> None:
    staged = [StagedObject(o, o.key) for o in objects("a", "b").objects]
    assert [len(shard(staged, i, 3)) for i in range(3)] == [1, 1, 0]


def test_user_region_in_environment_wins() -> None:
    job = job_from_request(request(Environment={"AWS_REGION": "eu-central-1"}))
    plan = build_plan(job, {"data": objects("p/x")}, IMAGE, "us-east-1", HOST)
    assert plan.environment["AWS_REGION"] == "eu-central-1"


@pytest.mark.parametrize(
    ("keys", "message"),
    [
        (("p/../../etc/passwd",), "S3 object key 'p/../../etc/passwd' of input 'data' would be"),
        (("p//abs",), "S3 object key 'p//abs' of input 'data' would be written outside"),
        (("p/a", "p/a/b"), "S3 objects 'p/a' and 'p/a/b' of input 'data' cannot both be staged"),
        (("p/",), 'ClientError: No S3 objects found under S3 URL "s3://b/p/"'),
    ],
)
def test_inputs_that_cannot_be_staged_fail_the_job(keys: tuple[str, ...], message: str) -> None:
    with pytest.raises(JobFailure) as failure:
        build_plan(job_from_request(request()), {"data": objects(*keys)}, IMAGE, "us-east-1", HOST)
    assert message in failure.value.reason
    assert failure.value.reason.startswith("ClientError: ")


def test_limits_are_the_instance_type_when_the_host_holds_them() -> None:
    limits = resource_limits("ml.m5.xlarge", 2, HOST)
    assert (limits.cpus, limits.memory_bytes, limits.gpus, limits.notes) == (4, 16 * GIB, 0, ())


def test_limits_scale_down_proportionally_on_a_small_host() -> None:
    small = HostCapacity(cpus=2, memory_bytes=24 * GIB, free_disk_bytes=GIB)
    limits = resource_limits("ml.m5.xlarge", 2, small)  # wants 8 CPUs, 32 GiB
    assert limits.cpus == 1.0  # factor 0.25 (CPU-bound), applied to memory too
    assert limits.memory_bytes == 4 * GIB
    assert limits.notes and "cannot hold 2 × ml.m5.xlarge" in limits.notes[0]


def test_limits_off_and_gpus_without_runtime() -> None:
    limits = resource_limits("ml.g4dn.xlarge", 1, HOST, enabled=False)
    assert limits.cpus is None and limits.memory_bytes is None and limits.gpus == 0
    assert "no NVIDIA container runtime" in limits.notes[0]
    with_gpu = HostCapacity(
        cpus=64, memory_bytes=512 * GIB, free_disk_bytes=GIB, has_nvidia_runtime=True
    )
    assert resource_limits("ml.g4dn.xlarge", 1, with_gpu).gpus == 1


def test_inputs_larger_than_the_volume_fail_before_staging() -> None:
    big = InputListing([ObjectInfo("b", "p/big", 6 * GIB, "e")])
    job = job_from_request(request())  # VolumeSizeInGB 5, one shard gets the object
    with pytest.raises(JobFailure) as failure:
        build_plan(job, {"data": big}, IMAGE, "us-east-1", HOST)
    assert "(6.00 GiB) do not fit its VolumeSizeInGB of 5 GB" in failure.value.reason


def test_inputs_larger_than_the_free_disk_fail_before_staging() -> None:
    tight = HostCapacity(cpus=64, memory_bytes=512 * GIB, free_disk_bytes=GIB)
    two = InputListing([ObjectInfo("b", "p/a", GIB, "e"), ObjectInfo("b", "p/b", GIB, "e")])
    with pytest.raises(JobFailure) as failure:
        build_plan(job_from_request(request()), {"data": two}, IMAGE, "us-east-1", tight)
    assert "(2.00 GiB) do not fit the free disk space of this host (1.00 GiB free" in (
        failure.value.reason
    )


def test_manifest_objects_land_at_their_entries_and_duplicates_are_staged_once() -> None:
    listing = InputListing(
        [ObjectInfo("b", k, 1, "e") for k in ("m/a/1.csv", "m/b.csv", "m/a/1.csv")],
        manifest_prefix="m/",
    )
    req = request()
    req["ProcessingResources"]["ClusterConfig"]["InstanceCount"] = 1
    plan = build_plan(job_from_request(req), {"data": listing}, IMAGE, "us-east-1", HOST)
    assert [o.relative_path for o in plan.instances[0].inputs[0].objects] == ["a/1.csv", "b.csv"]


def test_pipe_inputs_are_not_counted_against_the_disk_and_name_their_fifo() -> None:
    req = request()
    req["ProcessingInputs"][0]["S3Input"] |= {"S3InputMode": "Pipe", "S3CompressionType": "Gzip"}
    req["ProcessingResources"]["ClusterConfig"]["VolumeSizeInGB"] = 1
    big = InputListing([ObjectInfo("b", "p/big", 6 * GIB, "e")])
    plan = build_plan(job_from_request(req), {"data": big}, IMAGE, "us-east-1", HOST)
    first = plan.instances[0].inputs[0]
    assert (first.mode, first.gzip, first.fifo_name) == ("Pipe", True, "data_0")
