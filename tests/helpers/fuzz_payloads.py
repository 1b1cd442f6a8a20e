"""Fuzzed payloads (issue 12): a few hundred mutations of a valid payload, from a fixed seed, and
the exits validate and plan may answer them with; shared by the unit and integration fuzz tests."""

from __future__ import annotations

import contextlib
import copy
import json
import random
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

SEED = 12
PAYLOADS = 320
SUBPROCESS_SAMPLE = 24  # each through validate and plan: 48 runs of the program
DEEP = "\u2063DEEP\u2063"  # placeholders replaced in the JSON text, which json.dumps cannot write
HUGE_INT = "\u2063HUGE\u2063"
ODD_TEXT = [
    "",
    " ",
    "\x00",
    "a\x00b",
    "\ud800",
    "x\udfff",
    "\x1b[2J\x1b]0;t\x07",
    "\r\n",
    "\u202e",
    "\u200b",
    "ß" * 300,
    "x" * 100_000,
    "../../etc/passwd",
    "/",
    ".",
    "..",
    "%s%n",
    "😀",
]


ODD_LOCAL_PATHS = [
    "/opt/ml/processing/../config",
    "/opt/ml/processing/x/../../../usr/bin",
    "/opt/ml/processing/./in",
    "/opt/ml/processing//in",
    "/opt/ml/processing/",
    "/opt/ml/processing",
    "/opt/ml/processing/in/",
    "/opt/ml/processing/a b",
    "/opt/ml/processing/\x00",
    "relative/path",
    "",
    "/opt/ml/processing/" + "d" * 300,
]


ODD_IMAGES = [
    "UPPER/case",
    "a b",
    "",
    "-rm",
    "::::",
    "ßü",
    "image@sha256:abc",
    "image@sha256:" + "a" * 64,
    "image\x00",
    "image\u200b",
    "localhost:5000/x:tag",
    "a" * 255,
    "x:" + "t" * 200,
]


SCALARS: list[Any] = [None, True, False, 0, -1, 2**31, 10**30, 1.5, -0.0, 1e308, "", "1", [], {}]


def base_payload(s3_root: Path) -> dict[str, Any]:
    return {
        "ProcessingJobName": "fuzz-job",
        "RoleArn": "arn:aws:iam::123456789012:role/LocalprocTestRole",
        "AppSpecification": {
            "ImageUri": "localproc/example-python:bookworm",
            "ContainerEntrypoint": ["python3", "-c", "print('never runs')"],
            "ContainerArguments": ["--flag", "value"],
        },
        "ProcessingResources": {
            "ClusterConfig": {
                "InstanceCount": 1,
                "InstanceType": "ml.t3.medium",
                "VolumeSizeInGB": 5,
            }
        },
        "StoppingCondition": {"MaxRuntimeInSeconds": 300},
        "Environment": {"KEY": "value"},
        "ProcessingInputs": [
            {
                "InputName": "data",
                "S3Input": {
                    "S3Uri": "s3://fuzz-bucket/in/",
                    "LocalPath": "/opt/ml/processing/input",
                    "S3DataType": "S3Prefix",
                    "S3InputMode": "File",
                },
            }
        ],
        "ProcessingOutputConfig": {
            "Outputs": [
                {
                    "OutputName": "out",
                    "S3Output": {
                        "S3Uri": "s3://fuzz-bucket/out/",
                        "LocalPath": "/opt/ml/processing/output",
                        "S3UploadMode": "EndOfJob",
                    },
                }
            ]
        },
        "Tags": [{"Key": "team", "Value": "fuzz"}],
    }


def _containers(node: Any, path: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Paths of every dict and list in the payload (the root included)."""
    found = [path] if isinstance(node, dict | list) else []
    items = (
        node.items()
        if isinstance(node, dict)
        else enumerate(node)
        if isinstance(node, list)
        else ()
    )
    for key, child in items:
        found.extend(_containers(child, (*path, key)))
    return found


def _at(payload: Any, path: tuple[Any, ...]) -> Any:
    for key in path:
        payload = payload[key]
    return payload


def _random_slot(rng: random.Random, payload: dict[str, Any]) -> tuple[Any, Any] | None:
    """A random (container, key) of a member or element."""
    candidates = [p for p in _containers(payload) if _at(payload, p)]
    if not candidates:
        return None
    node = _at(payload, rng.choice(candidates))
    key = rng.choice(list(node)) if isinstance(node, dict) else rng.randrange(len(node))
    return node, key


def swap_type(rng: random.Random, payload: dict[str, Any]) -> None:
    slot = _random_slot(rng, payload)
    if slot:
        node, key = slot
        node[key] = copy.deepcopy(rng.choice(SCALARS))


def delete_member(rng: random.Random, payload: dict[str, Any]) -> None:
    slot = _random_slot(rng, payload)
    if slot:
        node, key = slot
        del node[key]


def add_unknown_member(rng: random.Random, payload: dict[str, Any]) -> None:
    dicts = [_at(payload, p) for p in _containers(payload) if isinstance(_at(payload, p), dict)]
    rng.choice(dicts)[rng.choice(["Foo", "", "\x00", "\ud800", "ProcessingJobArn"])] = "x"


def odd_text(rng: random.Random, payload: dict[str, Any]) -> None:
    strings = [
        (node, key)
        for p in _containers(payload)
        for node in [_at(payload, p)]
        for key in (node if isinstance(node, dict) else range(len(node)))
        if isinstance(node[key], str)
    ]
    node, key = rng.choice(strings)
    text = rng.choice(ODD_TEXT)
    node[key] = rng.choice([text, node[key] + text, text + node[key]])


def odd_environment(rng: random.Random, payload: dict[str, Any]) -> None:
    payload["Environment"] = {rng.choice(["K", "1x", "\ud800", "A\x00"]): rng.choice(ODD_TEXT)}


def odd_local_path(rng: random.Random, payload: dict[str, Any]) -> None:
    channel = rng.choice(
        [payload["ProcessingInputs"][0]["S3Input"], payload["ProcessingOutputConfig"]["Outputs"][0]]
    )
    target = channel.get("S3Output", channel)
    target["LocalPath"] = rng.choice(ODD_LOCAL_PATHS)


def odd_image(rng: random.Random, payload: dict[str, Any]) -> None:
    payload["AppSpecification"]["ImageUri"] = rng.choice(ODD_IMAGES)


def odd_numbers(rng: random.Random, payload: dict[str, Any]) -> None:
    cluster = payload["ProcessingResources"]["ClusterConfig"]
    member = rng.choice(["InstanceCount", "VolumeSizeInGB"])
    cluster[member] = rng.choice([0, -1, 101, 2**63, 10**40, 1.0, 1e300])
    payload["StoppingCondition"]["MaxRuntimeInSeconds"] = rng.choice([0, -5, 777601, 2**64])


def odd_names(rng: random.Random, payload: dict[str, Any]) -> None:
    payload["ProcessingInputs"][0]["InputName"] = rng.choice(ODD_TEXT)
    payload["ProcessingOutputConfig"]["Outputs"][0]["OutputName"] = rng.choice(ODD_TEXT)


def many_channels(rng: random.Random, payload: dict[str, Any]) -> None:
    first = payload["ProcessingInputs"][0]
    payload["ProcessingInputs"] = [copy.deepcopy(first) for _ in range(rng.choice([0, 2, 11]))]


def deep_nesting(rng: random.Random, payload: dict[str, Any]) -> None:
    slot = _random_slot(rng, payload)
    if slot:
        node, key = slot
        node[key] = DEEP


def huge_integer(rng: random.Random, payload: dict[str, Any]) -> None:
    payload["ProcessingResources"]["ClusterConfig"]["InstanceCount"] = HUGE_INT


def describe_shaped(rng: random.Random, payload: dict[str, Any]) -> None:
    payload.update(
        ProcessingJobArn="arn:aws:sagemaker:us-east-1:1:processing-job/x",
        ProcessingJobStatus=rng.choice(["Failed", None, 3]),
        ExitMessage=rng.choice(ODD_TEXT),
    )


MUTATIONS: list[Callable[[random.Random, dict[str, Any]], None]] = [
    swap_type, delete_member, add_unknown_member, odd_text, odd_environment, odd_local_path,
    odd_image, odd_numbers, odd_names, many_channels, deep_nesting, huge_integer, describe_shaped,
]  # fmt: skip


def payload_texts(s3_root: Path) -> list[str]:
    rng = random.Random(SEED)
    texts = []
    for _ in range(PAYLOADS):
        payload = base_payload(s3_root)
        for mutate in rng.sample(MUTATIONS, rng.choice([1, 1, 2, 3])):
            # An earlier mutation may have removed what this one changes.
            with contextlib.suppress(TypeError, KeyError, IndexError, AttributeError, ValueError):
                mutate(rng, payload)
        text = json.dumps(payload)
        depth = rng.choice([150, 5_000, 200_000])
        text = text.replace(json.dumps(DEEP), "[" * depth + "]" * depth)
        text = text.replace(json.dumps(HUGE_INT), "9" * rng.choice([200, 4_301, 50_000]))
        texts.append(text)
    return texts


VALIDATE_EXITS = {0, 2}
PLAN_EXITS = {0, 1, 2, 4}


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[Path]]:
    root = tmp_path_factory.mktemp("fuzz")
    s3_root = root / "s3"
    (s3_root / "fuzz-bucket" / "in").mkdir(parents=True)
    (s3_root / "fuzz-bucket" / "in" / "data.csv").write_text("a,b\n1,2\n")
    paths = []
    for index, text in enumerate(payload_texts(s3_root)):
        path = root / f"payload-{index:03}.json"
        path.write_text(text, encoding="utf-8", errors="surrogatepass")
        paths.append(path)
    return s3_root, paths
